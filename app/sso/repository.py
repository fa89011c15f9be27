"""Queries about sign-in identities and organizations' SSO settings.

Two kinds of reads live here. The owner's settings page reads through an
``AccessibleOrganizationID`` like every tenant read. The sign-in itself runs
before anyone is signed in, so it looks an organization's provider up by its
short name, unscoped; it reads only what a sign-in needs (the provider, the
person's memberships, the organization's pending invitations) and shows none
of it to the visitor.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.accounts.models import User, UserIdentity
from app.tenancy.models import (
    Invitation,
    InvitationKind,
    Membership,
    Organization,
    SsoSettings,
)
from app.tenancy.repository import AccessibleOrganizationID

# --- settings -----------------------------------------------------------------


def get_settings(session: Session, org_id: AccessibleOrganizationID) -> SsoSettings | None:
    return session.exec(select(SsoSettings).where(SsoSettings.organization_id == org_id)).first()


def update_settings_if_version(
    session: Session, settings_id: uuid.UUID, *, expected_version: int, values: dict[str, object]
) -> bool:
    """Conditional update: of two owners saving at once, the second changes nothing."""
    result = session.execute(
        sa.update(SsoSettings)
        .where(col(SsoSettings.id) == settings_id, col(SsoSettings.version) == expected_version)
        .values(**values, version=SsoSettings.version + 1)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def get_organization_by_slug_unscoped(session: Session, slug: str) -> Organization | None:
    """For the public sign-in (no one is signed in yet): the organization named by the visitor."""
    return session.exec(select(Organization).where(Organization.slug == slug)).first()


def get_settings_unscoped(session: Session, org_id: uuid.UUID) -> SsoSettings | None:
    """For the public sign-in: an organization's provider (row-level security: see the service)."""
    return session.exec(select(SsoSettings).where(SsoSettings.organization_id == org_id)).first()


def organizations_requiring_sso(
    session: Session, accessible: frozenset[AccessibleOrganizationID]
) -> Sequence[Organization]:
    if not accessible:
        return []
    return session.exec(
        select(Organization)
        .join(SsoSettings, col(SsoSettings.organization_id) == Organization.id)
        .where(col(Organization.id).in_(list(accessible)), col(SsoSettings.require_sso).is_(True))
        .order_by(col(Organization.name))
    ).all()


def get_organization_unscoped(session: Session, org_id: uuid.UUID) -> Organization | None:
    return session.get(Organization, org_id)


def organization_ids_of(session: Session, user_id: uuid.UUID) -> frozenset[uuid.UUID]:
    """Every organization a person belongs to (to decide what a provider may vouch for)."""
    query = select(Membership.organization_id).where(Membership.user_id == user_id)
    return frozenset(session.exec(query))


# --- people and their identities ----------------------------------------------


def get_user(session: Session, user_id: uuid.UUID) -> User | None:
    return session.get(User, user_id)


def get_user_by_email(session: Session, email: str) -> User | None:
    return session.exec(select(User).where(User.email == email.strip().lower())).first()


def get_identity(session: Session, issuer: str, subject: str) -> UserIdentity | None:
    return session.exec(
        select(UserIdentity).where(UserIdentity.issuer == issuer, UserIdentity.subject == subject)
    ).first()


def has_identity_at(session: Session, user_id: uuid.UUID, issuer: str) -> bool:
    query = select(UserIdentity.id).where(
        UserIdentity.user_id == user_id, UserIdentity.issuer == issuer
    )
    return session.exec(query).first() is not None


# --- invitations (read, and marked accepted; the invitations feature owns the rest) ----


def pending_member_invitations(
    session: Session, org_id: uuid.UUID, email: str, domain: str, now: datetime
) -> Sequence[Invitation]:
    """Live member invitations of an organization for this address, or for its whole domain."""
    return session.exec(
        select(Invitation)
        .where(
            Invitation.organization_id == org_id,
            Invitation.kind == InvitationKind.member,
            col(Invitation.accepted_at).is_(None),
            col(Invitation.revoked_at).is_(None),
            col(Invitation.expires_at) > now,
            sa.or_(
                sa.func.lower(col(Invitation.email)) == email,
                sa.and_(
                    col(Invitation.allow_domain).is_(True),
                    sa.func.lower(col(Invitation.email)).endswith("@" + domain, autoescape=True),
                ),
            ),
        )
        .order_by(col(Invitation.created_at))
    ).all()


def mark_invitation_accepted(
    session: Session, invitation: Invitation, *, user_id: uuid.UUID, now: datetime
) -> bool:
    """Single use: only the first of two simultaneous acceptances changes the row."""
    result = session.execute(
        sa.update(Invitation)
        .where(
            col(Invitation.id) == invitation.id,
            col(Invitation.version) == invitation.version,
            col(Invitation.accepted_at).is_(None),
            col(Invitation.revoked_at).is_(None),
        )
        .values(accepted_at=now, accepted_by_id=user_id, version=Invitation.version + 1)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
