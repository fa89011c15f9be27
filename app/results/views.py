"""Pages: an engagement's results, the period form, and the import wizard.

Verify, dispute and matching post in place (HTMX) and get the page's ``result_rows``
or ``unmatched`` block back; the import page polls its ``import_status`` block while
the import runs. Without JavaScript every form posts and redirects back.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from babel.numbers import get_currency_precision
from fastapi import APIRouter, Depends, File, Request, UploadFile
from fastapi.responses import Response
from sqlmodel import Session
from starlette.datastructures import FormData

from app import web
from app.db import utcnow
from app.deps import BrowserDep, SessionDep, set_flash, verify_csrf
from app.engagements import repository as engagements_repository
from app.engagements.deps import PageEngagement
from app.engagements.models import Kpi
from app.engagements.service import EngagementAccess
from app.errors import N_, Conflict, InvalidInput, NotFound
from app.exports import to_csv
from app.i18n import format_money, format_number
from app.results import imports, repository, service
from app.results.deps import PageResult
from app.results.metrics import BY_KEY, METRICS, Unit
from app.results.models import ImportState, ResultImport, ResultRow, ResultStatus
from app.results.service import ApiRow, RowsRefused

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)

ROWS_PER_PAGE = 50
# The period form offers these first; the engagement's KPI metrics join them.
FORM_METRICS = (
    "impressions",
    "reach",
    "engagement_rate_reach",
    "ctr",
    "conversions",
    "coupon_redemptions",
    "revenue",
)
STATUS_NAMES = {
    ResultStatus.reported: N_("Reported"),
    ResultStatus.verified: N_("Verified"),
    ResultStatus.disputed: N_("Disputed"),
}
IMPORT_STATE_NAMES = {
    ImportState.uploaded: N_("Waiting for your confirmation"),
    ImportState.queued: N_("Queued"),
    ImportState.validating: N_("Checking every row"),
    ImportState.writing: N_("Writing"),
    ImportState.done: N_("Imported"),
    ImportState.refused: N_("Refused: nothing was written"),
    ImportState.failed: N_("Failed: nothing was written"),
    ImportState.duplicate: N_("Already imported: nothing to do"),
}
SOURCE_NAMES = {
    "form": N_("typed in the form"),
    "api": N_("sent through the API"),
    "mixed": N_("several sources"),
}
web.register_labels("result_status_names", STATUS_NAMES)
web.register_labels("import_state_names", IMPORT_STATE_NAMES)
web.register_labels("result_source_names", SOURCE_NAMES)
web.register_labels(
    "target_names",
    {"period": N_("period"), "channel": N_("channel"), "post_ref": N_("post"),
     "ignored": N_("not used")},
)  # fmt: skip


def result_value(value: Any, metric: str, currency: str | None, language: str = "en") -> str:
    """A stored value the way a person reads it: money in major units, rates as %."""
    if value is None:
        return "—"
    number = Decimal(value)
    definition = BY_KEY.get(metric)
    unit = definition.unit if definition else Unit.quantity
    if unit is Unit.money and currency:
        return format_money(int(number), currency, language, get_currency_precision(currency))
    if unit is Unit.percent:
        return format_number(round(float(number) * 100, 2), language) + " %"
    if unit is Unit.minutes:
        return format_number(round(float(number), 1), language) + " min"
    if unit is Unit.quantity:
        return format_number(int(number), language)
    return format_number(round(float(number), 2), language)


def _result_value_filter(value: Any, metric: str, currency: str | None = None) -> str:
    return result_value(value, metric, currency, web._language.get())


web.environment.filters["result_value"] = _result_value_filter


def _metric_names(request: Request) -> dict[str, str]:
    language = web.request_language(request)
    return {metric.key: metric.name(language) for metric in METRICS}


def _previous_month(today: date) -> tuple[date, date]:
    end = today.replace(day=1) - timedelta(days=1)
    return end.replace(day=1), end


def _filters(request: Request) -> dict[str, Any]:
    query = request.query_params
    metric = query.get("metric") or None
    status = query.get("status") or None
    try:
        month = (
            service.month_of(date.fromisoformat(query["month"] + "-01"))
            if query.get("month")
            else None
        )
    except ValueError:
        month = None
    try:
        offset = max(int(query.get("offset") or 0), 0)
    except ValueError:
        offset = 0
    return {
        "metric": metric if metric in BY_KEY else None,
        "status": status if status in {s.value for s in ResultStatus} else None,
        "month": month,
        "offset": offset,
    }


def _rows_context(
    request: Request, db: Session, granted: EngagementAccess, filters: dict[str, Any]
) -> dict[str, Any]:
    rows, total = service.list_rows(
        db,
        granted,
        metric=filters["metric"],
        month=filters["month"],
        status=ResultStatus(filters["status"]) if filters["status"] else None,
        limit=ROWS_PER_PAGE,
        offset=filters["offset"],
    )
    import_ids = {row.import_id for row in rows if row.import_id}
    imports_by_id = {
        record.id: record
        for record in repository.imports_of(db, granted.engagement, limit=200)
        if record.id in import_ids
    }
    people = repository.people_named(
        db, {row.reported_by_id for row in rows} | {row.status_by_id for row in rows}
    )
    return {
        "user": granted.actor.user,
        "engagement": granted.engagement,
        "rows": rows,
        "rows_total": total,
        "filters": filters,
        "per_page": ROWS_PER_PAGE,
        "imports_by_id": imports_by_id,
        "people": people,
        "metric_names": _metric_names(request),
        "may_verify": granted.can("result.verify"),
        "may_report": granted.can("result.report"),
        "row_messages": {},
    }


def _unmatched_context(db: Session, granted: EngagementAccess) -> dict[str, Any]:
    refs, total = repository.unmatched_refs(db, granted.engagement)
    return {
        "unmatched": refs,
        "unmatched_total": total,
        "posts": repository.posts_of(db, granted.engagement),
        "match_message": None,
    }


def _page_context(
    request: Request, db: Session, granted: EngagementAccess, **extra: Any
) -> dict[str, Any]:
    engagement = granted.engagement
    filters = _filters(request)
    context = _rows_context(request, db, granted, filters)
    context.update(_unmatched_context(db, granted))
    table = service.table(db, engagement)
    metrics_in_table = sorted(
        {metric for by_metric in table.values() for metric in by_metric},
        key=lambda key: [m.key for m in METRICS].index(key) if key in BY_KEY else 99,
    )
    kpi_metrics = [kpi.metric for kpi in engagements_repository.rows_of(db, Kpi, engagement)]
    form_metrics = list(dict.fromkeys([*kpi_metrics, *FORM_METRICS]))
    start, end = _previous_month(utcnow().date())
    context.update(
        table=table,
        table_metrics=metrics_in_table,
        headline=service.headline(db, engagement),
        imports=repository.imports_of(db, engagement, limit=10),
        form_metrics=[key for key in form_metrics if key in BY_KEY],
        units={metric.key: metric.unit.value for metric in METRICS},
        form_values={"period_start": start.isoformat(), "period_end": end.isoformat()},
        form_errors={},
        form_message=None,
        max_import_mb=imports.max_mb(web.settings_of(request)),
        channels=engagement.channels,
    )
    context.update(extra)
    return context


@router.get("/engagements/{engagement_id}/results", name="engagement_results")
def results_page(request: Request, db: SessionDep, granted: PageEngagement) -> Response:
    granted.require("engagement.read")
    if web.is_htmx(request) and request.headers.get("hx-target") == "result-rows":
        context = _rows_context(request, db, granted, _filters(request))
    else:
        context = _page_context(request, db, granted)
    return web.render(request, "results/results.html", context)


async def form_data(request: Request) -> FormData:
    return await request.form()


FormDep = Annotated[FormData, Depends(form_data)]


def _form_number(raw: str, language: str) -> Decimal:
    """A number as people type it: "1.234,50" and "1,234.50" alike; a lone comma is the
    decimal mark in Spanish ("3,5") and a thousands separator in English ("12,000")."""
    text = raw.strip().replace(" ", "").replace("\u00a0", "").replace("%", "")
    if "," in text and "." in text:
        decimal_mark = "," if text.rindex(",") > text.rindex(".") else "."
    elif "," in text:
        decimal_mark = "," if language == "es" else "."
    else:
        decimal_mark = "."
    thousands = "." if decimal_mark == "," else ","
    return Decimal(text.replace(thousands, "").replace(decimal_mark, "."))


def _form_rows(
    form: FormData, currency: str, language: str
) -> tuple[list[ApiRow], list[str], dict[str, str]]:
    """The period form's numbers as rows, in the stored units; field errors by name."""
    errors: dict[str, str] = {}
    try:
        start = date.fromisoformat(str(form.get("period_start") or ""))
    except ValueError:
        errors["period_start"] = N_("Enter a date as YYYY-MM-DD.")
    try:
        end = date.fromisoformat(str(form.get("period_end") or ""))
    except ValueError:
        errors["period_end"] = N_("Enter a date as YYYY-MM-DD.")
    channel = str(form.get("channel") or "")
    rows: list[ApiRow] = []
    fields: list[str] = []
    for name, raw in form.multi_items():
        if not name.startswith("metric_") or not isinstance(raw, str) or not raw.strip():
            continue
        key = name.removeprefix("metric_")
        metric = BY_KEY.get(key)
        if metric is None:
            continue
        try:
            number = _form_number(raw, language)
            if not number.is_finite():
                raise InvalidOperation
        except InvalidOperation:
            errors[name] = N_("Enter a number.")
            continue
        if metric.unit is Unit.money:
            number = number * 10 ** get_currency_precision(currency)
        elif metric.unit is Unit.percent:
            number = number / 100
        if errors.get("period_start") or errors.get("period_end"):
            continue
        rows.append(
            ApiRow(channel=channel, metric=key, period_start=start, period_end=end, value=number)
        )
        fields.append(name)
    if not rows and not errors:
        errors["form"] = N_("Enter at least one number.")
    return rows, fields, errors


