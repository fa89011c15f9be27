"""Rules about organizations and their members."""

from __future__ import annotations

import re
import secrets
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session

from app.accounts.models import ApiToken, User
from app.accounts.security_events import SecurityEventKind
from app.accounts.security_events import record as record_security_event
from app.db import set_tenant_context
from app.errors import (
    N_,
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionFailed,
)
from app.tenancy import repository
from app.tenancy.capabilities import can, refusal_reason
from app.tenancy.models import ROLES_BY_KIND, Membership, Organization, OrgKind, Role
from app.tenancy.repository import AccessibleOrganizationID


@dataclass(frozen=True)
class Actor:
    """Who is asking, and which organizations they may see (checked once, here)."""

    user: User
    org_ids: frozenset[AccessibleOrganizationID]
    token: ApiToken | None = None


@dataclass(frozen=True)
class OrgAccess:
    """An organization loaded through the scoped layer, with the actor's role in it."""

    organization: Organization
    membership: Membership
    org_id: AccessibleOrganizationID

    @property
    def role(self) -> Role:
        return Role(self.membership.role)

    def can(self, capability: str) -> bool:
        return can(self.organization.kind, self.membership.role, capability)

    def require(self, capability: str) -> None:
        if not self.can(capability):
            raise Forbidden(refusal_reason(capability))


def actor_for(session: Session, user: User, token: ApiToken | None = None) -> Actor:
    """Who is asking; also sets the row-level security context (PostgreSQL) for the transaction.

    The user id goes first, so that their memberships are readable, then the
    organizations computed from them.
    """
    set_tenant_context(session, user_id=user.id)
    org_ids = repository.get_accessible_org_ids(
        session, user_id=user.id, token_org_id=token.organization_id if token else None
    )
    set_tenant_context(session, org_ids=org_ids)
    return Actor(user=user, org_ids=org_ids, token=token)


def org_access(
    session: Session, actor: Actor, slug: str, capability: str | None = None
) -> OrgAccess:
    """Load an organization for this actor: 404 if not theirs, 403 if the role lacks the right."""
    org = repository.get_org_by_slug(session, slug, actor.org_ids)
    if org is None:
        raise NotFound(N_("No organization here, or it is not yours."))
    org_id = AccessibleOrganizationID(org.id)
    membership = repository.get_membership(session, org_id, actor.user.id)
    if membership is None:  # left the organization during this request
        raise NotFound(N_("No organization here, or it is not yours."))
    access = OrgAccess(organization=org, membership=membership, org_id=org_id)
    if capability is not None:
        access.require(capability)
    return access


_SLUG_JUNK = re.compile(r"[^a-z0-9]+")


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return _SLUG_JUNK.sub("-", ascii_name.lower()).strip("-")[:48] or "org"


def create_organization(
    session: Session,
    *,
    name: str,
    kind: OrgKind,
    slug: str | None = None,
    language: str = "en",
    timezone: str = "UTC",
) -> Organization:
    name = name.strip()
    if not name:
        raise InvalidInput(
            field_errors=[FieldError("org_name", N_("Give the organization a name."))]
        )
    if slug is None:
        slug = slugify(name)
        while repository.slug_exists(session, slug):
            slug = f"{slugify(name)[:40]}-{secrets.token_hex(3)}"
    elif repository.slug_exists(session, slug):
        raise InvalidInput(field_errors=[FieldError("slug", N_("This short name is taken."))])
    org = Organization(kind=kind, name=name, slug=slug, language=language, timezone=timezone)
    session.add(org)
    session.flush()
    return org


