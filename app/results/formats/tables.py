"""How a table of an export is recognised and turned into result rows.

A ``TableSpec`` lists the columns one kind of table has, with their English and
Spanish headers, and what each becomes: a metric of the dictionary (with the
platform's own name kept, and the export generation as its version), the period,
the post reference, or nothing (``ignored``, shown in the mapping so the user sees
what is left out). The platform modules declare their specs; this module holds the
one loop that reads rows for all of them.
"""

from __future__ import annotations

import abc
import datetime as dt
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from app.errors import N_
from app.results.formats.values import (
    MISSING,
    DateOrder,
    ValueProblem,
    clean,
    currency_in,
    is_missing,
    parse_count,
    parse_date,
    parse_fraction,
    parse_money,
    parse_number,
    value_problem,
)
from app.results.metrics import BY_KEY, Unit

# Roles a column can play besides carrying a metric.
PERIOD = "period"  # a date: the row's period is that day
POST_REF = "post_ref"  # a permalink: preferred reference to the post
POST_ID = "post_id"  # the platform's id: the reference when there is no permalink
CHANNEL = "channel"
IGNORED = "ignored"
METRIC = "metric"


@dataclass(frozen=True, slots=True)
class ParsedRow:
    """One value of one metric, ready to be written as a result row."""

    line: int
    channel: str
    metric: str
    platform_metric: str
    platform_metric_version: str
    period_start: dt.date
    period_end: dt.date
    value: Decimal
    currency: str | None
    post_ref: str | None


@dataclass(frozen=True, slots=True)
class RowProblem:
    """Why a row (or the file from that line on) cannot be imported.

    ``message`` is an ``N_`` msgid, ``params`` its parameters; ``column`` is the
    header as written in the file ("" when the problem is the whole row).
    """

    line: int
    column: str
    message: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Column:
    key: str
    role: str
    en: tuple[str, ...]
    es: tuple[str, ...] = ()
    metric: str = ""
    version: str = ""
    # Money headers may carry their currency: "Total revenue (EUR)".
    prefix: bool = False

    @property
    def target(self) -> str:
        return self.metric or self.role


def metric(key: str, metric_key: str, en: str, es: str, version: str, **kw: Any) -> Column:
    return Column(key, METRIC, (en,), (es,), metric=metric_key, version=version, **kw)


def ignored(*pairs: tuple[str, str]) -> tuple[Column, ...]:
    """Columns read but not imported: no metric of the dictionary matches them."""
    return tuple(Column(f"ignored:{en}", IGNORED, (en,), (es,)) for en, es in pairs)


def fold(header: Any) -> str:
    """A header reduced for comparison: case, accents, spacing and quotes do not count."""
    text = clean(header).strip("\"'").casefold()
    text = "".join(
        ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)
    )
    return " ".join(text.split())


@dataclass
class Match:
    spec: TableSpec
    header_line: int
    headers: tuple[str, ...]
    positions: dict[str, int]  # column key → index in the row
    spanish: bool
    missing: list[str]
    score: int
    # Set once the table is chosen.
    sheet_name: str = ""
    delimiter: str = ","
    decimal_comma: bool = False
    state: dict[str, Any] = field(default_factory=dict)
    order: DateOrder = "mdy"

    def __post_init__(self) -> None:
        self.order = self.date_order

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def date_order(self) -> DateOrder:
        return self.spec.date_order or ("dmy" if self.spanish else "mdy")

    def header(self, key: str) -> str:
        index = self.positions.get(key)
        return self.headers[index] if index is not None else ""

    def column_label(self, key_or_header: str, *, by_key: bool = True) -> str:
        header = self.header(key_or_header) if by_key else key_or_header
        return f"{self.sheet_name}: {header}" if self.sheet_name and header else header


