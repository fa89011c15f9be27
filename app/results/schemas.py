"""Inputs and outputs of result rows and imports."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from app.results.service import MAX_API_ROWS


class ResultIn(BaseModel):
    """One number. Counts as integers, money in minor units (cents), rates as fractions."""

    metric: str = Field(max_length=48, description="A key of the metric dictionary.")
    period_start: date
    period_end: date
    value: Decimal = Field(max_digits=24, decimal_places=6)
    channel: str = Field(default="", max_length=32, description='"" for engagement-wide.')
    currency: str | None = Field(
        default=None, min_length=3, max_length=3, description="Money only; the engagement's."
    )
    post_id: uuid.UUID | None = Field(default=None, description="The engagement's post, if known.")
    post_ref: str | None = Field(
        default=None, max_length=300, description="Permalink, platform id or utm_content."
    )
    platform_metric: str = Field(default="", max_length=80)
    platform_metric_version: str = Field(default="", max_length=40)


ResultBatch = list[ResultIn]
BATCH_DESCRIPTION = f"Up to {MAX_API_ROWS} rows a call."


class ReportOut(BaseModel):
    created: int
    revised: int
    unchanged: int


class ResultOut(BaseModel):
    id: uuid.UUID
    engagement_id: uuid.UUID
    post_id: uuid.UUID | None
    post_ref: str | None
    channel: str
    metric: str
    period_start: date
    period_end: date
    value: Decimal
    currency: str | None
    source: str
    platform_metric: str
    platform_metric_version: str
    revision: int
    status: str
    status_reason: str
    status_at: datetime | None
    reported_by_id: uuid.UUID | None
    reported_at: datetime
    import_id: uuid.UUID | None
    import_line: int | None


class DisputeIn(BaseModel):
    reason: str = Field(min_length=3, max_length=1000)


class ProblemOut(BaseModel):
    line: int | None
    column: str | None
    message: str


class MappingOut(BaseModel):
    column: str
    target: str


class ImportOut(BaseModel):
    id: uuid.UUID
    engagement_id: uuid.UUID
    file_name: str
    sha256: str
    size_bytes: int
    format: str
    format_label: str
    state: str
    rows_total: int
    rows_done: int
    rows_created: int
    rows_revised: int
    rows_unchanged: int
    problem_count: int
    problems: list[ProblemOut]
    created_at: datetime
    finished_at: datetime | None


class DryRunOut(BaseModel):
    format: str
    format_label: str
    mapping: list[MappingOut]
    preview: list[dict[str, object]]
    rows: int
    problem_count: int
    problems: list[ProblemOut]
