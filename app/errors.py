"""One family of errors, each carrying its HTTP status.

Messages are English message ids (marked with ``N_`` for extraction) with
``%(name)s`` parameters; they are translated where they are shown, in the
reader's language.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


def N_(message: str) -> str:  # noqa: N802 - the conventional gettext marker name
    """Mark a message for translation without translating it yet."""
    return message


@dataclass
class FieldError:
    field: str
    message: str
    params: dict[str, Any] = dataclasses.field(default_factory=dict)


class BrandkeepError(Exception):
    status_code = 400
    title = N_("Bad request")

    def __init__(
        self,
        message: str | None = None,
        *,
        params: dict[str, Any] | None = None,
        field_errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.message = message or self.title
        # Machine-readable details added to the API's problem body (e.g. unmet items).
        self.extra = extra or {}
        self.params = params or {}
        self.field_errors = field_errors or []
        self.headers = headers or {}
        super().__init__(self.message % self.params if self.params else self.message)


class InvalidInput(BrandkeepError):
    status_code = 422
    title = N_("Some fields need attention")


class Unauthenticated(BrandkeepError):
    status_code = 401
    title = N_("Sign in to continue")


class Forbidden(BrandkeepError):
    status_code = 403
    title = N_("You may not do this")


class CSRFRejected(Forbidden):
    title = N_(
        "This form has expired or did not come from Brandkeep. Reload the page and try again."
    )


class NotFound(BrandkeepError):
    status_code = 404
    title = N_("Not found")


class Conflict(BrandkeepError):
    status_code = 409
    title = N_("This changed while you were working on it")


class PreconditionFailed(BrandkeepError):
    status_code = 412
    title = N_("This was changed by someone else since you loaded it; reload and try again")


class PreconditionRequired(BrandkeepError):
    status_code = 428
    title = N_("Send the If-Match header with the ETag you last read")


class Unavailable(BrandkeepError):
    """A part of the product this server cannot offer, e.g. PDF without its system libraries."""

    status_code = 503
    title = N_("Not available on this server")


class TooManyRequests(BrandkeepError):
    status_code = 429
    title = N_("Too many attempts. Wait a little and try again.")
