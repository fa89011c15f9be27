"""The stage checklists (DOMAIN.md §1): each item, computed from real data or attested.

Data is built through the services and the checklist read with
``service.stage_checklist``; the few rules that need situations the services
refuse to build are checked on ``Facts`` directly.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlmodel import Session, col, select

from app.db import utcnow
from app.engagements import checklist, service
from app.engagements.checklist import Facts, ItemState, ItemStatus, Transition
from app.engagements.models import (
    Attestation,
    Campaign,
    Engagement,
    HandoverRoute,
    Kpi,
    Objective,
    RouteKind,
    Stage,
)
from app.engagements.policy import default_policy
from app.engagements.schemas import (
    AttestationIn,
    CampaignIn,
    KpiUpdate,
    ObjectiveIn,
    PolicyIn,
    RouteIn,
)
from app.errors import Forbidden, InvalidInput
from app.results.repository import Summary as ResultsSummary
from tests.engagement_factories import (
    ESCALATION,
    HANDOFF,
    Parties,
    accepted_engagement,
    add_kpi,
    checklist_of,
    grant,
    make_parties,
    set_up_fully,
    statuses,
    update,
)

SETUP_ITEMS = [
    "objectives_kpis",
    "business_measure",
    "tracking",
    "approval_policy",
    "usage_policy",
    "monitoring",
    "escalation_route",
    "handoff_route",
    "content_plan",
    "baseline_results",
]
DEVELOPMENT_ITEMS = [
    "escalations_in_sla",
    "advocates",
    "sentiment",
    "campaigns_kpi",
    "reporting_periods",
]
MATURITY_ITEMS = ["initiatives_measured", "relationships_in_house", "roi_far"]
RESULT_ITEMS = {
    "baseline_results": Stage.setup,
    "reporting_periods": Stage.development,
    "roi_far": Stage.maturity,
}


@pytest.fixture
def parties(db: Session) -> Parties:
    return make_parties(db)


@pytest.fixture
def engagement(db: Session, parties: Parties) -> Engagement:
    return accepted_engagement(db, parties)


def item(
    db: Session, parties: Parties, engagement: Engagement, key: str, stage: Stage | None = None
) -> ItemState:
    result = checklist_of(db, parties.lead, engagement.id, stage)
    return next(state for state in result.items if state.item.key == key)


def detail(state: ItemState) -> str:
    return state.outcome.detail % state.outcome.params


def facts(**overrides: Any) -> Facts:
    """Facts of an engagement that exists only in memory."""
    values: dict[str, Any] = {
        "engagement": Engagement(
            id=uuid.uuid4(),
            brand_id=uuid.uuid4(),
            agency_id=uuid.uuid4(),
            name="In memory",
            start_date=utcnow().date(),
            currency="EUR",
            approval_policy=default_policy(Stage.setup),
        ),
        "objectives": [],
        "kpis": [],
        "campaigns": [],
        "routes": [],
        "attestations": [],
        "brand_member_roles": {},
        "entered_stage_at": None,
    }
    values.update(overrides)
    return Facts(**values)


def evaluated(key: str, state_facts: Facts) -> ItemState:
    item_def = checklist.BY_KEY[key]
    return next(
        s for s in checklist.evaluate(state_facts, item_def.transition) if s.item.key == key
    )


class TestTheLists:
    def test_each_gate_checks_the_items_domain_names_in_order(
        self, db: Session, parties: Parties, engagement: Engagement
    ) -> None:
        for stage, keys, transition, next_stage in (
            (Stage.setup, SETUP_ITEMS, Transition.to_development, Stage.development),
            (Stage.development, DEVELOPMENT_ITEMS, Transition.to_maturity, Stage.maturity),
            (Stage.maturity, MATURITY_ITEMS, Transition.staying, None),
        ):
            result = checklist_of(db, parties.lead, engagement.id, stage)
            assert [state.item.key for state in result.items] == keys
            assert (result.transition, result.next_stage) == (transition, next_stage)

    def test_a_new_engagement_holds_almost_nothing(
        self, db: Session, parties: Parties, engagement: Engagement
    ) -> None:
        result = checklist_of(db, parties.lead, engagement.id)
        assert result.stage is Stage.setup and not result.holds
        # Only the default approval policy (the brand approves every post) is in place.
        assert [state.item.key for state in result.items if state.holds] == ["approval_policy"]

    def test_fully_set_up_only_the_results_it_cannot_see_stay_unmet(
        self, db: Session, parties: Parties, engagement: Engagement
    ) -> None:
        set_up_fully(db, parties, engagement.id)
        result = checklist_of(db, parties.lead, engagement.id)
        assert statuses(result) == {key: "holds" for key in SETUP_ITEMS} | {
            "baseline_results": "missing"
        }
        assert not result.holds
        assert [state.item.key for state in result.unmet] == ["baseline_results"]


class TestObjectivesAndKpis:
    def test_no_objective_is_missing(
        self, db: Session, parties: Parties, engagement: Engagement
    ) -> None:
        add_kpi(db, parties, engagement.id)
        state = item(db, parties, engagement, "objectives_kpis")
        assert state.outcome.status is ItemStatus.missing
        assert detail(state) == "No objective is recorded yet."

    def test_an_objective_without_kpis_is_missing(
        self, db: Session, parties: Parties, engagement: Engagement
    ) -> None:
        service.add_objective(db, grant(db, parties.lead, engagement.id), ObjectiveIn(text="Sell"))
        db.commit()
        state = item(db, parties, engagement, "objectives_kpis")
        assert state.outcome.status is ItemStatus.missing
        assert detail(state) == "No KPI is recorded yet."

    @pytest.mark.parametrize("lacking", ["target", "baseline", "owner_id"])
    def test_one_kpi_without_target_baseline_or_owner_is_missing(
        self, db: Session, parties: Parties, engagement: Engagement, lacking: str
    ) -> None:
        service.add_objective(db, grant(db, parties.lead, engagement.id), ObjectiveIn(text="Sell"))
        db.commit()
        add_kpi(db, parties, engagement.id)
        add_kpi(db, parties, engagement.id, metric="coupon_redemptions", **{lacking: None})
        state = item(db, parties, engagement, "objectives_kpis")
        assert state.outcome.status is ItemStatus.missing
        assert detail(state) == "KPIs lacking a target, a baseline or an owner: 1 of 2."

    def test_every_kpi_complete_holds(
        self, db: Session, parties: Parties, engagement: Engagement
    ) -> None:
        service.add_objective(db, grant(db, parties.lead, engagement.id), ObjectiveIn(text="Sell"))
        db.commit()
        add_kpi(db, parties, engagement.id)
        # An agency member may own a KPI too.
        add_kpi(db, parties, engagement.id, metric="reach", owner_id=parties.manager.id)
        state = item(db, parties, engagement, "objectives_kpis")
        assert state.outcome.status is ItemStatus.holds
        assert detail(state) == "Objectives: 1. KPIs: 2, each with target, baseline and owner."

    def test_completing_the_last_kpi_makes_it_hold(
        self, db: Session, parties: Parties, engagement: Engagement
    ) -> None:
        service.add_objective(db, grant(db, parties.lead, engagement.id), ObjectiveIn(text="Sell"))
        db.commit()
        kpi = add_kpi(db, parties, engagement.id, baseline=None)
        assert item(db, parties, engagement, "objectives_kpis").outcome.status == "missing"
        service.update_kpi(
            db,
            grant(db, parties.lead, engagement.id),
            kpi,
            expected_version=kpi.version,
            data=KpiUpdate(baseline=Decimal(9000)),
        )
        db.commit()
        assert item(db, parties, engagement, "objectives_kpis").outcome.status == "holds"


class TestBusinessMeasure:
    def test_only_indicators_is_missing_they_are_not_measures(
        self, db: Session, parties: Parties, engagement: Engagement
    ) -> None:
        add_kpi(db, parties, engagement.id, metric="reach", target=Decimal(250000))
        add_kpi(
            db,
            parties,
            engagement.id,
            metric="engagement_rate_reach",
            target=Decimal("0.045"),
            baseline=Decimal("0.031"),
        )
        state = item(db, parties, engagement, "business_measure")
        assert state.outcome.status is ItemStatus.missing
        assert "indicators, not measures" in detail(state)

    def test_no_kpi_at_all_is_missing(
        self, db: Session, parties: Parties, engagement: Engagement
    ) -> None:
        assert item(db, parties, engagement, "business_measure").outcome.status == "missing"

    @pytest.mark.parametrize("metric", ["revenue", "coupon_redemptions"])
    def test_a_business_measure_among_indicators_holds(
        self, db: Session, parties: Parties, engagement: Engagement, metric: str
    ) -> None:
        add_kpi(db, parties, engagement.id, metric="reach", target=Decimal(250000))
        add_kpi(db, parties, engagement.id, metric=metric, target=Decimal(400))
        state = item(db, parties, engagement, "business_measure")
        assert state.outcome.status is ItemStatus.holds
        assert detail(state) == "KPIs that are business measures: 1."


class TestTracking:
    @pytest.mark.parametrize(
        ("changes", "expected"),
        [
            ({}, "missing"),
            # Source and medium alone do not say which engagement a visit came from.
            ({"utm_source": "social", "utm_medium": "organic"}, "missing"),
            ({"coupon_codes": ["  ", ""]}, "missing"),
            ({"utm_campaign": "spring-2026"}, "holds"),
            ({"coupon_codes": ["SPRING10"]}, "holds"),
        ],
        ids=["nothing", "source-and-medium-only", "blank-codes", "utm-campaign", "coupon-code"],
    )
    def test_needs_a_utm_campaign_or_a_coupon_code(
        self,
        db: Session,
        parties: Parties,
        engagement: Engagement,
        changes: dict[str, Any],
        expected: str,
    ) -> None:
        if changes:
            update(db, parties, engagement.id, **changes)
        assert item(db, parties, engagement, "tracking").outcome.status == expected


class TestApprovalPolicy:
    def _set_steps(
        self, db: Session, parties: Parties, engagement: Engagement, *steps: dict[str, Any]
    ) -> None:
        granted = grant(db, parties.lead, engagement.id)
        service.set_policy(
            db,
            granted,
            expected_version=granted.engagement.version,
            data=PolicyIn.model_validate({"steps": list(steps)}),
        )
        db.commit()

    def test_a_step_whose_role_nobody_in_the_brand_has_is_missing(self, db: Session) -> None:
        parties = make_parties(db, with_reviewer=False)  # the brand has a lead, no reviewer
        engagement = accepted_engagement(db, parties)
        self._set_steps(
            db,
            parties,
            engagement,
            {"name": "Marketing", "roles": ["lead"]},
            {"name": "Legal", "roles": ["reviewer"]},
        )
        state = item(db, parties, engagement, "approval_policy")
        assert state.outcome.status is ItemStatus.missing
        assert detail(state) == "Nobody in the brand can decide step Legal yet."

    def test_named_people_who_are_brand_members_hold(
        self, db: Session, parties: Parties, engagement: Engagement
    ) -> None:
        self._set_steps(
            db,
            parties,
            engagement,
            {"name": "Marketing", "people": [str(parties.reviewer.id)]},
            {"name": "Legal", "people": [str(parties.lead.id)], "quorum": "all"},
        )
        state = item(db, parties, engagement, "approval_policy")
        assert state.outcome.status is ItemStatus.holds
        assert detail(state) == "Approval steps: 2, each with brand approvers."

    def test_an_agency_member_cannot_be_named_a_brand_approver(
        self, db: Session, parties: Parties, engagement: Engagement
    ) -> None:
        with pytest.raises(InvalidInput) as raised:
            self._set_steps(
                db, parties, engagement, {"name": "Brand", "people": [str(parties.manager.id)]}
            )
        assert [error.field for error in raised.value.field_errors] == ["steps.0.people"]
        db.expire_all()
        assert db.get(Engagement, engagement.id).approval_policy == default_policy(Stage.setup)  # type: ignore[union-attr]

    def test_a_named_approver_who_left_the_brand_no_longer_counts(self) -> None:
        left = uuid.uuid4()
        policy = {"steps": [{"name": "Legal", "roles": [], "people": [str(left)]}]}
        base = facts()
        base.engagement.approval_policy = policy
        assert evaluated("approval_policy", base).outcome.status is ItemStatus.missing
        still_there = facts(engagement=base.engagement, brand_member_roles={left: "viewer"})
        assert evaluated("approval_policy", still_there).outcome.status is ItemStatus.holds

    def test_a_policy_without_steps_is_missing(self) -> None:
        empty = facts(brand_member_roles={uuid.uuid4(): "owner"})
        empty.engagement.approval_policy = {"steps": []}
        state = evaluated("approval_policy", empty)
        assert state.outcome.status is ItemStatus.missing
        assert detail(state) == "The approval policy has no steps."


ATTESTED = [
    # (item, the stage whose gate lists it, who attests it)
    ("usage_policy", Stage.setup, "lead"),
    ("advocates", Stage.development, "lead"),
    ("sentiment", Stage.development, "manager"),
    ("relationships_in_house", Stage.maturity, "lead"),
]


class TestAttestedItems:
    @pytest.mark.parametrize(("key", "stage", "who"), ATTESTED, ids=[a[0] for a in ATTESTED])
    def test_missing_until_attested_holds_after_and_lapses_when_withdrawn(
        self,
        db: Session,
        parties: Parties,
        engagement: Engagement,
        key: str,
        stage: Stage,
        who: str,
    ) -> None:
        state = item(db, parties, engagement, key, stage)
        assert state.outcome.status is ItemStatus.missing
        assert state.attestation is None

        attester = getattr(parties, who)
        attestation = service.attest(
            db, grant(db, attester, engagement.id), AttestationIn(item=key, note="Checked it.")
        )
        db.commit()
        state = item(db, parties, engagement, key, stage)
        assert state.outcome.status is ItemStatus.holds
        assert state.attestation is not None
        assert (state.attestation.attested_by_name, state.attestation.note) == (
            attester.name,
            "Checked it.",
        )
        assert state.snapshot()["attested_by"] == attester.name

        service.withdraw_attestation(db, grant(db, attester, engagement.id), attestation.id)
        db.commit()
        state = item(db, parties, engagement, key, stage)
        assert state.outcome.status is ItemStatus.missing
        assert state.attestation is None

    @pytest.mark.parametrize("key", ["usage_policy", "advocates", "relationships_in_house"])
    def test_the_agency_cannot_attest_a_brand_only_item(
        self, db: Session, parties: Parties, engagement: Engagement, key: str
    ) -> None:
        with pytest.raises(Forbidden) as raised:
            service.attest(
                db,
                grant(db, parties.manager, engagement.id),
                AttestationIn(item=key, note="We have it."),
            )
        assert raised.value.status_code == 403
        assert raised.value.message == "The other side of the engagement attests this item."
        db.expire_all()
        assert db.exec(select(Attestation)).all() == []

    @pytest.mark.parametrize("who", ["reviewer", "creator"])
    def test_people_without_the_attest_capability_cannot_attest(
        self, db: Session, parties: Parties, engagement: Engagement, who: str
    ) -> None:
        with pytest.raises(Forbidden) as raised:
            service.attest(
                db,
                grant(db, getattr(parties, who), engagement.id),
                AttestationIn(item="sentiment", note="Looks fine."),
            )
        assert raised.value.status_code == 403

    def test_attesting_again_replaces_the_earlier_word(
        self, db: Session, parties: Parties, engagement: Engagement
    ) -> None:
        for note in ("First look.", "Re-checked after the tool changed."):
            service.attest(
                db,
                grant(db, parties.lead, engagement.id),
                AttestationIn(item="sentiment", note=note),
            )
            db.commit()
        db.expire_all()
        rows = db.exec(select(Attestation).order_by(col(Attestation.attested_at))).all()
        assert [row.withdrawn_at is None for row in rows] == [False, True]
        state = item(db, parties, engagement, "sentiment", Stage.development)
        assert state.attestation is not None
        assert state.attestation.note == "Re-checked after the tool changed."

    @pytest.mark.parametrize("key", ["tracking", "baseline_results", "no_such_item"])
    def test_only_attested_items_can_be_attested(
        self, db: Session, parties: Parties, engagement: Engagement, key: str
    ) -> None:
        with pytest.raises(InvalidInput) as raised:
            service.attest(
                db, grant(db, parties.lead, engagement.id), AttestationIn(item=key, note="Yes.")
            )
        assert [error.field for error in raised.value.field_errors] == ["item"]


class TestMonitoring:
    def _attest(self, db: Session, parties: Parties, engagement: Engagement) -> None:
        service.attest(
            db,
            grant(db, parties.manager, engagement.id),
            AttestationIn(item="monitoring", note="Dashboard live."),
        )
        db.commit()

    def test_a_listening_map_without_an_attestation_is_missing(
        self, db: Session, parties: Parties, engagement: Engagement
    ) -> None:
        update(db, parties, engagement.id, listening_places=["forum.runners.example"])
        state = item(db, parties, engagement, "monitoring")
        assert state.outcome.status is ItemStatus.missing
        assert detail(state) == "Waiting for a named person to attest it."

    def test_an_attestation_without_a_listening_map_is_missing(
        self, db: Session, parties: Parties, engagement: Engagement
    ) -> None:
        self._attest(db, parties, engagement)
        state = item(db, parties, engagement, "monitoring")
        assert state.outcome.status is ItemStatus.missing
        assert detail(state) == "Map where customers talk, forums and communities too."

    def test_the_map_and_an_attestation_hold(
        self, db: Session, parties: Parties, engagement: Engagement
    ) -> None:
        update(db, parties, engagement.id, listening_places=["Instagram", "r/trailrunning"])
        self._attest(db, parties, engagement)
        assert item(db, parties, engagement, "monitoring").outcome.status is ItemStatus.holds
        # Emptying the map later makes it lapse, attestation or not.
        update(db, parties, engagement.id, listening_places=[" "])
        assert item(db, parties, engagement, "monitoring").outcome.status is ItemStatus.missing


class TestRoutes:
    def _route(
        self, db: Session, parties: Parties, engagement: Engagement, kind: RouteKind, data: RouteIn
    ) -> None:
        service.set_route(db, grant(db, parties.lead, engagement.id), kind, data)
        db.commit()

    def test_no_routes_leaves_both_missing(
        self, db: Session, parties: Parties, engagement: Engagement
    ) -> None:
        result = statuses(checklist_of(db, parties.lead, engagement.id))
        assert (result["escalation_route"], result["handoff_route"]) == ("missing", "missing")

    def test_an_escalation_route_needs_its_trigger(
        self, db: Session, parties: Parties, engagement: Engagement
    ) -> None:
        without_trigger = ESCALATION.model_copy(update={"trigger": ""})
        self._route(db, parties, engagement, RouteKind.escalation, without_trigger)
        assert item(db, parties, engagement, "escalation_route").outcome.status == "missing"
        self._route(db, parties, engagement, RouteKind.escalation, ESCALATION)
        state = item(db, parties, engagement, "escalation_route")
        assert state.outcome.status is ItemStatus.holds
        assert detail(state) == "To Customer service within 4 h (care@brand.example)."
        # Setting it again changes the one route, not a second one.
        assert len(db.exec(select(HandoverRoute)).all()) == 1

    def test_each_route_is_its_own_item(
        self, db: Session, parties: Parties, engagement: Engagement
    ) -> None:
        self._route(db, parties, engagement, RouteKind.escalation, ESCALATION)
        result = statuses(checklist_of(db, parties.lead, engagement.id))
        assert (result["escalation_route"], result["handoff_route"]) == ("holds", "missing")
        self._route(db, parties, engagement, RouteKind.handoff, HANDOFF)
        state = item(db, parties, engagement, "handoff_route")
        assert state.outcome.status is ItemStatus.holds
        assert detail(state) == "To Sales within 24 h (sales@brand.example)."


class TestContentPlan:
    def test_needs_the_calendar_link_and_an_owner_on_each_side(
        self, db: Session, parties: Parties, engagement: Engagement
    ) -> None:
        state = item(db, parties, engagement, "content_plan")
        assert (state.outcome.status, detail(state)) == ("missing", "Link the editorial calendar.")

        update(
            db,
            parties,
            engagement.id,
            content_calendar_url="https://calendar.brand.example",
            brand_content_owner_id=parties.reviewer.id,
        )
        state = item(db, parties, engagement, "content_plan")
        assert (state.outcome.status, detail(state)) == (
            "missing",
            "Name the calendar's owner on both sides.",
        )

        update(db, parties, engagement.id, agency_content_owner_id=parties.creator.id)
        assert item(db, parties, engagement, "content_plan").outcome.status is ItemStatus.holds

    def test_an_owner_from_the_wrong_side_is_refused(
        self, db: Session, parties: Parties, engagement: Engagement
    ) -> None:
        with pytest.raises(InvalidInput) as raised:
            update(db, parties, engagement.id, brand_content_owner_id=parties.manager.id)
        assert [error.field for error in raised.value.field_errors] == ["brand_content_owner_id"]


class TestCampaignsTiedToKpis:
    def test_every_campaign_needs_a_kpi(
        self, db: Session, parties: Parties, engagement: Engagement
    ) -> None:
        state = item(db, parties, engagement, "campaigns_kpi", Stage.development)
        assert (state.outcome.status, detail(state)) == ("missing", "No campaign is recorded yet.")

        kpi = add_kpi(db, parties, engagement.id)
        lead = grant(db, parties.lead, engagement.id)
        service.add_campaign(db, lead, CampaignIn(name="Spring", kpi_id=kpi.id))
        loose = service.add_campaign(db, lead, CampaignIn(name="Summer"))
        db.commit()
        state = item(db, parties, engagement, "campaigns_kpi", Stage.development)
        assert (state.outcome.status, detail(state)) == (
            "missing",
            "Campaigns without a KPI: 1 of 2.",
        )

        service.set_campaign_kpi(db, grant(db, parties.lead, engagement.id), loose.id, kpi.id)
        db.commit()
        state = item(db, parties, engagement, "campaigns_kpi", Stage.development)
        assert (state.outcome.status, detail(state)) == (
            "holds",
            "Every campaign is tied to a KPI (2 in all).",
        )

    def test_a_kpi_of_another_engagement_cannot_be_tied(
        self, db: Session, parties: Parties, engagement: Engagement
    ) -> None:
        other = accepted_engagement(db, parties)
        foreign_kpi = add_kpi(db, parties, other.id)
        with pytest.raises(InvalidInput) as raised:
            service.add_campaign(
                db,
                grant(db, parties.lead, engagement.id),
                CampaignIn(name="Borrowed", kpi_id=foreign_kpi.id),
            )
        assert [error.field for error in raised.value.field_errors] == ["kpi_id"]


class TestInitiativesMeasured:
    def test_only_initiatives_launched_in_maturity_count(self) -> None:
        entered = utcnow() - timedelta(days=30)
        kpi_id = uuid.uuid4()
        old_loose = Campaign(name="Old", created_at=entered - timedelta(days=1))
        new_measured = Campaign(name="New", kpi_id=kpi_id, created_at=entered + timedelta(days=1))
        new_loose = Campaign(name="Newer", created_at=entered + timedelta(days=2))

        ok = facts(campaigns=[old_loose, new_measured], entered_stage_at=entered)
        assert evaluated("initiatives_measured", ok).outcome.status is ItemStatus.holds

        lapsed = facts(campaigns=[old_loose, new_measured, new_loose], entered_stage_at=entered)
        state = evaluated("initiatives_measured", lapsed)
        assert state.outcome.status is ItemStatus.missing
        assert detail(state) == "Campaigns launched in maturity without a success measure: 1."

    def test_on_an_engagement_moved_to_maturity(
        self, db: Session, parties: Parties, engagement: Engagement
    ) -> None:
        lead = grant(db, parties.lead, engagement.id)
        service.add_campaign(db, lead, CampaignIn(name="Launched in setup, never measured"))
        db.commit()
        for to in (Stage.development, Stage.maturity):
            service.change_stage(
                db, grant(db, parties.lead, engagement.id), to=to, reason="Pilot agreed."
            )
            db.commit()
        assert item(db, parties, engagement, "initiatives_measured").outcome.status == "holds"

        kpi = add_kpi(db, parties, engagement.id)
        new = service.add_campaign(
            db, grant(db, parties.lead, engagement.id), CampaignIn(name="Autumn")
        )
        db.commit()
        assert item(db, parties, engagement, "initiatives_measured").outcome.status == "missing"
        service.set_campaign_kpi(db, grant(db, parties.lead, engagement.id), new.id, kpi.id)
        db.commit()
        assert item(db, parties, engagement, "initiatives_measured").outcome.status == "holds"


class TestResultItems:
    """Measured from the engagement's result rows; an attestation never stands in."""

    @pytest.mark.parametrize(("key", "stage"), RESULT_ITEMS.items(), ids=list(RESULT_ITEMS))
    def test_missing_without_results_even_on_a_complete_engagement(
        self, db: Session, parties: Parties, engagement: Engagement, key: str, stage: Stage
    ) -> None:
        set_up_fully(db, parties, engagement.id)
        for attested in ("advocates", "sentiment", "relationships_in_house"):
            service.attest(
                db, grant(db, parties.lead, engagement.id), AttestationIn(item=attested, note="Ok")
            )
        db.commit()
        result = checklist_of(db, parties.lead, engagement.id, stage)
        state = next(s for s in result.items if s.item.key == key)
        assert state.outcome.status is ItemStatus.missing
        assert not result.holds and state in result.unmet

    @pytest.mark.parametrize("key", list(RESULT_ITEMS))
    def test_not_even_an_attestation_of_that_key_makes_it_hold(self, key: str) -> None:
        rich = facts(
            objectives=[Objective(text="Sell")],
            kpis=[Kpi(metric="revenue", target=Decimal(1), baseline=Decimal(1))],
            campaigns=[Campaign(name="C", kpi_id=uuid.uuid4(), created_at=utcnow())],
            attestations=[Attestation(item=key, attested_by_name="Someone", note="Trust me")],
        )
        assert evaluated(key, rich).outcome.status is ItemStatus.missing

    def test_they_hold_once_the_results_are_there(self) -> None:
        thin = facts(results=ResultsSummary(rows=4, export_months=2, metrics=frozenset({"reach"})))
        assert evaluated("baseline_results", thin).holds
        assert not evaluated("reporting_periods", thin).holds
        assert not evaluated("roi_far", thin).holds
        rich = facts(
            results=ResultsSummary(
                rows=900, export_months=3, metrics=frozenset({"revenue", "far_frequency"})
            )
        )
        assert all(evaluated(key, rich).holds for key in RESULT_ITEMS)
        assert detail(evaluated("reporting_periods", rich)) == (
            "Months backed by platform exports: 3."
        )
