"""PDF reports, rendered from an HTML template with WeasyPrint (a maintained HTML-to-PDF library).

The report template is rendered exactly like a page (same environment, the
reader's language), then laid out by WeasyPrint. The charts are inline SVG and
the stylesheet is inline, so WeasyPrint needs to fetch nothing: its URL fetcher
refuses every URL, which also keeps a crafted value from making the server fetch.
"""

from __future__ import annotations

from typing import Any, NoReturn

from fastapi import Request
from fastapi.responses import Response

from app import web
from app.errors import N_, Unavailable


def _refuse_fetch(url: str, *args: Any, **kwargs: Any) -> NoReturn:
    raise ValueError(f"the report fetches nothing: {url[:60]}")


def render_pdf(request: Request, template: str, context: dict[str, Any]) -> bytes:
    # Imported here: WeasyPrint loads Pango at import, which only report downloads need;
    # a server without Pango still serves everything else and says why PDFs are missing.
    try:
        from weasyprint import HTML  # type: ignore[import-untyped]
    except OSError as missing:
        raise Unavailable(
            N_("PDF reports are not available on this server: its PDF library is missing.")
        ) from missing

    html = bytes(web.render(request, template, context).body).decode()
    document = HTML(string=html, url_fetcher=_refuse_fetch, base_url=str(request.base_url))
    pdf: bytes = document.write_pdf()
    return pdf


def pdf_response(content: bytes, filename: str) -> Response:
    return Response(
        content,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