def add_membership(
    session: Session,
    *,
    organization: Organization,
    user: User,
    role: Role,
    actor: User | uuid.UUID | None = None,
) -> Membership:
    """Used when an organization is created and by owners adding people."""
    _check_role_fits(organization, role)
    org_id = AccessibleOrganizationID(organization.id)
    # Two owners adding the same person at once: the second waits, then sees the first.
    repository.lock_organization(session, org_id)
    if repository.get_membership(session, org_id, user.id):
        raise Conflict(N_("%(email)s is already a member."), params={"email": user.email})
    membership = Membership(organization_id=organization.id, user_id=user.id, role=role)
    session.add(membership)
    session.flush()
    record_security_event(
        session,
        SecurityEventKind.membership_added,
        user=user,
        actor=actor,
        organization_id=organization.id,
        detail={"role": str(role)},
    )
    return membership


def _check_role_fits(organization: Organization, role: Role | str) -> Role:
    allowed = ROLES_BY_KIND[OrgKind(organization.kind)]
    if role not in allowed:
        raise InvalidInput(
            field_errors=[FieldError("role", N_("This role does not exist in this organization."))]
        )
    return Role(role)


def list_members(
    session: Session, access: OrgAccess, *, limit: int = 50, offset: int = 0
) -> tuple[Sequence[tuple[Membership, User]], int]:
    access.require("members.read")
    return repository.list_members(session, access.org_id, limit=limit, offset=offset)


def get_member(session: Session, access: OrgAccess, membership_id: uuid.UUID) -> Membership:
    access.require("members.read")
    membership = repository.get_membership_by_id(session, access.org_id, membership_id)
    if membership is None:
        raise NotFound(N_("No such member in this organization."))
    return membership


def add_member(
    session: Session, access: OrgAccess, *, user: User | None, email: str, role: Role | str
) -> Membership:
    access.require("members.manage")
    role = _check_role_fits(access.organization, role)
    if user is None:
        raise InvalidInput(
            field_errors=[
                FieldError(
                    "email",
                    N_(
                        "Nobody has a Brandkeep account with this e-mail yet; "
                        "ask them to sign up first."
                    ),
                )
            ]
        )
    return add_membership(
        session,
        organization=access.organization,
        user=user,
        role=role,
        actor=access.membership.user_id,
    )


def change_role(
    session: Session,
    access: OrgAccess,
    membership_id: uuid.UUID,
    *,
    role: Role | str,
    expected_version: int,
) -> Membership:
    access.require("members.manage")
    role = _check_role_fits(access.organization, role)
    repository.lock_owner_rows(session, access.org_id)
    membership = get_member(session, access, membership_id)
    if membership.version != expected_version:
        raise PreconditionFailed()
    if membership.role == Role.owner and role != Role.owner:
        _refuse_losing_last_owner(session, access)
    if not repository.update_role_if_version(
        session, membership.id, expected_version=expected_version, role=role
    ):
        raise PreconditionFailed()
    previous_role = membership.role
    session.refresh(membership)
    record_security_event(
        session,
        SecurityEventKind.membership_role_changed,
        user=membership.user_id,
        actor=access.membership.user_id,
        organization_id=access.organization.id,
        detail={"from": str(previous_role), "to": str(role)},
    )
    return membership


def remove_member(
    session: Session, access: OrgAccess, membership_id: uuid.UUID, *, expected_version: int
) -> None:
    access.require("members.manage")
    repository.lock_owner_rows(session, access.org_id)
    membership = get_member(session, access, membership_id)
    if membership.version != expected_version:
        raise PreconditionFailed()
    if membership.role == Role.owner:
        _refuse_losing_last_owner(session, access)
    if not repository.delete_if_version(session, membership.id, expected_version=expected_version):
        raise PreconditionFailed()
    record_security_event(
        session,
        SecurityEventKind.membership_removed,
        user=membership.user_id,
        actor=access.membership.user_id,
        organization_id=access.organization.id,
        detail={"role": str(membership.role)},
    )
    session.expunge(membership)


def _refuse_losing_last_owner(session: Session, access: OrgAccess) -> None:
    if repository.count_owners(session, access.org_id) <= 1:
        raise Conflict(
            N_("An organization needs at least one owner: make someone else owner first.")
        )


def organizations_of(session: Session, user: User) -> Sequence[tuple[Membership, Organization]]:
    return repository.list_user_organizations(session, user.id)