class Cells:
    """A record's cells addressed by column key."""

    __slots__ = ("cells", "line", "match")

    def __init__(self, match: Match, line: int, cells: Sequence[Any]) -> None:
        self.match = match
        self.line = line
        self.cells = cells

    def __contains__(self, key: str) -> bool:
        return key in self.match.positions

    def raw(self, key: str) -> Any:
        index = self.match.positions.get(key)
        if index is None or index >= len(self.cells):
            return None
        return self.cells[index]

    def read(self, key: str, parse: Callable[[Any], Any]) -> Any:
        try:
            return parse(self.raw(key))
        except ValueProblem as problem:
            raise CellProblem(key, problem) from None

    def date(self, key: str) -> dt.date | None:
        try:
            return parse_date(self.raw(key), order=self.match.order)
        except ValueProblem as problem:
            raise CellProblem(key, problem) from None

    def text(self, key: str) -> str | None:
        value = self.raw(key)
        if value.__class__ is str:  # the common case, kept short for big files
            text = value.strip()
            # is_missing's test, inlined: it runs for several cells of every row.
            if not text or (len(text) < 16 and text.casefold() in MISSING):
                return None
            return text
        if is_missing(value):
            return None
        # Kept exactly as given, "=HYPERLINK(…)" included: it is data, never evaluated;
        # a later CSV export neutralises formula-looking text.
        return _text(value)


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # ids that a spreadsheet stored as numbers
    return clean(value)


class CellProblem(Exception):
    def __init__(self, key: str, problem: ValueProblem) -> None:
        super().__init__(str(problem))
        self.key = key
        self.problem = problem


