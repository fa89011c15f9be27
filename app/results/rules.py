"""The engagement-level rules every incoming result row passes, whatever way it came in.

A form, the JSON API and a file import all hand rows to ``Checker.check``: it
returns the row ready for the bulk writer (a plain tuple, see ``STAGE_COLUMNS``) or
the problems found, each with its line and column. Kept free of database access
and of per-row objects so that a million rows cost a million cheap calls.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from app.errors import N_
from app.results.metrics import BY_KEY, Metric, Unit

# The columns of the staging table, in the order ``Checker.check`` returns them.
STAGE_COLUMNS = (
    "row_key",
    "post_id",
    "post_ref",
    "channel",
    "metric",
    "period_start",
    "period_end",
    "value",
    "currency",
    "platform_metric",
    "platform_metric_version",
    "line",
)

CHANNEL = re.compile(r"^[a-z0-9_]{0,32}$")
SOURCE = re.compile(r"^(form|api|import:[a-z0-9_]{1,32})$")
# Rates that are shares of a whole: a value above 100 % is a mistake, not a result.
BOUNDED_RATES = frozenset(
    key for key, metric in BY_KEY.items() if metric.unit is Unit.percent and key != "roi"
)
EARLIEST = date(2000, 1, 1)
LONGEST_PERIOD_DAYS = 366
MAX_VALUE = Decimal("1e17")  # Numeric(24, 6) holds 18 digits before the point


@dataclass(frozen=True)
class Problem:
    """Something wrong with one row (or the whole input when ``line`` is None)."""

    line: int | None
    column: str | None
    message: str  # a message id
    params: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "column": self.column,
            "message": self.message,
            "params": self.params,
        }


class IncomingRow(Protocol):
    """What a row looks like on the way in (the parsers' ``ParsedRow`` has these)."""

    channel: str
    metric: str
    platform_metric: str
    platform_metric_version: str
    period_start: date
    period_end: date
    value: Decimal
    currency: str | None
    post_ref: str | None


@lru_cache(maxsize=65_536)
def normalise_ref(ref: str) -> str:
    """One spelling per post reference: URLs without query, fragment or trailing slash.

    Platforms add tracking parameters and trailing slashes freely; the same post must
    match whether its permalink was copied from the address bar or from an export.
    """
    ref = ref.strip()
    if "://" not in ref:
        return ref
    try:
        parts = urlsplit(ref)
    except ValueError:
        return ref
    host = parts.netloc.lower().removeprefix("www.")
    return urlunsplit((parts.scheme.lower(), host, parts.path.rstrip("/"), "", ""))


def row_key(ref: str, channel: str, metric: str, start: date, end: date, source: str) -> str:
    """The digest of a row's identity: one short column for the unique index to hold."""
    text = f"{ref}\x1f{channel}\x1f{metric}\x1f{start.isoformat()}\x1f{end.isoformat()}\x1f{source}"
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def post_index(posts: Iterable[tuple[uuid.UUID, str | None, str | None]]) -> dict[str, uuid.UUID]:
    """Every way an export may name one of the engagement's posts → the post's id.

    ``posts`` gives (id, permalink, platform post id). The post's own id is there too:
    tracking links carry it as ``utm_content``, which GA4 exports report.
    """
    index: dict[str, uuid.UUID] = {}
    for post_id, permalink, platform_id in posts:
        index[str(post_id)] = post_id
        index[post_id.hex] = post_id
        if platform_id:
            index[normalise_ref(platform_id)] = post_id
        if permalink:
            index[normalise_ref(permalink)] = post_id
    return index


# Channels already found well-formed: a file repeats a handful over millions of rows.
_CHANNELS_SEEN: set[str] = set()


def _channel_ok(channel: str) -> bool:
    if not CHANNEL.match(channel):
        return False
    if len(_CHANNELS_SEEN) < 1024:
        _CHANNELS_SEEN.add(channel)
    return True


def _text(value: Any, limit: int) -> str:
    text = "" if value is None else str(value).strip()
    return text[:limit]


@dataclass
class Checker:
    """The rules of one engagement, applied row by row."""

    currency: str
    today: date
    source: str
    posts: Mapping[str, uuid.UUID]
    post_ids: frozenset[uuid.UUID] = frozenset()

    def check(
        self, row: IncomingRow, line: int, post_id: uuid.UUID | None = None
    ) -> tuple[Any, ...] | list[Problem]:
        problems: list[Problem] = []
        metric: Metric | None = BY_KEY.get(row.metric)
        if metric is None:
            problems.append(
                Problem(line, "metric", N_("Unknown metric “%(metric)s”."), {"metric": row.metric})
            )
        channel = row.channel or ""
        if channel not in _CHANNELS_SEEN and not _channel_ok(channel):
            problems.append(
                Problem(line, "channel", N_("Unknown channel “%(channel)s”."), {"channel": channel})
            )
        start, end = row.period_start, row.period_end
        if not isinstance(start, date) or not isinstance(end, date):
            problems.append(Problem(line, "period", N_("The period's dates are missing.")))
        elif end < start:
            problems.append(Problem(line, "period", N_("The period ends before it starts.")))
        elif start < EARLIEST:
            problems.append(
                Problem(line, "period", N_("The period starts before 2000: check the date."))
            )
        elif start > self.today:
            problems.append(
                Problem(
                    line,
                    "period",
                    N_("The period starts in the future (%(date)s): results come after the fact."),
                    {"date": start.isoformat()},
                )
            )
        elif (end - start).days >= LONGEST_PERIOD_DAYS:
            problems.append(
                Problem(line, "period", N_("A period is at most a year; split longer ones."))
            )
        value = row.value
        if not isinstance(value, Decimal):
            try:
                value = Decimal(str(value))
            except InvalidOperation:
                value = None
        if value is None or not value.is_finite():
            problems.append(Problem(line, "value", N_("The value is not a number.")))
        elif abs(value) >= MAX_VALUE:
            problems.append(Problem(line, "value", N_("The value is too large.")))
        elif metric is not None:
            problem = self._check_value(metric, value, line)
            if problem is not None:
                problems.append(problem)
        currency = (row.currency or "").strip().upper() or None
        if metric is not None:
            if metric.unit is Unit.money:
                currency = currency or self.currency
                if currency != self.currency:
                    problems.append(
                        Problem(
                            line,
                            "currency",
                            N_(
                                "The currency %(currency)s differs from the engagement's "
                                "(%(expected)s)."
                            ),
                            {"currency": currency, "expected": self.currency},
                        )
                    )
            elif currency is not None:
                problems.append(
                    Problem(
                        line,
                        "currency",
                        N_("A currency is given for %(metric)s, which is not money."),
                        {"metric": metric.key},
                    )
                )
        ref = _text(row.post_ref, 300) or None
        if post_id is not None and post_id not in self.post_ids:
            problems.append(Problem(line, "post_id", N_("No post of this engagement has this id.")))
        if problems:
            return problems
        matched = post_id
        key_ref = ""
        if ref is not None:
            key_ref = normalise_ref(ref)
            matched = matched or self.posts.get(key_ref)
        elif post_id is not None:
            key_ref = f"post:{post_id}"
        return (
            row_key(key_ref, channel, row.metric, start, end, self.source),
            matched,
            ref,
            channel,
            row.metric,
            start,
            end,
            value,
            currency,
            _text(row.platform_metric, 80),
            _text(row.platform_metric_version, 40),
            line,
        )

    @staticmethod
    def _check_value(metric: Metric, value: Decimal, line: int) -> Problem | None:
        unit = metric.unit
        if unit is Unit.quantity:
            if value < 0:
                return Problem(
                    line,
                    "value",
                    N_("A count cannot be negative (%(value)s)."),
                    {"value": str(value)},
                )
            if value != value.to_integral_value():
                return Problem(
                    line,
                    "value",
                    N_("A count is a whole number (%(value)s)."),
                    {"value": str(value)},
                )
        elif unit is Unit.percent:
            if metric.key in BOUNDED_RATES and not (0 <= value <= 1):
                return Problem(
                    line,
                    "value",
                    N_(
                        "A rate is between 0 and 100 %% (given as a fraction, 0.035 for "
                        "3.5 %%); got %(value)s."
                    ),
                    {"value": str(value)},
                )
            if metric.key == "roi" and value < -1:
                return Problem(line, "value", N_("ROI cannot be below −100 %%."))
        elif unit is Unit.score:
            if not (-100 <= value <= 100):
                return Problem(line, "value", N_("A score is between −100 and 100."))
        elif value < 0:
            return Problem(
                line,
                "value",
                N_("This value cannot be negative (%(value)s)."),
                {"value": str(value)},
            )
        return None


def is_source(value: str) -> bool:
    return bool(SOURCE.match(value))
