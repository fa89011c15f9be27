"""The engagements JSON API (/api/v1) with bearer tokens: opening (idempotent), reading and
changing with ETags, accepting, the checklist and stages, KPIs, and tenancy.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlmodel import Session, col, func, select

from app.db import Database
from app.engagements import service
from app.engagements.models import Engagement, Kpi, ScopeChange, Stage, StageChange, Status
from app.engagements.schemas import ObjectiveIn
from app.tenancy.models import OrgKind, Role
from tests.engagement_factories import (
    Parties,
    accepted_engagement,
    add_kpi,
    grant,
    make_parties,
    open_engagement,
    person,
    set_up_fully,
)
from tests.factories import add_member, bearer, create_org, create_token

API = "/api/v1"
SETUP_ITEMS = [
    "objectives_kpis", "business_measure", "tracking", "approval_policy", "usage_policy",
    "monitoring", "escalation_route", "handoff_route", "content_plan", "baseline_results",
]  # fmt: skip


@dataclass
class Tokens:
    lead: str
    reviewer: str
    manager: str
    creator: str


@pytest.fixture
def parties(db: Session) -> Parties:
    return make_parties(db)


@pytest.fixture
def tokens(db: Session, parties: Parties) -> Tokens:
    return Tokens(
        lead=create_token(db, parties.lead, parties.brand),
        reviewer=create_token(db, parties.reviewer, parties.brand),
        manager=create_token(db, parties.manager, parties.agency),
        creator=create_token(db, parties.creator, parties.agency),
    )


def problem(response: Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def error_fields(response: Response) -> list[str]:
    return [error["field"] for error in problem(response, 422).get("errors", [])]


def count(db: Session, model: Any, **where: Any) -> int:
    db.expire_all()
    query = select(func.count()).select_from(model)
    for name, value in where.items():
        query = query.where(getattr(model, name) == value)
    return db.exec(query).one()


def fresh(db: Session, engagement_id: uuid.UUID) -> Engagement:
    db.expire_all()
    engagement = db.get(Engagement, engagement_id)
    assert engagement is not None
    return engagement


def new_engagement(parties: Parties, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Social media 2027",
        "agency": parties.agency.slug,
        "start_date": "2027-01-01",
        "end_date": "2027-12-31",
        "budget_minor": 4_800_000,
        "currency": "eur",
        "channels": ["instagram", "forums"],
    }
    body.update(overrides)
    return body


# --- opening and listing -------------------------------------------------------------


class TestOpening:
    def test_a_lead_opens_one_and_a_retry_with_the_same_key_replays_the_answer(
        self, client: TestClient, db: Session, parties: Parties, tokens: Tokens
    ) -> None:
        headers = {**bearer(tokens.lead), "Idempotency-Key": "open-2027"}
        body = new_engagement(parties)
        first = client.post(f"{API}/engagements", json=body, headers=headers)
        assert first.status_code == 201, first.text
        created = first.json()
        assert (created["brand"], created["agency"]) == (parties.brand.slug, parties.agency.slug)
        assert (created["status"], created["stage"]) == ("proposed", "setup")
        assert (created["budget_minor"], created["currency"]) == (4_800_000, "EUR")
        assert created["version"] == 1 and first.headers["ETag"] == '"1"'

        retry = client.post(f"{API}/engagements", json=body, headers=headers)
        assert retry.status_code == 201
        assert retry.json() == created
        assert retry.headers.get("Idempotent-Replayed") == "true"
        assert count(db, Engagement) == 1

        other_body = client.post(
            f"{API}/engagements", json=new_engagement(parties, name="Another"), headers=headers
        )
        assert error_fields(other_body) == ["Idempotency-Key"]
        assert count(db, Engagement) == 1

        listing = client.get(f"{API}/engagements", headers=bearer(tokens.lead)).json()
        assert listing["total"] == 1 and [e["id"] for e in listing["items"]] == [created["id"]]
        agency_listing = client.get(f"{API}/engagements", headers=bearer(tokens.manager)).json()
        assert [e["status"] for e in agency_listing["items"]] == ["proposed"]

    def test_without_a_key_each_post_opens_a_new_one(
        self, client: TestClient, db: Session, parties: Parties, tokens: Tokens
    ) -> None:
        for _ in range(2):
            response = client.post(
                f"{API}/engagements", json=new_engagement(parties), headers=bearer(tokens.lead)
            )
            assert response.status_code == 201
        assert count(db, Engagement) == 2

    def test_a_brand_reviewer_cannot_open_one(
        self, client: TestClient, db: Session, parties: Parties, tokens: Tokens
    ) -> None:
        response = client.post(
            f"{API}/engagements", json=new_engagement(parties), headers=bearer(tokens.reviewer)
        )
        body = problem(response, 403)
        assert body["detail"] == "Only the brand's owners and account leads open engagements."
        assert count(db, Engagement) == 0

    def test_an_agency_cannot_open_one(
        self, client: TestClient, db: Session, parties: Parties, tokens: Tokens
    ) -> None:
        response = client.post(
            f"{API}/engagements",
            json=new_engagement(parties),
            headers={**bearer(tokens.manager), "X-Brand": parties.agency.slug},
        )
        assert problem(response, 403)["detail"] == (
            "Only a brand opens engagements; agencies accept them."
        )
        assert count(db, Engagement) == 0

    @pytest.mark.parametrize(
        ("changes", "fields"),
        [
            ({"end_date": "2026-12-31"}, ["end_date"]),
            ({"currency": "ZZZ"}, ["currency"]),
            ({"currency": "EURO"}, ["currency"]),
            ({"agency": "no-such-agency"}, ["agency"]),
            ({"agency": "<brand>"}, ["agency"]),
            ({"budget_minor": -1}, ["budget_minor"]),
            ({"channels": ["instagram", "myspace"]}, ["channels.1"]),
            ({"start_date": "soon"}, ["start_date"]),
            ({"name": ""}, ["name"]),
        ],
        ids=[
            "end-before-start", "currency-ZZZ", "currency-EURO", "unknown-agency",
            "agency-is-a-brand", "negative-budget", "unknown-channel", "bad-date", "no-name",
        ],
    )  # fmt: skip
    def test_bad_input_is_a_422_naming_the_field_and_writes_nothing(
        self,
        client: TestClient,
        db: Session,
        parties: Parties,
        tokens: Tokens,
        changes: dict[str, Any],
        fields: list[str],
    ) -> None:
        if changes.get("agency") == "<brand>":
            changes = {"agency": create_org(db, kind=OrgKind.brand).slug}
        response = client.post(
            f"{API}/engagements",
            json=new_engagement(parties, **changes),
            headers={**bearer(tokens.lead), "Idempotency-Key": str(uuid.uuid4())},
        )
        assert error_fields(response) == fields
        assert count(db, Engagement) == 0


# --- reading, changing, accepting ----------------------------------------------------


class TestReadingAndChanging:
    def test_patch_needs_if_match_refuses_a_stale_one_and_returns_the_new_etag(
        self, client: TestClient, db: Session, parties: Parties, tokens: Tokens
    ) -> None:
        engagement = accepted_engagement(db, parties)
        path = f"{API}/engagements/{engagement.id}"
        read = client.get(path, headers=bearer(tokens.lead))
        assert read.status_code == 200
        etag = read.headers["ETag"]
        assert etag == f'"{read.json()["version"]}"'

        change = {"budget_minor": 5_200_000, "utm_campaign": "spring-2027"}
        problem(client.patch(path, json=change, headers=bearer(tokens.lead)), 428)
        for stale in ('"1"', '"99"', "not-a-version"):
            response = client.patch(
                path, json=change, headers={**bearer(tokens.lead), "If-Match": stale}
            )
            problem(response, 412)
        assert fresh(db, engagement.id).budget_minor == 4_800_000

        done = client.patch(path, json=change, headers={**bearer(tokens.lead), "If-Match": etag})
        assert done.status_code == 200, done.text
        assert done.json()["budget_minor"] == 5_200_000
        assert done.json()["utm_campaign"] == "spring-2027"
        new_etag = done.headers["ETag"]
        assert new_etag != etag and new_etag == f'"{done.json()["version"]}"'
        assert client.get(path, headers=bearer(tokens.manager)).headers["ETag"] == new_etag

        # The old ETag is stale now: a second writer holding it is refused.
        again = client.patch(
            path, json={"budget_minor": 1}, headers={**bearer(tokens.lead), "If-Match": etag}
        )
        problem(again, 412)
        assert fresh(db, engagement.id).budget_minor == 5_200_000
        [scope_change] = db.exec(select(ScopeChange)).all()
        assert scope_change.before == {"budget_minor": 4_800_000, "utm_campaign": None}

    @pytest.mark.parametrize(
        ("change", "fields"),
        [
            ({"currency": "ZZZ"}, ["currency"]),
            ({"end_date": "2000-01-01"}, ["end_date"]),
            ({"budget_minor": -5}, ["budget_minor"]),
            ({"name": None}, ["name"]),
            ({"brand_content_owner_id": "<agency member>"}, ["brand_content_owner_id"]),
        ],
        ids=["currency", "end-before-start", "negative-budget", "null-name", "wrong-side-owner"],
    )
    def test_bad_changes_name_the_field_and_change_nothing(
        self,
        client: TestClient,
        db: Session,
        parties: Parties,
        tokens: Tokens,
        change: dict[str, Any],
        fields: list[str],
    ) -> None:
        engagement = accepted_engagement(db, parties)
        if change.get("brand_content_owner_id"):
            change = {"brand_content_owner_id": str(parties.manager.id)}
        version = fresh(db, engagement.id).version
        response = client.patch(
            f"{API}/engagements/{engagement.id}",
            json=change,
            headers={**bearer(tokens.lead), "If-Match": f'"{version}"'},
        )
        assert error_fields(response) == fields
        assert fresh(db, engagement.id).version == version

    @pytest.mark.parametrize("who", ["manager", "reviewer"])
    def test_only_brand_owners_and_leads_change_it(
        self, client: TestClient, db: Session, parties: Parties, tokens: Tokens, who: str
    ) -> None:
        engagement = accepted_engagement(db, parties)
        version = fresh(db, engagement.id).version
        response = client.patch(
            f"{API}/engagements/{engagement.id}",
            json={"budget_minor": 1},
            headers={**bearer(getattr(tokens, who)), "If-Match": f'"{version}"'},
        )
        body = problem(response, 403)
        assert body["detail"] == "Only the brand's owners and account leads change an engagement."
        assert fresh(db, engagement.id).budget_minor == 4_800_000

    def test_the_agency_accepts_once_and_the_brand_cannot_accept_for_it(
        self, client: TestClient, db: Session, parties: Parties, tokens: Tokens
    ) -> None:
        engagement = open_engagement(db, parties)
        path = f"{API}/engagements/{engagement.id}/accept"
        problem(client.post(path, headers=bearer(tokens.lead)), 403)
        problem(client.post(path, headers=bearer(tokens.creator)), 403)
        accepted = client.post(path, headers=bearer(tokens.manager))
        assert accepted.status_code == 200 and accepted.json()["status"] == "active"
        assert accepted.json()["agency_manager_id"] == str(parties.manager.id)
        problem(client.post(path, headers=bearer(tokens.manager)), 409)

    def test_a_read_only_token_reads_but_cannot_accept(
        self, client: TestClient, db: Session, parties: Parties
    ) -> None:
        engagement = open_engagement(db, parties)
        read_only = create_token(db, parties.manager, parties.agency, scope="read")
        assert (
            client.get(f"{API}/engagements/{engagement.id}", headers=bearer(read_only)).status_code
            == 200
        )
        problem(
            client.post(f"{API}/engagements/{engagement.id}/accept", headers=bearer(read_only)),
            403,
        )
        assert fresh(db, engagement.id).status == Status.proposed


# --- checklist and stages ------------------------------------------------------------


class TestChecklistAndStages:
    def test_the_checklist_lists_each_item_with_its_status(
        self, client: TestClient, db: Session, parties: Parties, tokens: Tokens
    ) -> None:
        engagement = accepted_engagement(db, parties)
        set_up_fully(db, parties, engagement.id)
        response = client.get(
            f"{API}/engagements/{engagement.id}/checklist", headers=bearer(tokens.manager)
        )
        assert response.status_code == 200
        body = response.json()
        assert (body["stage"], body["transition"], body["next_stage"], body["holds"]) == (
            "setup",
            "setup→development",
            "development",
            False,
        )
        items = {item["key"]: item for item in body["items"]}
        assert list(items) == SETUP_ITEMS
        assert {key: item["status"] for key, item in items.items()} == {
            key: "holds" for key in SETUP_ITEMS
        } | {"baseline_results": "missing"}
        assert items["usage_policy"]["kind"] == "attested"
        assert items["usage_policy"]["attested_by"] == parties.lead.name
        assert items["monitoring"]["attested_by"] == parties.manager.name
        assert items["tracking"]["kind"] == "computed" and items["tracking"]["fix"] == "tracking"

        maturity = client.get(
            f"{API}/engagements/{engagement.id}/checklist",
            params={"stage": "development"},
            headers=bearer(tokens.lead),
        ).json()
        assert maturity["transition"] == "development→maturity"
        assert maturity["next_stage"] == "maturity"

    def test_advancing_answers_409_with_the_unmet_items_unless_a_reason_overrides(
        self, client: TestClient, db: Session, parties: Parties, tokens: Tokens
    ) -> None:
        engagement = accepted_engagement(db, parties)
        path = f"{API}/engagements/{engagement.id}/stage"
        refused = client.post(path, json={"to": "development"}, headers=bearer(tokens.lead))
        body = problem(refused, 409)
        unmet = {item["key"]: item["status"] for item in body["unmet"]}
        assert "approval_policy" not in unmet  # the default policy holds
        assert unmet["tracking"] == "missing"
        assert unmet["baseline_results"] == "missing"
        assert len(unmet) == 9
        assert all(item["detail"] for item in body["unmet"])
        assert fresh(db, engagement.id).stage == Stage.setup
        assert count(db, StageChange, engagement_id=engagement.id) == 1

        reason = "Launch date is fixed; the rest is set up in development."
        moved = client.post(
            path, json={"to": "development", "reason": reason}, headers=bearer(tokens.lead)
        )
        assert moved.status_code == 200, moved.text
        change = moved.json()
        assert (change["from_stage"], change["to_stage"]) == ("setup", "development")
        assert change["overridden"] is True and change["reason"] == reason
        assert change["actor"] == parties.lead.name
        assert fresh(db, engagement.id).stage == Stage.development

        timeline = client.get(
            f"{API}/engagements/{engagement.id}/stages", headers=bearer(tokens.manager)
        ).json()
        assert [(c["from_stage"], c["to_stage"]) for c in timeline] == [
            ("setup", "development"),
            (None, "setup"),
        ]

    def test_a_fully_set_up_engagement_still_lists_the_results_it_cannot_see(
        self, client: TestClient, db: Session, parties: Parties, tokens: Tokens
    ) -> None:
        engagement = accepted_engagement(db, parties)
        set_up_fully(db, parties, engagement.id)
        refused = client.post(
            f"{API}/engagements/{engagement.id}/stage",
            json={"to": "development"},
            headers=bearer(tokens.lead),
        )
        assert [item["key"] for item in problem(refused, 409)["unmet"]] == ["baseline_results"]

    @pytest.mark.parametrize(
        "body", [{"to": "maturity", "reason": "Ready."}, {"to": "production"}, {}]
    )
    def test_a_bad_target_stage_is_a_422_naming_to(
        self,
        client: TestClient,
        db: Session,
        parties: Parties,
        tokens: Tokens,
        body: dict[str, Any],
    ) -> None:
        engagement = accepted_engagement(db, parties)
        response = client.post(
            f"{API}/engagements/{engagement.id}/stage", json=body, headers=bearer(tokens.lead)
        )
        assert error_fields(response) == ["to"]
        assert count(db, StageChange, engagement_id=engagement.id) == 1

    def test_moving_back_needs_a_reason_and_is_no_override(
        self, client: TestClient, db: Session, parties: Parties, tokens: Tokens
    ) -> None:
        engagement = accepted_engagement(db, parties)
        service.change_stage(
            db, grant(db, parties.lead, engagement.id), to=Stage.development, reason="Go."
        )
        db.commit()
        path = f"{API}/engagements/{engagement.id}/stage"
        assert error_fields(
            client.post(path, json={"to": "setup"}, headers=bearer(tokens.lead))
        ) == ["reason"]
        back = client.post(
            path, json={"to": "setup", "reason": "Routes lapsed."}, headers=bearer(tokens.lead)
        )
        assert back.status_code == 200
        assert (back.json()["to_stage"], back.json()["overridden"]) == ("setup", False)

    @pytest.mark.parametrize("who", ["manager", "reviewer"])
    def test_only_brand_owners_and_leads_change_the_stage(
        self, client: TestClient, db: Session, parties: Parties, tokens: Tokens, who: str
    ) -> None:
        engagement = accepted_engagement(db, parties)
        response = client.post(
            f"{API}/engagements/{engagement.id}/stage",
            json={"to": "development", "reason": "Go."},
            headers=bearer(getattr(tokens, who)),
        )
        assert problem(response, 403)["detail"] == (
            "Only the brand's owners and account leads change the stage."
        )
        assert fresh(db, engagement.id).stage == Stage.setup

    def test_a_proposed_engagement_does_not_change_stage(
        self, client: TestClient, db: Session, parties: Parties, tokens: Tokens
    ) -> None:
        engagement = open_engagement(db, parties)
        response = client.post(
            f"{API}/engagements/{engagement.id}/stage",
            json={"to": "development", "reason": "Go."},
            headers=bearer(tokens.lead),
        )
        problem(response, 409)
        assert count(db, StageChange, engagement_id=engagement.id) == 1


# --- KPIs ---------------------------------------------------------------------------


class TestKpis:
    def test_add_read_change_and_remove_a_kpi_with_etags(
        self, client: TestClient, db: Session, parties: Parties, tokens: Tokens
    ) -> None:
        engagement = accepted_engagement(db, parties)
        kpis_path = f"{API}/engagements/{engagement.id}/kpis"
        body = {"metric": "revenue", "target": "25000", "baseline": "9000",
                "owner_id": str(parties.lead.id)}  # fmt: skip
        headers = {**bearer(tokens.lead), "Idempotency-Key": "kpi-revenue"}
        created = client.post(kpis_path, json=body, headers=headers)
        assert created.status_code == 201, created.text
        kpi = created.json()
        assert (kpi["metric"], kpi["business_measure"], kpi["unit"]) == ("revenue", True, "money")
        assert Decimal(kpi["target"]) == 25000 and created.headers["ETag"] == '"1"'
        replay = client.post(kpis_path, json=body, headers=headers)
        assert replay.status_code == 201 and replay.json() == kpi
        assert count(db, Kpi) == 1

        listed = client.get(kpis_path, headers=bearer(tokens.manager)).json()
        assert [k["id"] for k in listed] == [kpi["id"]]
        kpi_path = f"{API}/kpis/{kpi['id']}"
        read = client.get(kpi_path, headers=bearer(tokens.manager))
        assert read.status_code == 200 and read.headers["ETag"] == '"1"'

        change = {"target": "30000", "reviewed": True}
        problem(client.patch(kpi_path, json=change, headers=bearer(tokens.lead)), 428)
        problem(
            client.patch(kpi_path, json=change, headers={**bearer(tokens.lead), "If-Match": '"7"'}),
            412,
        )
        changed = client.patch(
            kpi_path, json=change, headers={**bearer(tokens.lead), "If-Match": '"1"'}
        )
        assert changed.status_code == 200, changed.text
        assert Decimal(changed.json()["target"]) == 30000
        assert changed.json()["reviewed_at"] is not None
        assert changed.headers["ETag"] == '"2"'

        problem(client.delete(kpi_path, headers=bearer(tokens.lead)), 428)
        problem(client.delete(kpi_path, headers={**bearer(tokens.lead), "If-Match": '"1"'}), 412)
        assert count(db, Kpi) == 1
        removed = client.delete(kpi_path, headers={**bearer(tokens.lead), "If-Match": '"2"'})
        assert removed.status_code == 204
        problem(client.get(kpi_path, headers=bearer(tokens.lead)), 404)
        assert count(db, Kpi) == 0

    def test_a_rate_is_sent_as_a_fraction(
        self, client: TestClient, db: Session, parties: Parties, tokens: Tokens
    ) -> None:
        engagement = accepted_engagement(db, parties)
        response = client.post(
            f"{API}/engagements/{engagement.id}/kpis",
            json={"metric": "conversion_rate", "target": "0.045", "baseline": "0.03"},
            headers=bearer(tokens.lead),
        )
        assert response.status_code == 201
        assert (response.json()["unit"], Decimal(response.json()["target"])) == (
            "percent",
            Decimal("0.045"),
        )

    @pytest.mark.parametrize(
        ("body", "fields"),
        [
            ({"metric": "followers", "target": "10"}, ["metric"]),
            ({"metric": "revenue", "target": "-1"}, ["target"]),
            ({"metric": "revenue", "baseline": "-1"}, ["baseline"]),
            ({"metric": "conversion_rate", "target": "1.5"}, ["target"]),
            ({"metric": "nps", "target": "101"}, ["target"]),
            ({"metric": "revenue", "target": "lots"}, ["target"]),
            ({"metric": "revenue", "owner_id": "<stranger>"}, ["owner_id"]),
            ({"metric": "revenue", "objective_id": "<other engagement's>"}, ["objective_id"]),
            ({"metric": "revenue", "period": "daily"}, ["period"]),
        ],
        ids=[
            "unknown-metric", "negative-target", "negative-baseline", "rate-over-100",
            "nps-over-100", "target-not-a-number", "owner-not-a-member",
            "objective-of-another-engagement", "unknown-period",
        ],
    )  # fmt: skip
    def test_bad_input_is_a_422_naming_the_field_and_writes_nothing(
        self,
        client: TestClient,
        db: Session,
        parties: Parties,
        tokens: Tokens,
        body: dict[str, Any],
        fields: list[str],
    ) -> None:
        engagement = accepted_engagement(db, parties)
        if body.get("owner_id"):
            stranger = person(db, create_org(db, kind=OrgKind.brand), Role.lead, label="Other")
            body = {**body, "owner_id": str(stranger.id)}
        if body.get("objective_id"):
            other = accepted_engagement(db, parties)
            objective = service.add_objective(
                db, grant(db, parties.lead, other.id), ObjectiveIn(text="Theirs")
            )
            db.commit()
            body = {**body, "objective_id": str(objective.id)}
        response = client.post(
            f"{API}/engagements/{engagement.id}/kpis", json=body, headers=bearer(tokens.lead)
        )
        assert error_fields(response) == fields
        assert count(db, Kpi) == 0

    def test_a_bad_change_names_the_field_and_changes_nothing(
        self, client: TestClient, db: Session, parties: Parties, tokens: Tokens
    ) -> None:
        engagement = accepted_engagement(db, parties)
        kpi = add_kpi(
            db,
            parties,
            engagement.id,
            metric="conversion_rate",
            target=Decimal("0.04"),
            baseline=Decimal("0.03"),
        )
        response = client.patch(
            f"{API}/kpis/{kpi.id}",
            json={"target": "4"},  # a percentage where a fraction was due
            headers={**bearer(tokens.lead), "If-Match": '"1"'},
        )
        assert error_fields(response) == ["target"]
        db.expire_all()
        assert db.get(Kpi, kpi.id).version == 1  # type: ignore[union-attr]

    def test_the_agency_reads_kpis_but_does_not_set_them(
        self, client: TestClient, db: Session, parties: Parties, tokens: Tokens
    ) -> None:
        engagement = accepted_engagement(db, parties)
        kpi = add_kpi(db, parties, engagement.id)
        path = f"{API}/engagements/{engagement.id}/kpis"
        assert client.get(path, headers=bearer(tokens.creator)).status_code == 200
        problem(client.post(path, json={"metric": "reach"}, headers=bearer(tokens.manager)), 403)
        problem(
            client.patch(
                f"{API}/kpis/{kpi.id}",
                json={"target": "1"},
                headers={**bearer(tokens.manager), "If-Match": '"1"'},
            ),
            403,
        )
        problem(
            client.delete(
                f"{API}/kpis/{kpi.id}", headers={**bearer(tokens.manager), "If-Match": '"1"'}
            ),
            403,
        )
        assert count(db, Kpi) == 1


# --- tenancy ----------------------------------------------------------------------------


class TestTenancy:
    def test_another_tenants_engagement_and_kpi_are_404_even_with_a_bad_body(
        self, client: TestClient, db: Session, parties: Parties
    ) -> None:
        engagement = accepted_engagement(db, parties, name="Secret launch")
        kpi = add_kpi(db, parties, engagement.id)
        eid = engagement.id
        before = fresh(db, eid).version
        junk = {"to": 5, "metric": ["x"], "target": "lots", "currency": 7, "budget_minor": "x"}
        calls: list[tuple[str, str, dict[str, Any] | None]] = [
            ("GET", f"/engagements/{eid}", None),
            ("PATCH", f"/engagements/{eid}", junk),
            ("POST", f"/engagements/{eid}/accept", junk),
            ("POST", f"/engagements/{eid}/decline", junk),
            ("GET", f"/engagements/{eid}/checklist", None),
            ("POST", f"/engagements/{eid}/stage", junk),
            ("GET", f"/engagements/{eid}/stages", None),
            ("GET", f"/engagements/{eid}/kpis", None),
            ("POST", f"/engagements/{eid}/kpis", junk),
            ("GET", f"/engagements/{eid}/archive", None),
            ("GET", f"/kpis/{kpi.id}", None),
            ("PATCH", f"/kpis/{kpi.id}", junk),
            ("DELETE", f"/kpis/{kpi.id}", None),
        ]
        other_brand = create_org(db, kind=OrgKind.brand)
        other_agency = create_org(db, kind=OrgKind.agency)
        # Someone in the brand too, whose token acts for another organization only.
        double = person(db, other_brand, Role.owner, label="Double")
        add_member(db, parties.brand, double, Role.lead)
        stranger_tokens = [
            create_token(db, person(db, other_brand, Role.lead, label="Lead"), other_brand),
            create_token(db, person(db, other_agency, Role.owner, label="Owner"), other_agency),
            create_token(db, double, other_brand),
        ]
        for token in stranger_tokens:
            for method, path, body in calls:
                response = client.request(method, f"{API}{path}", json=body, headers=bearer(token))
                assert response.status_code == 404, (method, path, response.text)
                assert "Secret launch" not in response.text
            listing = client.get(f"{API}/engagements", headers=bearer(token)).json()
            assert listing["total"] == 0 and listing["items"] == []
        after = fresh(db, eid)
        assert (after.version, after.status, after.stage) == (before, Status.active, Stage.setup)
        assert count(db, Kpi) == 1

    def test_each_agency_sees_only_its_own_engagements_with_a_brand(
        self, client: TestClient, db: Session
    ) -> None:
        first = make_parties(db)
        second = make_parties(db, brand=first.brand)
        mine = accepted_engagement(db, first)
        theirs = accepted_engagement(db, second)
        for parties, own, other in ((first, mine, theirs), (second, theirs, mine)):
            token = create_token(db, parties.manager, parties.agency)
            listing = client.get(f"{API}/engagements", headers=bearer(token)).json()
            assert [e["id"] for e in listing["items"]] == [str(own.id)]
            problem(client.get(f"{API}/engagements/{other.id}", headers=bearer(token)), 404)
        lead = create_token(db, first.lead, first.brand)
        assert client.get(f"{API}/engagements", headers=bearer(lead)).json()["total"] == 2


# --- concurrency (PostgreSQL) -------------------------------------------------------------


Racer = tuple[TestClient, dict[str, str]]


def race(racers: list[Racer], send: Callable[[Racer], Response]) -> list[Response]:
    """Send one request per racer, released together by a barrier; the answers, in order."""
    barrier = threading.Barrier(len(racers))
    answers: list[Response | None] = [None] * len(racers)
    failures: list[BaseException] = []

    def run(index: int, racer: Racer) -> None:
        try:
            barrier.wait(timeout=10)
            answers[index] = send(racer)
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=run, args=item) for item in enumerate(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures
    assert all(answer is not None for answer in answers)
    return [answer for answer in answers if answer is not None]


@pytest.fixture
def postgresql_only(database: Database) -> None:
    if database.engine.dialect.name != "postgresql":
        pytest.skip(
            "SQLite serialises writers (BEGIN IMMEDIATE), so requests cannot race there; "
            "set TEST_DATABASE_URL to a PostgreSQL server to run this"
        )


@pytest.mark.usefixtures("postgresql_only")
class TestConcurrency:
    """Each racer has its own token of the same lead (two integrations, say): a token's
    first use in a minute records ``last_used_at``, which would queue the two requests
    on that row and test nothing."""

    def _racers(self, make_client: Any, db: Session, parties: Parties) -> list[Racer]:
        return [
            (make_client(), bearer(create_token(db, parties.lead, parties.brand))) for _ in range(2)
        ]

    def test_two_simultaneous_stage_changes_record_one(
        self, make_client: Any, db: Session, parties: Parties
    ) -> None:
        engagement = accepted_engagement(db, parties)

        def advance(racer: Racer) -> Response:
            test_client, headers = racer
            return test_client.post(
                f"{API}/engagements/{engagement.id}/stage",
                json={"to": "development", "reason": "Both clicked at once."},
                headers=headers,
            )

        answers = race(self._racers(make_client, db, parties), advance)
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses[0] == 200 and statuses[1] in (409, 412), [a.text for a in answers]
        db.expire_all()
        moves = db.exec(
            select(StageChange).where(
                StageChange.engagement_id == engagement.id, col(StageChange.from_stage).is_not(None)
            )
        ).all()
        assert [(m.from_stage, m.to_stage) for m in moves] == [("setup", "development")]
        assert fresh(db, engagement.id).stage == Stage.development

    def test_two_patches_with_the_same_if_match_apply_one(
        self, make_client: Any, db: Session, parties: Parties
    ) -> None:
        engagement = accepted_engagement(db, parties)
        version = fresh(db, engagement.id).version
        racers = self._racers(make_client, db, parties)
        budgets = {id(racers[0][0]): 1_000_000, id(racers[1][0]): 2_000_000}

        def patch(racer: Racer) -> Response:
            test_client, headers = racer
            return test_client.patch(
                f"{API}/engagements/{engagement.id}",
                json={"budget_minor": budgets[id(test_client)]},
                headers={**headers, "If-Match": f'"{version}"'},
            )

        answers = race(racers, patch)
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [200, 412], [a.text for a in answers]
        winner = next(answer for answer in answers if answer.status_code == 200)
        after = fresh(db, engagement.id)
        assert after.version == version + 1
        assert after.budget_minor == winner.json()["budget_minor"]
        assert count(db, ScopeChange, engagement_id=engagement.id) == 1

    def test_two_kpi_patches_with_the_same_if_match_apply_one(
        self, make_client: Any, db: Session, parties: Parties
    ) -> None:
        engagement = accepted_engagement(db, parties)
        kpi = add_kpi(db, parties, engagement.id)

        def patch(racer: Racer) -> Response:
            test_client, headers = racer
            return test_client.patch(
                f"{API}/kpis/{kpi.id}",
                json={"target": "30000"},
                headers={**headers, "If-Match": '"1"'},
            )

        answers = race(self._racers(make_client, db, parties), patch)
        assert sorted(answer.status_code for answer in answers) == [200, 412]
        db.expire_all()
        assert db.get(Kpi, kpi.id).version == 2  # type: ignore[union-attr]
