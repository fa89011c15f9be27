"""From an uploaded file to sheets of cells, safely and without loading it whole.

An upload is one of: a text file (CSV, semicolon or tab separated, UTF-8 with or
without a byte-order mark, UTF-16 with one as Excel's "Unicode text" writes it, or
Windows-1252 as Excel's plain "CSV" writes it in Western Europe), an .xlsx workbook
(read streaming by openpyxl), a legacy .xls workbook (xlrd), or a zip of CSV files
(TikTok Studio). Each becomes one or more ``Sheet`` objects whose ``records()``
streams ``Record`` (a row of cells with its line number) and ``Comment`` ('#' lines,
which Google Analytics uses for its preamble).

Safety is checked before anything is parsed: the size limit; for zips (and .xlsx,
which is a zip) encryption, paths that are not plain file names, the total
uncompressed size and the compression ratio, all read from the central directory
before a byte is inflated. Nothing is ever extracted to disk, and formulas are never
evaluated: spreadsheets give their cached values, text cells stay text.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import io
import itertools
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from app.errors import N_

ZIP_MAGIC = b"PK\x03\x04"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .xls, and password-protected .xlsx
MAX_COMPRESSION_RATIO = 100
# Tiny members (a few kB of zeros or repeated commas) compress beyond any ratio
# without being dangerous; the total-size limit covers many of them together.
RATIO_CHECKED_FROM = 1024 * 1024
SAMPLE_RECORDS = 30  # rows looked at to find the header under a preamble


class ReadProblem(Exception):
    """The file cannot be read at all; ``message`` is an ``N_`` msgid."""

    def __init__(self, message: str, **params: Any) -> None:
        super().__init__(message % params if params else message)
        self.message = message
        self.params = params


@dataclass(frozen=True, slots=True)
class Record:
    line: int  # 1-based line (CSV) or row number (spreadsheet), as the user's tool shows it
    cells: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Comment:
    line: int
    text: str  # without the leading '#'


class Sheet(Protocol):
    name: str  # sheet or zip member name; "" for a lone CSV
    # The day the export was made when the container says so (a zip member's time):
    # TikTok writes dates without their year.
    reference_date: dt.date | None

    def records(self, *, comments_anywhere: bool = False) -> Iterator[Record | Comment]: ...


def open_sheets(path: Path, *, max_bytes: int) -> tuple[str, list[Sheet]]:
    """The container kind ("csv", "xlsx", "xls", "zip") and its sheets."""
    size = path.stat().st_size
    if size > max_bytes:
        raise ReadProblem(
            N_("The file is %(size)s MB; the limit is %(limit)s MB"),
            size=_megabytes(size),
            limit=_megabytes(max_bytes),
        )
    if size == 0:
        raise ReadProblem(N_("The file is empty"))
    with path.open("rb") as handle:
        head = handle.read(8)
    if head.startswith(ZIP_MAGIC):
        members = inspect_zip(path, max_bytes=max_bytes)
        if "[Content_Types].xml" in members and any(m.startswith("xl/") for m in members):
            return "xlsx", _xlsx_sheets(path)
        if folder := next((name for name in members if "/" in name), None):
            raise ReadProblem(
                N_(
                    "The zip file contains folders (%(name)s); upload it as the platform "
                    "exported it"
                ),
                name=folder,
            )
        return "zip", _zip_sheets(path, members)
    if head.startswith(OLE2_MAGIC):
        return "xls", _xls_sheets(path)
    return "csv", [TextSheet(path, name="", encoding=detect_encoding(path))]


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f}".removesuffix(".0")


# Zip safety -------------------------------------------------------------------------


def inspect_zip(path: Path, *, max_bytes: int) -> list[str]:
    """The member names, once the archive is known to be safe to inflate.

    Sizes come from the central directory; Python's zipfile stops inflating a member
    at its declared size, so a member that lies about its size cannot grow past it.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise ReadProblem(N_("The zip file is damaged and cannot be opened")) from None
    total = 0
    names = []
    for info in infos:
        if info.flag_bits & 0x1:
            raise ReadProblem(
                N_("The zip file is password-protected; export it again without a password")
            )
        name = info.filename
        if info.is_dir() or name.startswith("__MACOSX/"):
            continue
        if name.startswith("/") or "\\" in name or ".." in name.split("/") or ":" in name:
            # Never extracted, but a path out of the archive marks a crafted file.
            raise ReadProblem(
                N_("The zip file contains a path that points outside it (%(name)s)"), name=name
            )
        total += info.file_size
        if total > max_bytes:
            raise ReadProblem(
                N_("Unpacked, the zip file would be larger than %(limit)s MB"),
                limit=_megabytes(max_bytes),
            )
        if info.file_size >= RATIO_CHECKED_FROM and (
            info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1)
        ):
            raise ReadProblem(
                N_(
                    "The zip file is compressed suspiciously well (%(name)s: %(ratio)s to 1); "
                    "it is refused as a possible zip bomb"
                ),
                name=name,
                ratio=info.file_size // max(info.compress_size, 1),
            )
        names.append(name)
    return names


