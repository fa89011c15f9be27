"""PDF tests run where WeasyPrint's system libraries (Pango) are installed, as in the image."""

from __future__ import annotations

import pytest


def skip_without_pdf() -> None:
    try:
        import weasyprint  # type: ignore[import-untyped]  # noqa: F401
    except (ImportError, OSError) as missing:
        # WeasyPrint raises OSError at import when Pango is absent.
        pytest.skip(f"WeasyPrint cannot load Pango here ({missing}); the Dockerfile installs it")
