"""Queries about organizations and memberships, all scoped.

``AccessibleOrganizationID`` is the only way into tenant data: it is made by
``get_accessible_org_ids`` and nowhere else, so a repository function that takes
one cannot be called with an id the current user was never checked against.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import NewType

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from app.accounts.models import User
from app.db import tenant_context_column, tenant_context_was_set
from app.tenancy.models import Membership, Organization, Role

AccessibleOrganizationID = NewType("AccessibleOrganizationID", uuid.UUID)


# The memberships that granted the actor's organizations, kept for the rest of the
# transaction: each engagement or organization a request loads asks for the actor's
# role there, and it was read a moment ago.
_ACTOR_MEMBERSHIPS = "brandkeep.actor_memberships"


def get_accessible_org_ids(
    session: Session, *, user_id: uuid.UUID, token_org_id: uuid.UUID | None = None
) -> frozenset[AccessibleOrganizationID]:
    """The organizations this user may see right now.

    An API token acts within the one organization it was made for, and only
    while its owner is still a member there.

    One statement: on PostgreSQL it also puts these organizations in the tenant
    context (``tenant_context_column``: computed from the very rows read, so only
    the following statements see them). Under row-level security the user's own
    memberships are readable once ``user_id`` is in the context.
    """
    organizations = sa.func.string_agg(sa.cast(Membership.organization_id, sa.String), ",")
    setter = tenant_context_column(session, "org_ids", organizations.over())
    query = sa.select(Membership, *([setter] if setter is not None else [])).where(
        col(Membership.user_id) == user_id
    )
    if token_org_id is not None:
        query = query.where(col(Membership.organization_id) == token_org_id)
    rows = session.execute(query).all()
    if setter is not None and rows:
        tenant_context_was_set(session, org_ids=rows[0][1])
    memberships = {row[0].organization_id: row[0] for row in rows}
    session.info[_ACTOR_MEMBERSHIPS] = (session.get_transaction(), user_id, memberships)
    return frozenset(AccessibleOrganizationID(org_id) for org_id in memberships)


def _remembered_membership(
    session: Session, org_id: uuid.UUID, user_id: uuid.UUID
) -> Membership | None:
    """The actor's membership read by ``get_accessible_org_ids`` in this transaction, if it
    still stands in the session as read (not deleted, expunged or expired since)."""
    remembered = session.info.get(_ACTOR_MEMBERSHIPS)
    if remembered is None:
        return None
    transaction, actor_id, memberships = remembered
    if transaction is not session.get_transaction() or actor_id != user_id:
        return None
    membership: Membership | None = memberships.get(org_id)
    if membership is None:
        return None
    state = sa.inspect(membership)
    if state.session is not session or state.deleted or state.was_deleted:
        return None
    if state.expired_attributes:
        return None
    return membership


def get_org_by_slug(
    session: Session, slug: str, accessible: frozenset[AccessibleOrganizationID]
) -> Organization | None:
    if not accessible:
        return None
    return session.exec(
        select(Organization).where(
            Organization.slug == slug, col(Organization.id).in_(list(accessible))
        )
    ).first()


def slug_exists(session: Session, slug: str) -> bool:
    return (
        session.exec(select(Organization.id).where(Organization.slug == slug)).first() is not None
    )


def get_org_by_slug_unscoped(session: Session, slug: str) -> Organization | None:
    """For the command line, which runs as the operator, not as a tenant."""
    return session.exec(select(Organization).where(Organization.slug == slug)).first()


def get_membership(
    session: Session, org_id: AccessibleOrganizationID, user_id: uuid.UUID
) -> Membership | None:
    remembered = _remembered_membership(session, org_id, user_id)
    if remembered is not None:
        return remembered
    return session.exec(
        select(Membership).where(
            Membership.organization_id == org_id, Membership.user_id == user_id
        )
    ).first()


def get_membership_by_id(
    session: Session, org_id: AccessibleOrganizationID, membership_id: uuid.UUID
) -> Membership | None:
    return session.exec(
        select(Membership).where(
            Membership.organization_id == org_id, Membership.id == membership_id
        )
    ).first()


def list_members(
    session: Session, org_id: AccessibleOrganizationID, *, limit: int, offset: int
) -> tuple[Sequence[tuple[Membership, User]], int]:
    total = session.exec(
        select(func.count()).select_from(Membership).where(Membership.organization_id == org_id)
    ).one()
    rows = session.exec(
        select(Membership, User)
        .join(User, col(User.id) == Membership.user_id)
        .where(Membership.organization_id == org_id)
        .order_by(col(User.name), col(User.email))
        .limit(limit)
        .offset(offset)
    ).all()
    return rows, total


def member_roles_and_names(
    session: Session, org_id: AccessibleOrganizationID
) -> Sequence[tuple[uuid.UUID, str, str]]:
    """Every member's user id, role and name, in one query (no count, no paging): what
    a review needs to know who may decide and whom it still waits for."""
    rows = session.exec(
        select(Membership.user_id, Membership.role, User.name)
        .join(User, col(User.id) == Membership.user_id)
        .where(Membership.organization_id == org_id)
    ).all()
    return [(user_id, str(role), name) for user_id, role, name in rows]


def count_owners(session: Session, org_id: AccessibleOrganizationID) -> int:
    return session.exec(
        select(func.count())
        .select_from(Membership)
        .where(Membership.organization_id == org_id, Membership.role == Role.owner)
    ).one()


def lock_owner_rows(session: Session, org_id: AccessibleOrganizationID) -> None:
    """Serialise changes to an organization's owners (PostgreSQL; SQLite already is).

    Without it two owners demoting each other at once would both see "one other
    owner left" and leave the organization with none.
    """
    session.exec(
        select(Membership.id)
        .where(Membership.organization_id == org_id, Membership.role == Role.owner)
        .with_for_update()
    ).all()


def lock_organization(session: Session, org_id: AccessibleOrganizationID) -> None:
    """Serialise changes to who belongs to an organization (PostgreSQL; SQLite already is).

    ``FOR NO KEY UPDATE``, so rows that merely refer to the organization are not held up.
    """
    session.exec(
        select(Organization.id).where(Organization.id == org_id).with_for_update(key_share=True)
    ).all()


def update_role_if_version(
    session: Session, membership_id: uuid.UUID, *, expected_version: int, role: Role
) -> bool:
    """Conditional update: the loser of a race changes nothing and learns it."""
    result = session.execute(
        sa.update(Membership)
        .where(col(Membership.id) == membership_id, col(Membership.version) == expected_version)
        .values(role=role.value, version=Membership.version + 1)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def delete_if_version(session: Session, membership_id: uuid.UUID, *, expected_version: int) -> bool:
    result = session.execute(
        sa.delete(Membership)
        .where(col(Membership.id) == membership_id, col(Membership.version) == expected_version)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def list_user_organizations(
    session: Session, user_id: uuid.UUID
) -> Sequence[tuple[Membership, Organization]]:
    return session.exec(
        select(Membership, Organization)
        .join(Organization, col(Organization.id) == Membership.organization_id)
        .where(Membership.user_id == user_id)
        .order_by(col(Organization.name))
    ).all()
