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
from app.tenancy.models import Membership, Organization, Role

AccessibleOrganizationID = NewType("AccessibleOrganizationID", uuid.UUID)


def get_accessible_org_ids(
    session: Session, *, user_id: uuid.UUID, token_org_id: uuid.UUID | None = None
) -> frozenset[AccessibleOrganizationID]:
    """The organizations this user may see right now.

    An API token acts within the one organization it was made for, and only
    while its owner is still a member there.
    """
    query = select(Membership.organization_id).where(Membership.user_id == user_id)
    if token_org_id is not None:
        query = query.where(Membership.organization_id == token_org_id)
    return frozenset(AccessibleOrganizationID(org_id) for org_id in session.exec(query))


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
