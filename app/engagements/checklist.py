"""The stage checklists (DOMAIN.md §1), evaluated from an engagement's data.

Each item is computed from data (C) or attested by a named person (A). An item
whose data Brandkeep does not record yet is "not yet measurable": it never
counts as holding, so advancing past it needs a written override.

The evaluation is pure: ``evaluate`` takes the facts the service loaded and
returns each item's state, so every rule can be tested on its own.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

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
from app.errors import N_
from app.escalations import measures as escalation_measures
from app.escalations.models import Escalation
from app.results.metrics import get_metric
from app.results.repository import Summary as ResultsSummary


class ItemKind(enum.StrEnum):
    computed = "computed"
    attested = "attested"


class ItemStatus(enum.StrEnum):
    holds = "holds"
    missing = "missing"
    not_measurable = "not_measurable"


class Transition(enum.StrEnum):
    to_development = "setup→development"
    to_maturity = "development→maturity"
    staying = "maturity"


# Which checklist gates leaving each stage.
GATE: dict[Stage, Transition] = {
    Stage.setup: Transition.to_development,
    Stage.development: Transition.to_maturity,
    Stage.maturity: Transition.staying,
}


@dataclass(frozen=True)
class Facts:
    """What the checklist looks at, loaded once by the service."""

    engagement: Engagement
    objectives: Sequence[Objective]
    kpis: Sequence[Kpi]
    campaigns: Sequence[Campaign]
    routes: Sequence[HandoverRoute]
    attestations: Sequence[Attestation]  # live ones only
    brand_member_roles: dict[uuid.UUID, str]
    entered_stage_at: datetime | None
    # Escalations opened in the last SLA_WINDOW, and the moment the checklist is read.
    recent_escalations: Sequence[Escalation] = ()
    checked_at: datetime | None = None
    # What the engagement's results hold (disputed rows left out).
    results: ResultsSummary | None = None


@dataclass(frozen=True)
class Outcome:
    status: ItemStatus
    detail: str  # a message id
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Item:
    key: str
    transition: Transition
    kind: ItemKind
    label: str
    fix: str  # the anchor on the engagement page where it is fixed
    attested_by: tuple[str, ...] = ()  # sides that may attest: "brand", "agency"
    evaluate: Callable[[Facts], Outcome] | None = None


@dataclass(frozen=True)
class ItemState:
    item: Item
    outcome: Outcome
    attestation: Attestation | None

    @property
    def holds(self) -> bool:
        return self.outcome.status is ItemStatus.holds

    def snapshot(self) -> dict[str, Any]:
        """What the timeline keeps of this item when a stage changes."""
        return {
            "key": self.item.key,
            "kind": self.item.kind.value,
            "status": self.outcome.status.value,
            "detail": self.outcome.detail % self.outcome.params,
            "attested_by": self.attestation.attested_by_name if self.attestation else None,
        }


def _holds(detail: str, **params: Any) -> Outcome:
    return Outcome(ItemStatus.holds, detail, params)


def _missing(detail: str, **params: Any) -> Outcome:
    return Outcome(ItemStatus.missing, detail, params)


def _not_measurable(detail: str) -> Outcome:
    return Outcome(ItemStatus.not_measurable, detail)


# --- computed items ---------------------------------------------------------


def objectives_and_kpis(facts: Facts) -> Outcome:
    if not facts.objectives:
        return _missing(N_("No objective is recorded yet."))
    if not facts.kpis:
        return _missing(N_("No KPI is recorded yet."))
    incomplete = [
        kpi
        for kpi in facts.kpis
        if kpi.target is None or kpi.baseline is None or kpi.owner_id is None
    ]
    if incomplete:
        return _missing(
            N_("KPIs lacking a target, a baseline or an owner: %(count)d of %(total)d."),
            count=len(incomplete),
            total=len(facts.kpis),
        )
    return _holds(
        N_("Objectives: %(objectives)d. KPIs: %(total)d, each with target, baseline and owner."),
        objectives=len(facts.objectives),
        total=len(facts.kpis),
    )


def business_measure(facts: Facts) -> Outcome:
    measures = [
        kpi for kpi in facts.kpis if (m := get_metric(kpi.metric)) and m.is_business_measure
    ]
    if not measures:
        return _missing(
            N_("No KPI is a business measure: social metrics are indicators, not measures.")
        )
    return _holds(N_("KPIs that are business measures: %(count)d."), count=len(measures))


def tracking(facts: Facts) -> Outcome:
    engagement = facts.engagement
    if engagement.utm_campaign or engagement.coupon_codes:
        return _holds(
            N_("UTM campaign: %(utm)s. Coupon codes: %(coupons)d."),
            utm=engagement.utm_campaign or "—",
            coupons=len(engagement.coupon_codes),
        )
    return _missing(N_("Set a UTM campaign or coupon codes so results can be attributed."))


def approval_policy(facts: Facts) -> Outcome:
    steps = facts.engagement.approval_policy.get("steps") or []
    if not steps:
        return _missing(N_("The approval policy has no steps."))
    for step in steps:
        roles = set(step.get("roles") or [])
        people = {str(person) for person in step.get("people") or []}
        eligible = [
            user_id
            for user_id, role in facts.brand_member_roles.items()
            if role in roles or str(user_id) in people
        ]
        if not eligible:
            return _missing(
                N_("Nobody in the brand can decide step %(step)s yet."), step=step.get("name", "?")
            )
    return _holds(N_("Approval steps: %(count)d, each with brand approvers."), count=len(steps))


def _route(facts: Facts, kind: RouteKind) -> HandoverRoute | None:
    return next((route for route in facts.routes if route.kind == kind), None)


def escalation_route(facts: Facts) -> Outcome:
    route = _route(facts, RouteKind.escalation)
    if route is None or not route.trigger:
        return _missing(
            N_("Define where negative conversations go: team, trigger, SLA and contact.")
        )
    return _holds(
        N_("To %(team)s within %(hours)d h (%(contact)s)."),
        team=route.team,
        hours=route.sla_hours,
        contact=route.contact_email,
    )


def handoff_route(facts: Facts) -> Outcome:
    route = _route(facts, RouteKind.handoff)
    if route is None:
        return _missing(N_("Define where sales opportunities go: the sales contact and SLA."))
    return _holds(
        N_("To %(team)s within %(hours)d h (%(contact)s)."),
        team=route.team,
        hours=route.sla_hours,
        contact=route.contact_email,
    )


def content_plan(facts: Facts) -> Outcome:
    engagement = facts.engagement
    if not engagement.content_calendar_url:
        return _missing(N_("Link the editorial calendar."))
    if engagement.brand_content_owner_id is None or engagement.agency_content_owner_id is None:
        return _missing(N_("Name the calendar's owner on both sides."))
    return _holds(N_("Editorial calendar with owners on both sides."))


def campaigns_tied_to_kpi(facts: Facts) -> Outcome:
    if not facts.campaigns:
        return _missing(N_("No campaign is recorded yet."))
    loose = [campaign for campaign in facts.campaigns if campaign.kpi_id is None]
    if loose:
        return _missing(
            N_("Campaigns without a KPI: %(count)d of %(total)d."),
            count=len(loose),
            total=len(facts.campaigns),
        )
    return _holds(
        N_("Every campaign is tied to a KPI (%(total)d in all)."), total=len(facts.campaigns)
    )


def initiatives_with_measure(facts: Facts) -> Outcome:
    since = facts.entered_stage_at
    new = [c for c in facts.campaigns if since is None or c.created_at >= since]
    loose = [campaign for campaign in new if campaign.kpi_id is None]
    if loose:
        return _missing(
            N_("Campaigns launched in maturity without a success measure: %(count)d."),
            count=len(loose),
        )
    return _holds(N_("Every initiative since maturity has its success measure."))


def baseline_results(facts: Facts) -> Outcome:
    if facts.results is None or not facts.results.rows:
        return _missing(N_("No results yet: import the channels' recent exports as the baseline."))
    return _holds(N_("Result rows held: %(count)d."), count=facts.results.rows)


def reporting_periods(facts: Facts) -> Outcome:
    months = facts.results.export_months if facts.results else 0
    if months < 3:
        return _missing(
            N_("Months backed by platform exports: %(months)d of the 3 needed."), months=months
        )
    return _holds(N_("Months backed by platform exports: %(months)d."), months=months)


def roi_and_far(facts: Facts) -> Outcome:
    metrics = facts.results.metrics if facts.results else frozenset()
    money = "revenue" in metrics or "roi" in metrics
    far = sorted(metric for metric in metrics if metric.startswith("far_"))
    if not money:
        return _missing(N_("No revenue or ROI reported in money yet."))
    if not far:
        return _missing(N_("No FAR measure (frequency, customer reach, yield) tracked yet."))
    return _holds(N_("Revenue or ROI reported; FAR measures tracked: %(far)d."), far=len(far))


# "The last period" of the escalations item: the 30 days before the checklist is read.
SLA_WINDOW = timedelta(days=30)


def escalations_in_sla(facts: Facts) -> Outcome:
    """Every escalation of the last 30 days taken up within its SLA (pending ones wait)."""
    counts = escalation_measures.count(facts.recent_escalations, facts.checked_at)
    if counts.breached:
        return _missing(
            N_("SLA breaches in the last 30 days: %(breached)d of %(decided)d escalations."),
            breached=counts.breached,
            decided=counts.decided,
        )
    if not counts.decided:
        if _route(facts, RouteKind.escalation) is None:
            return _missing(N_("No escalation route, and no escalations to measure yet."))
        return _holds(
            N_("No escalation was due in the last 30 days; the route is in place (%(open)d open)."),
            open=counts.pending,
        )
    return _holds(
        N_("Escalations in the last 30 days taken up within their SLA: %(met)d of %(decided)d."),
        met=counts.within_sla,
        decided=counts.decided,
    )


def _attested(item_key: str) -> Callable[[Facts], Outcome]:
    def evaluate(facts: Facts) -> Outcome:
        if any(a.item == item_key for a in facts.attestations):
            return _holds(N_("Attested."))
        return _missing(N_("Waiting for a named person to attest it."))

    return evaluate


def monitoring(facts: Facts) -> Outcome:
    if not facts.engagement.listening_places:
        return _missing(N_("Map where customers talk, forums and communities too."))
    return _attested("monitoring")(facts)


ITEMS: tuple[Item, ...] = (
    # setup → development
    Item("objectives_kpis", Transition.to_development, ItemKind.computed,
         N_("Objectives recorded; every KPI has a target, a baseline and an owner"),
         "objectives", evaluate=objectives_and_kpis),
    Item("business_measure", Transition.to_development, ItemKind.computed,
         N_("At least one KPI is a business measure"), "objectives", evaluate=business_measure),
    Item("tracking", Transition.to_development, ItemKind.computed,
         N_("Tracking in place: UTM links or coupon codes"), "tracking", evaluate=tracking),
    Item("approval_policy", Transition.to_development, ItemKind.computed,
         N_("Brand approvers and an approval policy configured"), "policy",
         evaluate=approval_policy),
    Item("usage_policy", Transition.to_development, ItemKind.attested,
         N_("Social media usage policy on file"), "usage-policy", ("brand",),
         evaluate=_attested("usage_policy")),
    Item("monitoring", Transition.to_development, ItemKind.attested,
         N_("Basic monitoring running, with a map of where customers talk"), "listening",
         ("brand", "agency"), evaluate=monitoring),
    Item("escalation_route", Transition.to_development, ItemKind.computed,
         N_("Escalation route: negative conversations to customer service"), "routes",
         evaluate=escalation_route),
    Item("handoff_route", Transition.to_development, ItemKind.computed,
         N_("Hand-off route: sales opportunities to the sales team"), "routes",
         evaluate=handoff_route),
    Item("content_plan", Transition.to_development, ItemKind.computed,
         N_("Content plan: an editorial calendar with owners on both sides"), "content-plan",
         evaluate=content_plan),
    Item("baseline_results", Transition.to_development, ItemKind.computed,
         N_("Baseline results imported"), "results", evaluate=baseline_results),
    # development → maturity
    Item("escalations_in_sla", Transition.to_maturity, ItemKind.computed,
         N_("Escalations handled within their SLA over the last period"), "routes",
         evaluate=escalations_in_sla),
    Item("advocates", Transition.to_maturity, ItemKind.attested,
         N_("Brand advocates identified and rewarded"), "attestations", ("brand",),
         evaluate=_attested("advocates")),
    Item("sentiment", Transition.to_maturity, ItemKind.attested,
         N_("Customer sentiment tracked with a listening tool"), "attestations",
         ("brand", "agency"), evaluate=_attested("sentiment")),
    Item("campaigns_kpi", Transition.to_maturity, ItemKind.computed,
         N_("Every campaign tied to a KPI"), "campaigns", evaluate=campaigns_tied_to_kpi),
    Item("reporting_periods", Transition.to_maturity, ItemKind.computed,
         N_("At least 3 reporting periods backed by platform exports; KPIs reviewed"), "results",
         evaluate=reporting_periods),
    # staying in maturity
    Item("initiatives_measured", Transition.staying, ItemKind.computed,
         N_("Each new initiative launches with its success measure"), "campaigns",
         evaluate=initiatives_with_measure),
    Item("relationships_in_house", Transition.staying, ItemKind.attested,
         N_("Customer relationships handled in-house, not by the agency"), "attestations",
         ("brand",), evaluate=_attested("relationships_in_house")),
    Item("roi_far", Transition.staying, ItemKind.computed,
         N_("ROI reported in money; FAR tracked"), "results", evaluate=roi_and_far),
)  # fmt: skip

BY_KEY = {item.key: item for item in ITEMS}
ATTESTABLE = {item.key for item in ITEMS if item.kind is ItemKind.attested}


def evaluate(facts: Facts, transition: Transition) -> list[ItemState]:
    states = []
    for item in ITEMS:
        if item.transition is not transition:
            continue
        assert item.evaluate is not None
        attestation = next((a for a in facts.attestations if a.item == item.key), None)
        states.append(ItemState(item=item, outcome=item.evaluate(facts), attestation=attestation))
    return states
