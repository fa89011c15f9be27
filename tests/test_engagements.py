"""Engagements through the pages: opening, accepting, setting up, stages, endings, the archive,
and who may see and do what.

Every in-place form is posted as HTMX does it (``HX-Request`` + ``HX-Target:
engagement-main``) and must answer with the ``engagement_main`` block only.
"""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from httpx import Response
from sqlmodel import Session, col, func, select

from app.accounts.models import User
from app.config import get_settings
from app.db import utcnow
from app.engagements import service
from app.engagements.models import (
    Attestation,
    Campaign,
    Engagement,
    Fee,
    HandoverRoute,
    Kpi,
    Objective,
    ScopeLine,
    Stage,
    StageChange,
    Status,
)
from app.engagements.schemas import FeeIn, ScopeLineIn
from app.tenancy.models import OrgKind, Role
from tests.engagement_factories import (
    Parties,
    accepted_engagement,
    grant,
    make_parties,
    open_engagement,
    person,
    set_up_fully,
    update,
)
from tests.factories import create_org, sign_in

HX = {"HX-Request": "true", "HX-Target": "engagement-main"}
ONLY_BRAND_STAGE = "Only the brand&#39;s owners and account leads change the stage."
ONLY_BRAND_EDIT = "Only the brand&#39;s owners and account leads change an engagement."
ENDED_READ_ONLY = "This engagement has ended: the agency can still read it, not change it."


@dataclass
class Browser:
    """One signed-in person's browser."""

    user: User
    client: TestClient
    csrf: str

    def get(self, url: str, **kwargs: Any) -> Response:
        return self.client.get(url, **kwargs)

    def post(self, url: str, data: dict[str, Any] | None = None, *, htmx: bool = True) -> Response:
        return self.client.post(
            url, data={"csrf_token": self.csrf, **(data or {})}, headers=HX if htmx else {}
        )


@dataclass
class World:
    """The parties of an engagement, each signed in in their own browser when first used."""

    parties: Parties
    open_as: Callable[[User], Browser]

    @cached_property
    def lead(self) -> Browser:
        return self.open_as(self.parties.lead)

    @cached_property
    def reviewer(self) -> Browser:
        return self.open_as(self.parties.reviewer)

    @cached_property
    def manager(self) -> Browser:
        return self.open_as(self.parties.manager)

    @cached_property
    def creator(self) -> Browser:
        return self.open_as(self.parties.creator)


@pytest.fixture
def browser(make_client: Callable[[], TestClient]) -> Callable[[User], Browser]:
    def open_as(user: User) -> Browser:
        client = make_client()
        return Browser(user, client, sign_in(client, user.email))

    return open_as


@pytest.fixture
def world(db: Session, browser: Callable[[User], Browser]) -> World:
    return World(make_parties(db, signs_in=True), browser)


def in_place(response: Response, status: int = 200) -> str:
    """An in-place answer: the engagement_main block, not a whole page."""
    assert response.status_code == status, response.text[:3000]
    assert "<html" not in response.text
    assert 'id="checklist"' in response.text and "breadcrumb" not in response.text
    return response.text


_FIELD_IN_ERROR = re.compile(r'class="field has-error"[^>]*>.*?name="([^"]+)"', re.S)


def fields_in_error(html: str) -> set[str]:
    """The names of the form fields a page shows an error beside."""
    return set(_FIELD_IN_ERROR.findall(html))


def fresh(db: Session, engagement_id: uuid.UUID) -> Engagement:
    db.expire_all()
    engagement = db.get(Engagement, engagement_id)
    assert engagement is not None
    return engagement


def count(db: Session, model: Any, engagement_id: uuid.UUID) -> int:
    db.expire_all()
    return db.exec(
        select(func.count()).select_from(model).where(model.engagement_id == engagement_id)
    ).one()


def stage_changes(db: Session, engagement_id: uuid.UUID) -> list[StageChange]:
    db.expire_all()
    return list(
        db.exec(
            select(StageChange)
            .where(StageChange.engagement_id == engagement_id)
            .order_by(col(StageChange.at))
        ).all()
    )


def url(engagement_id: uuid.UUID, rest: str = "") -> str:
    return f"/engagements/{engagement_id}{rest}"


