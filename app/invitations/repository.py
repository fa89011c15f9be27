"""Queries about invitations.

Listing and loading by id take an ``AccessibleOrganizationID``, like every tenant
query. Loading by token hash does not: the token itself is the credential (a
secret only the invited person's mailbox has seen), so it is looked up before
anyone is signed in.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.accounts.models import User
from app.tenancy.models import Invitation, Organization
from app.tenancy.repository import AccessibleOrganizationID


def list_open(
    session: Session, org_id: AccessibleOrganizationID, *, kinds: Collection[str]
) -> Sequence[tuple[Invitation, User | None]]:
    """Not accepted and not revoked (expired ones too: they can be re-sent), newest first."""
    if not kinds:
        return []
    return session.exec(
        select(Invitation, User)
        .join(User, col(User.id) == Invitation.invited_by_id, isouter=True)
        .where(
            Invitation.organization_id == org_id,
            col(Invitation.kind).in_(list(kinds)),
            col(Invitation.accepted_at).is_(None),
            col(Invitation.revoked_at).is_(None),
        )
        .order_by(col(Invitation.created_at).desc(), col(Invitation.id))
    ).all()


def get_in_org(
    session: Session, org_id: AccessibleOrganizationID, invitation_id: uuid.UUID
) -> Invitation | None:
    return session.exec(
        select(Invitation).where(
            Invitation.organization_id == org_id, Invitation.id == invitation_id
        )
    ).first()


def find_open_for_email(
    session: Session, org_id: AccessibleOrganizationID, *, email: str, kind: str
) -> Invitation | None:
    return session.exec(
        select(Invitation).where(
            Invitation.organization_id == org_id,
            Invitation.email == email,
            Invitation.kind == kind,
            col(Invitation.accepted_at).is_(None),
            col(Invitation.revoked_at).is_(None),
        )
    ).first()


def get_by_token_hash(session: Session, token_hash: str) -> Invitation | None:
    return session.exec(select(Invitation).where(Invitation.token_hash == token_hash)).first()


def get_inviting_org(session: Session, invitation: Invitation) -> Organization | None:
    """The organization that sent an invitation whose token was presented (see module doc)."""
    return session.get(Organization, invitation.organization_id)


def get_user(session: Session, user_id: uuid.UUID | None) -> User | None:
    return session.get(User, user_id) if user_id is not None else None


def update_if_version(
    session: Session, invitation: Invitation, *, only_open: bool = True, **values: Any
) -> bool:
    """Conditional update: of two requests racing on one invitation, the second changes nothing.

    ``only_open`` also requires that it is neither accepted nor revoked, so a token is
    used at most once even when two browsers submit it at the same moment.
    """
    query = sa.update(Invitation).where(
        col(Invitation.id) == invitation.id, col(Invitation.version) == invitation.version
    )
    if only_open:
        query = query.where(
            col(Invitation.accepted_at).is_(None), col(Invitation.revoked_at).is_(None)
        )
    result = session.execute(
        query.values(version=invitation.version + 1, **values).execution_options(
            synchronize_session=False
        )
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    session.refresh(invitation)
    return True