@router.post("/engagements/{engagement_id}/results", name="report_results_form")
def report_form(
    request: Request, db: SessionDep, browser: BrowserDep, granted: PageEngagement, form: FormDep
) -> Response:
    granted.require("result.report")
    rows, fields, errors = _form_rows(
        form, granted.engagement.currency, web.request_language(request)
    )
    message = None
    if not errors:
        try:
            with db.begin_nested():
                counts = service.report(db, granted, rows, source="form")
        except RowsRefused as exc:
            for problem in exc.problems:
                field = fields[problem.line - 1] if problem.line else "form"
                errors[field] = web.translate(request, problem.message, problem.params)
        else:
            message = web.translate(
                request,
                N_("Saved: %(created)d new, %(revised)d changed, %(unchanged)d unchanged."),
                {"created": counts.created, "revised": counts.revised,
                 "unchanged": counts.unchanged},
            )  # fmt: skip
    if errors:
        translated = {
            name: web.translate(request, text) if name not in errors or " " in text else text
            for name, text in errors.items()
        }
        values = {name: str(value) for name, value in form.multi_items() if name != "csrf_token"}
        context = _page_context(
            request,
            db,
            granted,
            form_values=values,
            form_errors=translated,
            form_message=web.translate(request, N_("Nothing was saved: check the numbers below.")),
        )
        return web.render(request, "results/results.html", context, status_code=422)
    set_flash(db, browser, message or "")
    return web.redirect(request, f"/engagements/{granted.engagement.id}/results")


