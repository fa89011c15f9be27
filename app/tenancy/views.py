"""Pages: home (the user's organizations), the organization switcher, members."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from app import web
from app.accounts import repository as accounts_repository
from app.accounts import security_events
from app.audit import service as audit
from app.deps import BrowserDep, PageActor, PageParamsDep, SessionDep, verify_csrf
from app.errors import BrandkeepError, Conflict, InvalidInput, PreconditionFailed
from app.exports import to_csv
from app.tenancy import labels as _labels  # noqa: F401 - registers the role labels
from app.tenancy import service as tenancy
from app.tenancy.deps import PageMember, PageOrg
from app.tenancy.models import ROLES_BY_KIND, OrgKind
from app.tenancy.service import OrgAccess

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)


@router.get("/home", name="home")
def home(request: Request, db: SessionDep, actor: PageActor) -> Response:
    return web.render(
        request,
        "tenancy/home.html",
        {"user": actor.user, "organizations": tenancy.organizations_of(db, actor.user)},
    )


@router.post("/switch-organization", name="switch_organization")
def switch_organization(
    request: Request,
    db: SessionDep,
    browser: BrowserDep,
    actor: PageActor,
    org_slug: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    access = tenancy.org_access(db, actor, org_slug)
    if browser.session is not None:
        browser.session.active_organization_id = access.organization.id
        db.add(browser.session)
    return web.redirect(request, f"/orgs/{access.organization.slug}/members")


def _error_text(request: Request, exc: BrandkeepError) -> str:
    """What went wrong, in words: the field's own message rather than a generic title."""
    field_messages = web.field_errors_map(request, exc.field_errors).values()
    return " ".join(field_messages) or web.translate(request, exc.message, exc.params)


def _members_context(db: SessionDep, access: OrgAccess, actor: PageActor) -> dict[str, object]:
    members, total = tenancy.list_members(db, access, limit=200, offset=0)
    return {
        "user": actor.user,
        "org": access.organization,
        "access": access,
        "members": members,
        "total": total,
        "roles": ROLES_BY_KIND[OrgKind(access.organization.kind)],
        "can_manage": access.can("members.manage"),
        "can_see_security": access.can("org.settings"),
    }


@router.get("/orgs/{org_slug}/members", name="members")
def members_page(request: Request, db: SessionDep, actor: PageActor, access: PageOrg) -> Response:
    access.require("members.read")
    return web.render(request, "tenancy/members.html", _members_context(db, access, actor))


@router.post("/orgs/{org_slug}/members", name="add_member")
def add_member(
    request: Request,
    db: SessionDep,
    actor: PageActor,
    access: PageOrg,
    email: Annotated[str, Form(max_length=254)] = "",
    role: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    access.require("members.manage")
    try:
        with db.begin_nested():
            user = accounts_repository.get_user_by_email(db, email)
            tenancy.add_member(db, access, user=user, email=email, role=role)
    except (InvalidInput, Conflict) as exc:
        context = _members_context(db, access, actor)
        errors = web.field_errors_map(request, exc.field_errors) or {
            "email": web.translate(request, exc.message, exc.params)
        }
        context.update(errors=errors, values={"email": email, "role": role})
        return web.render(request, "tenancy/members.html", context, status_code=422)
    return web.render(request, "tenancy/members.html", _members_context(db, access, actor))


@router.post("/orgs/{org_slug}/members/{membership_id}/role", name="change_member_role")
def change_member_role(
    request: Request,
    db: SessionDep,
    actor: PageActor,
    access: PageOrg,
    member: PageMember,
    role: Annotated[str, Form(max_length=16)] = "",
    version: Annotated[int, Form()] = 0,
) -> Response:
    membership_id = member.id
    try:
        with db.begin_nested():
            tenancy.change_role(db, access, membership_id, role=role, expected_version=version)
    except (Conflict, PreconditionFailed, InvalidInput) as exc:
        context = _members_context(db, access, actor)
        context["member_error"] = {str(membership_id): _error_text(request, exc)}
        return web.render(request, "tenancy/members.html", context, status_code=exc.status_code)
    return web.render(request, "tenancy/members.html", _members_context(db, access, actor))


@router.post("/orgs/{org_slug}/members/{membership_id}/remove", name="remove_member")
def remove_member(
    request: Request,
    db: SessionDep,
    actor: PageActor,
    access: PageOrg,
    member: PageMember,
    version: Annotated[int, Form()] = 0,
) -> Response:
    membership_id = member.id
    try:
        with db.begin_nested():
            tenancy.remove_member(db, access, membership_id, expected_version=version)
    except (Conflict, PreconditionFailed, InvalidInput) as exc:
        context = _members_context(db, access, actor)
        context["member_error"] = {str(membership_id): _error_text(request, exc)}
        return web.render(request, "tenancy/members.html", context, status_code=exc.status_code)
    return web.render(request, "tenancy/members.html", _members_context(db, access, actor))


@router.get("/orgs/{org_slug}/security", name="security_events")
def security_page(
    request: Request, db: SessionDep, actor: PageActor, access: PageOrg, page: PageParamsDep
) -> Response:
    """Owners only: the organization's security events and its members', newest first."""
    access.require("org.settings")
    events, total = security_events.list_for_organization(
        db, access.org_id, limit=page.limit, offset=page.offset
    )
    return web.render(
        request,
        "tenancy/security.html",
        {
            "user": actor.user,
            "org": access.organization,
            "chain": security_events.organization_record(db, access.org_id).verification,
            "events": events,
            "people": security_events.people_of(db, events),
            "kind_labels": security_events.KIND_LABELS,
            "total": total,
            "limit": page.limit,
            "offset": page.offset,
        },
    )


@router.get("/orgs/{org_slug}/security/audit.csv", name="security_audit_csv")
def security_audit_csv(db: SessionDep, actor: PageActor, access: PageOrg) -> Response:
    """Owners only: the organization's hash-chained record of its security events."""
    access.require("org.settings")
    record = security_events.organization_record(db, access.org_id)
    return Response(
        to_csv(list(audit.AUDIT_COLUMNS), audit.rows_for_export(record.entries)),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="audit-{access.organization.slug}.csv"'
        },
    )


@router.get("/orgs/{org_slug}/security/checkpoint", name="security_audit_checkpoint")
def security_audit_checkpoint(
    request: Request, db: SessionDep, actor: PageActor, access: PageOrg
) -> Response:
    access.require("org.settings")
    checkpoint = security_events.organization_checkpoint(
        db, access.org_id, web.settings_of(request).secret_key
    )
    return Response(
        json.dumps(checkpoint, indent=2),
        media_type="application/json",
        headers={
            "Content-Disposition": (
                f'attachment; filename="audit-checkpoint-{access.organization.slug}.json"'
            )
        },
    )
