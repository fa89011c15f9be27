"""JSON API: result rows, their verification, and file imports."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, File, Query, Request, UploadFile
from fastapi.responses import JSONResponse
from sqlmodel import Session

from app import web
from app.deps import PageParamsDep, SessionDep
from app.engagements.deps import ApiEngagement
from app.errors import N_, NotFound
from app.results import imports, repository, service
from app.results.deps import ApiResult
from app.results.models import ResultImport, ResultRow, ResultStatus
from app.results.rules import Problem
from app.results.schemas import (
    BATCH_DESCRIPTION,
    DisputeIn,
    DryRunOut,
    ImportOut,
    MappingOut,
    ProblemOut,
    ReportOut,
    ResultIn,
    ResultOut,
)
from app.results.service import MAX_API_ROWS, RowsRefused
from app.schemas import Page

router = APIRouter(tags=["results"])


def result_out(row: ResultRow) -> ResultOut:
    data = row.model_dump(warnings=False)
    data["status"] = str(row.status)
    return ResultOut.model_validate(data)


def problems_out(
    request: Request, problems: list[Problem] | list[dict[str, Any]]
) -> list[dict[str, Any]]:
    out = []
    for problem in problems:
        item = problem.as_dict() if isinstance(problem, Problem) else problem
        out.append(
            {
                "line": item.get("line"),
                "column": item.get("column"),
                "message": web.translate(request, item["message"], item.get("params") or {}),
            }
        )
    return out


def import_out(request: Request, record: ResultImport) -> ImportOut:
    data = record.model_dump(warnings=False)
    state, done, total = imports.progress_of(record)
    data.update(state=state, rows_done=done, rows_total=total)
    data["problems"] = problems_out(request, record.problems)
    return ImportOut.model_validate(data)


def _refused(request: Request, exc: RowsRefused) -> RowsRefused:
    exc.extra = {"problems": problems_out(request, exc.problems), "problem_count": exc.total}
    return exc


@router.get(
    "/engagements/{engagement_id}/results",
    response_model=Page[ResultOut],
    summary="The engagement's current result rows (newest period first)",
)
def list_results(
    db: SessionDep,
    granted: ApiEngagement,
    page: PageParamsDep,
    metric: Annotated[str | None, Query(max_length=48)] = None,
    period_start: date | None = None,
    status: ResultStatus | None = None,
    post_id: uuid.UUID | None = None,
) -> Page[ResultOut]:
    rows, total = service.list_rows(
        db,
        granted,
        metric=metric,
        period_start=period_start,
        status=status,
        post_id=post_id,
        limit=page.limit,
        offset=page.offset,
    )
    return Page(
        items=[result_out(row) for row in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.post(
    "/engagements/{engagement_id}/results",
    response_model=ReportOut,
    summary="Report result rows (the agency); idempotent on the row key, changes make revisions",
)
def report_results(
    request: Request,
    db: SessionDep,
    granted: ApiEngagement,
    body: Annotated[list[ResultIn], Body(max_length=MAX_API_ROWS, description=BATCH_DESCRIPTION)],
) -> ReportOut:
    try:
        # The validated models go to the checks as they are: they carry every field a row
        # needs, and a copy of each (dump, then a dataclass) cost as much as the checks.
        counts = service.report(db, granted, body, source="api")
    except RowsRefused as exc:
        raise _refused(request, exc) from None
    return ReportOut(created=counts.created, revised=counts.revised, unchanged=counts.unchanged)


def _dry_run_out(preview: imports.Preview, request: Request) -> DryRunOut:
    return DryRunOut(
        format=preview.format,
        format_label=preview.label,
        mapping=[MappingOut(column=column, target=target) for column, target in preview.mapping],
        preview=[_preview_row(item) for item in preview.rows],
        rows=preview.row_count or 0,
        problem_count=preview.problem_count,
        problems=[ProblemOut(**item) for item in problems_out(request, preview.problems)],
    )


def _preview_row(item: Any) -> dict[str, object]:
    if hasattr(item, "metric"):
        return {
            "line": item.line,
            "channel": item.channel,
            "metric": item.metric,
            "platform_metric": item.platform_metric,
            "period_start": item.period_start.isoformat(),
            "period_end": item.period_end.isoformat(),
            "value": str(item.value),
            "currency": item.currency,
            "post_ref": item.post_ref,
        }
    return {"line": item.line, "column": item.column, "problem": item.message}


@router.post(
    "/engagements/{engagement_id}/results/import",
    summary="Import a platform export (multipart); dry_run=true previews and checks only",
    responses={
        200: {"model": DryRunOut, "description": "dry run, or the same file imported before"},
        202: {"model": ImportOut, "description": "queued: poll the import"},
    },
)
def import_results(
    request: Request,
    db: SessionDep,
    granted: ApiEngagement,
    file: Annotated[UploadFile, File(description="The export: CSV, XLS(X) or ZIP.")],
    dry_run: bool = False,
) -> JSONResponse:
    granted.require("result.report")
    settings = web.settings_of(request)
    received = imports.receive(settings, file.file, file.size)
    filename = file.filename or "export"
    if dry_run:
        try:
            preview = imports.dry_run(db, granted, received.path, filename)
        finally:
            received.path.unlink(missing_ok=True)
        return JSONResponse(_dry_run_out(preview, request).model_dump(mode="json"))
    record = imports.create(db, granted, received, filename, start=True)
    status_code = 200 if record.state == "duplicate" else 202
    body = import_out(request, record).model_dump(mode="json")
    if record.state == "duplicate":
        body["detail"] = web.translate(
            request, N_("This file was already imported into this engagement: nothing to do.")
        )
    return JSONResponse(body, status_code=status_code)


def _import_of(db: Session, granted: Any, import_id: uuid.UUID) -> ResultImport:
    record = repository.get_import(db, granted.engagement, import_id)
    if record is None:
        raise NotFound(N_("No import here, or it is not yours."))
    return record


@router.get(
    "/engagements/{engagement_id}/results/imports/{import_id}",
    response_model=ImportOut,
    summary="An import's state and progress",
)
def get_import(
    request: Request, db: SessionDep, granted: ApiEngagement, import_id: uuid.UUID
) -> ImportOut:
    granted.require("engagement.read")
    return import_out(request, _import_of(db, granted, import_id))


@router.post(
    "/results/{result_id}/verify",
    response_model=ResultOut,
    summary="Verify a row (the brand)",
)
def verify(db: SessionDep, found: ApiResult) -> ResultOut:
    return result_out(service.set_status(db, found, ResultStatus.verified))


@router.post(
    "/results/{result_id}/dispute",
    response_model=ResultOut,
    summary="Dispute a row with a reason (the brand); excluded from scores until settled",
)
def dispute(db: SessionDep, found: ApiResult, body: DisputeIn) -> ResultOut:
    return result_out(service.set_status(db, found, ResultStatus.disputed, body.reason))
