"""JSON API of scorecards, metric series and comparisons; each as CSV too (Accept: text/csv)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from app import web
from app.deps import ApiActor, SessionDep
from app.engagements.deps import ApiEngagement
from app.exports import to_csv
from app.scorecards import service, tables

router = APIRouter(tags=["scorecards"])

From = Annotated[
    str | None,
    Query(alias="from", description="First day, YYYY-MM-DD (default: 90 days before `to`)."),
]
To = Annotated[str | None, Query(alias="to", description="Last day, YYYY-MM-DD (default: today).")]
Channel = Annotated[str | None, Query(description="Only this channel (e.g. instagram).")]


def _translator(request: Request) -> tables.Translate:
    return lambda message, params: web.translate(request, message, params)


def wants_csv(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/csv" in accept and "application/json" not in accept.split(",")[0]


def csv_response(table: tables.Table, filename: str) -> Response:
    header, rows = table
    return Response(
        to_csv(header, rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Vary": "Accept"},
    )


def json_response(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, headers={"Vary": "Accept"})


@router.get(
    "/engagements/{engagement_id}/scorecard",
    summary="The engagement's scorecard over a period (JSON, or CSV of its measures)",
    response_class=JSONResponse,
)
def scorecard(
    request: Request,
    db: SessionDep,
    granted: ApiEngagement,
    start: From = None,
    end: To = None,
    channel: Channel = None,
) -> Response:
    period = service.parse_period(start, end, channel=channel)
    card = service.engagement_scorecard(db, granted, period)
    translate = _translator(request)
    if wants_csv(request):
        table = tables.scorecard_tables(card, translate, web.request_language(request))["measures"]
        return csv_response(table, f"scorecard-{granted.engagement.id}.csv")
    return json_response(tables.scorecard_json(card, translate))


@router.get(
    "/engagements/{engagement_id}/metrics",
    summary="One metric of the engagement per day, week, month or quarter",
    response_class=JSONResponse,
)
def metrics(
    request: Request,
    db: SessionDep,
    granted: ApiEngagement,
    metric: Annotated[str | None, Query(description="A key of the metric dictionary.")] = None,
    grain: Annotated[str | None, Query(description="day, week, month or quarter.")] = None,
    start: From = None,
    end: To = None,
    channel: Channel = None,
) -> Response:
    period = service.parse_period(start, end, grain=grain or "month", channel=channel)
    key = service.parse_metric(metric)
    points = service.metric_series(db, granted, key, period)
    translate = _translator(request)
    if wants_csv(request):
        return csv_response(
            tables.series_table(points, translate), f"{key}-{granted.engagement.id}.csv"
        )
    return json_response(tables.series_json(key, period.grain, points, translate))


@router.get(
    "/brands/{org_slug}/comparison",
    summary="The brand's agencies side by side: scores, parts, rates and unit costs (brand leads)",
    response_class=JSONResponse,
)
def comparison(
    request: Request,
    db: SessionDep,
    actor: ApiActor,
    org_slug: str,
    start: From = None,
    end: To = None,
    channel: Channel = None,
    stage: Annotated[str | None, Query(description="Funnel stage: awareness … advocacy.")] = None,
) -> Response:
    period = service.parse_period(start, end, channel=channel, stage=stage)
    compared = service.compare_brand(db, actor, org_slug, period)
    translate = _translator(request)
    if wants_csv(request):
        table = tables.comparison_tables(compared, translate, web.request_language(request))
        return csv_response(table["agencies"], f"comparison-{org_slug}.csv")
    return json_response(tables.comparison_json(compared, translate))


@router.get(
    "/agencies/{org_slug}/scorecards",
    summary="The agency's own scorecards across its clients",
    response_class=JSONResponse,
)
def agency_scorecards(
    request: Request,
    db: SessionDep,
    actor: ApiActor,
    org_slug: str,
    start: From = None,
    end: To = None,
    channel: Channel = None,
) -> Response:
    period = service.parse_period(start, end, channel=channel)
    compared = service.agency_scorecards(db, actor, org_slug, period)
    translate = _translator(request)
    if wants_csv(request):
        table = tables.comparison_tables(compared, translate, web.request_language(request))
        return csv_response(table["agencies"], f"scorecards-{org_slug}.csv")
    return json_response(tables.comparison_json(compared, translate))
