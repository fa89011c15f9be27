"""Keep secrets that travel in URLs (invitation and reset links) out of the access log."""

from __future__ import annotations

import logging
import re

# Paths whose last segment is a bearer secret: whoever reads the log could use it.
_SECRET_PATHS = re.compile(r"^(/(?:invitations|password-reset|guest-review)/)[^/?#\s]+")


class RedactSecretPaths(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            redacted = _SECRET_PATHS.sub(r"\1[redacted]", args[2])
            if redacted != args[2]:
                record.args = (*args[:2], redacted, *args[3:])
        return True


def install() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(existing, RedactSecretPaths) for existing in access.filters):
        access.addFilter(RedactSecretPaths())
