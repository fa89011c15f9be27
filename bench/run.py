"""The benchmark: the physical limits and Brandkeep's pages, measured back to back.

One command, on a database made by ``bench.generate``::

    python -m bench.run --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench

In one run on one machine it measures the limits

- H: a bare FastAPI JSON endpoint;            - R: a bare Jinja2 page of 50 rows, no database;
- D: a bare async single-row SELECT (psycopg); - S: the raw SQL behind the comparison page
  (every statement the comparison issues, replayed with psycopg, single client, p95);
- C: raw ``COPY`` of result rows into ``result_row`` (rows/s);

and Brandkeep's review queue (50+ posts), an API read by id with a bearer token, the
comparison page and its API, the engagement scorecard, a 1,000,000-row import through
the API (batches of 10,000) and as a file (peak memory for two file sizes), and the
rollup upkeep per 100,000 new rows; then prints each figure, its ratio to its limit and
the target. Both servers run with 2 uvicorn workers; load comes from ``wrk`` with 32
connections (``apt-get install wrk``); every figure is the median of ``--runs`` runs.

PostgreSQL only: the limits D, S and C are psycopg's.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from app.db import Database, utcnow

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONNECTIONS = 32
WORKERS = 2
BATCH = 10_000
IMPORT_METRICS = ("impressions", "engagements", "link_clicks", "sessions", "conversions")
IMPORT_CHANNELS = ("instagram", "facebook")
IMPORT_DAYS = 400
ROLLUP_ROWS = 100_000
PARTS = ("limits", "ours", "api_imports", "file_imports", "upkeep")


# --- measuring ------------------------------------------------------------------------------


@dataclass
class Load:
    """What one ``wrk`` run saw."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    runs: list[float] = field(default_factory=list)
    p99_ms: float | None = None
    note: str = ""


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip()).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def wrk(url: str, seconds: int, headers: dict[str, str]) -> Load:
    command = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run(  # noqa: S603 - our own arguments
        [*command, url], capture_output=True, text=True, check=True
    ).stdout
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, re.MULTILINE))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output)) + sum(
        int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output)
    )
    if "50" not in percentiles or "99" not in percentiles:
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    if rps == 0:
        # Nothing answered within the run: the latencies wrk shows (0) mean nothing.
        return Load(0.0, float(seconds * 1000), float(seconds * 1000), errors)
    return Load(rps, _ms(percentiles["50"]), _ms(percentiles["99"]), errors)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def single_client_p95(call: Callable[[], None], count: int, budget: float = 30.0) -> float:
    """p95 in ms of ``count`` calls one after another (fewer, at least 20, past ``budget`` s)."""
    for _ in range(3):
        call()
    samples: list[float] = []
    deadline = time.perf_counter() + budget
    while len(samples) < count and (len(samples) < 20 or time.perf_counter() < deadline):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return percentile(samples, 0.95)