OPEN_FORM = {
    "name": "Social media 2027",
    "start_date": "2027-01-01",
    "end_date": "2027-12-31",
    "budget": "48000.00",
    "currency": "eur",
    "channels": ["instagram", "forums"],
}


# --- opening and accepting ---------------------------------------------------------


class TestOpeningAndAccepting:
    def test_a_lead_opens_an_engagement_and_lands_on_its_page(
        self, db: Session, world: World
    ) -> None:
        response = world.lead.post(
            "/engagements",
            {**OPEN_FORM, "brand": world.parties.brand.slug, "agency": world.parties.agency.slug},
            htmx=False,
        )
        assert response.status_code == 303, response.text[:2000]
        engagement = db.exec(select(Engagement)).one()
        assert response.headers["location"] == url(engagement.id)
        assert (engagement.brand_id, engagement.agency_id) == (
            world.parties.brand.id,
            world.parties.agency.id,
        )
        assert (engagement.budget_minor, engagement.currency) == (4_800_000, "EUR")
        assert engagement.channels == ["instagram", "forums"]
        assert (engagement.status, engagement.stage) == (Status.proposed, Stage.setup)
        assert engagement.brand_lead_id == world.parties.lead.id
        [opened] = stage_changes(db, engagement.id)
        assert (opened.from_stage, opened.to_stage, opened.overridden) == (None, "setup", False)

        page = world.lead.get(url(engagement.id))
        assert page.status_code == 200
        assert "Social media 2027" in page.text and "Waiting for" in page.text
        assert "€48,000.00" in page.text

    def test_the_agency_sees_it_proposed_and_accepts_it(self, db: Session, world: World) -> None:
        engagement = open_engagement(db, world.parties, name="Trail season")
        listing = world.manager.get("/engagements")
        assert listing.status_code == 200
        assert "Trail season" in listing.text and "Proposed" in listing.text
        page = world.manager.get(url(engagement.id))
        assert "Accept the engagement" in page.text

        text = in_place(world.manager.post(url(engagement.id, "/accept")))
        assert "status-active" in text and "Accepted by the agency" in text
        accepted = fresh(db, engagement.id)
        assert accepted.status == Status.active and accepted.accepted_at is not None
        assert accepted.agency_manager_id == world.parties.manager.id

        again = world.manager.post(url(engagement.id, "/accept"))
        assert again.status_code == 409  # no longer waiting for an answer

    @pytest.mark.parametrize("who", ["lead", "creator"])
    def test_only_the_agencys_owners_and_managers_accept(
        self, db: Session, world: World, who: str
    ) -> None:
        engagement = open_engagement(db, world.parties)
        response = getattr(world, who).post(url(engagement.id, "/accept"))
        assert response.status_code == 403
        assert "Only the agency&#39;s owners and managers answer a proposal." in response.text
        assert fresh(db, engagement.id).status == Status.proposed


# --- setting up and changing stage ---------------------------------------------------


