"""The benchmark's tools work: the generator at a tiny scale, the benchmark's own logic.

No timings are asserted here: the figures live in bench/README.md, measured by
``python -m bench.run`` on a generated data set.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from app.accounts import repository as accounts_repository
from app.config import get_settings
from app.content import service as content
from app.db import Database
from app.scorecards import service as scorecards
from app.tenancy.service import actor_for
from bench import generate, run
from tests.conftest import make_fresh_database_url


@pytest.fixture
def generated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, dict[str, int]]]:
    monkeypatch.setenv("BRANDKEEP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BRANDKEEP_ENV", "development")
    get_settings.cache_clear()
    url, drop = make_fresh_database_url(tmp_path, "bench")
    try:
        yield url, generate.generate(url, 0.0005)
    finally:
        get_settings.cache_clear()
        drop()  # type: ignore[operator]


def test_the_generator_builds_the_data_set_the_benchmark_measures(
    generated: tuple[str, dict[str, int]],
) -> None:
    url, counts = generated
    plan = generate.Plan.at(0.0005)
    assert counts["engagement"] == plan.engagements
    assert counts["organization"] >= plan.brands + plan.agencies
    per_engagement = max(
        plan.result_rows // plan.engagements, len(generate.METRICS) * len(generate.CHANNELS)
    )
    database = Database(url)
    try:
        with Session(database.engine) as session:
            generated_rows = session.execute(
                sa.text("SELECT count(*) FROM result_row WHERE row_key LIKE 'bench:%'")
            ).scalar_one()
            assert generated_rows == per_engagement * plan.engagements
            # The rollups account for every current row, as the app's upkeep would have.
            rolled_up = session.execute(
                sa.text("SELECT sum(row_count) FROM metric_rollup")
            ).scalar_one()
            current = session.execute(
                sa.text("SELECT count(*) FROM result_row WHERE superseded_at IS NULL")
            ).scalar_one()
            assert rolled_up == current
            # Money rows carry their engagement's currency, other rows none.
            assert not session.execute(
                sa.text(
                    "SELECT count(*) FROM result_row AS r JOIN engagement AS e "
                    "ON e.id = r.engagement_id WHERE r.row_key LIKE 'bench:%' AND "
                    "coalesce(r.currency, '') <> CASE WHEN r.metric IN ('revenue', 'ad_spend') "
                    "THEN e.currency ELSE '' END"
                )
            ).scalar_one()
            reviewer = accounts_repository.get_user_by_email(session, generate.REVIEWER)
            assert reviewer is not None
            queue = content.review_queue(session, actor_for(session, reviewer))
            assert len(queue) >= 50
            lead = accounts_repository.get_user_by_email(session, generate.BRAND_LEAD)
            assert lead is not None
            comparison = scorecards.compare_brand(
                session, actor_for(session, lead), "acme", scorecards.parse_period(None, None)
            )
            assert comparison is not None
    finally:
        database.dispose()


WRK_OUTPUT = """Running 10s test @ http://127.0.0.1:8000/h
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    10.12ms    2.01ms  40.00ms   90.00%
    Req/Sec     1.60k   100.00     1.80k    70.00%
  Latency Distribution
     50%    9.80ms
     75%   10.50ms
     90%   12.00ms
     99%    1.20s
  32000 requests in 10.00s, 4.00MB read
  Non-2xx or 3xx responses: 3
Requests/sec:   3200.50
Transfer/sec:    409.60KB
"""


def test_wrk_output_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    class Done:
        stdout = WRK_OUTPUT

    monkeypatch.setattr(run.subprocess, "run", lambda *args, **kwargs: Done())
    load = run.wrk("http://127.0.0.1:8000/h", 10, {"Cookie": "bk_session=x"})
    assert (load.rps, load.p50_ms, load.p99_ms, load.errors) == (3200.5, 9.8, 1200.0, 3)


def test_the_report_states_each_ratio_and_whether_its_target_is_met() -> None:
    figures = {
        "R": run.Figure("R", 1000.0, "req/s"),
        "D": run.Figure("D", 2000.0, "req/s"),
        "queue": run.Figure("review queue page", 450.0, "req/s", p99_ms=300.0),
        "post": run.Figure("API read by id", 900.0, "req/s"),
        "file_memory_250000": run.Figure("small file", 20.0, "MiB"),
        "file_memory_1000000": run.Figure("big file", 22.0, "MiB"),
    }
    table = run.report(figures)
    lines = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()}
    # 45 % of R, but p99 above 250 ms: missed, and said so.
    assert "45.0%" in lines["review queue page"]
    assert lines["review queue page"].endswith("| **no** |")
    assert "45.0%" in lines["API read by id"]
    assert lines["API read by id"].endswith("| yes |")
    assert lines["big file"].endswith("| yes |")