# --- servers --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """``uvicorn`` with 2 workers, started and stopped by the benchmark."""

    def __init__(self, target: list[str], env: dict[str, str], ready_path: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        command = [
            sys.executable, "-m", "uvicorn", *target, "--port", str(self.port),
            "--workers", str(WORKERS), "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        self.log = tempfile.NamedTemporaryFile(prefix="bench-server-", suffix=".log", delete=False)  # noqa: SIM115
        self.process = subprocess.Popen(  # noqa: S603 - our own arguments
            command, env={**os.environ, **env}, cwd=PROJECT_ROOT,
            stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                ready = httpx.get(self.base + ready_path, timeout=2).status_code == 200
                if ready and len(self.workers()) >= WORKERS:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"the server did not start: see {self.log.name}")

    def workers(self) -> list[int]:
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in path.read_text().split()]
        except OSError:
            return []

    def rss_mb(self) -> dict[int, float]:
        sizes = {}
        for pid in self.workers():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            found = re.search(r"VmRSS:\s+(\d+) kB", status)
            if found:
                sizes[pid] = int(found.group(1)) / 1024
        return sizes

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class PeakRss:
    """Samples the workers' RSS every 50 ms; ``growth`` is the largest rise over the start."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.start = server.rss_mb()
        self.peak = dict(self.start)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            for pid, size in self.server.rss_mb().items():
                self.peak[pid] = max(self.peak.get(pid, 0.0), size)

    def finish(self) -> tuple[float, float]:
        """(largest growth in MiB, that worker's peak RSS in MiB)."""
        self._stop.set()
        self._thread.join()
        growth, peak = 0.0, 0.0
        for pid, size in self.peak.items():
            if size - self.start.get(pid, size) >= growth:
                growth, peak = size - self.start.get(pid, size), size
        return growth, peak


# --- the data set's people, sessions and tokens -------------------------------------------


@dataclass
class Subjects:
    reviewer_cookie: str
    lead_cookie: str
    reviewer_token: str
    lead_token: str
    queue_post_id: uuid.UUID
    organization_id: uuid.UUID
    scorecard_engagement_id: uuid.UUID
    # Engagements that take the imports (a fresh one per run), with their agency's token.
    import_targets: list[tuple[uuid.UUID, str]]
    spare_engagements: list[tuple[uuid.UUID, uuid.UUID, str]]  # (id, brand id, currency)


def prepare_subjects(database: Database, imports_needed: int) -> Subjects:
    from app.accounts import repository as accounts_repository
    from app.accounts import service as accounts
    from app.config import Settings
    from app.tenancy.service import actor_for

    settings = Settings()
    with database.session_scope() as session:

        def user(email: str) -> Any:
            found = accounts_repository.get_user_by_email(session, email)
            if found is None:
                raise SystemExit(f"{email} is missing: make the data with bench.generate first")
            return found

        reviewer, lead = user("reviewer@acme.example"), user("lead@acme.example")

        def cookie(person: Any) -> str:
            return accounts.start_session(
                session, settings, user=person, ip=None, user_agent="bench"
            )[1]

        def token(person: Any, org_slug: str, scope: str) -> str:
            return accounts.create_api_token(
                session, actor_for(session, person), org_slug=org_slug, name="bench", scope=scope
            )[1]

        row = session.execute(
            sa.text(
                "SELECT p.id, p.brand_id FROM post AS p WHERE p.status = 'in_review' "
                "AND p.title LIKE 'Bench post %' ORDER BY p.created_at LIMIT 1"
            )
        ).one()
        scorecard = session.execute(
            sa.text(
                "SELECT e.id FROM engagement AS e JOIN organization AS a ON a.id = e.agency_id "
                "JOIN organization AS b ON b.id = e.brand_id WHERE a.slug = 'northwind' "
                "AND b.slug = 'acme' AND e.status = 'active' ORDER BY e.created_at LIMIT 1"
            )
        ).scalar_one()
        # Engagements nobody else measures, one per import run, picked at random so that
        # runs seldom meet (and never re-send a row: every run's rows carry its own seed).
        candidates = session.execute(
            sa.text(
                "SELECT e.id, e.agency_id, e.brand_id, e.currency, "
                "u.email, a.slug FROM engagement AS e JOIN organization AS a ON a.id = e.agency_id "
                'JOIN membership AS m ON m.organization_id = a.id JOIN "user" AS u '
                "ON u.id = m.user_id WHERE e.name LIKE 'Bench engagement %' AND m.role = 'manager' "
                "AND e.brand_id <> (SELECT id FROM organization WHERE slug = 'acme') "
                "ORDER BY random() LIMIT :n"
            ),
            {"n": imports_needed + 4},
        ).all()
        if len(candidates) < imports_needed + 4:
            raise SystemExit("not enough bench engagements for the imports: generate a larger set")
        targets = [
            (engagement_id, token(user(email), slug, "write"))
            for engagement_id, _agency, _brand, _currency, email, slug in candidates[
                :imports_needed
            ]
        ]
        spare = [
            (engagement_id, brand_id, currency)
            for engagement_id, _agency, brand_id, currency, _email, _slug in candidates[
                imports_needed:
            ]
        ]
        subjects = Subjects(
            reviewer_cookie=cookie(reviewer),
            lead_cookie=cookie(lead),
            reviewer_token=token(reviewer, "acme", "read"),
            lead_token=token(lead, "acme", "read"),
            queue_post_id=row[0],
            organization_id=row[1],
            scorecard_engagement_id=scorecard,
            import_targets=targets,
            spare_engagements=spare,
        )
    return subjects


# --- rows to import -------------------------------------------------------------------------


def import_rows(count: int, seed: str) -> Iterator[tuple[str, str, date, str, int]]:
    """(channel, metric, day, post reference, value): distinct keys, days in the past."""
    yesterday = utcnow().date() - timedelta(days=1)
    per_ref = len(IMPORT_METRICS) * len(IMPORT_CHANNELS) * IMPORT_DAYS
    for index in range(count):
        metric = IMPORT_METRICS[index % len(IMPORT_METRICS)]
        channel = IMPORT_CHANNELS[(index // len(IMPORT_METRICS)) % len(IMPORT_CHANNELS)]
        day = yesterday - timedelta(days=(index // 10) % IMPORT_DAYS)
        yield channel, metric, day, f"bench-{seed}-{index // per_ref}", (index * 7919) % 5000 + 1


def write_csv(path: Path, count: int, seed: str) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["channel", "metric", "period_start", "period_end", "value", "post_ref"])
        for channel, metric, day, ref, value in import_rows(count, seed):
            writer.writerow([channel, metric, day.isoformat(), day.isoformat(), value, ref])


def batch_bodies(count: int, seed: str) -> Iterator[bytes]:
    batch: list[dict[str, Any]] = []
    for channel, metric, day, ref, value in import_rows(count, seed):
        batch.append(
            {
                "channel": channel,
                "metric": metric,
                "period_start": day.isoformat(),
                "period_end": day.isoformat(),
                "value": value,
                "post_ref": ref,
            }
        )
        if len(batch) == BATCH:
            yield json.dumps(batch).encode()
            batch = []
    if batch:
        yield json.dumps(batch).encode()


# --- the limits that need no server ------------------------------------------------------


def libpq_dsn(url: str) -> str:
    parsed = sa.make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def comparison_statements(database: Database) -> list[tuple[str, Any]]:
    """Every statement the comparison of the demo brand issues (default period), as sent."""
    from sqlmodel import Session

    from app.accounts import repository as accounts_repository
    from app.scorecards import service
    from app.tenancy.service import actor_for

    captured: list[tuple[str, Any]] = []
    with Session(database.engine) as session:
        lead = accounts_repository.get_user_by_email(session, "lead@acme.example")
        if lead is None:
            raise SystemExit("lead@acme.example is missing: make the data with bench.generate")
        actor = actor_for(session, lead)

        def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            captured.append((statement, parameters))

        sa.event.listen(database.engine, "before_cursor_execute", record)
        try:
            service.compare_brand(session, actor, "acme", service.parse_period(None, None))
        finally:
            sa.event.remove(database.engine, "before_cursor_execute", record)
        session.rollback()
    return captured


def raw_sql_p95(dsn: str, statements: list[tuple[str, Any]], count: int) -> tuple[float, float]:
    """(p95 of all statements in a row, p95 of the heaviest one alone), in ms."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as connection:

        def one(statement: str, parameters: Any) -> None:
            with connection.cursor() as cursor:
                cursor.execute(statement, parameters)
                if cursor.description is not None:
                    cursor.fetchall()

        def every() -> None:
            for statement, parameters in statements:
                one(statement, parameters)

        heaviest = max(statements, key=lambda item: _time(lambda: one(*item)))
        return (
            single_client_p95(every, count),
            single_client_p95(lambda: one(*heaviest), count),
        )


def _time(call: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best


COPY_COLUMNS = (
    "id", "brand_id", "engagement_id", "row_key", "channel", "metric", "period_start",
    "period_end", "value", "currency", "source", "platform_metric", "platform_metric_version",
    "revision", "status", "status_reason", "reported_at", "post_ref",
)  # fmt: skip


def raw_copy(dsn: str, engagement: tuple[uuid.UUID, uuid.UUID, str], count: int) -> float:
    """Rows/s of COPY of ``count`` complete result rows into ``result_row`` (rolled back)."""
    import psycopg

    engagement_id, brand_id, _currency = engagement
    now = utcnow()
    rows = [
        (
            uuid.uuid4(), brand_id, engagement_id, f"copy:{index}", channel, metric, day, day,
            Decimal(value), None, "import:generic", "", "", 1, "reported", "", now, ref,
        )
        for index, (channel, metric, day, ref, value) in enumerate(import_rows(count, "copy"))
    ]  # fmt: skip
    with psycopg.connect(dsn) as connection:
        started = time.perf_counter()
        with (
            connection.cursor() as cursor,
            cursor.copy(f"COPY result_row ({', '.join(COPY_COLUMNS)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        elapsed = time.perf_counter() - started
        connection.rollback()
    return count / elapsed


def rollup_upkeep(database: Database, engagement: tuple[uuid.UUID, uuid.UUID, str]) -> float:
    """Seconds ``refresh_rollups_for`` takes over 100,000 new rows (rolled back after)."""
    from sqlmodel import Session

    from app.scorecards.rollups import refresh_rollups_for

    engagement_id, brand_id, _currency = engagement
    width = len(IMPORT_METRICS) * len(IMPORT_CHANNELS)
    yesterday = utcnow().date() - timedelta(days=1)
    with Session(database.engine) as session:
        session.execute(
            sa.text(
                "INSERT INTO result_row (id, brand_id, engagement_id, row_key, channel, metric, "
                "period_start, period_end, value, source, platform_metric, "
                "platform_metric_version, revision, status, status_reason, reported_at, post_ref) "
                "SELECT gen_random_uuid(), :b, :e, 'upkeep:' || g.n, "
                "(ARRAY['instagram','facebook'])[((g.n / 5) % 2) + 1], "
                "(ARRAY['impressions','engagements','link_clicks','sessions','conversions'])"
                "[(g.n % 5) + 1], CAST(:day AS date) - ((g.n / :width) % :days), "
                "CAST(:day AS date) - ((g.n / :width) % :days), (g.n * 7919) % 5000, "
                "'import:generic', '', '', 1, 'reported', '', now(), "
                "'upkeep-' || (g.n / (:width * :days)) "
                "FROM generate_series(0, :rows - 1) AS g(n)"
            ),
            {
                "b": brand_id, "e": engagement_id, "day": yesterday, "width": width,
                "days": IMPORT_DAYS, "rows": ROLLUP_ROWS,
            },
        )  # fmt: skip
        keys = [
            (metric, yesterday - timedelta(days=offset))
            for metric in IMPORT_METRICS
            for offset in range(IMPORT_DAYS)
        ]
        started = time.perf_counter()
        refresh_rollups_for(session, engagement_id, keys)
        elapsed = time.perf_counter() - started
        session.rollback()
    return elapsed


# --- the benchmark --------------------------------------------------------------------------


class Bench:
    def __init__(
        self, url: str, seconds: int, runs: int, import_rows: int, parts: tuple[str, ...] = PARTS
    ) -> None:
        self.url = url
        self.parts = parts
        # Every run imports rows never seen before (a re-sent row would be a cheap no-op).
        self.seed = uuid.uuid4().hex[:8]
        self.dsn = libpq_dsn(url)
        self.seconds = seconds
        self.runs = runs
        self.import_count = import_rows
        self.small_import = max(import_rows // 4, 1)
        self.figures: dict[str, Figure] = {}
        self.database = Database(url)
        self.data_dir = Path(tempfile.mkdtemp(prefix="brandkeep-bench-"))
        self.app_env = {
            "BRANDKEEP_DATABASE_URL": url,
            "BRANDKEEP_DATA_DIR": str(self.data_dir),
            "BRANDKEEP_ENV": "development",
        }

    def say(self, message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    def record(self, key: str, name: str, unit: str, runs: list[float], **extra: Any) -> Figure:
        figure = Figure(name, statistics.median(runs), unit, runs, **extra)
        self.figures[key] = figure
        shown = ", ".join(f"{value:,.1f}" for value in runs)
        self.say(f"{name}: {figure.value:,.1f} {unit} (runs: {shown})")
        return figure

    def load(self, key: str, name: str, url: str, headers: dict[str, str] | None = None) -> None:
        loads = []
        for _ in range(self.runs):
            # One request first: it waits out what an earlier run left queued on the server.
            httpx.get(url, headers=headers or {}, timeout=600).raise_for_status()
            loads.append(wrk(url, self.seconds, headers or {}))
        errors = sum(item.errors for item in loads)
        self.record(
            key,
            name,
            "req/s",
            [item.rps for item in loads],
            p99_ms=statistics.median(item.p99_ms for item in loads),
            note=f"{errors} errors" if errors else "",
        )

    def run(self) -> dict[str, Figure]:
        imports_needed = self.runs * 2 + self.runs + 1
        subjects = prepare_subjects(self.database, imports_needed)
        self.say("subjects ready: sessions and tokens made")
        for part in PARTS:
            if part in self.parts:
                getattr(self, part)(subjects)
        return self.figures

    def limits(self, subjects: Subjects) -> None:
        limits = Server(
            ["bench.limits_app:app"],
            {"BENCH_DSN": self.dsn, "BENCH_ROW_ID": str(subjects.organization_id)},
            "/h",
        )
        try:
            self.load("H", "H  bare FastAPI JSON", limits.base + "/h")
            self.load("R", "R  bare Jinja2 page, 50 rows", limits.base + "/r")
            self.load("D", "D  bare async single-row SELECT", limits.base + "/d")
        finally:
            limits.stop()
        statements = comparison_statements(self.database)
        every, heaviest = zip(
            *(raw_sql_p95(self.dsn, statements, 200) for _ in range(self.runs)), strict=True
        )
        self.record(
            "S", "S  raw SQL behind the comparison (p95)", "ms", list(every),
            note=f"{len(statements)} statements; the heaviest alone: "
            f"{statistics.median(heaviest):.2f} ms p95",
        )  # fmt: skip
        spare = subjects.spare_engagements
        self.record(
            "C",
            "C  raw COPY into result_row",
            "rows/s",
            [raw_copy(self.dsn, spare[0], self.import_count) for _ in range(self.runs)],
        )

    def ours(self, subjects: Subjects) -> None:
        app = Server(["app.main:create_app", "--factory"], self.app_env, "/readyz")
        reviewer = {"Cookie": f"bk_session={subjects.reviewer_cookie}"}
        lead = {"Cookie": f"bk_session={subjects.lead_cookie}"}
        try:
            queue = httpx.get(app.base + "/review-queue", headers=reviewer, timeout=600)
            queue.raise_for_status()
            shown = queue.text.count('id="pick-')
            self.load("queue", "review queue page", app.base + "/review-queue", reviewer)
            self.figures["queue"].note = f"{shown} posts on the page"
            post_url = f"{app.base}/api/v1/posts/{subjects.queue_post_id}"
            bearer = {"Authorization": f"Bearer {subjects.reviewer_token}"}
            httpx.get(post_url, headers=bearer, timeout=600).raise_for_status()
            self.load("post", "API read by id (GET /api/v1/posts/{id})", post_url, bearer)
            page = app.base + "/brands/acme/comparison"
            api = app.base + "/api/v1/brands/acme/comparison"
            lead_bearer = {"Authorization": f"Bearer {subjects.lead_token}"}
            with httpx.Client(timeout=600) as client:

                def page_once() -> None:
                    client.get(page, headers=lead).raise_for_status()

                def api_once() -> None:
                    client.get(api, headers=lead_bearer).raise_for_status()

                page_once()
                api_once()
                self.record(
                    "comparison_p95", "comparison page, single client (p95)", "ms",
                    [single_client_p95(page_once, 100) for _ in range(self.runs)],
                )  # fmt: skip
                self.record(
                    "comparison_api_p95", "comparison API, single client (p95)", "ms",
                    [single_client_p95(api_once, 100) for _ in range(self.runs)],
                )  # fmt: skip
            self.load("comparison", "comparison page", page, lead)
            self.load("comparison_api", "comparison API", api, lead_bearer)
            scorecard = f"{app.base}/engagements/{subjects.scorecard_engagement_id}/scorecard"
            httpx.get(scorecard, headers=lead, timeout=600).raise_for_status()
            self.load("scorecard", "engagement scorecard page", scorecard, lead)
        finally:
            app.stop()

    def api_imports(self, subjects: Subjects) -> None:
        targets = iter(subjects.import_targets)
        app = Server(["app.main:create_app", "--factory"], self.app_env, "/readyz")
        try:
            rates = []
            for run in range(self.runs):
                streams = [next(targets), next(targets)]
                rates.append(self.api_batches(app, streams, f"{self.seed}-api{run}"))
            self.record(
                "api_import",
                f"{self.import_count:,}-row import through the API (batches of {BATCH:,})",
                "rows/s",
                rates,
                note="2 clients side by side, each into its own engagement",
            )
        finally:
            app.stop()

    def file_imports(self, subjects: Subjects) -> None:
        targets = iter(subjects.import_targets[self.runs * 2 :])
        rates: list[float] = []
        growths: dict[int, list[tuple[float, float]]] = {}
        for run, count in enumerate([self.small_import] + [self.import_count] * self.runs):
            # A fresh server each time, so that the memory figure is this import's own.
            app = Server(["app.main:create_app", "--factory"], self.app_env, "/readyz")
            try:
                rate, growth, peak = self.file_import(
                    app, next(targets), count, f"{self.seed}-file{run}"
                )
            finally:
                app.stop()
            if count == self.import_count:
                rates.append(rate)
            growths.setdefault(count, []).append((growth, peak))
            self.say(f"  file of {count:,} rows: {rate:,.0f} rows/s, RSS +{growth:.0f} MiB "
                     f"(peak {peak:.0f} MiB)")  # fmt: skip
        self.record("file_import", f"{self.import_count:,}-row import as a file", "rows/s", rates)
        for count, seen in sorted(growths.items()):
            self.record(
                f"file_memory_{count}",
                f"import worker RSS growth, file of {count:,} rows",
                "MiB",
                [growth for growth, _peak in seen],
                note=f"peak RSS {max(peak for _g, peak in seen):.0f} MiB",
            )

    def api_batches(self, app: Server, streams: list[tuple[uuid.UUID, str]], seed: str) -> float:
        per_stream = self.import_count // len(streams)
        elapsed: list[float] = []

        def send(engagement_id: uuid.UUID, token: str, index: int) -> None:
            url = f"{app.base}/api/v1/engagements/{engagement_id}/results"
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            started = time.perf_counter()
            with httpx.Client(timeout=600) as client:
                for body in batch_bodies(per_stream, f"{seed}-{index}"):
                    response = client.post(url, content=body, headers=headers)
                    if response.status_code != 200:
                        raise RuntimeError(
                            f"batch refused: {response.status_code} {response.text[:500]}"
                        )
            elapsed.append(time.perf_counter() - started)

        threads = [
            threading.Thread(target=send, args=(engagement_id, token, index))
            for index, (engagement_id, token) in enumerate(streams)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if len(elapsed) != len(streams):
            raise RuntimeError("an API import stream failed (see above)")
        return per_stream * len(streams) / max(elapsed)

    def file_import(
        self, app: Server, target: tuple[uuid.UUID, str], count: int, seed: str
    ) -> tuple[float, float, float]:
        engagement_id, token = target
        headers = {"Authorization": f"Bearer {token}"}
        base = f"{app.base}/api/v1/engagements/{engagement_id}/results"
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"results-{seed}.csv"
            write_csv(path, count, seed)
            memory = PeakRss(app)
            started = time.perf_counter()
            with path.open("rb") as upload, httpx.Client(timeout=600) as client:
                response = client.post(
                    base + "/import",
                    files={"file": (path.name, upload, "text/csv")},
                    headers=headers,
                )
                if response.status_code != 202:
                    raise RuntimeError(
                        f"import refused: {response.status_code} {response.text[:500]}"
                    )
                import_id = response.json()["id"]
                while True:
                    state = client.get(f"{base}/imports/{import_id}", headers=headers).json()
                    if state["state"] not in ("queued", "validating", "writing"):
                        break
                    time.sleep(0.2)
            elapsed = time.perf_counter() - started
            growth, peak = memory.finish()
        if state["state"] != "done" or state["rows_total"] != count:
            raise RuntimeError(f"import ended {state['state']}: {json.dumps(state)[:800]}")
        return count / elapsed, growth, peak

    def upkeep(self, subjects: Subjects) -> None:
        spare = subjects.spare_engagements[1]
        self.record(
            "upkeep",
            f"rollup upkeep per {ROLLUP_ROWS:,} new rows",
            "s",
            [rollup_upkeep(self.database, spare) for _ in range(self.runs)],
        )

    def close(self) -> None:
        self.database.dispose()
        shutil.rmtree(self.data_dir, ignore_errors=True)


# --- the report -------------------------------------------------------------------------


def report(figures: dict[str, Figure]) -> str:
    """The figures, each against its limit and target, as a Markdown table."""

    def get(key: str) -> Figure | None:
        return figures.get(key)

    lines = ["| figure | value | limit | ratio | target | met |", "|---|---|---|---|---|---|"]

    def row(
        key: str, limit_key: str | None, target: str, met: bool | None, ratio: str = ""
    ) -> None:
        figure = get(key)
        if figure is None:
            return
        value = f"{figure.value:,.1f} {figure.unit}"
        if figure.p99_ms is not None:
            value += f" (p99 {figure.p99_ms:,.1f} ms)"
        if figure.note:
            value += f"; {figure.note}"
        limit = get(limit_key) if limit_key else None
        limit_text = f"{limit_key} = {limit.value:,.1f} {limit.unit}" if limit else ""
        verdict = "" if met is None else ("yes" if met else "**no**")
        lines.append(f"| {figure.name} | {value} | {limit_text} | {ratio} | {target} | {verdict} |")

    def ratio(key: str, limit_key: str) -> float | None:
        figure, limit = get(key), get(limit_key)
        if figure is None or limit is None or not limit.value:
            return None
        return figure.value / limit.value

    for key in ("H", "R", "D", "S", "C"):
        row(key, None, "limit", None)
    queue_ratio = ratio("queue", "R")
    queue = get("queue")
    row(
        "queue", "R", ">= 40 % of R, p99 <= 250 ms",
        None if queue_ratio is None or queue is None
        else queue_ratio >= 0.40 and (queue.p99_ms or 0) <= 250,
        f"{queue_ratio:.1%}" if queue_ratio is not None else "",
    )  # fmt: skip
    post_ratio = ratio("post", "D")
    row(
        "post", "D", ">= 40 % of D",
        None if post_ratio is None else post_ratio >= 0.40,
        f"{post_ratio:.1%}" if post_ratio is not None else "",
    )  # fmt: skip
    for key in ("comparison_p95", "comparison_api_p95"):
        figure_ratio = ratio(key, "S")
        figure = get(key)
        row(
            key, "S", "<= 3 x S and <= 50 ms",
            None if figure_ratio is None or figure is None
            else figure_ratio <= 3 and figure.value <= 50,
            f"{figure_ratio:.2f} x S" if figure_ratio is not None else "",
        )  # fmt: skip
    for key in ("comparison", "comparison_api"):
        figure = get(key)
        row(key, "H", ">= 400 req/s", None if figure is None else figure.value >= 400,
            f"{ratio(key, 'H'):.1%} of H" if figure and get("H") else "")  # fmt: skip
    scorecard = get("scorecard")
    row("scorecard", "H", "(no target)", None,
        f"{ratio('scorecard', 'H'):.1%} of H" if scorecard and get("H") else "")  # fmt: skip
    for key, share in (("api_import", 0.15), ("file_import", 0.50)):
        figure_ratio = ratio(key, "C")
        row(
            key, "C", f">= {share:.0%} of C",
            None if figure_ratio is None else figure_ratio >= share,
            f"{figure_ratio:.1%}" if figure_ratio is not None else "",
        )  # fmt: skip
    memory = sorted(
        (int(key.rsplit("_", 1)[1]), key) for key in figures if key.startswith("file_memory_")
    )
    if len(memory) >= 2:
        (small_rows, small_key), (big_rows, big_key) = memory[0], memory[-1]
        small, big = figures[small_key].value, figures[big_key].value
        # Flat: four times the rows may not take more than a quarter more memory (+16 MiB slack).
        flat = big <= small * 1.25 + 16
        row(small_key, None, "flat in file size", None)
        row(big_key, None, "flat in file size", flat,
            f"{big_rows // small_rows} x the rows: {big - small:+.0f} MiB")  # fmt: skip
    upkeep = get("upkeep")
    row("upkeep", None, "<= 1 s", None if upkeep is None else upkeep.value <= 1)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--database-url", default=os.environ.get("BRANDKEEP_DATABASE_URL", ""))
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument("--runs", type=int, default=2, help="runs per figure (the median is kept)")
    parser.add_argument("--import-rows", type=int, default=1_000_000)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"a comma-separated subset of {','.join(PARTS)} (all by default)",
    )
    args = parser.parse_args(argv)
    if not args.database_url or sa.make_url(args.database_url).get_backend_name() != "postgresql":
        parser.error("--database-url must be a PostgreSQL URL (made by bench.generate)")
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (Debian: apt-get install wrk)")
    parts = tuple(part.strip() for part in args.parts.split(",") if part.strip())
    if not parts or set(parts) - set(PARTS):
        parser.error(f"--parts takes {','.join(PARTS)}")
    bench = Bench(args.database_url, args.seconds, args.runs, args.import_rows, parts)
    try:
        figures = bench.run()
    finally:
        bench.close()
    table = report(figures)
    print()
    print(table)
    if args.json:
        args.json.write_text(
            json.dumps({key: vars(figure) for key, figure in figures.items()}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
