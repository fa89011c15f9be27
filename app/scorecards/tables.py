"""Scorecards and comparisons as plain tables and JSON, in the reader's language.

One place turns the computed objects into rows, so that the API's JSON, every
CSV download and the PDF say the same thing. A figure without a number carries
its reason instead; nothing here ever emits NaN or infinity.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from app.errors import N_
from app.results.metrics import BY_KEY, Unit
from app.scorecards import engine
from app.scorecards import scorecard as sc
from app.scorecards.engine import Figure
from app.scorecards.service import Comparison, SeriesPoint

Translate = Callable[[str, Mapping[str, Any] | None], str]
Table = tuple[list[str], list[list[Any]]]

MONEY_METRICS = frozenset(key for key, metric in BY_KEY.items() if metric.unit is Unit.money) | {
    "cost_per_deliverable"
}


HEADERS: dict[str, tuple[str, ...]] = {
    "Part|Low data": (
        N_("Part"),
        N_("Measure"),
        N_("Successes"),
        N_("Trials"),
        N_("Rate"),
        N_("Points"),
        N_("Low"),
        N_("High"),
        N_("Low data"),
    ),
    "Metric|Why no number": (
        N_("Metric"),
        N_("Value"),
        N_("Currency"),
        N_("Numerator"),
        N_("Denominator"),
        N_("Why no number"),
    ),
    "KPI|Why no number": (
        N_("KPI"),
        N_("Type"),
        N_("Target"),
        N_("Actual"),
        N_("Attainment"),
        N_("Why no number"),
    ),
    "From|Why no number": (
        N_("From"),
        N_("Value"),
        N_("Numerator"),
        N_("Denominator"),
        N_("Rows"),
        N_("Why no number"),
    ),
    "Agency|Low data": (
        N_("Agency"),
        N_("Engagement"),
        N_("Currency"),
        N_("Score"),
        N_("Low"),
        N_("High"),
        N_("Covered share"),
        N_("Low data"),
    ),
    "Agency|KPI attainment": (
        N_("Agency"),
        N_("Engagement"),
        N_("Month"),
        N_("KPI attainment"),
    ),
}


def number(value: Decimal | int | None, places: int = 6) -> float | int | None:
    """A JSON-safe number: ints stay ints, decimals are rounded; never NaN or infinity."""
    if value is None:
        return None
    if isinstance(value, int):
        return value
    if not value.is_finite():
        return None
    rounded = round(value, places)
    return (
        int(rounded) if rounded == rounded.to_integral_value() and places == 0 else float(rounded)
    )


def reason_of(figure: Figure, translate: Translate) -> str | None:
    if figure.reason is None:
        return None
    params = {key: translate(str(value), None) for key, value in figure.reason_params.items()}
    return translate(figure.reason, params)


def figure_json(figure: Figure, translate: Translate) -> dict[str, Any]:
    return {
        "value": number(figure.value),
        "numerator": number(figure.numerator),
        "denominator": number(figure.denominator),
        "reason": reason_of(figure, translate),
    }


def measure_name(key: str, translate: Translate) -> str:
    return translate(sc.MEASURE_NAMES[key], {"hours": sc.TURNAROUND_TARGET_HOURS})


def metric_name(key: str, language: str) -> str:
    metric = BY_KEY.get(key)
    return metric.name(language) if metric else key


# --- the engagement's scorecard ---------------------------------------------------------------


def scorecard_json(card: sc.Scorecard, translate: Translate) -> dict[str, Any]:
    e = card.engagement
    return {
        "engagement_id": str(e.id),
        "engagement": e.name,
        "currency": e.currency,
        "from": card.start.isoformat(),
        "to": card.end.isoformat(),
        "channel": card.channel,
        "score": number(card.combined.points, 1),
        "range": [number(card.combined.low, 1), number(card.combined.high, 1)],
        "covered_share": number(card.combined.covered, 4),
        "low_data": card.low_data,
        "has_data": card.has_any_data,
        "weights": card.weights,
        "weights_custom": card.weights_custom,
        "weights_used": {k: number(v, 4) for k, v in card.combined.weights_used.items()},
        "parts": [
            {
                "part": part.key,
                "name": translate(sc.PART_NAMES[part.key], None),
                "points": number(part.points, 1),
                "range": [number(part.low, 1), number(part.high, 1)],
                "covered_share": number(part.covered, 4),
                "measures": [
                    {
                        "measure": view.key,
                        "name": measure_name(view.key, translate),
                        "successes": view.successes,
                        "trials": view.trials,
                        "rate": number(view.rate),
                        "points": number(view.measure.points, 1),
                        "range": [number(view.measure.low, 1), number(view.measure.high, 1)],
                        "low_data": view.measure.low_data,
                    }
                    for view in card.measures_of(part.key)
                ],
            }
            for part in card.parts
        ],
        "kpis": [
            {
                "metric": view.kpi.metric,
                "business_measure": bool(view.metric and view.metric.is_business_measure),
                "target": number(view.target),
                "actual": figure_json(view.actual, translate),
                "attainment": figure_json(view.attainment, translate),
            }
            for view in card.kpis
        ],
        "business_kpi_share": figure_json(card.business_kpi_share, translate),
        "metrics": {
            key: figure_json(figure, translate) for key, figure in sorted(card.figures.items())
        },
        "costs": {
            "currency": card.costs.currency,
            "fees_minor": card.costs.fees_minor,
            "ad_spend_minor": card.costs.ad_spend_minor,
            "production_minor": card.costs.production_minor,
            "total_minor": card.costs.total_minor,
        },
        "measurement": {
            "rows": card.honesty.rows,
            "backed_rows": card.honesty.backed,
            "disputed_rows": card.honesty.disputed,
        },
        # The brand's side: shown beside the score, never counted in it.
        "brand_side": {
            "approval_wait_median_hours": number(card.approval_wait_median_hours, 2),
            "approval_decisions": card.approval_waits,
        },
    }


def scorecard_tables(card: sc.Scorecard, translate: Translate, language: str) -> dict[str, Table]:
    measures = [
        [
            translate(sc.PART_NAMES[view.part], None),
            measure_name(view.key, translate),
            view.successes,
            view.trials,
            number(view.rate),
            number(view.measure.points, 1),
            number(view.measure.low, 1),
            number(view.measure.high, 1),
            translate(N_("yes"), None) if view.measure.low_data else "",
        ]
        for view in card.measures
    ]
    metrics = [
        [
            metric_name(key, language),
            number(figure.value),
            card.costs.currency if key in MONEY_METRICS else "",
            number(figure.numerator),
            number(figure.denominator),
            reason_of(figure, translate) or "",
        ]
        for key, figure in sorted(card.figures.items())
    ]
    kpis = [
        [
            metric_name(view.kpi.metric, language),
            translate(N_("business measure"), None)
            if view.metric and view.metric.is_business_measure
            else translate(N_("indicator"), None),
            number(view.target),
            number(view.actual.value),
            number(view.attainment.value, 4),
            reason_of(view.attainment, translate) or reason_of(view.actual, translate) or "",
        ]
        for view in card.kpis
    ]
    return {
        "measures": (
            [translate(h, None) for h in HEADERS["Part|Low data"]],
            measures,
        ),
        "metrics": (
            [translate(h, None) for h in HEADERS["Metric|Why no number"]],
            metrics,
        ),
        "kpis": (
            [translate(h, None) for h in HEADERS["KPI|Why no number"]],
            kpis,
        ),
    }  # fmt: skip


# --- metric series ------------------------------------------------------------------------------


def series_json(
    metric: str, grain: str, points: list[SeriesPoint], translate: Translate
) -> dict[str, Any]:
    return {
        "metric": metric,
        "grain": grain,
        "points": [
            {"from": p.start.isoformat(), "rows": p.rows, **figure_json(p.figure, translate)}
            for p in points
        ],
    }


def series_table(points: list[SeriesPoint], translate: Translate) -> Table:
    header = [translate(h, None) for h in HEADERS["From|Why no number"]]
    rows = [
        [
            p.start.isoformat(),
            number(p.figure.value),
            number(p.figure.numerator),
            number(p.figure.denominator),
            p.rows,
            reason_of(p.figure, translate) or "",
        ]
        for p in points
    ]
    return header, rows


# --- comparison ---------------------------------------------------------------------------------

COMPARED = ("cpm", "cpa", "ctr", "engagement_rate_impressions", "conversion_rate", "roi", "roas")


def comparison_json(comparison: Comparison, translate: Translate) -> dict[str, Any]:
    period = comparison.period
    return {
        "organization": comparison.organization.slug,
        "from": period.start.isoformat(),
        "to": period.end.isoformat(),
        "channel": period.channel,
        "stage": period.stage,
        # Only rates and unit costs are compared, never totals.
        "rows": [
            {
                "engagement_id": str(row.engagement.id),
                "engagement": row.engagement.name,
                "counterpart": row.agency_slug,
                "counterpart_name": row.agency_name,
                "currency": row.engagement.currency,
                "score": number(row.card.combined.points, 1),
                "range": [number(row.card.combined.low, 1), number(row.card.combined.high, 1)],
                "covered_share": number(row.card.combined.covered, 4),
                "low_data": row.card.low_data,
                "parts": {part.key: number(part.points, 1) for part in row.card.parts},
                "kpi_attainment": figure_json(row.kpi_attainment, translate),
                "cost_per_deliverable_minor": figure_json(row.cost_per_deliverable, translate),
                "unit_costs_and_rates": {
                    key: figure_json(row.card.figures.get(key, engine.missing()), translate)
                    for key in COMPARED
                },
                "business_kpi_share": figure_json(row.card.business_kpi_share, translate),
                "trend": [
                    {"month": month.isoformat(), **figure_json(figure, translate)}
                    for month, figure in row.trend
                ],
            }
            for row in comparison.rows
        ],
    }


def comparison_tables(
    comparison: Comparison, translate: Translate, language: str
) -> dict[str, Table]:
    header = [translate(h, None) for h in HEADERS["Agency|Low data"]]  # fmt: skip
    header += [translate(sc.PART_NAMES[key], None) for key in engine.PARTS]
    header += [translate(N_("KPI attainment"), None), translate(N_("Cost per deliverable"), None)]
    header += [metric_name(key, language) for key in COMPARED]
    rows = []
    for row in comparison.rows:
        card = row.card
        rows.append(
            [
                row.agency_name,
                row.engagement.name,
                row.engagement.currency,
                number(card.combined.points, 1),
                number(card.combined.low, 1),
                number(card.combined.high, 1),
                number(card.combined.covered, 4),
                translate(N_("yes"), None) if card.low_data else "",
                *[number(p.points, 1) for p in card.parts],
                number(row.kpi_attainment.value, 4),
                number(row.cost_per_deliverable.value, 0),
                *[number(card.figures.get(k, engine.missing()).value) for k in COMPARED],
            ]
        )
    trend_header = [translate(h, None) for h in HEADERS["Agency|KPI attainment"]]
    trend_rows = [
        [row.agency_name, row.engagement.name, month.isoformat(), number(figure.value, 4)]
        for row in comparison.rows
        for month, figure in row.trend
    ]
    return {"agencies": (header, rows), "trend": (trend_header, trend_rows)}