# --- verify, dispute -----------------------------------------------------------------


def _status_change(
    request: Request, db: Session, found: service.ResultAccess, status: ResultStatus, reason: str
) -> Response:
    message = None
    try:
        with db.begin_nested():
            service.set_status(db, found, status, reason)
    except (InvalidInput, Conflict) as exc:
        errors = web.field_errors_map(request, exc.field_errors)
        message = " ".join(errors.values()) or web.translate(request, exc.message, exc.params)
    if not web.is_htmx(request):
        if message:
            raise InvalidInput(message)
        return web.redirect(request, f"/engagements/{found.granted.engagement.id}/results")
    context = _rows_context(request, db, found.granted, _filters(request))
    if message:
        context["row_messages"] = {found.row.id: message}
    return web.render(request, "results/results.html", context, status_code=422 if message else 200)


@router.post("/results/{result_id}/verify", name="verify_result")
def verify(request: Request, db: SessionDep, found: PageResult) -> Response:
    return _status_change(request, db, found, ResultStatus.verified, "")


@router.post("/results/{result_id}/dispute", name="dispute_result")
def dispute(request: Request, db: SessionDep, found: PageResult, form: FormDep) -> Response:
    return _status_change(request, db, found, ResultStatus.disputed, str(form.get("reason") or ""))


