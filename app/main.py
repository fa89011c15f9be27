"""The application: routers, error handling, security headers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import health, logs, web
from app.accounts import api as accounts_api
from app.accounts import reset_views
from app.accounts import views as accounts_views
from app.config import PROJECT_ROOT, Settings, get_settings
from app.content import api as content_api
from app.content import comments_api, comments_views
from app.content import guest_views as content_guest_views
from app.content import queue_views as content_queue_views
from app.content import relaxation_views as content_relaxation_views
from app.content import views as content_views
from app.db import Database
from app.deliverables import api as deliverables_api
from app.deliverables import views as deliverables_views
from app.deps import SignInRequired
from app.engagements import api as engagements_api
from app.engagements import views as engagements_views
from app.errors import N_, BrandkeepError, FieldError, InvalidInput, NotFound
from app.escalations import api as escalations_api
from app.escalations import views as escalations_views
from app.invitations import api as invitations_api
from app.invitations import views as invitations_views
from app.jobs.runner import JobRunner
from app.mail import views as mail_views
from app.notifications import views as notifications_views
from app.results import api as results_api
from app.results import views as results_views
from app.schemas import field_errors_from
from app.scorecards import api as scorecards_api
from app.scorecards import views as scorecards_views
from app.sso import oidc as sso_oidc
from app.sso import views as sso_views
from app.tenancy import api as tenancy_api
from app.tenancy import views as tenancy_views

log = logging.getLogger("brandkeep")

API_PREFIX = "/api/v1"


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    logs.install()
    database = database or Database(settings.resolved_database_url)
    jobs = JobRunner(settings, database)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Synchronous routes run in this pool: size it for the cores, not the default 40.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threadpool_size
        jobs.start()
        try:
            yield
        finally:
            jobs.stop()
        database.dispose()

    app = FastAPI(
        title="Brandkeep API",
        version="1",
        description=(
            "The JSON API of Brandkeep. Authenticate with `Authorization: Bearer <token>` "
            "(create tokens on your account page or with `brandkeep tokens create`). Errors are "
            "problem details (RFC 9457); lists are paginated with `limit` and `offset` and carry "
            "`total`; updates take `If-Match`; creating requests accept `Idempotency-Key`."
        ),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.database = database
    app.state.settings = settings
    app.state.jobs = jobs

    app.mount("/static", StaticFiles(directory=PROJECT_ROOT / "static"), name="static")
    app.include_router(health.router)
    app.include_router(health.docs_router)
    app.include_router(accounts_views.router)
    app.include_router(tenancy_views.router)
    app.include_router(engagements_views.router)
    app.include_router(content_views.router)
    app.include_router(content_views.upload_router)
    app.include_router(deliverables_views.router)
    app.include_router(escalations_views.router)
    app.include_router(content_guest_views.router)
    app.include_router(content_relaxation_views.router)
    app.include_router(comments_views.router)
    app.include_router(notifications_views.router)
    app.include_router(content_queue_views.router)
    app.include_router(scorecards_views.router)
    app.include_router(results_views.router)
    app.include_router(invitations_views.router)
    app.include_router(reset_views.router)
    app.include_router(mail_views.router)
    app.include_router(sso_views.public_router)
    app.include_router(sso_views.router)
    app.include_router(accounts_api.router, prefix=API_PREFIX)
    app.include_router(tenancy_api.router, prefix=API_PREFIX)
    app.include_router(engagements_api.router, prefix=API_PREFIX)
    app.include_router(content_api.router, prefix=API_PREFIX)
    app.include_router(scorecards_api.router, prefix=API_PREFIX)
    app.include_router(results_api.router, prefix=API_PREFIX)
    app.include_router(deliverables_api.router, prefix=API_PREFIX)
    app.include_router(escalations_api.router, prefix=API_PREFIX)
    app.include_router(comments_api.router, prefix=API_PREFIX)
    app.include_router(invitations_api.router, prefix=API_PREFIX)

    _install_error_handlers(app)
    _install_security_headers(app, settings)
    sso_oidc.install_state_cookie(app, settings)
    return app


def is_api(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIX + "/") or request.url.path == API_PREFIX


def problem(
    request: Request,
    status: int,
    title: str,
    detail: str | None = None,
    field_errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": web.translate(request, title),
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if field_errors:
        body["errors"] = [
            {"field": error.field, "message": web.translate(request, error.message, error.params)}
            for error in field_errors
        ]
    body.update(extra or {})
    return JSONResponse(
        body, status_code=status, headers=headers, media_type="application/problem+json"
    )


def page_error(
    request: Request, status: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    if web.is_htmx(request):
        # Shown as a notice without replacing what the person was working on.
        response = web.render(
            request,
            "errors/notice.html",
            {"message": message},
            status_code=status,
            headers={**(headers or {}), "HX-Retarget": "#notices", "HX-Reswap": "innerHTML"},
        )
        return response
    return web.render(
        request,
        "errors/error.html",
        {"status": status, "message": message},
        status_code=status,
        headers=headers,
    )


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(BrandkeepError)
    async def _brandkeep_error(request: Request, exc: BrandkeepError) -> Response:
        if isinstance(exc, SignInRequired) and not is_api(request):
            target = web.url_with_query("/sign-in", next=_next_path(request))
            return web.redirect(request, target)
        message = web.translate(request, exc.message, exc.params)
        if is_api(request):
            detail = message if exc.message != exc.title else None
            return problem(
                request,
                exc.status_code,
                exc.title,
                detail,
                exc.field_errors,
                exc.headers,
                exc.extra,
            )
        if exc.field_errors:
            message = " ".join(
                [message, *list(web.field_errors_map(request, exc.field_errors).values())]
            )
        return page_error(request, exc.status_code, message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = field_errors_from(exc.errors(), skip=("body", "query", "path", "header"))
        if is_api(request):
            return problem(request, 422, InvalidInput.title, None, errors)
        fields = ", ".join(error.field for error in errors)
        message = web.translate(
            request, N_("Some fields are missing or invalid: %(fields)s"), {"fields": fields}
        )
        return page_error(request, 422, message)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        title = NotFound.title if exc.status_code == 404 else str(exc.detail)
        if is_api(request):
            return problem(request, exc.status_code, title, headers=dict(exc.headers or {}))
        return page_error(request, exc.status_code, web.translate(request, title))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        title = N_("Something went wrong on our side; nothing was saved. Try again.")
        response = (
            problem(request, 500, title)
            if is_api(request)
            else page_error(request, 500, web.translate(request, title))
        )
        apply_security_headers(request, response, web.settings_of(request))
        return response


def _next_path(request: Request) -> str:
    if request.method != "GET" or web.is_htmx(request):
        return "/"
    path = request.url.path
    return path + ("?" + request.url.query if request.url.query else "")


def _install_security_headers(app: FastAPI, settings: Settings) -> None:
    @app.middleware("http")
    async def _headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        apply_security_headers(request, response, settings)
        return response


def apply_security_headers(request: Request, response: Response, settings: Settings) -> None:
    """On every answer; also called for a 500, which leaves before the middleware sees it."""
    headers = response.headers
    if request.url.path == "/docs":
        # Swagger UI (vendored) sets inline styles on its elements.
        headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'",
        )
    else:
        headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        )
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    if not settings.is_development:
        headers.setdefault("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