class TestSettingUpAndStages:
    def test_a_lead_sets_it_up_fully_through_the_page_and_moves_it_on(
        self, db: Session, world: World
    ) -> None:
        parties, lead = world.parties, world.lead
        engagement = accepted_engagement(db, parties)
        eid = engagement.id

        in_place(
            lead.post(
                url(eid, "/scope-lines"),
                {"kind": "posts", "description": "Feed posts", "quantity": "12",
                 "cadence": "monthly", "due_day": "0"},
            )
        )  # fmt: skip
        in_place(
            lead.post(
                url(eid, "/fees"),
                {"kind": "monthly", "description": "Retainer", "amount": "3500.00"},
            )
        )
        in_place(lead.post(url(eid, "/objectives"), {"text": "Sell more trail shoes online"}))
        objective = db.exec(select(Objective).where(Objective.engagement_id == eid)).one()
        in_place(
            lead.post(
                url(eid, "/kpis"),
                {"metric": "revenue", "target": "25000", "baseline": "9000",
                 "period": "monthly", "owner_id": str(parties.lead.id),
                 "objective_id": str(objective.id)},
            )
        )  # fmt: skip
        # Rates are typed as percentages and kept as fractions.
        in_place(
            lead.post(
                url(eid, "/kpis"),
                {"metric": "conversion_rate", "target": "4.5", "baseline": "3",
                 "period": "quarterly", "owner_id": str(parties.manager.id)},
            )
        )  # fmt: skip
        kpis = {k.metric: k for k in db.exec(select(Kpi).where(Kpi.engagement_id == eid)).all()}
        assert (kpis["revenue"].target, kpis["revenue"].baseline) == (Decimal(25000), 9000)
        assert kpis["conversion_rate"].target == Decimal("0.045")
        assert kpis["conversion_rate"].baseline == Decimal("0.03")
        in_place(
            lead.post(
                url(eid, "/campaigns"),
                {"name": "Spring launch", "kpi_id": str(kpis["revenue"].id)},
            )
        )
        for kind, team in (("escalation", "Customer service"), ("handoff", "Sales")):
            in_place(
                lead.post(
                    url(eid, f"/routes/{kind}"),
                    {"team": team, "trigger": "Complaints and refunds", "sla_hours": "4",
                     "contact_name": "Clara Soto", "contact_email": "care@brand.example"},
                )
            )  # fmt: skip
        in_place(
            lead.post(
                url(eid, "/tracking"),
                {"version": fresh(db, eid).version, "utm_source": "social",
                 "utm_medium": "organic", "utm_campaign": "spring-2027",
                 "coupon_codes": "SPRING10\nSUMMER15\n"},
            )
        )  # fmt: skip
        in_place(
            lead.post(
                url(eid, "/content-plan"),
                {"version": fresh(db, eid).version,
                 "content_calendar_url": "https://calendar.brand.example/social",
                 "brand_content_owner_id": str(parties.reviewer.id),
                 "agency_content_owner_id": str(parties.manager.id)},
            )
        )  # fmt: skip
        in_place(
            lead.post(
                url(eid, "/usage-policy"),
                {"version": fresh(db, eid).version,
                 "usage_policy_url": "https://intranet.brand.example/social-policy"},
            )
        )  # fmt: skip
        in_place(
            lead.post(
                url(eid, "/listening"),
                {"version": fresh(db, eid).version,
                 "listening_places": "Instagram @brand\nforum.runners.example\nr/trailrunning"},
            )
        )  # fmt: skip
        in_place(
            lead.post(
                url(eid, "/policy"),
                {"version": fresh(db, eid).version, "step_name": ["Marketing"],
                 "step_0_roles": ["lead", "reviewer"], "step_0_quorum": "any",
                 "review_hours": "24"},
            )
        )  # fmt: skip
        in_place(
            lead.post(
                url(eid, "/attestations"),
                {"item": "usage_policy", "note": "Policy v3 signed by both teams."},
            )
        )
        text = in_place(
            world.manager.post(
                url(eid, "/attestations"),
                {"item": "monitoring", "note": "Listening dashboard live since week 2."},
            )
        )
        assert "9 of 10 items hold." in text

        saved = fresh(db, eid)
        assert saved.coupon_codes == ["SPRING10", "SUMMER15"]
        assert saved.listening_places == [
            "Instagram @brand",
            "forum.runners.example",
            "r/trailrunning",
        ]
        assert saved.approval_policy["steps"][0]["roles"] == ["lead", "reviewer"]
        assert saved.approval_policy["review_hours"] == 24
        assert db.exec(select(Fee).where(Fee.engagement_id == eid)).one().amount_minor == 350_000
        assert count(db, ScopeLine, eid) == 1 and count(db, HandoverRoute, eid) == 2
        assert count(db, Campaign, eid) == 1 and count(db, Attestation, eid) == 2

        # Only the baseline results, which Brandkeep cannot see yet, are unmet.
        refused = lead.post(url(eid, "/stage"), {"to": "development"})
        assert "The checklist does not hold yet" in in_place(refused, 409)
        assert fresh(db, eid).stage == Stage.setup

        reason = "Baseline figures come from the agency's audit; imported next month."
        text = in_place(lead.post(url(eid, "/stage"), {"to": "development", "reason": reason}))
        assert fresh(db, eid).stage == Stage.development
        assert f"{parties.lead.name} moved the engagement from Setup to Development" in text
        assert "Baseline figures come from the agency&#39;s audit" in text
        assert re.search(r'aria-current="step">\s*<span class="stage-number">2</span>', text)
        change = stage_changes(db, eid)[-1]
        assert (change.from_stage, change.to_stage) == ("setup", "development")
        assert change.overridden and change.reason == reason
        snapshot = {item["key"]: item["status"] for item in change.checklist}
        assert snapshot.pop("baseline_results") == "missing"
        assert set(snapshot.values()) == {"holds"} and len(snapshot) == 9

    def test_advancing_with_an_unmet_item_needs_a_written_reason(
        self, db: Session, world: World
    ) -> None:
        engagement = accepted_engagement(db, world.parties)
        eid = engagement.id
        for blank in ({}, {"reason": "   "}):
            response = world.lead.post(url(eid, "/stage"), {"to": "development", **blank})
            assert "The checklist does not hold yet" in in_place(response, 409)
        assert fresh(db, eid).stage == Stage.setup
        assert len(stage_changes(db, eid)) == 1  # only the opening

        reason = "The brand's launch date cannot move; we set up the rest in development."
        in_place(world.lead.post(url(eid, "/stage"), {"to": "development", "reason": reason}))
        assert fresh(db, eid).stage == Stage.development
        change = stage_changes(db, eid)[-1]
        assert change.overridden and change.reason == reason
        assert change.actor_id == world.parties.lead.id
        snapshot = {item["key"]: item for item in change.checklist}
        assert list(snapshot) == [
            "objectives_kpis", "business_measure", "tracking", "approval_policy",
            "usage_policy", "monitoring", "escalation_route", "handoff_route",
            "content_plan", "baseline_results",
        ]  # fmt: skip
        assert snapshot["tracking"]["status"] == "missing"
        assert snapshot["approval_policy"]["status"] == "holds"
        assert snapshot["tracking"]["detail"].startswith("Set a UTM campaign")

    def test_stages_change_one_at_a_time(self, db: Session, world: World) -> None:
        engagement = accepted_engagement(db, world.parties)
        response = world.lead.post(
            url(engagement.id, "/stage"), {"to": "maturity", "reason": "We are ready."}
        )
        text = in_place(response, 422)
        assert "Stages change one at a time" in text
        assert fresh(db, engagement.id).stage == Stage.setup
        assert len(stage_changes(db, engagement.id)) == 1

    def test_moving_back_needs_a_reason(self, db: Session, world: World) -> None:
        engagement = accepted_engagement(db, world.parties)
        service.change_stage(
            db, grant(db, world.parties.lead, engagement.id), to=Stage.development, reason="Go."
        )
        db.commit()

        refused = world.lead.post(url(engagement.id, "/stage"), {"to": "setup"})
        text = in_place(refused, 422)
        assert "reason" in fields_in_error(text)
        assert "Say why the engagement moves back." in text
        assert fresh(db, engagement.id).stage == Stage.development

        reason = "The escalation route lapsed: customer service changed its contact."
        text = in_place(
            world.lead.post(url(engagement.id, "/stage"), {"to": "setup", "reason": reason})
        )
        assert fresh(db, engagement.id).stage == Stage.setup
        back = stage_changes(db, engagement.id)[-1]
        assert (back.from_stage, back.to_stage, back.reason) == ("development", "setup", reason)
        assert not back.overridden  # moving back is not an override
        assert "moved the engagement from Development to Setup" in text

    def test_moving_back_to_setup_removes_every_relaxation(self, db: Session, world: World) -> None:
        engagement = accepted_engagement(db, world.parties)
        service.change_stage(
            db, grant(db, world.parties.lead, engagement.id), to=Stage.development, reason="Go."
        )
        db.commit()
        relaxed = fresh(db, engagement.id)
        relaxed.approval_policy = {
            **relaxed.approval_policy,
            "relaxed_categories": {"community_replies": "none"},
        }
        db.add(relaxed)
        db.commit()
        in_place(
            world.lead.post(url(engagement.id, "/stage"), {"to": "setup", "reason": "Lapsed."})
        )
        assert fresh(db, engagement.id).approval_policy["relaxed_categories"] == {}


