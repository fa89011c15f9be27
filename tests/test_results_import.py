"""Importing platform exports: preview, whole-file validation, one write, re-import no-op."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, func, select

from app.audit.models import AuditEntry
from app.db import utcnow
from app.engagements.models import Engagement
from app.results import repository
from app.results.models import ResultImport, ResultRow
from tests.conftest import csrf_of
from tests.engagement_factories import Parties, accepted_engagement, make_parties
from tests.factories import bearer, create_token, sign_in

API = "/api/v1"
EXPORTS = Path(__file__).parent / "fixtures" / "exports"
TERMINAL = {"done", "refused", "failed", "duplicate"}


@pytest.fixture
def parties(db: Session) -> Parties:
    return make_parties(db, signs_in=True)


@pytest.fixture
def engagement(db: Session, parties: Parties) -> Engagement:
    today = utcnow().date()
    return accepted_engagement(
        db,
        parties,
        start_date=today - timedelta(days=400),
        end_date=today + timedelta(days=100),
        currency="EUR",
    )


@pytest.fixture
def token(db: Session, parties: Parties) -> str:
    return create_token(db, parties.manager, parties.agency)


def upload(
    client: TestClient,
    token: str,
    engagement_id: uuid.UUID,
    name: str,
    content: bytes | None = None,
    **params: Any,
) -> Any:
    data = content if content is not None else (EXPORTS / name).read_bytes()
    return client.post(
        f"{API}/engagements/{engagement_id}/results/import",
        params=params,
        files={"file": (name, data, "application/octet-stream")},
        headers=bearer(token),
    )


def wait(
    client: TestClient, token: str, engagement_id: uuid.UUID, import_id: str
) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(
            f"{API}/engagements/{engagement_id}/results/imports/{import_id}", headers=bearer(token)
        ).json()
        if body["state"] in TERMINAL:
            return body
        time.sleep(0.1)
    raise AssertionError("the import did not finish within a minute")


def count_rows(db: Session, engagement_id: uuid.UUID) -> int:
    db.expire_all()
    return db.exec(
        select(func.count()).select_from(ResultRow).where(ResultRow.engagement_id == engagement_id)
    ).one()


def audit_kinds(db: Session, engagement_id: uuid.UUID) -> list[str]:
    return list(
        db.exec(select(AuditEntry.kind).where(AuditEntry.engagement_id == engagement_id)).all()
    )


def test_dry_run_previews_and_checks_without_writing(
    client: TestClient, db: Session, engagement: Engagement, token: str
) -> None:
    answer = upload(client, token, engagement.id, "generic.csv", dry_run="true")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["format"] == "generic" and body["problem_count"] == 0
    assert {"column": "metric", "target": "metric"} in body["mapping"] or body["mapping"]
    assert body["preview"] and body["preview"][0]["metric"] == "impressions"
    assert count_rows(db, engagement.id) == 0
    assert db.exec(select(func.count()).select_from(ResultImport)).one() == 0


def test_a_file_is_imported_in_the_background_and_again_is_a_no_op(
    client: TestClient, db: Session, engagement: Engagement, token: str
) -> None:
    answer = upload(client, token, engagement.id, "meta_facebook_posts.csv")
    assert answer.status_code == 202, answer.text
    done = wait(client, token, engagement.id, answer.json()["id"])
    assert done["state"] == "done", done
    assert done["format"] == "meta" and done["rows_created"] > 0
    written = count_rows(db, engagement.id)
    assert written == done["rows_created"]
    rows = db.exec(select(ResultRow).where(ResultRow.engagement_id == engagement.id)).all()
    assert all(row.source == "import:meta" and row.import_line for row in rows)
    assert all(str(row.import_id) == done["id"] for row in rows)
    assert "results.imported" in audit_kinds(db, engagement.id)
    again = upload(client, token, engagement.id, "meta_facebook_posts.csv")
    assert again.status_code == 200 and again.json()["state"] == "duplicate"
    assert "already imported" in again.json()["detail"]
    assert count_rows(db, engagement.id) == written


@pytest.mark.parametrize(
    "name",
    ["broken_x_negative_count.csv", "broken_x_bad_date.csv", "broken_generic_rate_over_100.csv"],
)
def test_a_broken_file_is_refused_by_line_and_leaves_the_database_unchanged(
    client: TestClient, db: Session, engagement: Engagement, token: str, name: str
) -> None:
    answer = upload(client, token, engagement.id, name)
    assert answer.status_code == 202, answer.text
    refused = wait(client, token, engagement.id, answer.json()["id"])
    assert refused["state"] == "refused"
    assert refused["problem_count"] >= 1
    assert all(problem["line"] and problem["line"] > 1 for problem in refused["problems"])
    assert count_rows(db, engagement.id) == 0
    assert "results.imported" not in audit_kinds(db, engagement.id)


def test_a_whole_file_is_refused_when_one_row_breaks_an_engagement_rule(
    client: TestClient, db: Session, engagement: Engagement, token: str
) -> None:
    content = (
        b"channel,metric,period_start,period_end,value,currency,post_ref\n"
        b"instagram,impressions,2026-03-01,2026-03-31,48210,,\n"
        b",revenue,2026-03-01,2026-03-31,1520.50,USD,\n"
    )
    answer = upload(client, token, engagement.id, "mixed.csv", content)
    refused = wait(client, token, engagement.id, answer.json()["id"])
    assert refused["state"] == "refused"
    (problem,) = refused["problems"]
    assert problem["line"] == 3 and problem["column"] == "currency"
    assert "USD" in problem["message"] and "EUR" in problem["message"]
    assert count_rows(db, engagement.id) == 0


def test_unknown_and_oversized_files_get_clear_answers(
    client: TestClient,
    db: Session,
    engagement: Engagement,
    token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    unknown = upload(client, token, engagement.id, "broken_unknown.csv")
    assert unknown.status_code == 422
    assert "does not recognise" in unknown.json()["detail"]
    empty = upload(client, token, engagement.id, "empty.csv", b"")
    assert empty.status_code == 422
    client.app.state.settings.results_import_max_bytes = 2048  # type: ignore[attr-defined]
    too_large = upload(client, token, engagement.id, "big.csv", b"metric,value\n" * 400)
    assert too_large.status_code == 413
    assert "MB" in too_large.json()["detail"]
    assert count_rows(db, engagement.id) == 0
    assert db.exec(select(func.count()).select_from(ResultImport)).one() == 0


def test_the_wizard_previews_then_imports_with_progress(
    client: TestClient, db: Session, engagement: Engagement, parties: Parties
) -> None:
    sign_in(client, parties.manager.email)
    page = client.get(f"/engagements/{engagement.id}/results")
    assert page.status_code == 200
    answer = client.post(
        f"/engagements/{engagement.id}/results/import",
        data={"csrf_token": csrf_of(page.text)},
        files={"file": ("x_posts.csv", (EXPORTS / "x_posts.csv").read_bytes(), "text/csv")},
    )
    assert answer.status_code == 303, answer.text
    wizard_url = answer.headers["location"]
    preview = client.get(wizard_url)
    assert preview.status_code == 200
    assert "How the columns map" in preview.text and "First rows" in preview.text
    assert count_rows(db, engagement.id) == 0
    start_url = wizard_url + "/start"
    started = client.post(start_url, data={"csrf_token": csrf_of(preview.text)})
    assert started.status_code == 303
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = client.get(
            wizard_url, headers={"HX-Request": "true", "HX-Target": "import-status"}
        )
        assert status.status_code == 200 and "<html" not in status.text
        if "rows imported" in status.text:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the wizard never showed the import as done")
    assert count_rows(db, engagement.id) > 0
    results = client.get(f"/engagements/{engagement.id}/results")
    assert "x_posts.csv" in results.text


def test_formula_cells_are_kept_as_text_and_neutralised_in_the_csv_export(
    client: TestClient, db: Session, engagement: Engagement, token: str, parties: Parties
) -> None:
    content = (
        b"channel,metric,period_start,period_end,value,post_ref,platform_metric\n"
        b'instagram,impressions,2026-03-01,2026-03-31,100,"=HYPERLINK(""http://evil.example"")",'
        b"@SUM(A1)\n"
    )
    answer = upload(client, token, engagement.id, "formula.csv", content)
    assert wait(client, token, engagement.id, answer.json()["id"])["state"] == "done"
    (row,) = db.exec(select(ResultRow).where(col(ResultRow.engagement_id) == engagement.id)).all()
    assert row.post_ref == '=HYPERLINK("http://evil.example")'
    sign_in(client, parties.reviewer.email)
    export = client.get(f"/engagements/{engagement.id}/results/export.csv")
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    assert "'=HYPERLINK" in export.text and "'@SUM(A1)" in export.text
    assert ",=HYPERLINK" not in export.text


def test_google_analytics_channel_groups_are_channels_not_posts_to_match(
    client: TestClient, db: Session, engagement: Engagement, token: str
) -> None:
    answer = upload(client, token, engagement.id, "ga4_traffic_acquisition.csv")
    assert answer.status_code == 202, answer.text
    assert wait(client, token, engagement.id, answer.json()["id"])["state"] == "done"
    rows = db.exec(
        select(ResultRow).where(
            ResultRow.engagement_id == engagement.id, ResultRow.metric == "sessions"
        )
    ).all()
    by_channel = {row.channel: (row.value, row.post_ref, row.source) for row in rows}
    assert by_channel == {
        "direct": (3801, None, "import:ga4"),
        "organic_social": (2105, None, "import:ga4"),
        "paid_social": (1630, None, "import:ga4"),
        "organic_search": (1876, None, "import:ga4"),
    }
    # Nothing waits to be matched to a post: "Organic Social" is not one.
    refs, total = repository.unmatched_refs(db, engagement)
    assert (list(refs), total) == ([], 0)
