"""Invitation and reset links are secrets: the access log never shows them."""

from __future__ import annotations

import logging

from app.logs import RedactSecretPaths


def _access_record(path: str) -> logging.LogRecord:
    return logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1,
        '%s - "%s %s HTTP/%s" %d', ("127.0.0.1:5000", "GET", path, "1.1", 200), None,
    )  # fmt: skip


def test_secret_links_are_redacted_and_other_paths_kept() -> None:
    flt = RedactSecretPaths()
    for path, shown in (
        ("/invitations/AbC-123_xyz", "/invitations/[redacted]"),
        ("/password-reset/tok3n?x=1", "/password-reset/[redacted]?x=1"),
        ("/password-reset", "/password-reset"),
        ("/engagements/1234", "/engagements/1234"),
    ):
        record = _access_record(path)
        assert flt.filter(record)
        assert record.getMessage() == f'127.0.0.1:5000 - "GET {shown} HTTP/1.1" 200'
