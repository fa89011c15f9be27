"""Liveness, readiness and the API documentation page."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from app import migrate, web
from app.deps import get_database

router = APIRouter(tags=["health"])
docs_router = APIRouter(include_in_schema=False)


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database is reachable and its schema is current")
def readyz(request: Request) -> JSONResponse:
    database = get_database(request)
    try:
        current = migrate.current_revision(database.engine)
    except sa.exc.SQLAlchemyError as exc:
        reason = f"database unreachable: {exc.__class__.__name__}"
        return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
    head = migrate.head_revision()
    if current != head:
        reason = (
            f"database schema at {current or 'nothing'}, code expects {head}: "
            "run `brandkeep db upgrade`"
        )
        return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
    return JSONResponse({"status": "ready", "schema": head})


@docs_router.get("/docs")
def api_docs(request: Request) -> HTMLResponse:
    return web.render(request, "docs.html")
