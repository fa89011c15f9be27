"""Pages: signing in through an identity provider, and the owner's SSO settings.

The sign-in routes are ``async``: Authlib's Starlette client talks to the provider
with httpx. They take the request's session scope like every route, but touch the
database only before or after talking to the provider, in the thread pool, and
end a read before the provider is called: on SQLite a transaction holds the
write lock, which must not wait on someone else's server. A refused sign-in is a
page, not an exception, so that its security event is committed.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from app import web
from app.deps import (
    Browser,
    BrowserDep,
    PageActor,
    SessionDep,
    get_browser,
    set_flash,
    start_signed_in_session,
    verify_csrf,
)
from app.errors import N_, InvalidInput, NotFound, PreconditionFailed
from app.sso import oidc
from app.sso import service as sso
from app.sso.oidc import Provider, SignInFailed
from app.tenancy.deps import PageOrg
from app.tenancy.models import SsoSettings
from app.tenancy.service import OrgAccess

# The sign-in itself: public, all GET (the callback is protected by its state).
public_router = APIRouter(include_in_schema=False)
# The owner's settings page: signed in, CSRF on every POST.
router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)

AFTER_SIGN_IN = "/home"


def _global_sso_enabled(request: Request) -> bool:
    return sso.global_provider(web.settings_of(request)) is not None


# The sign-in page shows the global button only when a global provider is configured.
web.environment.globals["global_sso_enabled"] = _global_sso_enabled


def _refused(
    request: Request,
    db: SessionDep,
    provider: Provider,
    failure: SignInFailed,
    browser: Browser | None = None,
) -> Response:
    """The failure page, and its security event (committed: this is not an exception)."""
    browser = browser or get_browser(request, db, web.settings_of(request))
    sso.record_failure(db, provider, failure, user=browser.user)
    return web.render(
        request,
        "sso/refused.html",
        {
            "user": browser.user,
            "message": web.translate(request, failure.message, failure.params),
        },
        status_code=failure.status_code,
    )


@public_router.get("/sso/start", name="sso_start")
async def start(
    request: Request,
    db: SessionDep,
    org: Annotated[str, Query(max_length=64, description="The organization's short name")] = "",
) -> Response:
    settings = web.settings_of(request)

    def lookup() -> Provider:
        try:
            if org.strip():
                return sso.provider_for_org(db, org)
            provider = sso.global_provider(settings)
            if provider is None:
                raise NotFound(sso.NO_PROVIDER)
            return provider
        finally:
            db.rollback()  # a read only: end it before the provider is called

    provider = await run_in_threadpool(lookup)
    try:
        return await oidc.redirect_to_provider(
            request, provider, sso.callback_url(settings, provider.id)
        )
    except SignInFailed as failure:
        return await run_in_threadpool(_refused, request, db, provider, failure)


@public_router.get("/sso/callback/{provider}", name="sso_callback")
async def callback(request: Request, db: SessionDep, provider: str) -> Response:
    settings = web.settings_of(request)

    def lookup() -> Provider:
        try:
            return sso.provider_by_id(db, settings, provider)
        finally:
            db.rollback()  # a read only: end it before the provider is called

    chosen = await run_in_threadpool(lookup)
    try:
        claims = await oidc.verified_claims(request, chosen)
    except SignInFailed as failure:
        return await run_in_threadpool(_refused, request, db, chosen, failure)
    return await run_in_threadpool(_finish_sign_in, request, db, chosen, claims)


def _finish_sign_in(
    request: Request, db: SessionDep, provider: Provider, claims: dict[str, Any]
) -> Response:
    browser = get_browser(request, db, web.settings_of(request))
    try:
        # A savepoint: a refusal half-way leaves nothing behind but its security event.
        with db.begin_nested():
            signed_in = sso.sign_in(db, provider, claims, signed_in=browser.user)
    except SignInFailed as failure:
        return _refused(request, db, provider, failure, browser)
    start_signed_in_session(request, db, browser, signed_in.user)
    return web.redirect(request, AFTER_SIGN_IN)


@public_router.get("/sso/find", name="sso_find")
def find(
    request: Request,
    db: SessionDep,
    browser: BrowserDep,
    org: Annotated[str, Query(max_length=254, description="The organization's short name")] = "",
) -> Response:
    """From the sign-in page's form to the provider, by way of a link.

    A form may not lead to another site (``form-action 'self'``, which browsers
    apply to the redirects after a submission too): this page continues with a
    plain navigation to ``/sso/start``, which then redirects to the provider.
    """
    context: dict[str, Any] = {"user": browser.user, "values": {"org": org}, "start_url": None}
    if not org.strip():
        return web.render(request, "sso/find.html", context)
    try:
        provider = sso.provider_for_org(db, org)
    except NotFound:
        context["errors"] = {
            "org": web.translate(
                request,
                N_(
                    "No organization with this short name signs in with single sign-on. "
                    "The short name is the part after /orgs/ in its addresses."
                ),
            )
        }
        return web.render(request, "sso/find.html", context, status_code=404)
    start_url = web.url_with_query(
        "/sso/start", org=provider.id.removeprefix(sso.ORG_PROVIDER_PREFIX)
    )
    context["start_url"] = start_url
    return web.render(request, "sso/find.html", context, headers={"Refresh": f"0; url={start_url}"})


# --- the owner's page -----------------------------------------------------------


def _settings_context(
    request: Request,
    access: OrgAccess,
    actor: PageActor,
    current: SsoSettings | None,
    values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    settings = web.settings_of(request)
    slug = access.organization.slug
    shown = values or {
        "issuer": current.issuer if current else "",
        "client_id": current.client_id if current else "",
        "require_sso": bool(current and current.require_sso),
    }
    return {
        "user": actor.user,
        "org": access.organization,
        "sso": current,
        "values": shown,
        "version": current.version if current else 0,
        "callback_url": sso.callback_url(settings, sso.org_provider_id(slug)),
        "sign_in_url": web.url_with_query(f"{settings.base_url.rstrip('/')}/sso/find", org=slug),
    }


@router.get("/orgs/{org_slug}/sso", name="sso_settings")
def settings_page(request: Request, db: SessionDep, actor: PageActor, access: PageOrg) -> Response:
    current = sso.settings_for(db, access)
    return web.render(
        request, "sso/settings.html", _settings_context(request, access, actor, current)
    )


@router.post("/orgs/{org_slug}/sso", name="sso_settings_save")
def save_settings(
    request: Request,
    db: SessionDep,
    browser: BrowserDep,
    actor: PageActor,
    access: PageOrg,
    issuer: Annotated[str, Form(max_length=500)] = "",
    client_id: Annotated[str, Form(max_length=255)] = "",
    client_secret: Annotated[str, Form(max_length=500)] = "",
    require_sso: Annotated[str | None, Form(max_length=8)] = None,
    version: Annotated[int, Form(ge=0)] = 0,
) -> Response:
    access.require("org.settings")
    settings = web.settings_of(request)
    try:
        with db.begin_nested():
            sso.save_settings(
                db,
                access,
                actor=actor.user,
                issuer=issuer,
                client_id=client_id,
                client_secret=client_secret,
                require_sso=bool(require_sso),
                expected_version=version,
                allow_http=settings.is_development,
            )
    except (InvalidInput, PreconditionFailed) as exc:
        current = sso.settings_for(db, access)
        values = {"issuer": issuer, "client_id": client_id, "require_sso": bool(require_sso)}
        context = _settings_context(request, access, actor, current, values)
        context["errors"] = web.field_errors_map(request, exc.field_errors)
        if not exc.field_errors:
            context["form_error"] = web.translate(request, exc.message, exc.params)
        return web.render(request, "sso/settings.html", context, status_code=exc.status_code)
    set_flash(db, browser, web.translate(request, N_("Single sign-on settings saved.")))
    return web.redirect(request, f"/orgs/{access.organization.slug}/sso")