# --- posts ↔ results -------------------------------------------------------------------


def _post_id(form: FormData) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(form.get("post_id") or ""))
    except ValueError:
        return None


@router.post("/engagements/{engagement_id}/results/match", name="match_results")
def match(request: Request, db: SessionDep, granted: PageEngagement, form: FormDep) -> Response:
    granted.require("result.report")
    post_id = _post_id(form)
    message = None
    try:
        if post_id is None:
            raise InvalidInput(N_("Choose one of the posts."))
        with db.begin_nested():
            service.match(db, granted, str(form.get("post_ref") or ""), post_id)
    except (InvalidInput, Conflict) as exc:
        errors = web.field_errors_map(request, exc.field_errors)
        message = " ".join(errors.values()) or web.translate(request, exc.message, exc.params)
    if not web.is_htmx(request):
        if message:
            raise InvalidInput(message)
        return web.redirect(request, f"/engagements/{granted.engagement.id}/results#unmatched")
    context = {"engagement": granted.engagement, **_unmatched_context(db, granted)}
    context["match_message"] = message
    context["may_report"] = True
    return web.render(request, "results/results.html", context, status_code=422 if message else 200)


@router.post("/engagements/{engagement_id}/results/publication", name="record_publication")
def publication(
    request: Request, db: SessionDep, browser: BrowserDep, granted: PageEngagement, form: FormDep
) -> Response:
    granted.require("result.report")
    post_id = _post_id(form)
    if post_id is None:
        raise InvalidInput(N_("Choose one of the posts."))
    try:
        with db.begin_nested():
            post, matched = service.record_publication(
                db,
                granted,
                post_id,
                str(form.get("permalink") or ""),
                str(form.get("platform_post_id") or ""),
            )
    except InvalidInput as exc:
        errors = web.field_errors_map(request, exc.field_errors)
        raise InvalidInput(" ".join(errors.values()) or exc.message, params=exc.params) from None
    set_flash(
        db,
        browser,
        web.translate(
            request,
            N_("Recorded where “%(title)s” was published; %(count)d result rows now name it."),
            {"title": post.title, "count": matched},
        ),
    )
    return web.redirect(request, f"/engagements/{granted.engagement.id}/results#publication")


# --- the import wizard ----------------------------------------------------------------------


