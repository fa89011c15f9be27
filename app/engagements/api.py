"""JSON API: engagements, their checklist and stages, and their KPIs."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from app import idempotency
from app.audit import service as audit
from app.deps import ApiActor, IfMatch, PageParamsDep, SessionDep, etag_for, required_version
from app.engagements import service
from app.engagements.deps import ApiEngagement, ApiKpi
from app.engagements.models import Engagement, Kpi, Stage
from app.engagements.schemas import (
    ChecklistItemOut,
    ChecklistOut,
    EngagementCreate,
    EngagementOut,
    EngagementUpdate,
    KpiIn,
    KpiOut,
    KpiUpdate,
    StageChangeIn,
    StageChangeOut,
)
from app.engagements.service import Checklist
from app.errors import N_, FieldError, InvalidInput
from app.exports import to_csv
from app.idempotency import IdempotencyKey
from app.results.metrics import get_metric
from app.schemas import Page
from app.tenancy import service as tenancy
from app.tenancy.models import OrgKind

router = APIRouter(tags=["engagements"])

BrandSlug = Annotated[
    str | None,
    Header(
        alias="X-Brand",
        description="The brand opening the engagement, when the caller belongs to several.",
    ),
]


def engagement_out(db: SessionDep, engagement: Engagement) -> EngagementOut:
    brand, agency = service.parties(db, engagement)
    data = engagement.model_dump(warnings=False)  # enum columns load as plain strings
    data.update(
        brand=brand.slug,
        agency=agency.slug,
        status=service.effective_status(engagement).value,
    )
    return EngagementOut.model_validate(data)


def kpi_out(kpi: Kpi) -> KpiOut:
    metric = get_metric(kpi.metric)
    return KpiOut(
        **kpi.model_dump(exclude={"brand_id", "created_at"}, warnings=False),
        metric_name=metric.name_en if metric else kpi.metric,
        business_measure=bool(metric and metric.is_business_measure),
        unit=metric.unit.value if metric else "count",
    )


def checklist_out(result: Checklist) -> ChecklistOut:
    return ChecklistOut(
        stage=result.stage,
        transition=result.transition.value,
        next_stage=result.next_stage,
        holds=result.holds,
        items=[
            ChecklistItemOut(
                key=state.item.key,
                label=state.item.label,
                kind=state.item.kind.value,
                status=state.outcome.status.value,
                detail=state.outcome.detail % state.outcome.params,
                fix=state.item.fix,
                attested_by=state.attestation.attested_by_name if state.attestation else None,
                attested_at=state.attestation.attested_at if state.attestation else None,
                note=state.attestation.note if state.attestation else None,
            )
            for state in result.items
        ],
    )


@router.get("/engagements", response_model=Page[EngagementOut], summary="Engagements you can see")
def list_engagements(db: SessionDep, actor: ApiActor, page: PageParamsDep) -> Page[EngagementOut]:
    summaries, total = service.list_engagements(db, actor, limit=page.limit, offset=page.offset)
    return Page(
        items=[engagement_out(db, s.engagement) for s in summaries],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.post(
    "/engagements",
    response_model=EngagementOut,
    status_code=201,
    summary="Open an engagement with an agency (brand owners and leads)",
)
def open_engagement(
    request: Request,
    db: SessionDep,
    actor: ApiActor,
    body: EngagementCreate,
    idempotency_key: IdempotencyKey = None,
    brand: BrandSlug = None,
) -> JSONResponse:
    brand_slug = brand or _only_brand(db, actor)

    def create() -> tuple[int, object, dict[str, str]]:
        engagement = service.open_engagement(db, actor, brand_slug=brand_slug, data=body)
        payload = engagement_out(db, engagement).model_dump(mode="json")
        return 201, payload, {"ETag": etag_for(engagement.version)}

    return idempotency.create_once(
        db,
        user_id=actor.user.id,
        key=idempotency_key,
        method="POST",
        path=request.url.path,
        payload=body,
        create=create,
    )


def _only_brand(db: SessionDep, actor: ApiActor) -> str:
    brands = [
        org.slug
        for _membership, org in tenancy.organizations_of(db, actor.user)
        if org.id in actor.org_ids and org.kind == OrgKind.brand
    ]
    if len(brands) != 1:
        raise InvalidInput(
            field_errors=[FieldError("X-Brand", N_("Say which brand opens the engagement."))]
        )
    return brands[0]


@router.get("/engagements/{engagement_id}", response_model=EngagementOut, summary="One engagement")
def get_engagement(response: Response, db: SessionDep, granted: ApiEngagement) -> EngagementOut:
    response.headers["ETag"] = etag_for(granted.engagement.version)
    return engagement_out(db, granted.engagement)


@router.patch(
    "/engagements/{engagement_id}",
    response_model=EngagementOut,
    summary="Change an engagement (brand owners and leads; If-Match required)",
)
def update_engagement(
    response: Response,
    db: SessionDep,
    granted: ApiEngagement,
    body: EngagementUpdate,
    if_match: IfMatch = None,
) -> EngagementOut:
    engagement = service.update(db, granted, expected_version=required_version(if_match), data=body)
    response.headers["ETag"] = etag_for(engagement.version)
    return engagement_out(db, engagement)


@router.post(
    "/engagements/{engagement_id}/accept",
    response_model=EngagementOut,
    summary="Accept a proposed engagement (agency owners and managers)",
)
def accept(db: SessionDep, granted: ApiEngagement) -> EngagementOut:
    return engagement_out(db, service.respond(db, granted, accept=True))


@router.post(
    "/engagements/{engagement_id}/decline",
    response_model=EngagementOut,
    summary="Decline a proposed engagement (agency owners and managers)",
)
def decline(db: SessionDep, granted: ApiEngagement) -> EngagementOut:
    return engagement_out(db, service.respond(db, granted, accept=False))


@router.get(
    "/engagements/{engagement_id}/checklist",
    response_model=ChecklistOut,
    summary="The checklist that gates leaving the current stage",
)
def get_checklist(
    db: SessionDep, granted: ApiEngagement, stage: Stage | None = None
) -> ChecklistOut:
    return checklist_out(service.stage_checklist(db, granted, stage))


@router.post(
    "/engagements/{engagement_id}/stage",
    response_model=StageChangeOut,
    summary="Change stage: 409 lists the unmet items unless a reason overrides them",
)
def change_stage(db: SessionDep, granted: ApiEngagement, body: StageChangeIn) -> StageChangeOut:
    change = service.change_stage(db, granted, to=body.to, reason=body.reason)
    return StageChangeOut(
        id=change.id,
        from_stage=change.from_stage,
        to_stage=change.to_stage,
        overridden=change.overridden,
        reason=change.reason,
        actor=change.actor_name,
        at=change.at,
    )


@router.get(
    "/engagements/{engagement_id}/stages",
    response_model=list[StageChangeOut],
    summary="The stage timeline, newest first",
)
def stage_timeline(db: SessionDep, granted: ApiEngagement) -> list[StageChangeOut]:
    stage_changes = service.stage_timeline(db, granted)
    return [
        StageChangeOut(
            id=c.id,
            from_stage=c.from_stage,
            to_stage=c.to_stage,
            overridden=c.overridden,
            reason=c.reason,
            actor=c.actor_name,
            at=c.at,
        )
        for c in stage_changes
    ]


@router.get(
    "/engagements/{engagement_id}/kpis",
    response_model=list[KpiOut],
    summary="The engagement's KPIs",
)
def list_kpis(db: SessionDep, granted: ApiEngagement) -> list[KpiOut]:
    return [kpi_out(k) for k in service.kpis_of(db, granted)]


@router.post(
    "/engagements/{engagement_id}/kpis",
    response_model=KpiOut,
    status_code=201,
    summary="Add a KPI (brand owners and leads)",
)
def add_kpi(
    request: Request,
    db: SessionDep,
    actor: ApiActor,
    granted: ApiEngagement,
    body: KpiIn,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    def create() -> tuple[int, object, dict[str, str]]:
        kpi = service.add_kpi(db, granted, body)
        return 201, kpi_out(kpi).model_dump(mode="json"), {"ETag": etag_for(kpi.version)}

    return idempotency.create_once(
        db,
        user_id=actor.user.id,
        key=idempotency_key,
        method="POST",
        path=request.url.path,
        payload=body,
        create=create,
    )


@router.get("/kpis/{kpi_id}", response_model=KpiOut, summary="One KPI")
def get_kpi(response: Response, found: ApiKpi) -> KpiOut:
    kpi, granted = found
    granted.require("engagement.read")
    response.headers["ETag"] = etag_for(kpi.version)
    return kpi_out(kpi)


@router.patch("/kpis/{kpi_id}", response_model=KpiOut, summary="Change a KPI (If-Match required)")
def update_kpi(
    response: Response, db: SessionDep, found: ApiKpi, body: KpiUpdate, if_match: IfMatch = None
) -> KpiOut:
    kpi, granted = found
    granted.require("engagement.edit")
    updated = service.update_kpi(
        db, granted, kpi, expected_version=required_version(if_match), data=body
    )
    response.headers["ETag"] = etag_for(updated.version)
    return kpi_out(updated)


@router.delete("/kpis/{kpi_id}", status_code=204, summary="Remove a KPI (If-Match required)")
def delete_kpi(db: SessionDep, found: ApiKpi, if_match: IfMatch = None) -> Response:
    kpi, granted = found
    granted.require("engagement.edit")
    service.delete_kpi(db, granted, kpi, expected_version=required_version(if_match))
    return Response(status_code=204)


@router.get(
    "/engagements/{engagement_id}/archive",
    summary="Download everything the engagement holds (zip of JSON and CSV; the brand only)",
    response_class=Response,
)
def download_archive(db: SessionDep, granted: ApiEngagement) -> Response:
    filename, content = service.archive(db, granted)
    return Response(
        content,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/engagements/{engagement_id}/audit",
    summary="The engagement's hash-chained audit record (format=json or csv)",
    response_class=Response,
)
def audit_record(
    db: SessionDep,
    granted: ApiEngagement,
    format: Annotated[Literal["json", "csv"], Query(description="json or csv")] = "json",
) -> Response:
    record = service.audit_record(db, granted)
    rows = audit.rows_for_export(record.entries)
    if format == "csv":
        return Response(
            to_csv(list(audit.AUDIT_COLUMNS), rows),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="audit-{granted.engagement.id}.csv"'
            },
        )
    body = {
        "engagement_id": str(granted.engagement.id),
        "verified": record.verification.ok,
        "broken_at": record.verification.broken_at,
        "length": record.verification.length,
        "head_hash": record.verification.head_hash,
        "entries": [dict(zip(audit.AUDIT_COLUMNS, row, strict=True)) for row in rows],
    }
    return JSONResponse(body)


@router.get(
    "/engagements/{engagement_id}/audit/checkpoint",
    summary="A signed checkpoint of the audit record (the brand keeps it)",
)
def audit_checkpoint(db: SessionDep, granted: ApiEngagement) -> dict[str, object]:
    return service.audit_checkpoint(db, granted)
