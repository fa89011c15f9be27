"""Server-rendered pages: the Jinja environment and the one way to render a page.

One template per page. For an HTMX request, ``render`` returns only the block
named by the request's ``HX-Target`` (``member-list`` → block ``member_list``),
so a page and its in-place updates cannot drift apart.
"""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from babel.dates import format_date as babel_format_date
from babel.numbers import format_percent as babel_format_percent
from babel.numbers import get_currency_precision
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from app import i18n
from app.config import PROJECT_ROOT, Settings
from app.errors import FieldError

TEMPLATES_DIR = PROJECT_ROOT / "templates"

_language: contextvars.ContextVar[str] = contextvars.ContextVar("language", default="en")
_timezone: contextvars.ContextVar[str] = contextvars.ContextVar("timezone", default="UTC")


def _gettext(message: str) -> str:
    return i18n.translations(_language.get()).gettext(message)


def _ngettext(singular: str, plural: str, n: int) -> str:
    return i18n.translations(_language.get()).ngettext(singular, plural, n)


def _datetime(value: datetime | None) -> str:
    return i18n.format_datetime(value, _language.get(), _timezone.get())


def _date(value: date | None) -> str:
    if value is None:
        return "—"
    return babel_format_date(value, "medium", locale=_language.get())


def _percent(fraction: Any) -> str:
    if fraction is None:
        return "—"
    return babel_format_percent(fraction, "#,##0.##%", locale=_language.get())


def _major_units(minor_units: int | None, currency: str) -> str:
    """Minor units as the plain number a person types in a form (4800000 EUR → 48000.00)."""
    if minor_units is None:
        return ""
    precision = get_currency_precision(currency)
    return f"{minor_units / 10**precision:.{precision}f}"


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _money(minor_units: int | None, currency: str) -> str:
    if minor_units is None:
        return "—"
    return i18n.format_money(minor_units, currency, _language.get())


def _number(value: float | int | None) -> str:
    return "—" if value is None else i18n.format_number(value, _language.get())


def build_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters["datetime"] = _datetime
    env.filters["money"] = _money
    env.filters["date"] = _date
    env.filters["percent"] = _percent
    env.filters["major_units"] = _major_units
    env.filters["uuid"] = _uuid
    env.filters["number"] = _number
    env.globals["LANGUAGES"] = i18n.LANGUAGE_NAMES
    return env


environment = build_environment()
# Form macros are globals, so that a block rendered alone for HTMX still has them.
environment.globals["forms"] = environment.get_template("macros/forms.html").module


def settings_of(request: Request) -> Settings:
    """The settings the app was built with (not the environment's, which tests change)."""
    settings: Settings = request.app.state.settings
    return settings


def translate(request: Request, message: str, params: Mapping[str, Any] | None = None) -> str:
    # Messages are python-format strings: a literal percent sign is written "%%".
    text = i18n.translations(request_language(request)).gettext(message)
    return text % dict(params or {})


def request_language(request: Request) -> str:
    language = getattr(request.state, "language", None)
    if language:
        return str(language)
    return i18n.negotiate_language(
        request.headers.get("accept-language"), settings_of(request).default_language
    )


def field_errors_map(request: Request, errors: list[FieldError]) -> dict[str, str]:
    shown: dict[str, str] = {}
    for error in errors:
        shown.setdefault(error.field, translate(request, error.message, error.params))
    return shown


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _target_block(request: Request) -> str | None:
    if not is_htmx(request) or request.headers.get("hx-boosted") == "true":
        return None
    target = request.headers.get("hx-target")
    return target.replace("-", "_") if target else None


def render(
    request: Request,
    template_name: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    template = environment.get_template(template_name)
    values: dict[str, Any] = {
        "request": request,
        "url_for": request.url_for,
        "page": getattr(request.state, "page", None),
        "csrf_token": getattr(request.state, "csrf_token", ""),
        "language": request_language(request),
        "errors": {},
        "values": {},
        "flash": getattr(request.state, "flash", None),
    }
    values.update(context or {})
    language_token = _language.set(values["language"])
    timezone_token = _timezone.set(getattr(request.state, "timezone", "UTC"))
    try:
        block = _target_block(request)
        if block is not None and block in template.blocks:
            body = "".join(template.blocks[block](template.new_context(values)))
        else:
            body = template.render(values)
    finally:
        _language.reset(language_token)
        _timezone.reset(timezone_token)
    response = HTMLResponse(body, status_code=status_code, headers=dict(headers or {}))
    response.headers["Content-Language"] = values["language"]
    response.headers["Vary"] = "HX-Request, HX-Target, Accept-Language, Cookie"
    apply_session_cookie(request, response)
    return response


def redirect(request: Request, url: str, *, status_code: int = 303) -> Response:
    """After a form post: a 303 for browsers, ``HX-Redirect`` for HTMX."""
    response: Response
    if is_htmx(request):
        response = Response(status_code=204, headers={"HX-Redirect": url})
    else:
        response = RedirectResponse(url, status_code=status_code)
    apply_session_cookie(request, response)
    return response


def url_with_query(url: str, **params: str | None) -> str:
    query = urlencode({key: value for key, value in params.items() if value is not None})
    return f"{url}?{query}" if query else url


def apply_session_cookie(request: Request, response: Response) -> None:
    """Set or clear the session cookie if this request started, rotated or ended one."""
    settings = settings_of(request)
    change = getattr(request.state, "session_cookie_change", None)
    if change is None:
        return
    if change == "":
        response.delete_cookie(
            settings.session_cookie_name,
            path="/",
            secure=not settings.is_development,
            httponly=True,
            samesite="lax",
        )
        return
    response.set_cookie(
        settings.session_cookie_name,
        change,
        max_age=settings.session_days * 86400,
        path="/",
        secure=not settings.is_development,
        httponly=True,
        samesite="lax",
    )


def icon(name: str) -> Markup:
    # Decorative only: icons are always beside a text label.
    return Markup('<span class="icon icon-{}" aria-hidden="true"></span>').format(name)


environment.globals["icon"] = icon


class TranslatedLabels(Mapping[Any, str]):
    """Labels whose English text is a message id, translated when read in a template."""

    def __init__(self, labels: Mapping[Any, str]) -> None:
        self._labels = dict(labels)

    def __getitem__(self, key: Any) -> str:
        return _gettext(self._labels[key])

    def __iter__(self) -> Any:
        return iter(self._labels)

    def __len__(self) -> int:
        return len(self._labels)


def register_labels(name: str, labels: Mapping[Any, str]) -> None:
    environment.globals[name] = TranslatedLabels(labels)
