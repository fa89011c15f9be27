"""Pages: an engagement's scorecard (with its weights form and drill-downs), the brand's
comparison of its agencies, and an agency's scorecards across its clients.

Every page takes the same period picker (``from``, ``to``, ``grain``, ``channel``);
its tables download as CSV and the scorecard and comparison as a PDF report, in
the reader's language.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlmodel import Session
from starlette.datastructures import FormData

from app import web
from app.deps import PageActor, SessionDep, verify_csrf
from app.engagements.deps import PageEngagement
from app.engagements.service import EngagementAccess
from app.errors import N_, FieldError, InvalidInput, NotFound, PreconditionFailed
from app.exports import to_csv
from app.results.metrics import BY_KEY, Funnel
from app.scorecards import charts, engine, pdf, repository, service, tables
from app.scorecards import scorecard as sc
from app.scorecards.service import Comparison, Period
from app.tenancy.service import Actor

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)

From = Annotated[str | None, Query(alias="from")]
To = Annotated[str | None, Query(alias="to")]

GRAIN_NAMES = {
    "day": N_("Day"),
    "week": N_("Week"),
    "month": N_("Month"),
    "quarter": N_("Quarter"),
}
FUNNEL_NAMES = {
    Funnel.awareness: N_("Awareness"),
    Funnel.consideration: N_("Consideration"),
    Funnel.decision: N_("Decision"),
    Funnel.adoption: N_("Adoption"),
    Funnel.advocacy: N_("Advocacy"),
}
for _name, _labels in (
    ("grain_names", GRAIN_NAMES),
    ("funnel_names", FUNNEL_NAMES),
    ("part_names", sc.PART_NAMES),
):
    web.register_labels(_name, _labels)

TREND_METRICS = ("revenue", "conversions", "coupon_redemptions", "impressions", "reach")


def _translate(request: Request) -> tables.Translate:
    return lambda message, params: web.translate(request, message, params)


def _period_or_errors(
    request: Request,
    start: str | None,
    end: str | None,
    *,
    grain: str | None = None,
    channel: str | None = None,
    stage: str | None = None,
) -> tuple[Period | None, dict[str, str]]:
    try:
        return service.parse_period(start, end, grain=grain, channel=channel, stage=stage), {}
    except InvalidInput as exc:
        return None, web.field_errors_map(request, exc.field_errors)


def _period_values(start: str | None, end: str | None, **extra: str | None) -> dict[str, Any]:
    return {"from": start or "", "to": end or "", **{k: v or "" for k, v in extra.items()}}


def _shown(values: dict[str, Any], period: Period) -> dict[str, Any]:
    """The picker shows the period in force, the default one included."""
    return {**values, "from": period.start.isoformat(), "to": period.end.isoformat()}


def _month_label(day: date, language: str) -> str:
    from babel.dates import format_date

    return format_date(day, "MMM yyyy", locale=language)


# --- the engagement's scorecard --------------------------------------------------------------


def _scorecard_context(
    request: Request, db: SessionDep, granted: EngagementAccess, period: Period
) -> dict[str, Any]:
    card = service.engagement_scorecard(db, granted, period)
    language = web.request_language(request)
    months = service.bucket_starts(period.start, period.end, period.grain)
    x_labels = [(first, _label_of(first, period.grain, language)) for first, _ in months]
    wanted = [
        key
        for key in TREND_METRICS
        if any(view.kpi.metric == key for view in card.kpis)
        or card.figures.get(key, engine.missing()).value is not None
    ]
    all_points = service.metric_series_many(db, granted, wanted, period) if wanted else {}
    trend_series = [
        (key, all_points[key])
        for key in wanted
        if any(p.figure.value is not None for p in all_points[key])
    ]
    trend_tables = list(trend_series)
    trend_charts = []
    for key, points in trend_series:
        values = [p.figure.value for p in points if p.figure.value is not None]
        top = max(values) if values else Decimal(1)
        scale = _money_scale(key, card.engagement.currency)
        series = charts.Series(
            tables.metric_name(key, language),
            [
                (p.start, (p.figure.value / scale) if p.figure.value is not None else None)
                for p in points
            ],
        )
        trend_charts.append(
            (
                key,
                charts.trend(
                    [series],
                    x_labels,
                    y_max=_nice(top / scale),
                    label=tables.metric_name(key, language),
                ),
            )
        )
    funnel_rows = sc.funnel(card.kpis)
    funnel_chart = charts.bars(
        [
            (
                web.translate(request, FUNNEL_NAMES[stage]),
                [
                    (
                        tables.metric_name(view.kpi.metric, language),
                        view.attainment.value * 100 if view.attainment.value is not None else None,
                    )
                    for view in views
                ],
            )
            for stage, views in funnel_rows
            if views
        ],
        x_max=Decimal(120),
        value_format="{:.0f} %",
        reference=Decimal(100),
        label=web.translate(request, N_("KPI attainment by funnel stage")),
    )
    parts_chart = charts.bars(
        [
            (
                web.translate(request, sc.PART_NAMES[part.key]),
                [(card.engagement.name, part.points)],
            )
            for part in card.parts
        ],
        x_max=Decimal(100),
        label=web.translate(request, N_("Score by part")),
        missing_text=web.translate(request, N_("no data")),
    )
    return {
        "user": granted.actor.user,
        "access": granted,
        "e": card.engagement,
        "card": card,
        "period": period,
        "grains": service.GRAINS,
        "trend_charts": trend_charts,
        "trend_tables": trend_tables,
        "x_labels": dict(x_labels),
        "funnel_rows": funnel_rows,
        "funnel_chart": funnel_chart,
        "parts_chart": parts_chart,
        "metric_name": lambda key: tables.metric_name(key, language),
        "measure_name": lambda key: tables.measure_name(key, _translate(request)),
        "reason_of": lambda figure: tables.reason_of(figure, _translate(request)),
        "money_metrics": tables.MONEY_METRICS,
        "metrics": BY_KEY,
        "can_weigh": granted.can("engagement.edit"),
        "query": _query_of(period),
    }


def _label_of(day: date, grain: str, language: str) -> str:
    from babel.dates import format_date

    if grain == "month":
        return format_date(day, "MMM yy", locale=language)
    if grain == "quarter":
        return f"Q{(day.month - 1) // 3 + 1} {day.year}"
    return format_date(day, "d MMM", locale=language)


def _money_scale(key: str, currency: str) -> Decimal:
    from babel.numbers import get_currency_precision

    if key in tables.MONEY_METRICS:
        return Decimal(10) ** get_currency_precision(currency)
    return Decimal(1)


def _nice(value: Decimal) -> Decimal:
    """A round top for an axis: 1, 2 or 5 times a power of ten, at or above the value."""
    if value <= 0:
        return Decimal(1)
    magnitude = Decimal(10) ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _query_of(period: Period) -> dict[str, str]:
    query = {"from": period.start.isoformat(), "to": period.end.isoformat(), "grain": period.grain}
    if period.channel:
        query["channel"] = period.channel
    if period.stage:
        query["stage"] = period.stage
    return query


@router.get("/engagements/{engagement_id}/scorecard", name="engagement_scorecard")
def scorecard_page(
    request: Request,
    db: SessionDep,
    granted: PageEngagement,
    start: From = None,
    end: To = None,
    grain: str | None = None,
    channel: str | None = None,
) -> Response:
    period, errors = _period_or_errors(request, start, end, grain=grain, channel=channel)
    values = _period_values(start, end, grain=grain, channel=channel)
    if period is None:
        return web.render(
            request,
            "scorecards/scorecard.html",
            {"user": granted.actor.user, "access": granted, "e": granted.engagement,
             "card": None, "errors": errors, "values": values, "grains": service.GRAINS},
            status_code=422,
        )  # fmt: skip
    context = _scorecard_context(request, db, granted, period)
    context["values"] = _shown(values, period)
    return web.render(request, "scorecards/scorecard.html", context)


async def _form(request: Request) -> FormData:
    return await request.form()


@router.post("/engagements/{engagement_id}/scorecard/weights", name="scorecard_weights")
def save_weights(
    request: Request,
    db: SessionDep,
    granted: PageEngagement,
    form: Annotated[FormData, Depends(_form)],
) -> Response:
    period = service.parse_period(None, None)
    action = form.get("action")
    errors: dict[str, str] = {}
    try:
        with db.begin_nested():
            if action == "reset":
                service.reset_weights(db, granted)
            else:
                weights = {}
                for part in engine.PARTS:
                    raw = str(form.get(part) or "").strip()
                    if not raw.lstrip("-").isdigit():
                        raise InvalidInput(
                            field_errors=[FieldError(part, N_("Enter a whole number."))]
                        )
                    weights[part] = int(raw)
                version = str(form.get("version") or "")
                service.set_weights(
                    db,
                    granted,
                    weights,
                    expected_version=int(version) if version.isdigit() else None,
                )
    except InvalidInput as exc:
        errors = web.field_errors_map(request, exc.field_errors)
    except PreconditionFailed as exc:
        errors = {"weights": web.translate(request, exc.message)}
    if not web.is_htmx(request) and not errors:
        return web.redirect(
            request,
            str(request.url_for("engagement_scorecard", engagement_id=granted.engagement.id)),
        )
    context = _scorecard_context(request, db, granted, period)
    context.update(
        values=_period_values(None, None, grain=None, channel=None),
        errors=errors,
        weight_values={k: form.get(k) for k in engine.PARTS} if errors else None,
        saved=not errors,
    )
    return web.render(
        request, "scorecards/scorecard.html", context, status_code=422 if errors else 200
    )


# --- drill-down: the rows behind a number ---------------------------------------------------

POST_MEASURES = ("first_pass", "rounds", "rejection", "turnaround")
DELIVERY_MEASURES = ("on_time", "first_acceptance")


@router.get("/engagements/{engagement_id}/scorecard/rows", name="scorecard_rows")
def rows_page(
    request: Request,
    db: SessionDep,
    granted: PageEngagement,
    start: From = None,
    end: To = None,
    channel: str | None = None,
    measure: str | None = None,
    metric: str | None = None,
) -> Response:
    period = service.parse_period(start, end, channel=channel)
    engagement = granted.engagement
    context: dict[str, Any] = {
        "user": granted.actor.user,
        "e": engagement,
        "period": period,
        "measure": measure,
        "metric": metric,
        "query": _query_of(period),
        "metric_name": lambda key: tables.metric_name(key, web.request_language(request)),
        "measure_name": lambda key: tables.measure_name(key, _translate(request)),
        "posts": None,
        "deliverables": None,
        "escalations": None,
        "result_rows": None,
    }
    if measure in POST_MEASURES:
        posts, decisions = repository.posts_and_decisions(db, engagement, period.start, period.end)
        by_post: dict[Any, list[Any]] = {}
        for decision in decisions:
            by_post.setdefault(decision.post_id, []).append(decision)
        context["posts"] = [(post, by_post.get(post.id, [])) for post in posts]
    elif measure in DELIVERY_MEASURES:
        from app.deliverables import repository as deliverables_repository

        context["deliverables"] = deliverables_repository.due_between(
            db, engagement, period.start, period.end
        )
    elif measure == "escalations_sla":
        from app.escalations import measures as escalation_measures
        from app.escalations import repository as escalations_repository

        opened = escalations_repository.opened_between(
            db, engagement, repository.day_start(period.start), repository.day_after(period.end)
        )
        context["escalations"] = [(e, escalation_measures.sla_state(e)) for e in opened]
    elif measure in (None, "backed", "disputed", "kpi_business", "kpi_indicator") or metric:
        metrics: list[str] | None = None
        if metric:
            metrics = [metric, *sc.INPUTS.get(metric, ())]
            metrics += [key for name in _inputs_of(metric) for key in sc.INPUTS.get(name, (name,))]
        elif measure in ("kpi_business", "kpi_indicator"):
            business = measure == "kpi_business"
            metrics = [
                kpi.metric
                for kpi in repository.kpis_of(db, engagement)
                if (BY_KEY.get(kpi.metric) is not None)
                and BY_KEY[kpi.metric].is_business_measure is business
            ]
        context["result_rows"] = repository.result_rows(
            db, engagement, period.start, period.end, metrics=metrics, channel=period.channel
        )
    else:
        raise NotFound(N_("There is no such number on the scorecard."))
    return web.render(request, "scorecards/rows.html", context)


# Derived metrics: the inputs their rows come from, for the drill-down.
DERIVED_INPUTS = {
    "cpm": ("impressions", "ad_spend", "production_cost"),
    "cpi": ("impressions", "ad_spend", "production_cost"),
    "ctr": ("link_clicks", "impressions"),
    "engagement_rate_impressions": ("engagements", "impressions"),
    "engagement_rate_reach": ("engagements", "reach"),
    "conversion_rate": ("conversions", "sessions", "link_clicks"),
    "roi": ("revenue", "ad_spend", "production_cost"),
    "roas": ("revenue", "ad_spend"),
    "cpa": ("new_customers", "ad_spend", "production_cost"),
    "share_of_voice": ("brand_mentions", "competitor_mentions"),
    "positive_sentiment": ("positive_mentions", "coded_mentions"),
    "resolution_rate": ("resolved_cases", "cases"),
    "far_frequency": ("purchases", "customers"),
    "far_reach": ("new_customers", "lost_customers"),
    "far_yield": ("revenue", "transactions"),
}


def _inputs_of(metric: str) -> tuple[str, ...]:
    return DERIVED_INPUTS.get(metric, ())


# --- downloads --------------------------------------------------------------------------------


def _csv(table: tables.Table, filename: str) -> Response:
    header, rows = table
    return Response(
        to_csv(header, rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _table_csv(
    all_tables: dict[str, tables.Table], table: str, name: str, period: Period
) -> Response:
    """The table asked for, as a CSV named after it and the period; 404 for an unknown one."""
    if table not in all_tables:
        raise NotFound(N_("There is no such table."))
    return _csv(all_tables[table], f"{name}-{table}-{period.start}-{period.end}.csv")


@router.get("/engagements/{engagement_id}/scorecard.csv", name="scorecard_csv")
def scorecard_csv(
    request: Request,
    db: SessionDep,
    granted: PageEngagement,
    start: From = None,
    end: To = None,
    channel: str | None = None,
    table: str = "measures",
) -> Response:
    period = service.parse_period(start, end, channel=channel)
    card = service.engagement_scorecard(db, granted, period)
    all_tables = tables.scorecard_tables(card, _translate(request), web.request_language(request))
    return _table_csv(all_tables, table, "scorecard", period)


@router.get("/engagements/{engagement_id}/scorecard.pdf", name="scorecard_pdf")
def scorecard_pdf(
    request: Request,
    db: SessionDep,
    granted: PageEngagement,
    start: From = None,
    end: To = None,
    grain: str | None = None,
    channel: str | None = None,
) -> Response:
    period = service.parse_period(start, end, grain=grain, channel=channel)
    context = _scorecard_context(request, db, granted, period)
    content = pdf.render_pdf(request, "scorecards/scorecard_report.html", context)
    return pdf.pdf_response(content, f"scorecard-{period.start}-{period.end}.pdf")


# --- comparison ---------------------------------------------------------------------------------


def _comparison_context(request: Request, comparison: Comparison) -> dict[str, Any]:
    language = web.request_language(request)
    rows = comparison.rows
    x_labels = [(month, _month_label(month, language)) for month in comparison.months]
    name_of = {row.engagement.id: f"{row.agency_name} · {row.engagement.name}" for row in rows}
    trend_chart = charts.trend(
        [
            charts.Series(
                name_of[row.engagement.id],
                [(month, f.value * 100 if f.value is not None else None) for month, f in row.trend],
            )
            for row in rows
        ],
        x_labels,
        y_max=Decimal(120),
        y_format="{:.0f} %",
        reference=Decimal(100),
        label=web.translate(request, N_("KPI attainment per month")),
    )
    score_chart = charts.bars(
        [
            (
                web.translate(request, N_("Score")),
                [(name_of[r.engagement.id], r.card.combined.points) for r in rows],
            )
        ]
        + [
            (
                web.translate(request, sc.PART_NAMES[key]),
                [
                    (
                        name_of[r.engagement.id],
                        _part_points(r.card, key),
                    )
                    for r in rows
                ],
            )
            for key in engine.PARTS
        ],
        x_max=Decimal(100),
        label=web.translate(request, N_("Score and parts, side by side")),
        missing_text=web.translate(request, N_("no data")),
    )
    return {
        "comparison": comparison,
        "period": comparison.period,
        "rows": rows,
        "trend_chart": trend_chart,
        "score_chart": score_chart,
        "x_labels": dict(x_labels),
        "compared": tables.COMPARED,
        "metric_name": lambda key: tables.metric_name(key, language),
        "reason_of": lambda figure: tables.reason_of(figure, _translate(request)),
        "money_metrics": tables.MONEY_METRICS,
        "query": _query_of(comparison.period),
        "grains": service.GRAINS,
        "stages": list(Funnel),
    }


def _part_points(card: sc.Scorecard, key: str) -> Decimal | None:
    part = card.part(key)
    return part.points if part is not None else None


ComparisonLoader = Callable[[Session, Actor, str, Period], Comparison]


def _comparison_page(
    request: Request, db: Session, actor: Actor, org_slug: str, load: ComparisonLoader,
    *, agency_view: bool, start: str | None, end: str | None, channel: str | None,
    stage: str | None,
) -> Response:  # fmt: skip
    """The brand's comparison or the agency's scorecards: one page, two loaders."""
    values = _period_values(start, end, channel=channel, stage=stage)
    period, errors = _period_or_errors(request, start, end, channel=channel, stage=stage)
    if period is None:
        # The organization must still be the caller's: check before saying anything else.
        load(db, actor, org_slug, service.parse_period(None, None))
        return web.render(
            request,
            "scorecards/comparison.html",
            {"user": actor.user, "comparison": None, "errors": errors, "values": values,
             "org_slug": org_slug, "agency_view": agency_view, "stages": list(Funnel)},
            status_code=422,
        )  # fmt: skip
    context = _comparison_context(request, load(db, actor, org_slug, period))
    context.update(
        user=actor.user, values=_shown(values, period), org_slug=org_slug, agency_view=agency_view
    )
    return web.render(request, "scorecards/comparison.html", context)


def _comparison_csv(
    request: Request, db: Session, actor: Actor, org_slug: str, load: ComparisonLoader,
    *, name: str, start: str | None, end: str | None, channel: str | None, stage: str | None,
    table: str,
) -> Response:  # fmt: skip
    """One table of the comparison or of the agency's scorecards, as CSV."""
    period = service.parse_period(start, end, channel=channel, stage=stage)
    all_tables = tables.comparison_tables(
        load(db, actor, org_slug, period), _translate(request), web.request_language(request)
    )
    return _table_csv(all_tables, table, name, period)


