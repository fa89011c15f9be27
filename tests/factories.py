"""Plain functions that arrange data through the real services, then commit."""

from __future__ import annotations

import secrets

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.accounts import service as accounts
from app.accounts.models import User
from app.tenancy import service as tenancy
from app.tenancy.models import Membership, Organization, OrgKind, Role
from app.tenancy.service import actor_for
from tests.conftest import csrf_of

PASSWORD = "correct horse battery staple"


def create_org(
    db: Session, *, kind: OrgKind | str = OrgKind.brand, name: str | None = None
) -> Organization:
    org = tenancy.create_organization(
        db, name=name or f"Org {secrets.token_hex(3)}", kind=OrgKind(kind)
    )
    db.commit()
    return org


def create_user(
    db: Session, *, email: str | None = None, name: str = "Pat Example", password: str = PASSWORD
) -> User:
    user = accounts.create_user(
        db, email=email or f"{secrets.token_hex(4)}@example.com", name=name, password=password
    )
    db.commit()
    return user


def add_member(db: Session, org: Organization, user: User, role: Role | str) -> Membership:
    membership = tenancy.add_membership(db, organization=org, user=user, role=Role(role))
    db.commit()
    return membership


def person_in(
    db: Session, org: Organization, role: Role | str, *, email: str | None = None
) -> User:
    user = create_user(db, email=email)
    add_member(db, org, user, role)
    return user


def create_token(db: Session, user: User, org: Organization, *, scope: str = "write") -> str:
    _, raw = accounts.create_api_token(
        db, actor_for(db, user), org_slug=org.slug, name="tests", scope=scope
    )
    db.commit()
    return raw


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> str:
    """Signs the client in; returns the CSRF token of the new session."""
    page = client.get("/sign-in")
    response = client.post(
        "/sign-in",
        data={
            "email": email,
            "password": password,
            "csrf_token": csrf_of(page.text),
            "next": "/home",
        },
    )
    assert response.status_code == 303, response.text
    home = client.get("/home")
    assert home.status_code == 200
    return csrf_of(home.text)


def bearer(raw_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw_token}"}
