"""Security events: who signed in, failed, signed out, changed a password or a token,
changed a membership or single sign-on — with the time, the client's IP and user agent.

``record`` writes the event in the caller's transaction, so an event exists exactly
when the change it describes committed. Services call it without a request: the
request's IP and user agent are remembered on the session by the request's session
scope (``remember_request``), so events written deep in a service still carry them.

Each event is also appended to the organization's hash-chained audit record (an
organization-level chain, next to the engagements' chains): the organization's own
events to its chain, a person's events to the chain of every organization they belong
to. Failed sign-ins are the exception, see ``_UNCHAINED``.

Organization owners read them on ``/orgs/{slug}/security``: the organization's own
events (membership, SSO, its API tokens) and the personal events (sign-ins,
passwords) of its members — never another organization's.

For the engineers building password reset and single sign-on::

    security_events.record(db, SecurityEventKind.password_reset, user=user)
    security_events.record(
        db, SecurityEventKind.sso_settings_changed, actor=actor.user,
        organization_id=org.id, detail={"issuer": issuer, "require_sso": True},
    )
    security_events.record(
        db, SecurityEventKind.sso_sign_in_refused, email=email, detail={"reason": "nonce"}
    )
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import Request
from sqlmodel import Session, col, func, or_, select

from app.accounts import repository
from app.accounts.models import SecurityEvent, User
from app.accounts.throttle import client_ip
from app.audit import service as audit
from app.db import widened_tenant_context
from app.errors import N_
from app.tenancy.models import Membership
from app.tenancy.repository import AccessibleOrganizationID

_REQUEST_CLIENT = "brandkeep.request_client"


class SecurityEventKind(enum.StrEnum):
    sign_in = "sign_in"
    sign_in_failed = "sign_in_failed"
    sign_out = "sign_out"
    sign_out_everywhere = "sign_out_everywhere"
    password_changed = "password_changed"  # noqa: S105 - an event name
    password_reset = "password_reset"  # noqa: S105
    api_token_created = "api_token_created"  # noqa: S105
    api_token_revoked = "api_token_revoked"  # noqa: S105
    membership_added = "membership_added"
    membership_role_changed = "membership_role_changed"
    membership_removed = "membership_removed"
    sso_settings_changed = "sso_settings_changed"
    sso_sign_in_refused = "sso_sign_in_refused"


KIND_LABELS: dict[str, str] = {
    SecurityEventKind.sign_in: N_("Signed in"),
    SecurityEventKind.sign_in_failed: N_("Failed sign-in"),
    SecurityEventKind.sign_out: N_("Signed out"),
    SecurityEventKind.sign_out_everywhere: N_("Signed out everywhere"),
    SecurityEventKind.password_changed: N_("Password changed"),
    SecurityEventKind.password_reset: N_("Password reset"),
    SecurityEventKind.api_token_created: N_("API token created"),
    SecurityEventKind.api_token_revoked: N_("API token revoked"),
    SecurityEventKind.membership_added: N_("Member added"),
    SecurityEventKind.membership_role_changed: N_("Member's role changed"),
    SecurityEventKind.membership_removed: N_("Member removed"),
    SecurityEventKind.sso_settings_changed: N_("Single sign-on settings changed"),
    SecurityEventKind.sso_sign_in_refused: N_("Single sign-on refused"),
}


def remember_request(session: Session, request: Request) -> None:
    """Keep the request's client IP and user agent on its session, for ``record``."""
    session.info[_REQUEST_CLIENT] = (client_ip(request), request.headers.get("user-agent"))


def _id_of(who: User | uuid.UUID | None) -> uuid.UUID | None:
    return who.id if isinstance(who, User) else who


