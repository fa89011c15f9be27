"""Queueing a mail: render it from its templates now, send it from a job after commit.

A mail is rendered when it is queued, in the reader's language, from
``templates/mail/<name>.txt`` (its ``subject`` block and the plain-text body) and
``templates/mail/<name>.html``. The job only delivers what was rendered, so what is
sent is what the change that caused it saw.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import select_autoescape
from sqlmodel import Session

from app import web
from app.jobs import service as jobs
from app.jobs.models import OutboxJob

SEND_EMAIL = "send_email"

# The pages' environment, built the same way (loader, i18n, filters), except that only
# the HTML part is escaped: the plain-text part must not turn "&" into "&amp;".
_environment = web.build_environment()
_environment.autoescape = select_autoescape(
    enabled_extensions=("html",), default_for_string=False, default=False
)


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


def render_mail(template: str, context: Mapping[str, Any], language: str) -> RenderedMail:
    values = {**context, "language": language}
    # The gettext callables and the date/money filters read the language from here,
    # exactly as when a page renders.
    token = web._language.set(language)
    try:
        text_template = _environment.get_template(f"mail/{template}.txt")
        subject_block = text_template.blocks["subject"](text_template.new_context(values))
        # One line, whatever the template's whitespace: a subject is a header.
        subject = " ".join("".join(subject_block).split())
        text = text_template.render(values).strip() + "\n"
        html = _environment.get_template(f"mail/{template}.html").render(
            {**values, "subject": subject}
        )
    finally:
        web._language.reset(token)
    return RenderedMail(subject=subject, text=text, html=html)


def queue_mail(
    session: Session, *, to: str, template: str, context: Mapping[str, Any], language: str
) -> OutboxJob:
    """Queue a mail in the caller's transaction: it is sent only if that transaction commits."""
    mail = render_mail(template, context, language)
    return jobs.enqueue(
        session,
        SEND_EMAIL,
        {
            "to": to,
            "template": template,
            "subject": mail.subject,
            "text": mail.text,
            "html": mail.html,
        },
    )