# --- bad input -------------------------------------------------------------------------


class TestBadInput:
    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"end_date": "2026-12-31"}, "end_date"),
            ({"currency": "EURO"}, "currency"),
            ({"currency": "ZZZ"}, "currency"),
            ({"agency": "<brand>"}, "agency"),
            ({"agency": "no-such-agency"}, "agency"),
            ({"budget": "-100"}, "budget"),
            ({"budget": "lots"}, "budget"),
            ({"start_date": "next spring"}, "start_date"),
            ({"name": ""}, "name"),
        ],
        ids=[
            "end-before-start", "currency-EURO", "currency-ZZZ", "agency-is-a-brand",
            "unknown-agency", "negative-budget", "budget-not-a-number", "bad-date", "no-name",
        ],
    )  # fmt: skip
    def test_opening_with_bad_input_names_the_field_and_writes_nothing(
        self, db: Session, world: World, changes: dict[str, str], field: str
    ) -> None:
        parties = world.parties
        data = {**OPEN_FORM, "brand": parties.brand.slug, "agency": parties.agency.slug, **changes}
        if data["agency"] == "<brand>":
            data["agency"] = create_org(db, kind=OrgKind.brand).slug
        response = world.lead.post("/engagements", data, htmx=False)
        assert response.status_code == 422
        assert fields_in_error(response.text) == {field}
        assert db.exec(select(func.count()).select_from(Engagement)).one() == 0

    @pytest.mark.parametrize(
        ("form", "field"),
        [
            ({"metric": "followers", "target": "1000", "baseline": "10"}, "metric"),
            ({"metric": "revenue", "target": "-5", "baseline": "10"}, "target"),
            ({"metric": "revenue", "target": "5000", "baseline": "-1"}, "baseline"),
            ({"metric": "conversion_rate", "target": "150", "baseline": "3"}, "target"),
            ({"metric": "revenue", "target": "a lot", "baseline": "10"}, "target"),
            ({"metric": "nps", "target": "120", "baseline": "10"}, "target"),
        ],
        ids=[
            "unknown-metric", "negative-target", "negative-baseline", "rate-over-100",
            "target-not-a-number", "nps-out-of-range",
        ],
    )  # fmt: skip
    def test_a_bad_kpi_names_the_field_and_writes_nothing(
        self, db: Session, world: World, form: dict[str, str], field: str
    ) -> None:
        engagement = accepted_engagement(db, world.parties)
        response = world.lead.post(url(engagement.id, "/kpis"), {**form, "period": "monthly"})
        text = in_place(response, 422)
        assert fields_in_error(text) == {field}
        assert count(db, Kpi, engagement.id) == 0

    def test_editing_the_period_backwards_is_refused(self, db: Session, world: World) -> None:
        engagement = accepted_engagement(db, world.parties)
        before = fresh(db, engagement.id)
        response = world.lead.post(
            url(engagement.id, "/basics"),
            {"version": before.version, "name": before.name,
             "start_date": "2027-06-01", "end_date": "2027-01-01",
             "budget": "48000.00", "currency": "EUR", "channels": ["instagram"],
             "brand_lead_id": str(world.parties.lead.id)},
        )  # fmt: skip
        assert fields_in_error(in_place(response, 422)) == {"end_date"}
        after = fresh(db, engagement.id)
        assert (after.version, after.start_date) == (before.version, before.start_date)

    def test_a_stale_form_is_refused_not_applied(self, db: Session, world: World) -> None:
        engagement = accepted_engagement(db, world.parties)
        stale = fresh(db, engagement.id).version
        in_place(
            world.lead.post(
                url(engagement.id, "/tracking"), {"version": stale, "utm_campaign": "first"}
            )
        )
        response = world.lead.post(
            url(engagement.id, "/tracking"), {"version": stale, "utm_campaign": "second"}
        )
        in_place(response, 412)
        assert fresh(db, engagement.id).utm_campaign == "first"