@router.get("/brands/{org_slug}/comparison", name="brand_comparison")
def comparison_page(
    request: Request,
    db: SessionDep,
    actor: PageActor,
    org_slug: str,
    start: From = None,
    end: To = None,
    channel: str | None = None,
    stage: str | None = None,
) -> Response:
    return _comparison_page(
        request, db, actor, org_slug, service.compare_brand,
        agency_view=False, start=start, end=end, channel=channel, stage=stage,
    )  # fmt: skip


@router.get("/brands/{org_slug}/comparison.csv", name="brand_comparison_csv")
def comparison_csv(
    request: Request,
    db: SessionDep,
    actor: PageActor,
    org_slug: str,
    start: From = None,
    end: To = None,
    channel: str | None = None,
    stage: str | None = None,
    table: str = "agencies",
) -> Response:
    return _comparison_csv(
        request, db, actor, org_slug, service.compare_brand,
        name="comparison", start=start, end=end, channel=channel, stage=stage, table=table,
    )  # fmt: skip


@router.get("/brands/{org_slug}/comparison.pdf", name="brand_comparison_pdf")
def comparison_pdf(
    request: Request,
    db: SessionDep,
    actor: PageActor,
    org_slug: str,
    start: From = None,
    end: To = None,
    channel: str | None = None,
    stage: str | None = None,
) -> Response:
    period = service.parse_period(start, end, channel=channel, stage=stage)
    comparison = service.compare_brand(db, actor, org_slug, period)
    context = _comparison_context(request, comparison)
    context.update(user=actor.user, agency_view=False)
    content = pdf.render_pdf(request, "scorecards/comparison_report.html", context)
    return pdf.pdf_response(content, f"comparison-{period.start}-{period.end}.pdf")


@router.get("/agencies/{org_slug}/scorecards", name="agency_scorecards")
def agency_scorecards_page(
    request: Request,
    db: SessionDep,
    actor: PageActor,
    org_slug: str,
    start: From = None,
    end: To = None,
    channel: str | None = None,
) -> Response:
    return _comparison_page(
        request, db, actor, org_slug, service.agency_scorecards,
        agency_view=True, start=start, end=end, channel=channel, stage=None,
    )  # fmt: skip


@router.get("/agencies/{org_slug}/scorecards.csv", name="agency_scorecards_csv")
def agency_scorecards_csv(
    request: Request,
    db: SessionDep,
    actor: PageActor,
    org_slug: str,
    start: From = None,
    end: To = None,
    channel: str | None = None,
    table: str = "agencies",
) -> Response:
    return _comparison_csv(
        request, db, actor, org_slug, service.agency_scorecards,
        name="scorecards", start=start, end=end, channel=channel, stage=None, table=table,
    )  # fmt: skip
