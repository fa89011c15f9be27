"""The development outbox: mail that would have been sent, newest first (development only)."""

from __future__ import annotations

import re

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from markupsafe import Markup, escape

from app import web
from app.deps import BrowserDep, SessionDep, SettingsDep, verify_csrf
from app.errors import NotFound
from app.mail import repository

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)

SHOWN = 50
_URL = re.compile(r"https?://[^\s<>\"']+")


def _text_with_links(text: str, base_url: str) -> Markup:
    """The plain-text part, escaped, with this site's links made clickable (the demo's way in)."""
    escaped = str(escape(text))

    def link(match: re.Match[str]) -> str:
        url = match.group(0)
        if not url.startswith(str(escape(base_url))):
            return url
        return f'<a href="{url}">{url}</a>'  # already escaped above

    return Markup(_URL.sub(link, escaped))  # noqa: S704 - built from escaped text only


@router.get("/dev/outbox", name="dev_outbox")
def dev_outbox(
    request: Request, db: SessionDep, settings: SettingsDep, browser: BrowserDep
) -> Response:
    if not settings.is_development:
        raise NotFound()
    mails = [
        (mail, _text_with_links(mail.text, settings.base_url))
        for mail in repository.latest_dev_mails(db, limit=SHOWN)
    ]
    return web.render(request, "dev/outbox.html", {"mails": mails, "user": browser.user})