# --- permissions -------------------------------------------------------------------------


class TestPermissions:
    @pytest.mark.parametrize("who", ["manager", "reviewer"])
    def test_brand_only_actions_are_refused_with_the_reason(
        self, db: Session, world: World, who: str
    ) -> None:
        engagement = accepted_engagement(db, world.parties)
        before = fresh(db, engagement.id)
        actor: Browser = getattr(world, who)
        assert actor.get(url(engagement.id)).status_code == 200

        stage = actor.post(url(engagement.id, "/stage"), {"to": "development", "reason": "Go."})
        assert stage.status_code == 403
        assert ONLY_BRAND_STAGE in stage.text

        budget = actor.post(
            url(engagement.id, "/basics"),
            {"version": before.version, "name": before.name,
             "start_date": str(before.start_date), "end_date": str(before.end_date),
             "budget": "999999.00", "currency": "EUR", "channels": ["instagram"]},
        )  # fmt: skip
        assert budget.status_code == 403
        assert ONLY_BRAND_EDIT in budget.text

        kpi = actor.post(url(engagement.id, "/kpis"), {"metric": "revenue", "target": "1"})
        assert kpi.status_code == 403

        after = fresh(db, engagement.id)
        assert (after.stage, after.budget_minor, after.version) == (
            Stage.setup,
            before.budget_minor,
            before.version,
        )
        assert len(stage_changes(db, engagement.id)) == 1 and count(db, Kpi, engagement.id) == 0

    def test_the_agency_cannot_attest_what_the_brand_attests(
        self, db: Session, world: World
    ) -> None:
        engagement = accepted_engagement(db, world.parties)
        response = world.manager.post(
            url(engagement.id, "/attestations"), {"item": "usage_policy", "note": "We have it."}
        )
        assert response.status_code == 403
        assert "The other side of the engagement attests this item." in response.text
        assert count(db, Attestation, engagement.id) == 0

    def test_strangers_get_404_on_every_engagement_route(
        self, db: Session, app: FastAPI, browser: Callable[[User], Browser]
    ) -> None:
        parties = make_parties(db)
        engagement = accepted_engagement(db, parties, name="Secret launch")
        eid = engagement.id
        set_up_fully(db, parties, eid)
        lead = grant(db, parties.lead, eid)
        line = service.add_scope_line(db, lead, ScopeLineIn(kind="posts", quantity=4))
        fee = service.add_fee(db, lead, FeeIn(kind="monthly", amount_minor=100))
        db.commit()
        row_ids = {
            "line_id": line.id,
            "fee_id": fee.id,
            "objective_id": db.exec(select(Objective.id)).first(),
            "kpi_id": db.exec(select(Kpi.id)).first(),
            "campaign_id": db.exec(select(Campaign.id)).first(),
            "attestation_id": db.exec(select(Attestation.id)).first(),
            "route_kind": "escalation",
            "engagement_id": eid,
            # Any id: a stranger is refused on the engagement before the import is looked up.
            "import_id": uuid.uuid4(),
        }
        before = {model: count(db, model, eid) for model in (Kpi, Objective, ScopeLine, Fee)}
        before_version = fresh(db, eid).version

        routes = [
            (method, context.path)
            for context in iter_route_contexts(app.routes)
            if context.path and context.path.startswith("/engagements/{engagement_id}")
            for method in sorted(context.methods or ())
        ]
        assert len(routes) >= 25 and ("GET", "/engagements/{engagement_id}/archive") in routes

        other_brand = create_org(db, kind=OrgKind.brand)
        other_agency = create_org(db, kind=OrgKind.agency)
        for org in (other_brand, other_agency):
            stranger = browser(person(db, org, Role.owner, label="Stranger", signs_in=True))
            for method, path in routes:
                target = path.format(**row_ids)
                if method == "GET":
                    response = stranger.get(target)
                else:
                    response = stranger.post(
                        target,
                        {"to": "development", "reason": "x", "item": "sentiment", "note": "x",
                         "status": "ended", "version": before_version, "metric": "revenue",
                         "text": "x", "name": "x", "kind": "posts", "quantity": "1"},
                    )  # fmt: skip
                assert response.status_code == 404, (org.kind, method, target, response.text[:500])
                assert "Secret launch" not in response.text
            assert "Secret launch" not in stranger.get("/engagements").text

        assert {model: count(db, model, eid) for model in before} == before
        after = fresh(db, eid)
        assert (after.version, after.stage, after.status) == (
            before_version,
            Stage.setup,
            Status.active,
        )