def record(
    session: Session,
    kind: SecurityEventKind | str,
    *,
    request: Request | None = None,
    user: User | uuid.UUID | None = None,
    actor: User | uuid.UUID | None = None,
    organization_id: uuid.UUID | None = None,
    email: str | None = None,
    detail: dict[str, Any] | None = None,
) -> SecurityEvent:
    """Write one security event in the current transaction.

    - ``user``: whom it is about (the person signing in, the member whose role changed);
    - ``actor``: who did it, when someone else (the owner who changed the role);
      defaults to ``user``;
    - ``organization_id``: for events about an organization (memberships, SSO, its
      API tokens); personal events (sign-ins, passwords) leave it empty and are shown
      to the owners of every organization the person belongs to;
    - ``email``: what was typed, for a failed sign-in; the account is looked up by it;
    - ``detail``: a small JSON object (never a secret: no passwords, no tokens).

    IP and user agent come from ``request`` if given, else from the request that
    opened this session (``remember_request``); a job or the CLI has neither.
    """
    if request is not None:
        ip, user_agent = client_ip(request), request.headers.get("user-agent")
    else:
        ip, user_agent = session.info.get(_REQUEST_CLIENT, (None, None))
    user_id = _id_of(user)
    if user_id is None and email:
        found = repository.get_user_by_email(session, email)
        user_id = found.id if found else None
    event = SecurityEvent(
        kind=str(kind),
        user_id=user_id,
        actor_id=_id_of(actor) or user_id,
        organization_id=organization_id,
        email=(email.strip()[:254] or None) if email else None,
        ip_address=(ip or "")[:64] or None,
        user_agent=(user_agent or "")[:300] or None,
        detail=detail or {},
    )
    session.add(event)
    session.flush()
    _chain(session, event)
    return event


# A failed sign-in stays in the security log only. Appending it to the chains of the
# account's organizations would make a wrong password for a real account measurably
# slower than one for an unknown address: an answer to "does this account exist?".
_UNCHAINED = frozenset({SecurityEventKind.sign_in_failed.value})


def _chain(session: Session, event: SecurityEvent) -> None:
    """Append the event to its organizations' audit chains, in the same transaction."""
    if event.kind in _UNCHAINED:
        return
    if event.organization_id is not None:
        org_ids = [event.organization_id]
    elif event.user_id is not None:
        # The person may not be signed in yet (a password reset): read their
        # memberships as the server, not as the request.
        with widened_tenant_context(session, user_id=event.user_id):
            org_ids = list(
                session.exec(
                    select(Membership.organization_id).where(Membership.user_id == event.user_id)
                )
            )
    else:
        return
    actor = repository.get_user(session, event.actor_id) if event.actor_id else None
    label = f"{actor.name} <{actor.email}>" if actor else (event.email or "—")
    data = {
        "user_id": event.user_id,
        "email": event.email,
        "ip_address": event.ip_address,
        "user_agent": event.user_agent,
        "detail": event.detail,
    }
    # The person accepting an invitation is not a member of the organization until
    # this transaction commits: the chain is written as the server's own record.
    with widened_tenant_context(session, org_ids=org_ids):
        # One order for every writer: two transactions never wait on each other's locks.
        for org_id in sorted(org_ids):
            audit.append(
                session,
                organization_id=org_id,
                engagement_id=None,
                actor_id=event.actor_id,
                actor=label,
                kind=f"security.{event.kind}",
                subject_type="security_event",
                subject_id=event.id,
                data=data,
            )


def _of_organization(org_id: AccessibleOrganizationID) -> Any:
    members = select(Membership.user_id).where(Membership.organization_id == org_id)
    return or_(
        col(SecurityEvent.organization_id) == org_id,
        (col(SecurityEvent.organization_id).is_(None) & col(SecurityEvent.user_id).in_(members)),
    )


def list_for_organization(
    session: Session, org_id: AccessibleOrganizationID, *, limit: int, offset: int
) -> tuple[Sequence[SecurityEvent], int]:
    """The organization's events and its members' personal events, newest first.

    A member's events about another organization (a token made there, a role
    changed there) stay with that organization.
    """
    total = session.exec(
        select(func.count()).select_from(SecurityEvent).where(_of_organization(org_id))
    ).one()
    rows = session.exec(
        select(SecurityEvent)
        .where(_of_organization(org_id))
        .order_by(col(SecurityEvent.at).desc(), col(SecurityEvent.id))
        .limit(limit)
        .offset(offset)
    ).all()
    return rows, total


def organization_record(session: Session, org_id: AccessibleOrganizationID) -> audit.Record:
    """The organization's own audit chain (its security events), re-verified as it is read.

    Callers check the owner's capability first (``org.settings``).
    """
    return audit.record_of(session, org_id)


def organization_checkpoint(
    session: Session, org_id: AccessibleOrganizationID, secret_key: str
) -> dict[str, Any]:
    """A signed checkpoint of the organization's chain, to prove later nothing was removed."""
    return audit.checkpoint(organization_record(session, org_id).verification, secret_key)


def people_of(session: Session, events: Sequence[SecurityEvent]) -> dict[uuid.UUID, User]:
    """The people the events name (as subject or actor), by id, in one query."""
    ids = {i for event in events for i in (event.user_id, event.actor_id) if i is not None}
    if not ids:
        return {}
    return {user.id: user for user in session.exec(select(User).where(col(User.id).in_(ids)))}
