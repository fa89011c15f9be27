"""Pages: an organization's invitations, inviting an agency, and accepting an invitation."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from app import web
from app.accounts import throttle
from app.deps import (
    BrowserDep,
    PageActor,
    SessionDep,
    SettingsDep,
    ensure_browser_session,
    set_flash,
    start_signed_in_session,
    verify_csrf,
)
from app.errors import N_, BrandkeepError, Conflict, Forbidden, InvalidInput
from app.invitations import service
from app.invitations.schemas import AgencyProposalIn
from app.invitations.service import Accepted, InvitationDetails, InvitationUnusable
from app.schemas import parse_input
from app.tenancy import labels as _labels  # noqa: F401 - registers the role labels
from app.tenancy import service as tenancy
from app.tenancy.deps import PageOrg
from app.tenancy.models import ROLES_BY_KIND, InvitationKind, OrgKind
from app.tenancy.service import OrgAccess

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)

TEMPLATE = "invitations/invitations.html"


# --- an organization's invitations ------------------------------------------------


def _count_invitation(request: Request, db: SessionDep, email: str) -> None:
    """Sending mail to an address is throttled per address and per client (429 past it)."""
    keys = throttle.keys_for(request, throttle.INVITATION, account=email)
    throttle.check(db, keys)
    throttle.failed(db, keys)


def _context(db: SessionDep, access: OrgAccess, actor: PageActor) -> dict[str, Any]:
    kinds = service.manageable_kinds(access)
    roles = ROLES_BY_KIND[OrgKind(access.organization.kind)]
    return {
        "user": actor.user,
        "org": access.organization,
        "invitations": service.list_open(db, access),
        "can_invite_members": InvitationKind.member in kinds,
        "can_invite_agencies": InvitationKind.agency in kinds,
        "roles": roles,
        "values": {"role": roles[-1]},
        "notice": None,
        "invitation_error": {},
    }


def _rerender(
    request: Request,
    db: SessionDep,
    access: OrgAccess,
    actor: PageActor,
    *,
    status_code: int = 200,
    **changes: Any,
) -> Response:
    context = _context(db, access, actor)
    context.update(changes)
    return web.render(request, TEMPLATE, context, status_code=status_code)


@router.get("/orgs/{org_slug}/invitations", name="invitations")
def invitations_page(
    request: Request, db: SessionDep, actor: PageActor, access: PageOrg
) -> Response:
    return web.render(request, TEMPLATE, _context(db, access, actor))


@router.post("/orgs/{org_slug}/invitations", name="invite_member")
def invite_member(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    actor: PageActor,
    access: PageOrg,
    email: Annotated[str, Form(max_length=254)] = "",
    role: Annotated[str, Form(max_length=16)] = "",
    allow_domain: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    _count_invitation(request, db, email)
    try:
        with db.begin_nested():
            invitation = service.invite_member(
                db,
                settings,
                access,
                actor.user,
                email=email,
                role=role,
                allow_domain=bool(allow_domain),
            )
    except InvalidInput as exc:
        return _rerender(
            request,
            db,
            access,
            actor,
            status_code=422,
            errors=web.field_errors_map(request, exc.field_errors),
            values={"email": email, "role": role, "allow_domain": bool(allow_domain)},
        )
    notice = web.translate(
        request, N_("Invitation sent to %(email)s."), {"email": invitation.email}
    )
    return _rerender(request, db, access, actor, notice=notice)


def _manage(
    request: Request,
    db: SessionDep,
    actor: PageActor,
    access: OrgAccess,
    invitation_id: uuid.UUID,
    action: str,
    settings: SettingsDep,
) -> Response:
    invitation = service.get_invitation(db, access, invitation_id)  # 404 if not this org's
    if action == "resend":
        _count_invitation(request, db, invitation.email)
    try:
        with db.begin_nested():
            if action == "revoke":
                service.revoke(db, access, invitation.id)
                message = N_("The invitation to %(email)s was withdrawn; its link no longer works.")
            else:
                service.resend(db, settings, access, actor.user, invitation.id)
                message = N_(
                    "A new invitation was sent to %(email)s; the old link no longer works."
                )
    except Conflict as exc:
        error = web.translate(request, exc.message, exc.params)
        return _rerender(
            request,
            db,
            access,
            actor,
            status_code=exc.status_code,
            invitation_error={str(invitation.id): error},
        )
    notice = web.translate(request, message, {"email": invitation.email})
    return _rerender(request, db, access, actor, notice=notice)


@router.post("/orgs/{org_slug}/invitations/{invitation_id}/revoke", name="revoke_invitation")
def revoke_invitation(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    actor: PageActor,
    access: PageOrg,
    invitation_id: uuid.UUID,
) -> Response:
    return _manage(request, db, actor, access, invitation_id, "revoke", settings)


@router.post("/orgs/{org_slug}/invitations/{invitation_id}/resend", name="resend_invitation")
def resend_invitation(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    actor: PageActor,
    access: PageOrg,
    invitation_id: uuid.UUID,
) -> Response:
    return _manage(request, db, actor, access, invitation_id, "resend", settings)


# --- inviting an agency that is not on Brandkeep ------------------------------------

AGENCY_TEMPLATE = "invitations/invite_agency.html"
# Form names of the proposal's fields (they share the page with the agency's own).
_PROPOSAL_FIELDS = {"name": "engagement_name", "budget_minor": "budget"}


@router.get("/agency-invitations/new", name="invite_agency")
def invite_agency_page(request: Request, db: SessionDep, actor: PageActor) -> Response:
    brands = service.brands_inviting_agencies(db, actor.user)
    return web.render(
        request,
        AGENCY_TEMPLATE,
        {"user": actor.user, "brands": brands, "values": {"currency": "EUR"}},
    )


def _proposal(
    engagement_name: str, start_date: str, budget: str, currency: str
) -> AgencyProposalIn | None:
    if not (engagement_name.strip() or start_date.strip() or budget.strip()):
        return None
    data: dict[str, Any] = {
        "name": engagement_name.strip(),
        "start_date": start_date.strip() or None,
        "currency": currency.strip().upper(),
        "budget_minor": 0,
    }
    if budget.strip():
        data["budget_minor"] = service.budget_minor_units(budget, data["currency"])
    return parse_input(AgencyProposalIn, data)


@router.post("/agency-invitations", name="invite_agency_submit")
def invite_agency(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    browser: BrowserDep,
    actor: PageActor,
    org_slug: Annotated[str, Form(max_length=64)] = "",
    email: Annotated[str, Form(max_length=254)] = "",
    agency_name: Annotated[str, Form(max_length=120)] = "",
    engagement_name: Annotated[str, Form(max_length=160)] = "",
    start_date: Annotated[str, Form(max_length=10)] = "",
    budget: Annotated[str, Form(max_length=32)] = "",
    currency: Annotated[str, Form(max_length=3)] = "",
) -> Response:
    access = tenancy.org_access(db, actor, org_slug)  # 404 for a brand that is not theirs
    _count_invitation(request, db, email)
    try:
        with db.begin_nested():
            invitation = service.invite_agency(
                db,
                settings,
                access,
                actor.user,
                email=email,
                agency_name=agency_name,
                proposal=_proposal(engagement_name, start_date, budget, currency),
            )
    except InvalidInput as exc:
        errors = web.field_errors_map(request, exc.field_errors)
        values = {
            "org_slug": org_slug,
            "email": email,
            "agency_name": agency_name,
            "engagement_name": engagement_name,
            "start_date": start_date,
            "budget": budget,
            "currency": currency,
        }
        return web.render(
            request,
            AGENCY_TEMPLATE,
            {
                "user": actor.user,
                "brands": service.brands_inviting_agencies(db, actor.user),
                "values": values,
                "errors": {_PROPOSAL_FIELDS.get(key, key): text for key, text in errors.items()},
            },
            status_code=422,
        )
    set_flash(
        db,
        browser,
        web.translate(
            request,
            N_("Invitation sent to %(agency)s (%(email)s)."),
            {"agency": invitation.agency_name, "email": invitation.email},
        ),
    )
    return web.redirect(request, f"/orgs/{access.organization.slug}/invitations")


# --- accepting (public: the token in the link is the credential) ------------------------

ACCEPT_TEMPLATE = "invitations/accept.html"


def _unusable(request: Request, exc: InvitationUnusable, browser: BrowserDep) -> Response:
    return web.render(
        request,
        "invitations/unusable.html",
        {
            "message": web.translate(request, exc.message),
            "org_name": exc.org_name,
            "inviter_name": exc.inviter_name,
            "user": browser.user,
        },
        status_code=exc.status_code,
    )


def _accept_context(details: InvitationDetails, browser: BrowserDep, token: str) -> dict[str, Any]:
    invitation = details.invitation
    if browser.user is not None:
        state = "accept" if service.may_accept(invitation, browser.user.email) else "other_account"
    else:
        state = "sign_in" if details.account_exists else "sign_up"
    return {
        "user": browser.user,
        "details": details,
        "invitation": invitation,
        "proposal": (
            AgencyProposalIn.model_validate(invitation.engagement_proposal)
            if invitation.engagement_proposal
            else None
        ),
        "state": state,
        "token": token,
        "values": {"email": invitation.email},
        "form_error": None,
    }


@router.get("/invitations/{token}", name="invitation")
def invitation_page(request: Request, db: SessionDep, browser: BrowserDep, token: str) -> Response:
    try:
        details = service.look_up(db, token)
    except InvitationUnusable as exc:
        return _unusable(request, exc, browser)
    ensure_browser_session(request, db, browser)  # the accept form needs a CSRF token
    return web.render(request, ACCEPT_TEMPLATE, _accept_context(details, browser, token))


@router.post("/invitations/{token}", name="accept_invitation")
def accept_invitation(
    request: Request,
    db: SessionDep,
    browser: BrowserDep,
    token: str,
    name: Annotated[str, Form(max_length=120)] = "",
    email: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    try:
        with db.begin_nested():
            if browser.user is not None:
                user = browser.user
                accepted = service.accept(db, token, user)
            else:
                user, accepted = service.accept_with_sign_up(
                    db,
                    token,
                    name=name,
                    email=email,
                    password=password,
                    language=web.request_language(request),
                )
    except InvitationUnusable as exc:
        return _unusable(request, exc, browser)
    except (InvalidInput, Forbidden) as exc:
        return _refused(request, db, browser, token, exc, {"name": name, "email": email})
    if browser.user is None:
        start_signed_in_session(request, db, browser, user)
    set_flash(db, browser, _welcome(request, accepted))
    return web.redirect(request, _landing(accepted))


def _refused(
    request: Request,
    db: SessionDep,
    browser: BrowserDep,
    token: str,
    exc: BrandkeepError,
    values: dict[str, str],
) -> Response:
    try:
        details = service.look_up(db, token)
    except InvitationUnusable as unusable:
        return _unusable(request, unusable, browser)
    context = _accept_context(details, browser, token)
    errors = web.field_errors_map(request, exc.field_errors)
    context["errors"] = errors
    # Errors about a field the form does not show (the invited address) go above it.
    shown = {"name", "password"} | ({"email"} if details.invitation.allow_domain else set())
    unshown = [text for field, text in errors.items() if field not in shown]
    if context["state"] != "sign_up" or unshown:
        context["form_error"] = " ".join(
            unshown if context["state"] == "sign_up" else errors.values()
        )
    context["values"] = {
        "name": values["name"],
        "email": values["email"] or details.invitation.email,
    }
    if not exc.field_errors:
        context["form_error"] = web.translate(request, exc.message, exc.params)
    return web.render(request, ACCEPT_TEMPLATE, context, status_code=exc.status_code)


def _welcome(request: Request, accepted: Accepted) -> str:
    org = accepted.organization
    if not accepted.created_agency:
        message = N_("Welcome to %(org)s.")
    elif accepted.engagement_id is not None:
        message = N_(
            "Welcome to Brandkeep. %(org)s is ready; here is the engagement the brand proposes."
        )
    elif accepted.proposal_not_opened:
        message = N_(
            "Welcome to Brandkeep. %(org)s is ready; the proposed engagement could not be "
            "opened, so ask the brand to open it again."
        )
    else:
        message = N_("Welcome to Brandkeep. %(org)s is ready.")
    return web.translate(request, message, {"org": org.name})


def _landing(accepted: Accepted) -> str:
    if accepted.engagement_id is not None:
        return f"/engagements/{accepted.engagement_id}"
    return f"/orgs/{accepted.organization.slug}/members"