# --- ended engagements ---------------------------------------------------------------------


@pytest.fixture
def grace_days(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A short grace period, set the way operators set it: in the environment."""
    monkeypatch.setenv("BRANDKEEP_ENGAGEMENT_GRACE_DAYS", "7")
    get_settings.cache_clear()
    yield 7
    get_settings.cache_clear()


class TestEndedEngagements:
    def test_the_agency_reads_an_ended_engagement_but_cannot_change_it(
        self, db: Session, world: World
    ) -> None:
        engagement = accepted_engagement(db, world.parties)
        text = in_place(world.lead.post(url(engagement.id, "/status"), {"status": "ended"}))
        assert "status-ended" in text
        ended = fresh(db, engagement.id)
        assert ended.status == Status.ended and ended.ended_at is not None

        page = world.manager.get(url(engagement.id))
        assert page.status_code == 200 and "This engagement has ended" in page.text
        assert "Attest this" not in page.text  # no forms offered to a reader
        listing = world.manager.get("/engagements")
        assert ended.name in listing.text

        for path, data in (
            ("/attestations", {"item": "sentiment", "note": "Still tracking."}),
            ("/decline", {}),
        ):
            response = world.manager.post(url(engagement.id, path), data)
            assert response.status_code == 403, path
            assert ENDED_READ_ONLY in response.text
        assert count(db, Attestation, engagement.id) == 0

        # The brand keeps it, read-only too: it can be read and archived, not changed.
        refused = world.lead.post(url(engagement.id, "/objectives"), {"text": "One more"})
        assert "it can be read and archived, not changed" in in_place(refused, 409)
        assert count(db, Objective, engagement.id) == 0

    def test_an_engagement_past_its_end_date_is_ended_for_the_agency(
        self, db: Session, world: World
    ) -> None:
        today = utcnow().date()
        engagement = accepted_engagement(db, world.parties, start_date=today - timedelta(days=100))
        update(db, world.parties, engagement.id, end_date=today - timedelta(days=2))
        page = world.manager.get(url(engagement.id))
        assert page.status_code == 200 and "status-ended" in page.text
        response = world.manager.post(
            url(engagement.id, "/attestations"), {"item": "sentiment", "note": "Still on it."}
        )
        assert response.status_code == 403 and ENDED_READ_ONLY in response.text

    def test_after_the_grace_period_the_agency_gets_404(
        self, grace_days: int, db: Session, world: World
    ) -> None:
        engagement = accepted_engagement(db, world.parties, name="Holiday campaign")
        service.set_status(db, grant(db, world.parties.lead, engagement.id), Status.ended)
        db.commit()

        def ended_days_ago(days: int) -> None:
            row = fresh(db, engagement.id)
            row.ended_at = utcnow() - timedelta(days=days)
            db.add(row)
            db.commit()

        ended_days_ago(grace_days - 1)
        assert world.manager.get(url(engagement.id)).status_code == 200
        assert "Holiday campaign" in world.manager.get("/engagements").text

        ended_days_ago(grace_days + 1)
        for response in (
            world.manager.get(url(engagement.id)),
            world.manager.post(url(engagement.id, "/attestations"), {"item": "sentiment"}),
            world.creator.get(url(engagement.id)),
        ):
            assert response.status_code == 404
            assert "Holiday campaign" not in response.text
        assert "Holiday campaign" not in world.manager.get("/engagements").text
        # The brand keeps everything.
        assert world.lead.get(url(engagement.id)).status_code == 200
        assert world.lead.get(url(engagement.id, "/archive")).status_code == 200


# --- the archive ------------------------------------------------------------------------------


def _csv_rows(archive: zipfile.ZipFile, name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(archive.read(name).decode("utf-8-sig"))))


class TestArchive:
    def test_the_brand_downloads_everything_as_json_and_csv(
        self, db: Session, world: World
    ) -> None:
        parties = world.parties
        engagement = accepted_engagement(db, parties, name="Archive me")
        set_up_fully(db, parties, engagement.id)
        service.add_scope_line(
            db,
            grant(db, parties.lead, engagement.id),
            ScopeLineIn(kind="posts", description="Feed posts", quantity=12),
        )
        service.change_stage(
            db,
            grant(db, parties.lead, engagement.id),
            to=Stage.development,
            reason="Baseline next month.",
        )
        db.commit()

        for reader in (world.lead, world.reviewer):
            response = reader.get(url(engagement.id, "/archive"))
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/zip"
            assert "attachment" in response.headers["content-disposition"]

        archive = zipfile.ZipFile(io.BytesIO(response.content))
        names = set(archive.namelist())
        assert {"engagement.json", "scope_lines.csv", "kpis.csv", "stage_changes.csv"} <= names

        content = json.loads(archive.read("engagement.json"))
        assert content["engagement"]["name"] == "Archive me"
        assert [kpi["metric"] for kpi in content["kpis"]] == ["revenue"]
        assert [line["description"] for line in content["scope_lines"]] == ["Feed posts"]
        assert [c["to_stage"] for c in content["stage_changes"]] == ["setup", "development"]

        [line] = _csv_rows(archive, "scope_lines.csv")
        assert (line["kind"], line["quantity"], line["cadence"]) == ("posts", "12", "monthly")
        [kpi] = _csv_rows(archive, "kpis.csv")
        assert kpi["metric"] == "revenue" and Decimal(kpi["target"]) == 25000
        assert kpi["owner_id"] == str(parties.lead.id)
        changes = _csv_rows(archive, "stage_changes.csv")
        moved = next(row for row in changes if row["to_stage"] == "development")
        assert moved["reason"] == "Baseline next month." and moved["overridden"] == "True"
        assert json.loads(moved["checklist"])[0]["key"] == "objectives_kpis"

    def test_the_agency_cannot_download_the_archive(self, db: Session, world: World) -> None:
        engagement = accepted_engagement(db, world.parties)
        for agency_person in (world.manager, world.creator):
            response = agency_person.get(url(engagement.id, "/archive"))
            assert response.status_code == 403
            assert "The archive is the brand&#39;s" in response.text


# --- who sees what --------------------------------------------------------------------------


class TestTenancy:
    def test_a_brand_with_two_agencies_each_sees_only_its_own(
        self, db: Session, browser: Callable[[User], Browser]
    ) -> None:
        first = make_parties(db, signs_in=True)
        second = make_parties(db, brand=first.brand, signs_in=True)
        mine = accepted_engagement(db, first, name="With the first agency")
        theirs = accepted_engagement(db, second, name="With the second agency")

        lead_listing = browser(first.lead).get("/engagements").text
        assert "With the first agency" in lead_listing and "With the second agency" in lead_listing

        for parties, own, other in ((first, mine, theirs), (second, theirs, mine)):
            manager = browser(parties.manager)
            listing = manager.get("/engagements").text
            assert own.name in listing and other.name not in listing
            assert manager.get(url(own.id)).status_code == 200
            assert manager.get(url(other.id)).status_code == 404
            refused = manager.post(url(other.id, "/attestations"), {"item": "sentiment"})
            assert refused.status_code == 404

    def test_an_agency_serving_two_brands_never_shows_one_to_the_other(
        self, db: Session, browser: Callable[[User], Browser]
    ) -> None:
        first = make_parties(db, signs_in=True)
        second = make_parties(db, agency=first.agency, signs_in=True)
        one = accepted_engagement(db, first, name="Brand one's engagement")
        two = accepted_engagement(db, second, name="Brand two's engagement")

        manager = browser(first.manager)
        listing = manager.get("/engagements").text
        assert "Brand one&#39;s engagement" in listing and "Brand two&#39;s engagement" in listing

        for parties, own, other in ((first, one, two), (second, two, one)):
            lead = browser(parties.lead)
            listing = lead.get("/engagements").text
            assert own.name.replace("'", "&#39;") in listing
            assert other.name.replace("'", "&#39;") not in listing
            assert lead.get(url(other.id)).status_code == 404
            assert lead.get(url(other.id, "/archive")).status_code == 404
            # Naming the shared agency shows nothing of the other brand on the agency's page.
            assert other.name.replace("'", "&#39;") not in lead.get(url(own.id)).text