def _zip_sheets(path: Path, members: list[str]) -> list[Sheet]:
    sheets: list[Sheet] = []
    with zipfile.ZipFile(path) as archive:
        for member in members:
            if not member.lower().endswith((".csv", ".txt", ".tsv")):
                continue
            info = archive.getinfo(member)
            with archive.open(member) as raw:
                encoding = _encoding_of(raw.read(64 * 1024), rest=raw)
            stamp = dt.date(*info.date_time[:3]) if info.date_time[0] > 1980 else None
            sheet = TextSheet(path, name=member, encoding=encoding, member=member)
            sheet.reference_date = stamp
            sheets.append(sheet)
    if not sheets:
        raise ReadProblem(N_("The zip file holds no CSV files"))
    return sheets


# Text -----------------------------------------------------------------------------


def detect_encoding(path: Path) -> str:
    with path.open("rb") as handle:
        return _encoding_of(handle.read(64 * 1024), rest=handle)


def _encoding_of(head: bytes, *, rest: IO[bytes]) -> str:
    """The text encoding: by byte-order mark, else UTF-8 if the whole file decodes,
    else Windows-1252 (what Excel's "CSV" writes on Western European Windows)."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    sample = head[:4096]
    if len(sample) >= 4 and sample.count(0) * 3 > len(sample):
        # UTF-16 without a mark: mostly-ASCII text has a NUL in every other byte.
        odd_zeros = sample[1::2].count(0)
        return "utf-16-le" if odd_zeros > sample[0::2].count(0) else "utf-16-be"
    if b"\x00" in sample:
        raise ReadProblem(N_("This is not a CSV or spreadsheet file"))
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(head)
        for chunk in iter(lambda: rest.read(1024 * 1024), b""):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


@dataclass
class _LineSource:
    """Feeds csv.reader one physical line at a time, numbering them, so each record
    knows the line it starts on even when quoted fields span several lines."""

    lines: Iterator[str]
    comments_anywhere: bool
    line: int = 0
    record_start: int | None = None
    in_preamble: bool = True
    pending_comment: Comment | None = None

    def __iter__(self) -> Iterator[str]:
        for text in self.lines:
            self.line += 1
            stripped = text.lstrip("\ufeff \t")
            if (self.in_preamble or self.comments_anywhere) and stripped.startswith("#"):
                self.pending_comment = Comment(self.line, stripped[1:].strip())
                # An empty line makes csv.reader hand back control with an empty row.
                yield ""
                continue
            if stripped.strip():
                self.in_preamble = False
            if self.record_start is None:
                self.record_start = self.line
            yield text


class TextSheet:
    def __init__(self, path: Path, *, name: str, encoding: str, member: str | None = None) -> None:
        self.path = path
        self.name = name
        self.encoding = encoding
        self.member = member
        self.reference_date: dt.date | None = None
        self.delimiter = ","

    def with_delimiter(self, delimiter: str) -> TextSheet:
        sheet = TextSheet(self.path, name=self.name, encoding=self.encoding, member=self.member)
        sheet.reference_date = self.reference_date
        sheet.delimiter = delimiter
        return sheet

    def sample(self, limit: int = 64 * 1024) -> str:
        with self._open() as handle:
            return handle.read(limit)

    @contextlib.contextmanager
    def _open(self) -> Iterator[IO[str]]:
        if self.member is None:
            with self.path.open(encoding=self.encoding, errors="replace", newline="") as handle:
                yield handle
            return
        with zipfile.ZipFile(self.path) as archive, archive.open(self.member) as raw:
            yield io.TextIOWrapper(raw, encoding=self.encoding, errors="replace", newline="")

    def records(self, *, comments_anywhere: bool = False) -> Iterator[Record | Comment]:
        with self._open() as handle:
            source = _LineSource(iter(handle), comments_anywhere)
            reader = csv.reader(source, delimiter=self.delimiter, strict=False)
            while True:
                try:
                    cells = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    raise ReadProblem(
                        N_("Line %(line)s cannot be read as CSV: %(reason)s"),
                        line=source.line,
                        reason=str(exc),
                    ) from None
                if source.pending_comment is not None:
                    yield source.pending_comment
                    source.pending_comment = None
                start, source.record_start = source.record_start, None
                if cells and start is not None:
                    yield Record(start, tuple(cells))


def candidate_delimiters(sample: str) -> list[str]:
    """The sniffed delimiter first, then the others an export may use."""
    order = [",", ";", "\t"]
    body = "\n".join(
        line for line in sample.splitlines()[:40] if not line.lstrip("\ufeff ").startswith("#")
    )
    try:
        sniffed = csv.Sniffer().sniff(body, delimiters=",;\t").delimiter
    except csv.Error:
        return order
    return [sniffed, *(d for d in order if d != sniffed)]


# Spreadsheets -----------------------------------------------------------------------


class _XlsxSheet:
    def __init__(self, path: Path, name: str) -> None:
        self.path = path
        self.name = name
        self.reference_date: dt.date | None = None

    def records(self, *, comments_anywhere: bool = False) -> Iterator[Record | Comment]:
        from openpyxl import load_workbook

        # read_only streams the sheet's XML; data_only gives formulas' cached values
        # (openpyxl never evaluates a formula). defusedxml, installed beside it, makes
        # openpyxl refuse entity-expansion attacks.
        workbook = load_workbook(self.path, read_only=True, data_only=True)
        try:
            sheet = workbook[self.name]
            # The stored dimensions may be wrong (some tools write none or too small
            # ones); forgetting them makes openpyxl read every row that is there.
            sheet.reset_dimensions()
            for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
                if any(cell is not None and cell != "" for cell in row):
                    yield Record(number, tuple(row))
        finally:
            workbook.close()


def _xlsx_sheets(path: Path) -> list[Sheet]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds on damaged files; all mean the same
        raise ReadProblem(N_("The spreadsheet is damaged and cannot be opened")) from None
    try:
        return [_XlsxSheet(path, name) for name in workbook.sheetnames]
    finally:
        workbook.close()


class _XlsSheet:
    def __init__(self, path: Path, name: str) -> None:
        self.path = path
        self.name = name
        self.reference_date: dt.date | None = None

    def records(self, *, comments_anywhere: bool = False) -> Iterator[Record | Comment]:
        import xlrd

        # .xls (at most 65,536 rows) is read sheet by sheet: BIFF has no streaming reader,
        # and the file-size limit bounds what a sheet can hold.
        book = xlrd.open_workbook(str(self.path), on_demand=True)
        try:
            sheet = book.sheet_by_name(self.name)
            for index in range(sheet.nrows):
                cells = tuple(_xls_value(book, cell) for cell in sheet.row(index))
                if any(cell is not None and cell != "" for cell in cells):
                    yield Record(index + 1, cells)
        finally:
            book.release_resources()


def _xls_value(book: Any, cell: Any) -> Any:
    import xlrd

    if cell.ctype == xlrd.XL_CELL_DATE:
        return xlrd.xldate.xldate_as_datetime(cell.value, book.datemode)
    if cell.ctype == xlrd.XL_CELL_ERROR:
        return xlrd.error_text_from_code.get(cell.value, "#ERROR")
    if cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
        return None
    return cell.value


def _xls_sheets(path: Path) -> list[Sheet]:
    import xlrd

    try:
        book = xlrd.open_workbook(str(path), on_demand=True)
    except Exception as exc:  # xlrd raises assorted errors on damaged files
        if "encrypted" in str(exc).lower() or _is_encrypted_ooxml(path):
            raise ReadProblem(
                N_("The spreadsheet is password-protected; export it again without a password")
            ) from None
        raise ReadProblem(N_("The spreadsheet is damaged and cannot be opened")) from None
    try:
        return [_XlsSheet(path, name) for name in book.sheet_names()]
    finally:
        book.release_resources()


def _is_encrypted_ooxml(path: Path) -> bool:
    """A password-protected .xlsx is an OLE2 file holding an "EncryptedPackage" stream."""
    marker = "EncryptedPackage".encode("utf-16-le")
    with path.open("rb") as handle:
        previous = b""
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            if marker in previous[-len(marker) :] + chunk:
                return True
            previous = chunk
    return False


def first_records(sheet: Sheet) -> list[Record | Comment]:
    return list(itertools.islice(sheet.records(), SAMPLE_RECORDS))
