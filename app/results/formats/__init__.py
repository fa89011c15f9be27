"""Reading results from platform exports (issue #6, DOMAIN.md §4).

    detected = open_export(path, filename, max_rows=..., max_bytes=..., currency=...)
    detected.format, detected.label, detected.mapping   # what it is, how columns map
    detected.preview(10)                                # first ParsedRow | RowProblem
    for item in detected.rows(): ...                    # streaming, memory flat

The format is recognised from the headers, never the file name: the first row (of
the first thirty) that holds every required column of a known table is the header,
so preambles and disclaimers above it are skipped. A file that is recognised but
lacks a required column raises ``ExportProblem`` naming the column; one that
matches nothing raises ``UnknownFormat`` listing the formats Brandkeep reads and
the headers it found. Row-level trouble (a date or number that does not parse, a
negative count, a rate over 100 %) comes back as ``RowProblem`` with the line and
column, so a whole file can be checked before anything is written.

Values are exact: counts are whole ``Decimal``s, rates fractions (0.035 for 3.5 %),
money minor units with its currency. Which columns each platform has and how they
map is in ``platforms.py``; the generic CSV is specified in ``generic.py`` and
``docs/import-generic-csv.md``.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.errors import N_, InvalidInput
from app.results.formats.generic import GenericCSV
from app.results.formats.platforms import PLATFORM_SPECS
from app.results.formats.reading import (
    Comment,
    ReadProblem,
    Record,
    Sheet,
    TextSheet,
    candidate_delimiters,
    first_records,
    open_sheets,
)
from app.results.formats.tables import Match, ParsedRow, RowProblem, TableSpec
from app.results.formats.values import ValueProblem, clean

__all__ = [
    "Detected",
    "ExportProblem",
    "ParsedRow",
    "RowProblem",
    "UnknownFormat",
    "open_export",
]

SPECS: tuple[TableSpec, ...] = (*PLATFORM_SPECS, GenericCSV())
FORMAT_NAMES = (
    "Meta Business Suite (Facebook, Instagram), LinkedIn page analytics, X analytics, "
    "X tweet activity, TikTok Studio, Google Analytics 4, Brandkeep generic CSV"
)


class ExportProblem(InvalidInput):
    """The file cannot be imported at all (too large, damaged, encrypted, a zip bomb,
    a required column missing). ``message`` is an ``N_`` msgid with ``params``."""

    title = N_("This file cannot be imported")


class UnknownFormat(ExportProblem):
    title = N_("This file's format was not recognised")


@dataclasses.dataclass(frozen=True)
class _Table:
    sheet: Sheet
    match: Match


class Detected:
    """A recognised export, ready to be previewed and read (as often as needed)."""

    def __init__(
        self,
        *,
        tables: list[_Table],
        container: str,
        ignored_parts: list[str],
        max_rows: int | None,
        currency: str | None,
    ) -> None:
        first = tables[0].match
        self.format: str = first.spec.format
        self.label: str = first.spec.label(first)
        self.container = container  # "csv", "xlsx", "xls" or "zip"
        self.parts = [table.match.spec.part or table.sheet.name for table in tables]
        self._tables = tables
        self._max_rows = max_rows
        self._currency = currency
        self.mapping: list[tuple[str, str]] = [
            pair for table in tables for pair in table.match.spec.mapping(table.match)
        ]
        self.mapping.extend((name, "ignored") for name in ignored_parts)

    def preview(self, n: int = 10) -> list[ParsedRow | RowProblem]:
        return list(itertools.islice(self.rows(), n))

    def rows(self) -> Iterator[ParsedRow | RowProblem]:
        """Every value of the file, or the problems that stop it, streamed."""
        counted = 0
        for table in self._tables:
            for item in self._table_rows(table):
                if isinstance(item, int):
                    counted += 1
                    if self._max_rows is not None and counted > self._max_rows:
                        yield RowProblem(
                            item,
                            "",
                            N_("The file has more than %(limit)s rows; import it in parts"),
                            {"limit": self._max_rows},
                        )
                        return
                else:
                    yield item

    def _table_rows(self, table: _Table) -> Iterator[ParsedRow | RowProblem | int]:
        spec = table.match.spec
        match = dataclasses.replace(table.match, state={"currency": self._currency})
        try:
            spec.prepare(match, table.sheet)
        except ValueProblem as problem:  # checked by open_export; the file changed since
            yield RowProblem(match.header_line, "", problem.message, problem.params)
            return
        reading, new_block, first = True, False, True
        line = match.header_line
        try:
            for record in table.sheet.records(comments_anywhere=spec.comments_anywhere):
                if isinstance(record, Comment):
                    spec.comment(match, record)
                    new_block = record.line > match.header_line
                    continue
                line = record.line
                if line <= match.header_line:
                    continue
                if new_block:
                    # Another table follows (Google Analytics puts several in one file):
                    # read it if it has the same columns, skip it otherwise.
                    new_block, first = False, True
                    again = spec.match(line, record.cells)
                    reading = again is not None and again.complete
                    if again is not None and reading:
                        match.positions, match.headers = again.positions, again.headers
                    continue
                if not reading:
                    continue
                if first:
                    first = False
                    if spec.is_description_row(match, record.cells):
                        continue
                yield line
                yield from spec.convert(match, line, record.cells)
        except ReadProblem as problem:
            yield RowProblem(line, "", problem.message, problem.params)
        except Exception:
            if isinstance(table.sheet, TextSheet):
                raise
            # openpyxl and xlrd raise assorted errors on damaged or hostile files (defusedxml
            # refuses entity expansion this way): all mean the rest cannot be read.
            yield RowProblem(
                line, "", N_("The spreadsheet is damaged after line %(line)s"), {"line": line}
            )


def open_export(
    path: Path,
    filename: str,
    *,
    max_rows: int | None = None,
    max_bytes: int | None = None,
    currency: str | None = None,
) -> Detected:
    """Recognise an uploaded export. Nothing is read past the headers until ``rows()``.

    ``max_bytes`` defaults to the ``results_import_max_bytes`` setting; ``currency``
    (the engagement's) is used for money columns whose file does not state one
    (Google Analytics writes revenue without its currency). ``filename`` is only used
    in messages: the format comes from the content.
    """
    if max_bytes is None:
        max_bytes = _setting_max_bytes()
    try:
        container, sheets = open_sheets(path, max_bytes=max_bytes)
    except ReadProblem as problem:
        raise ExportProblem(problem.message, params={**problem.params, "file": filename}) from None
    tables: list[_Table] = []
    ignored: list[str] = []
    best_partial: Match | None = None
    first_row: tuple[Any, ...] = ()
    for sheet in sheets:
        try:
            found, partial, row = _find_header(sheet)
        except ReadProblem as problem:
            raise ExportProblem(problem.message, params=problem.params) from None
        except Exception:  # spreadsheet libraries raise assorted errors on damaged files
            raise ExportProblem(N_("The spreadsheet is damaged and cannot be opened")) from None
        first_row = first_row or row
        if found is not None:
            tables.append(found)
        else:
            ignored.append(sheet.name)
            if partial is not None and (best_partial is None or partial.score > best_partial.score):
                best_partial = partial
    if not tables:
        if best_partial is not None and best_partial.score >= 3:
            spec = best_partial.spec
            raise ExportProblem(
                N_("This looks like a %(format)s export, but it has no column %(column)s"),
                params={
                    "format": spec.label(best_partial),
                    "column": ", ".join(best_partial.missing),
                },
            )
        headers = ", ".join(clean(cell) for cell in first_row[:12] if clean(cell))
        raise UnknownFormat(
            N_(
                "Brandkeep does not recognise this file. It reads exports from %(formats)s. "
                "Its first row reads: %(headers)s"
            ),
            params={"formats": FORMAT_NAMES, "headers": headers or "—"},
        )
    primary = tables[0].match.spec.format
    ignored.extend(t.sheet.name for t in tables if t.match.spec.format != primary)
    tables = [t for t in tables if t.match.spec.format == primary]
    for table in tables:
        if len(sheets) > 1:
            table.match.sheet_name = table.sheet.name
        try:
            table.match.spec.prepare(
                dataclasses.replace(table.match, state={"currency": currency}), table.sheet
            )
        except ValueProblem as problem:
            raise ExportProblem(problem.message, params=problem.params) from None
    return Detected(
        tables=tables,
        container=container,
        ignored_parts=[name for name in ignored if name],
        max_rows=max_rows,
        currency=currency,
    )


def _find_header(sheet: Sheet) -> tuple[_Table | None, Match | None, tuple[Any, ...]]:
    """The table a sheet holds: its header row and spec, trying each plausible CSV
    separator (the sniffed one first) until a header is recognised."""
    variants: list[Sheet] = [sheet]
    if isinstance(sheet, TextSheet):
        variants = [sheet.with_delimiter(d) for d in candidate_delimiters(sheet.sample())]
    best_partial: Match | None = None
    first_row: tuple[Any, ...] = ()
    for variant in variants:
        for record in first_records(variant):
            if not isinstance(record, Record):
                continue
            first_row = first_row or record.cells
            matches = [m for spec in SPECS if (m := spec.match(record.line, record.cells))]
            complete = [m for m in matches if m.complete]
            if complete:
                found = max(complete, key=lambda m: m.score)
                delimiter = getattr(variant, "delimiter", "")
                found.delimiter = delimiter
                found.decimal_comma = found.spanish or delimiter == ";"
                return _Table(variant, found), None, first_row
            for candidate in matches:
                if best_partial is None or candidate.score > best_partial.score:
                    best_partial = candidate
    return None, best_partial, first_row


def _setting_max_bytes() -> int:
    from app.config import get_settings

    return get_settings().results_import_max_bytes
