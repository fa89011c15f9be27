"""The limits the benchmark compares Brandkeep against: as little as each kind of page needs.

- ``GET /h``: a bare FastAPI JSON endpoint (H);
- ``GET /r``: a bare Jinja2 page of 50 rows, no database (R);
- ``GET /d``: one single-row SELECT by primary key with the raw async driver, psycopg,
  over a small pool of connections opened at start-up (D).

Served like the app (``uvicorn bench.limits_app:app --workers 2``); the database comes
from ``BENCH_DSN`` (a libpq connection string) and ``BENCH_ROW_ID`` (an organization id).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import jinja2
from fastapi import FastAPI
from fastapi.responses import HTMLResponse

POOL_SIZE = 8

TEMPLATE = jinja2.Environment(autoescape=True).from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title></head>
<body><main><h1>{{ title }}</h1>
<table><thead><tr><th>Title</th><th>Engagement</th><th>Step</th><th>Due</th><th>Waited</th></tr>
</thead><tbody>
{% for row in rows %}<tr><td><a href="/posts/{{ row.id }}">{{ row.title }}</a></td>
<td>{{ row.engagement }}</td><td>{{ row.step }}</td><td>{{ row.due }}</td>
<td>{{ row.waited }}</td></tr>
{% endfor %}</tbody></table></main></body></html>"""
)
ROWS = [
    {
        "id": f"00000000-0000-4000-8000-{index:012d}",
        "title": f"Post number {index} about trail running",
        "engagement": "Social media 2026",
        "step": "Marketing",
        "due": "Thursday 4 December 2026, 17:00",
        "waited": f"{index} hours",
    }
    for index in range(50)
]

_pool: asyncio.Queue[Any] | None = None


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    global _pool
    dsn = os.environ.get("BENCH_DSN")
    connections = []
    if dsn:
        import psycopg

        _pool = asyncio.Queue()
        for _ in range(POOL_SIZE):
            connection = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
            connections.append(connection)
            _pool.put_nowait(connection)
    try:
        yield
    finally:
        for connection in connections:
            await connection.close()


app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/h")
async def bare_json() -> dict[str, object]:
    return {"status": "ok", "items": [1, 2, 3]}


@app.get("/r", response_class=HTMLResponse)
async def bare_page() -> HTMLResponse:
    return HTMLResponse(TEMPLATE.render(title="Review queue", rows=ROWS))


@app.get("/d")
async def bare_select() -> dict[str, object]:
    assert _pool is not None, "BENCH_DSN is not set"
    connection = await _pool.get()
    try:
        cursor = await connection.execute(
            "SELECT id, name, slug FROM organization WHERE id = %s", (os.environ["BENCH_ROW_ID"],)
        )
        row = await cursor.fetchone()
    finally:
        _pool.put_nowait(connection)
    assert row is not None
    return {"id": str(row[0]), "name": row[1], "slug": row[2]}