class TableSpec(abc.ABC):
    """One kind of table. Subclasses say how a row's period and channel are found."""

    format: str = ""
    part: str = ""  # the sheet or file it is, for formats of several tables
    columns: tuple[Column, ...] = ()
    # Each group names columns of which at least one must be there.
    required: tuple[tuple[str, ...], ...] = ()
    # Column pairs (preferred, fallback) that carry the same metric: both may appear
    # in a transition-period export, and only one value per row key may be written.
    prefer: tuple[tuple[str, str], ...] = ()
    comments_anywhere = False
    money_exact = False
    date_order: DateOrder | None = None  # None: month-first in English, day-first in Spanish

    # Recognition ----------------------------------------------------------------------

    def match(self, line: int, headers: Sequence[Any]) -> Match | None:
        written = tuple(_text(header) for header in headers)
        folded = [fold(header) for header in written]
        positions: dict[str, int] = {}
        spanish = english = 0
        for column in self.columns:
            for language, names in (("en", column.en), ("es", column.es)):
                index = _find(folded, names, prefix=column.prefix, taken=positions.values())
                if index is not None:
                    positions[column.key] = index
                    # English is tried first, so a Spanish match means Spanish headers.
                    if language == "es":
                        spanish += 1
                    else:
                        english += 1
                    break
        self.extra_positions(folded, positions)
        for preferred, fallback in self.prefer:
            if preferred in positions and fallback in positions:
                del positions[fallback]
        missing = [
            self.column(group[0]).en[0]
            for group in self.required
            if not any(key in positions for key in group)
        ]
        score = len(positions)
        if score < 2:
            return None
        return Match(
            self, line, written, positions, spanish > english, missing, score - 3 * len(missing)
        )

    def extra_positions(self, folded: list[str], positions: dict[str, int]) -> None:  # noqa: B027 - optional hook
        """Columns found by position rather than by name (Google Analytics' dimension)."""

    def column(self, key: str) -> Column:
        for column in self.columns:
            if column.key == key:
                return column
        raise KeyError(key)

    @abc.abstractmethod
    def label(self, match: Match) -> str:
        """Each kind of table says this its own way."""

    def mapping(self, match: Match) -> list[tuple[str, str]]:
        targets = {key: self.target(match, key) for key in match.positions}
        by_index = {index: key for key, index in match.positions.items()}
        result = []
        for index, header in enumerate(match.headers):
            if not header:
                continue
            key = by_index.get(index)
            result.append(
                (
                    match.column_label(header, by_key=False),
                    targets.get(key, IGNORED) if key else IGNORED,
                )
            )
        return result

    def target(self, match: Match, key: str) -> str:
        column = self.column(key)
        return POST_REF if column.role == POST_ID else column.target

    # Reading ----------------------------------------------------------------------------

    def prepare(self, match: Match, sheet: Any) -> None:  # noqa: B027 - optional hook
        """Work that needs the whole table once before rows stream (file-level checks)."""

    def comment(self, match: Match, comment: Any) -> None:  # noqa: B027 - optional hook
        """A '#' line of the file (Google Analytics states its period in them)."""

    def skip(self, match: Match, row: Cells) -> bool:
        return False

    @abc.abstractmethod
    def channel(self, match: Match, row: Cells) -> str:
        """Each kind of table says this its own way."""

    @abc.abstractmethod
    def period(self, match: Match, row: Cells) -> tuple[dt.date, dt.date]:
        """Each kind of table says this its own way."""

    def post_ref(self, match: Match, row: Cells) -> str | None:
        for role in (POST_REF, POST_ID):
            for column in self.columns:
                if column.role == role and column.key in row:
                    text = row.text(column.key)
                    if text:
                        return text
        return None

    def metric_columns(self, match: Match, row: Cells) -> list[Column]:
        return [
            column
            for column in self.columns
            if column.role == METRIC and column.key in match.positions
        ]

    def platform_metric(self, match: Match, row: Cells, column: Column) -> tuple[str, str]:
        """The platform's own name for the metric (as headed in the file) and version."""
        return match.header(column.key), column.version

    def currency(self, match: Match, row: Cells) -> str | None:
        """The currency of money cells that do not state one: the caller's default."""
        return match.state.get("currency")

    def convert(
        self, match: Match, line: int, cells: Sequence[Any]
    ) -> Iterator[ParsedRow | RowProblem]:
        row = Cells(match, line, cells)
        if self.skip(match, row):
            return
        try:
            start, end = self.period(match, row)
            channel = self.channel(match, row)
            post_ref = self.post_ref(match, row)
            columns = self.metric_columns(match, row)
        except CellProblem as exc:
            yield self.problem(match, line, exc)
            return
        for column in columns:
            try:
                parsed = self.metric_value(match, row, column)
            except CellProblem as exc:
                yield self.problem(match, line, exc)
                continue
            if parsed is None:
                continue  # "no data" for this metric on this row: skipped, not zero
            value, currency = parsed
            if problem := value_problem(column.metric, value):
                yield self.problem(match, line, CellProblem(column.key, problem))
                continue
            name, version = self.platform_metric(match, row, column)
            yield ParsedRow(
                line=line,
                channel=channel,
                metric=column.metric,
                platform_metric=name,
                platform_metric_version=version,
                period_start=start,
                period_end=end,
                value=value,
                currency=currency,
                post_ref=post_ref,
            )

    def metric_value(
        self, match: Match, row: Cells, column: Column
    ) -> tuple[Decimal, str | None] | None:
        unit = BY_KEY[column.metric].unit
        comma = match.decimal_comma
        value = row.raw(column.key)
        try:
            if unit is Unit.money:
                currency = currency_in(match.header(column.key)) or self.currency(match, row)
                return parse_money(
                    value, decimal_comma=comma, currency=currency, exact=self.money_exact
                )
            if unit is Unit.quantity:
                number = parse_count(value, decimal_comma=comma)
            elif unit is Unit.percent:
                number = parse_fraction(value, decimal_comma=comma)
            else:
                number = parse_number(value, decimal_comma=comma)
        except ValueProblem as problem:
            raise CellProblem(column.key, problem) from None
        return None if number is None else (number, None)

    def problem(self, match: Match, line: int, exc: CellProblem) -> RowProblem:
        column = match.column_label(exc.key) if exc.key in match.positions else exc.key
        return RowProblem(line, column, exc.problem.message, dict(exc.problem.params))

    def is_description_row(self, match: Match, cells: Sequence[Any]) -> bool:
        """Older Meta exports put a sentence describing each column under the header."""
        row = Cells(match, 0, cells)
        texts = [
            clean(row.raw(column.key))
            for column in self.columns
            if column.role == METRIC and column.key in match.positions
        ]
        return bool(texts) and all(
            text and not any(ch.isdigit() for ch in text) and " " in text for text in texts
        )


def _find(
    folded: list[str], names: tuple[str, ...], *, prefix: bool, taken: Any = ()
) -> int | None:
    taken = set(taken)
    for name in names:
        wanted = fold(name)
        for index, header in enumerate(folded):
            if index in taken:
                continue
            if header == wanted or (prefix and header.startswith(wanted)):
                return index
    return None


# Meta's "Date" column says "Lifetime" when the numbers cover the post's whole life.
LIFETIME = frozenset({"lifetime", "de por vida", "total", "todo el periodo"})


def no_period(column: str) -> ValueProblem:
    return ValueProblem(N_("The row has no date in %(column)s"), column=column)
