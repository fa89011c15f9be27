"""Demo data: a brand, two agencies and their people. Loading it twice changes nothing.

Demo only: every account here shares the documented password ``brandkeep-demo``.
Later features add their part of the story below, each in its own function.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from app.accounts import repository as accounts_repository
from app.accounts import service as accounts
from app.accounts.models import User
from app.tenancy import repository as tenancy_repository
from app.tenancy import service as tenancy
from app.tenancy.models import Organization, OrgKind, Role
from app.tenancy.repository import AccessibleOrganizationID

DEMO_PASSWORD = "brandkeep-demo"  # noqa: S105 - documented, demo-only


@dataclass(frozen=True)
class DemoAccount:
    email: str
    name: str
    org_slug: str
    role: Role


ORGANIZATIONS = (
    ("acme", "Acme Outdoor", OrgKind.brand),
    ("northwind", "Northwind Social", OrgKind.agency),
    ("bluepeak", "Bluepeak Media", OrgKind.agency),
)

ACCOUNTS = (
    DemoAccount("owner@acme.example", "Olivia Owens", "acme", Role.owner),
    DemoAccount("lead@acme.example", "Lucas Leal", "acme", Role.lead),
    DemoAccount("reviewer@acme.example", "Rosa Rivera", "acme", Role.reviewer),
    DemoAccount("manager@northwind.example", "Nina Navarro", "northwind", Role.manager),
    DemoAccount("creator@northwind.example", "Carlos Cruz", "northwind", Role.creator),
    DemoAccount("manager@bluepeak.example", "Ben Brooks", "bluepeak", Role.manager),
)


def load(session: Session) -> None:
    organizations = _organizations(session)
    _people(session, organizations)


def _organizations(session: Session) -> dict[str, Organization]:
    found: dict[str, Organization] = {}
    for slug, name, kind in ORGANIZATIONS:
        org = tenancy_repository.get_org_by_slug_unscoped(session, slug)
        if org is None:
            org = tenancy.create_organization(
                session, name=name, kind=kind, slug=slug, timezone="Europe/Madrid"
            )
        found[slug] = org
    return found


def _people(session: Session, organizations: dict[str, Organization]) -> None:
    for account in ACCOUNTS:
        user: User | None = accounts_repository.get_user_by_email(session, account.email)
        if user is None:
            user = accounts.create_user(
                session, email=account.email, name=account.name, password=DEMO_PASSWORD
            )
        org = organizations[account.org_slug]
        if (
            tenancy_repository.get_membership(session, AccessibleOrganizationID(org.id), user.id)
            is None
        ):
            tenancy.add_membership(session, organization=org, user=user, role=account.role)