@router.post("/engagements/{engagement_id}/results/import", name="upload_results")
def upload(
    request: Request,
    db: SessionDep,
    granted: PageEngagement,
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Store the file and show its preview; nothing is imported before it is confirmed."""
    granted.require("result.report")
    if file is None or not file.filename:
        raise InvalidInput(N_("Choose the export file to import."))
    received = imports.receive(web.settings_of(request), file.file, file.size)
    record = imports.create(db, granted, received, file.filename, start=False)
    return web.redirect(
        request, f"/engagements/{granted.engagement.id}/results/imports/{record.id}"
    )


def _import_context(
    request: Request, db: Session, granted: EngagementAccess, record: ResultImport
) -> dict[str, Any]:
    state, done, total = imports.progress_of(record)
    preview = None
    preview_error = None
    if record.state == ImportState.uploaded and record.stored_path:
        path = imports.imports_dir(web.settings_of(request)) / record.stored_path
        try:
            preview = imports.preview(path, record.file_name, granted.engagement.currency)
        except InvalidInput as exc:
            preview_error = web.translate(request, exc.message, exc.params)
    return {
        "user": granted.actor.user,
        "engagement": granted.engagement,
        "record": record,
        "state": state,
        "done": done,
        "total": total,
        "running": state in {s.value for s in imports.ACTIVE},
        "preview": preview,
        "preview_error": preview_error,
        "problems": [
            {
                **problem,
                "text": web.translate(
                    request,
                    str(problem["message"]),
                    dict(problem.get("params") or {}),  # type: ignore[call-overload]
                ),
            }
            for problem in record.problems
        ],
        "metric_names": _metric_names(request),
        "may_report": granted.can("result.report"),
    }


def _import_of(db: Session, granted: EngagementAccess, import_id: uuid.UUID) -> ResultImport:
    record = repository.get_import(db, granted.engagement, import_id)
    if record is None:
        raise NotFound(N_("No import here, or it is not yours."))
    return record


@router.get("/engagements/{engagement_id}/results/imports/{import_id}", name="result_import")
def import_page(
    request: Request, db: SessionDep, granted: PageEngagement, import_id: uuid.UUID
) -> Response:
    granted.require("engagement.read")
    record = _import_of(db, granted, import_id)
    return web.render(request, "results/import.html", _import_context(request, db, granted, record))


@router.post(
    "/engagements/{engagement_id}/results/imports/{import_id}/start", name="start_result_import"
)
def start_import(
    request: Request, db: SessionDep, granted: PageEngagement, import_id: uuid.UUID
) -> Response:
    record = _import_of(db, granted, import_id)
    imports.queue(db, granted, record)
    return web.redirect(
        request, f"/engagements/{granted.engagement.id}/results/imports/{record.id}"
    )


# --- the CSV export ------------------------------------------------------------------------

EXPORT_HEADER = (
    "period_start", "period_end", "channel", "metric", "value", "currency", "post_id",
    "post_ref", "source", "platform_metric", "platform_metric_version", "revision", "status",
    "status_reason", "reported_at", "import_file", "import_sha256", "import_line",
)  # fmt: skip


@router.get("/engagements/{engagement_id}/results/export.csv", name="export_results")
def export_csv(db: SessionDep, granted: PageEngagement) -> Response:
    """The current rows as stored, for a spreadsheet: formula-like cells neutralised
    (``app.exports``), since imported text fields come from files nobody here wrote."""
    granted.require("engagement.read")
    records = {
        record.id: record for record in repository.imports_of(db, granted.engagement, 10_000)
    }
    rows = repository.all_current_rows(db, granted.engagement)

    def cells(row: ResultRow) -> tuple[Any, ...]:
        record = records.get(row.import_id) if row.import_id else None
        return (
            row.period_start.isoformat(), row.period_end.isoformat(), row.channel, row.metric,
            row.value, row.currency, row.post_id, row.post_ref, row.source, row.platform_metric,
            row.platform_metric_version, row.revision, row.status, row.status_reason,
            row.reported_at.isoformat(), record.file_name if record else None,
            record.sha256 if record else None, row.import_line,
        )  # fmt: skip

    body = to_csv(EXPORT_HEADER, (cells(row) for row in rows))
    name = f"results-{granted.engagement.id}.csv"
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
