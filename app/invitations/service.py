"""Rules of invitations: who may invite whom, the token, and what accepting does.

The link carries ``secrets.token_urlsafe(32)``; only its SHA-256 is stored, so the
database alone cannot be used to accept anything. A token works once, until it
expires (``settings.invitation_days``), and not after it is revoked or re-sent
(re-sending issues a new token). An invitation is accepted only for the invited
address, or for any address at its domain when the inviter allowed that.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlmodel import Session

from app.accounts import repository as accounts_repository
from app.accounts import service as accounts
from app.accounts.models import User
from app.accounts.service import secret_hash
from app.config import Settings
from app.db import set_tenant_context, utcnow
from app.engagements import service as engagements
from app.engagements.schemas import EngagementCreate
from app.errors import (
    N_,
    BrandkeepError,
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
)
from app.i18n import LANGUAGES, gettext_for
from app.invitations import repository
from app.invitations.schemas import AgencyProposalIn
from app.mail import service as mail
from app.tenancy import repository as tenancy_repository
from app.tenancy import service as tenancy
from app.tenancy.capabilities import can, refusal_reason
from app.tenancy.labels import ROLE_NAMES
from app.tenancy.models import (
    ROLES_BY_KIND,
    Invitation,
    InvitationKind,
    Organization,
    OrgKind,
    Role,
)
from app.tenancy.service import OrgAccess, actor_for

log = logging.getLogger("brandkeep.invitations")

TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 128
INVITATION_PATH = "/invitations/"

# What a person needs in the inviting organization to invite, revoke and re-send.
CAPABILITY = {InvitationKind.member: "members.manage", InvitationKind.agency: "engagement.open"}


# --- tokens that cannot be used ------------------------------------------------


class InvitationUnusable(BrandkeepError):
    """A token that is unknown, expired, used or revoked: said plainly, with whom to ask."""

    status_code = 410
    title = N_("This invitation cannot be used")

    def __init__(
        self,
        message: str,
        *,
        status_code: int = 410,
        org_name: str | None = None,
        inviter_name: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.org_name = org_name
        self.inviter_name = inviter_name


UNKNOWN = N_(
    "This invitation link is not valid. Check that you copied the whole link from the "
    "e-mail, or ask the person who invited you to send a new invitation."
)
EXPIRED = N_("This invitation has expired.")
USED = N_("This invitation has already been accepted; it works only once.")
REVOKED = N_("This invitation was withdrawn.")


@dataclass(frozen=True)
class InvitationDetails:
    """A usable invitation, as the person holding its link may see it."""

    invitation: Invitation
    organization: Organization
    inviter: User | None
    # Whether the invited address has an account already (then: sign in to accept).
    account_exists: bool

    @property
    def inviter_name(self) -> str | None:
        return self.inviter.name if self.inviter else None


def look_up(session: Session, raw_token: str) -> InvitationDetails:
    """The invitation behind a link, or ``InvitationUnusable`` saying why not."""
    invitation = None
    if raw_token and len(raw_token) <= MAX_TOKEN_LENGTH:
        token_hash = secret_hash(raw_token)
        # Row-level security (PostgreSQL): presenting the token makes that one row readable.
        set_tenant_context(session, token_hash=token_hash)
        invitation = repository.get_by_token_hash(session, token_hash)
    organization = repository.get_inviting_org(session, invitation) if invitation else None
    if invitation is None or organization is None:
        raise InvitationUnusable(UNKNOWN, status_code=404)
    inviter = repository.get_user(session, invitation.invited_by_id)
    problem = None
    if invitation.revoked_at is not None:
        problem = REVOKED
    elif invitation.accepted_at is not None:
        problem = USED
    elif invitation.expires_at <= utcnow():
        problem = EXPIRED
    if problem is not None:
        raise InvitationUnusable(
            problem, org_name=organization.name, inviter_name=inviter.name if inviter else None
        )
    account = accounts_repository.get_user_by_email(session, invitation.email)
    return InvitationDetails(invitation, organization, inviter, account is not None)


def _domain(email: str) -> str:
    return email.rpartition("@")[2].lower()


def may_accept(invitation: Invitation, email: str) -> bool:
    """Only the invited address, or one at its domain if the inviter allowed the domain."""
    email = email.strip().lower()
    if email == invitation.email:
        return True
    return invitation.allow_domain and _domain(email) == _domain(invitation.email)


# --- accepting -----------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    organization: Organization  # joined (member) or created (agency)
    created_agency: bool = False
    engagement_id: uuid.UUID | None = None
    proposal_not_opened: bool = False


def accept(session: Session, raw_token: str, user: User) -> Accepted:
    """A signed-in person accepts: the membership is added, or their agency is created."""
    details = look_up(session, raw_token)
    invitation = details.invitation
    if not may_accept(invitation, user.email):
        raise Forbidden(
            N_(
                "This invitation is for %(email)s, and you are signed in as %(you)s. Sign out "
                "and accept it with the invited address, or ask %(org)s to invite you instead."
            ),
            params={"email": invitation.email, "you": user.email, "org": details.organization.name},
        )
    # Row-level security: the person may write their own new membership.
    set_tenant_context(session, user_id=user.id)
    if not repository.update_if_version(
        session, invitation, accepted_at=utcnow(), accepted_by_id=user.id
    ):
        # Accepted (or revoked) by another request a moment ago.
        raise InvitationUnusable(USED, org_name=details.organization.name)
    if invitation.kind == InvitationKind.member:
        # Already a member: the invitation is spent, nothing else changes.
        with contextlib.suppress(Conflict):
            tenancy.add_membership(
                session, organization=details.organization, user=user, role=Role(invitation.role)
            )
        return Accepted(organization=details.organization)
    return _create_agency(session, details, user)


def accept_with_sign_up(
    session: Session,
    raw_token: str,
    *,
    name: str,
    email: str | None,
    password: str,
    language: str | None,
) -> tuple[User, Accepted]:
    """A person without an account signs up from the invitation and accepts it at once."""
    details = look_up(session, raw_token)
    invitation = details.invitation
    address = (email or "").strip() or invitation.email
    if not may_accept(invitation, address):
        if invitation.allow_domain:
            error = FieldError(
                "email",
                N_("Use the invited address or another one at %(domain)s."),
                {"domain": _domain(invitation.email)},
            )
        else:
            error = FieldError(
                "email", N_("This invitation is for %(email)s only."), {"email": invitation.email}
            )
        raise InvalidInput(field_errors=[error])
    # An existing account is refused here ("sign in instead"): never a silent sign-in.
    user = accounts.create_user(
        session, email=address, name=name, password=password, language=language
    )
    return user, accept(session, raw_token, user)


def _create_agency(session: Session, details: InvitationDetails, user: User) -> Accepted:
    invitation = details.invitation
    language = user.language or details.organization.language
    agency = tenancy.create_organization(
        session,
        name=invitation.agency_name or user.name,
        kind=OrgKind.agency,
        language=language if language in LANGUAGES else "en",
    )
    tenancy.add_membership(session, organization=agency, user=user, role=Role.owner)
    if not invitation.engagement_proposal:
        return Accepted(organization=agency, created_agency=True)
    engagement_id = _open_proposal(session, details, agency)
    return Accepted(
        organization=agency,
        created_agency=True,
        engagement_id=engagement_id,
        proposal_not_opened=engagement_id is None,
    )


def _open_proposal(
    session: Session, details: InvitationDetails, agency: Organization
) -> uuid.UUID | None:
    """Open the proposed engagement in the name of the person who proposed it.

    Their right to open engagements for the brand is checked again now: if they have
    left the brand or lost the role, the agency is still created and the brand can
    open the engagement itself.
    """
    if details.inviter is None or details.invitation.engagement_proposal is None:
        return None
    proposal = AgencyProposalIn.model_validate(details.invitation.engagement_proposal)
    data = EngagementCreate(
        name=proposal.name,
        agency=agency.slug,
        start_date=proposal.start_date,
        budget_minor=proposal.budget_minor,
        currency=proposal.currency,
        channels=[],
    )
    try:
        with session.begin_nested():
            engagement = engagements.open_engagement(
                session,
                actor_for(session, details.inviter),
                brand_slug=details.organization.slug,
                data=data,
            )
    except (Forbidden, NotFound, InvalidInput) as exc:
        log.info("invitation %s: proposed engagement not opened: %s", details.invitation.id, exc)
        return None
    return engagement.id


# --- inviting ------------------------------------------------------------------


def manageable_kinds(access: OrgAccess) -> list[InvitationKind]:
    """The kinds of invitation this member may send and manage in this organization."""
    kinds = []
    if access.can(CAPABILITY[InvitationKind.member]):
        kinds.append(InvitationKind.member)
    if access.organization.kind == OrgKind.brand and access.can(CAPABILITY[InvitationKind.agency]):
        kinds.append(InvitationKind.agency)
    return kinds


@dataclass(frozen=True)
class OpenInvitation:
    invitation: Invitation
    invited_by: str | None
    expired: bool


def list_open(session: Session, access: OrgAccess) -> list[OpenInvitation]:
    kinds = manageable_kinds(access)
    if not kinds:
        raise Forbidden(refusal_reason(CAPABILITY[InvitationKind.member]))
    now = utcnow()
    return [
        OpenInvitation(invitation, inviter.name if inviter else None, invitation.expires_at <= now)
        for invitation, inviter in repository.list_open(session, access.org_id, kinds=kinds)
    ]


def invite_member(
    session: Session,
    settings: Settings,
    access: OrgAccess,
    inviter: User,
    *,
    email: str,
    role: str,
    allow_domain: bool = False,
) -> Invitation:
    access.require(CAPABILITY[InvitationKind.member])
    errors: list[FieldError] = []
    address = _email_or_error(email, errors)
    if role not in ROLES_BY_KIND[OrgKind(access.organization.kind)]:
        errors.append(FieldError("role", N_("This role does not exist in this organization.")))
    if address and not errors:
        existing = accounts_repository.get_user_by_email(session, address)
        if existing and tenancy_repository.get_membership(session, access.org_id, existing.id):
            errors.append(
                FieldError("email", N_("%(email)s is already a member."), {"email": address})
            )
    _refuse_second_open_invitation(session, access, address, InvitationKind.member, errors)
    if errors:
        raise InvalidInput(field_errors=errors)
    invitation = Invitation(
        organization_id=access.organization.id,
        kind=InvitationKind.member,
        email=address,
        role=Role(role),
        allow_domain=allow_domain,
        invited_by_id=inviter.id,
        token_hash="",
        expires_at=utcnow(),
    )
    return _issue_and_send(session, settings, access.organization, inviter, invitation)


def invite_agency(
    session: Session,
    settings: Settings,
    access: OrgAccess,
    inviter: User,
    *,
    email: str,
    agency_name: str,
    proposal: AgencyProposalIn | None,
) -> Invitation:
    if access.organization.kind != OrgKind.brand:
        raise Forbidden(N_("Only a brand invites agencies."))
    access.require(CAPABILITY[InvitationKind.agency])
    errors: list[FieldError] = []
    address = _email_or_error(email, errors)
    if not agency_name.strip():
        errors.append(FieldError("agency_name", N_("Give the agency's name.")))
    if proposal is not None and proposal.currency.upper() not in engagements.CURRENCIES:
        errors.append(
            FieldError("currency", N_("Use an ISO 4217 currency code, such as EUR or USD."))
        )
    _refuse_second_open_invitation(session, access, address, InvitationKind.agency, errors)
    if errors:
        raise InvalidInput(field_errors=errors)
    stored_proposal: dict[str, Any] | None = None
    if proposal is not None:
        stored_proposal = proposal.model_copy(
            update={"name": proposal.name.strip(), "currency": proposal.currency.upper()}
        ).model_dump(mode="json")
    invitation = Invitation(
        organization_id=access.organization.id,
        kind=InvitationKind.agency,
        email=address,
        role=Role.owner,
        agency_name=agency_name.strip()[:120],
        engagement_proposal=stored_proposal,
        invited_by_id=inviter.id,
        token_hash="",
        expires_at=utcnow(),
    )
    return _issue_and_send(session, settings, access.organization, inviter, invitation)


def _email_or_error(email: str, errors: list[FieldError]) -> str:
    try:
        return accounts.normalize_email(email)
    except InvalidInput as exc:
        errors.extend(exc.field_errors)
        return ""


def _refuse_second_open_invitation(
    session: Session,
    access: OrgAccess,
    address: str,
    kind: InvitationKind,
    errors: list[FieldError],
) -> None:
    if address and repository.find_open_for_email(session, access.org_id, email=address, kind=kind):
        errors.append(
            FieldError(
                "email",
                N_("%(email)s already has an open invitation; re-send it from the list instead."),
                {"email": address},
            )
        )


def _new_token(settings: Settings) -> tuple[str, dict[str, Any]]:
    raw = secrets.token_urlsafe(TOKEN_BYTES)
    now = utcnow()
    return raw, {
        "token_hash": secret_hash(raw),
        "expires_at": now + timedelta(days=settings.invitation_days),
        "sent_at": now,
    }


def _issue_and_send(
    session: Session,
    settings: Settings,
    organization: Organization,
    inviter: User,
    invitation: Invitation,
) -> Invitation:
    raw, values = _new_token(settings)
    for key, value in values.items():
        setattr(invitation, key, value)
    session.add(invitation)
    session.flush()
    _queue_mail(session, settings, organization, inviter, invitation, raw)
    return invitation


def _queue_mail(
    session: Session,
    settings: Settings,
    organization: Organization,
    inviter: User,
    invitation: Invitation,
    raw_token: str,
) -> None:
    recipient = accounts_repository.get_user_by_email(session, invitation.email)
    language = (recipient.language if recipient else None) or organization.language
    language = language if language in LANGUAGES else settings.default_language
    context: dict[str, Any] = {
        "inviter_name": inviter.name,
        "org_name": organization.name,
        "link": settings.base_url.rstrip("/") + INVITATION_PATH + raw_token,
        "expires_on": invitation.expires_at.date(),
    }
    if invitation.kind == InvitationKind.member:
        context["role_name"] = gettext_for(language, ROLE_NAMES[Role(invitation.role)])
        template = "invitation"
    else:
        context["agency_name"] = invitation.agency_name
        proposal = invitation.engagement_proposal
        context["proposal"] = AgencyProposalIn.model_validate(proposal) if proposal else None
        template = "agency_invitation"
    mail.queue_mail(
        session, to=invitation.email, template=template, context=context, language=language
    )


# --- managing ------------------------------------------------------------------


def get_invitation(session: Session, access: OrgAccess, invitation_id: uuid.UUID) -> Invitation:
    invitation = repository.get_in_org(session, access.org_id, invitation_id)
    if invitation is None:
        raise NotFound(N_("No such invitation in this organization."))
    access.require(CAPABILITY[InvitationKind(invitation.kind)])
    return invitation


def revoke(session: Session, access: OrgAccess, invitation_id: uuid.UUID) -> Invitation:
    invitation = get_invitation(session, access, invitation_id)
    if invitation.revoked_at is not None:
        return invitation
    if invitation.accepted_at is not None or not repository.update_if_version(
        session, invitation, revoked_at=utcnow()
    ):
        raise Conflict(N_("This invitation has already been accepted."))
    return invitation


def resend(
    session: Session,
    settings: Settings,
    access: OrgAccess,
    inviter: User,
    invitation_id: uuid.UUID,
) -> Invitation:
    """A new link (the old one stops working), a new expiry, and the mail again."""
    invitation = get_invitation(session, access, invitation_id)
    if invitation.revoked_at is not None:
        raise Conflict(N_("This invitation was withdrawn; invite the person again instead."))
    raw, values = _new_token(settings)
    if invitation.accepted_at is not None or not repository.update_if_version(
        session, invitation, invited_by_id=inviter.id, **values
    ):
        raise Conflict(N_("This invitation has already been accepted."))
    _queue_mail(session, settings, access.organization, inviter, invitation, raw)
    return invitation


def budget_minor_units(text: str, currency: str) -> int | str:
    """A budget typed in major units (48000.50) as minor units; the text itself if no number.

    (The text then fails validation with a message about the budget field.)
    """
    try:
        amount = Decimal(text.replace(" ", "").replace(",", "."))
    except InvalidOperation:
        return text
    if not amount.is_finite() or abs(amount) > 10**15:
        return text
    return engagements.minor_units(amount, currency)


def brands_inviting_agencies(session: Session, user: User) -> list[Organization]:
    """The brands in which this person may invite an agency."""
    return [
        org
        for membership, org in tenancy.organizations_of(session, user)
        if org.kind == OrgKind.brand
        and can(org.kind, membership.role, CAPABILITY[InvitationKind.agency])
    ]
