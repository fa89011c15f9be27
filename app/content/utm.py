"""Link tracking: UTM parameters from the engagement's tracking set-up.

The engagement names ``utm_source``, ``utm_medium`` and ``utm_campaign`` (its
tracking set-up, DOMAIN.md); the builder writes them onto the post's link, with
``utm_content`` naming the post, so that web analytics rows can be matched back
to the post that brought the visit (``post_id_from_utm_content``).

Gaps in the set-up are filled so the link is still attributable: the source
falls back to the post's channel when it has exactly one (else ``social``), the
medium to ``social``, the campaign to the post's campaign. Other query
parameters and the fragment are kept as they were; a UTM parameter already on
the link is replaced, never repeated.

Adding tracking saves a new version (the link is part of what is approved).
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlmodel import Session

from app.content import service
from app.content.models import Post
from app.content.schemas import PostUpdate
from app.content.service import PostAccess
from app.engagements.models import Engagement
from app.errors import N_, FieldError, InvalidInput

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content")
_SLUG = re.compile(r"[^a-z0-9]+")
_CONTENT_ID = re.compile(r"(?:^|-)([0-9a-f]{32})$")


def slug(text: str, *, limit: int = 60) -> str:
    """Lowercase ASCII words joined by hyphens: readable in analytics reports."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _SLUG.sub("-", ascii_text.lower()).strip("-")[:limit].strip("-")


def utm_content_for(post: Post) -> str:
    """Names the post: its title for people, its id (32 hex digits, last) for matching."""
    title = slug(post.title, limit=40)
    return f"{title}-{post.id.hex}" if title else post.id.hex


def post_id_from_utm_content(value: str) -> uuid.UUID | None:
    """The post a ``utm_content`` value (as an analytics export gives it) was made for."""
    match = _CONTENT_ID.search(value.strip().lower())
    return uuid.UUID(match.group(1)) if match else None


def parameters_for(engagement: Engagement, post: Post, channels: list[str]) -> dict[str, str]:
    source = (engagement.utm_source or "").strip()
    if not source:
        source = channels[0] if len(channels) == 1 else "social"
    campaign = (engagement.utm_campaign or "").strip() or slug(post.campaign)
    values = {
        "utm_source": source,
        "utm_medium": (engagement.utm_medium or "").strip() or "social",
        "utm_campaign": campaign,
        "utm_content": utm_content_for(post),
    }
    return {key: value for key, value in values.items() if value}


def with_parameters(link: str, parameters: dict[str, str]) -> str:
    """``link`` with these query parameters set once each, everything else as it was."""
    parts = urlsplit(link.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise InvalidInput(
            field_errors=[
                FieldError("link", N_("Tracking is added to a web link (http:// or https://)."))
            ]
        )
    kept = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key.lower() not in UTM_KEYS
    ]
    query = urlencode(kept + list(parameters.items()))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


@dataclass(frozen=True)
class Tracking:
    link: str
    tracked_link: str
    parameters: dict[str, str]

    @property
    def changes(self) -> bool:
        return self.link != self.tracked_link


def tracking_for(
    session: Session,
    found: PostAccess,
    *,
    link: str | None = None,
    channels: list[str] | None = None,
) -> Tracking:
    """The tracked form of ``link`` (default: the current version's), saving nothing."""
    found.granted.require("engagement.read")
    current = service.current_version(session, found.post)
    link = (link if link is not None else current.link or "").strip()
    if not link:
        raise InvalidInput(field_errors=[FieldError("link", N_("Add a link first."))])
    parameters = parameters_for(
        found.granted.engagement,
        found.post,
        list(channels if channels is not None else current.channels),
    )
    return Tracking(link, with_parameters(link, parameters), parameters)


def add_tracking(session: Session, found: PostAccess, *, expected_version: int) -> Post:
    """Save the current version's link with tracking, as a new version (if it changes)."""
    found.granted.require("post.draft")
    tracking = tracking_for(session, found)
    if not tracking.changes:
        return found.post
    return service.edit_post(
        session,
        found,
        expected_version=expected_version,
        data=PostUpdate(link=tracking.tracked_link),
    )
