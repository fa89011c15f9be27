"""What an uploaded file is, read from its bytes: its hash, its size, its type.

Names and the content type a client declares are never trusted. ``measure`` hashes
and counts a file while refusing it past a size limit; ``recognise`` says what the
bytes are, among the types the app knows how to keep, or None. Each domain then
accepts its own subset (a post's media, a deliverable's evidence).

How each family is told apart, by content only:

- signed formats (PDF, images, videos): their leading signature, as puremagic is
  most confident about it;
- ZIP containers: Office Open XML documents (XLSX, DOCX, PPTX) declare their main
  part in ``[Content_Types].xml``; any other readable archive is a ZIP (a
  macro-enabled document too: it is offered as the archive it is, never as a
  document an office suite would open and run);
- OLE2 compound files: only an Excel 97–2003 workbook (one xlrd opens) is kept,
  not the Word or PowerPoint files sharing that signature;
- text: no byte a text never holds (NUL and other control characters), in UTF-8,
  UTF-16 with its BOM, or a single-byte code page as spreadsheet exports often
  are; CSV when a delimiter splits its first lines into the same columns. Text
  that is first of all markup or a script (HTML, SVG, XML) is not plain text.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import mmap
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

import puremagic
import xlrd

from app.storage import CHUNK

PDF = "application/pdf"
PNG = "image/png"
JPEG = "image/jpeg"
GIF = "image/gif"
WEBP = "image/webp"
MP4 = "video/mp4"
QUICKTIME = "video/quicktime"
WEBM = "video/webm"
ZIP = "application/zip"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
XLS = "application/vnd.ms-excel"
CSV = "text/csv"
TEXT = "text/plain"

# The extension a recognised type is saved under, whatever the upload was called.
EXTENSIONS = {
    PDF: "pdf",
    PNG: "png",
    JPEG: "jpg",
    GIF: "gif",
    WEBP: "webp",
    MP4: "mp4",
    QUICKTIME: "mov",
    WEBM: "webm",
    ZIP: "zip",
    XLSX: "xlsx",
    DOCX: "docx",
    PPTX: "pptx",
    XLS: "xls",
    CSV: "csv",
    TEXT: "txt",
}
SIGNED = (PDF, PNG, JPEG, GIF, WEBP, MP4, QUICKTIME, WEBM)
# The main part an Office Open XML package declares, and the document it makes.
OFFICE_MAIN_PARTS = {
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml": XLSX,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml": DOCX,
    "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml": PPTX,
}
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
HEAD_BYTES = 8192
# [Content_Types].xml is a few KB; reading more would only feed a zip bomb.
CONTENT_TYPES_LIMIT = 256 * 1024
CONTENT_TYPE_ATTRIBUTE = re.compile(rb'ContentType="([^"]{1,200})"')
# Bytes that text never holds: C0 controls other than tab, newlines, form feed; DEL.
CONTROL_BYTES = bytes([*range(0x00, 0x09), *range(0x0E, 0x20), 0x7F])
CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0e-\x1f\x7f]")
# A confident signature on text (HTML, SVG, XML) means markup, not plain text.
MARKUP_CONFIDENCE = 0.5


class TooLarge(ValueError):
    """The file is longer than the limit it was measured against."""


@dataclass(frozen=True)
class Measured:
    sha256: str
    size: int


def measure(file: BinaryIO, *, limit: int) -> Measured:
    """Hash and count the bytes from the start, stopping at once past ``limit``; rewinds."""
    digest = hashlib.sha256()
    size = 0
    file.seek(0)
    for chunk in iter(lambda: file.read(CHUNK), b""):
        size += len(chunk)
        if size > limit:
            raise TooLarge(size)
        digest.update(chunk)
    file.seek(0)
    return Measured(digest.hexdigest(), size)


def recognise(file: BinaryIO) -> str | None:
    """The type these bytes are (one of ``EXTENSIONS``), or None; rewinds."""
    file.seek(0)
    head = file.read(HEAD_BYTES)
    try:
        if not head:
            return None
        if head.startswith(ZIP_SIGNATURES):
            return _zip_kind(file)
        if head.startswith(OLE_SIGNATURE):
            return _ole_kind(file)
        signature, confidence = _signature(head)
        if signature is not None:
            return signature
        if confidence >= MARKUP_CONFIDENCE:
            return None
        return _text_kind(file, head)
    finally:
        file.seek(0)


def _signature(head: bytes) -> tuple[str | None, float]:
    """A signed type among the best matches, and how confident the best match is."""
    try:
        matches = puremagic.magic_string(head)
    except puremagic.PureError:
        return None, 0.0
    if not matches:
        return None, 0.0
    best = max(match.confidence for match in matches)
    for match in matches:
        if match.confidence == best and match.mime_type in SIGNED:
            return str(match.mime_type), best
    # Only a named type counts as "something else"; nameless weak matches hit CSVs too.
    named = [match.confidence for match in matches if match.mime_type]
    return None, max(named, default=0.0)


def _zip_kind(file: BinaryIO) -> str | None:
    file.seek(0)
    try:
        with zipfile.ZipFile(file) as archive:
            try:
                info = archive.getinfo("[Content_Types].xml")
            except KeyError:
                return ZIP
            with archive.open(info) as part:
                declared = part.read(CONTENT_TYPES_LIMIT)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError, EOFError):
        return None  # not a readable archive, whatever its first bytes say
    for match in CONTENT_TYPE_ATTRIBUTE.finditer(declared):
        kind = OFFICE_MAIN_PARTS.get(match.group(1).decode("ascii", "replace"))
        if kind is not None:
            return kind
    return ZIP


@contextmanager
def _contents(file: BinaryIO) -> Iterator[bytes | mmap.mmap]:
    """The whole file, mapped rather than read when it is on disk."""
    try:
        mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        file.seek(0)
        yield file.read()
        return
    try:
        yield mapped
    finally:
        mapped.close()


def _ole_kind(file: BinaryIO) -> str | None:
    with _contents(file) as contents:
        try:
            book = xlrd.open_workbook(
                file_contents=contents,  # xlrd only slices it: a mapped file does
                on_demand=True,
                logfile=io.StringIO(),
            )
        # xlrd raises anything at all on foreign bytes: every one means not a workbook.
        except Exception:
            return None
        book.release_resources()
    return XLS


def _text_kind(file: BinaryIO, head: bytes) -> str | None:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        decoder = codecs.getincrementaldecoder("utf-16")()
        file.seek(0)
        try:
            for chunk in iter(lambda: file.read(CHUNK), b""):
                if CONTROL_CHARACTERS.search(decoder.decode(chunk)):
                    return None
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return None
        sample = head.decode("utf-16", "replace")
    else:
        file.seek(0)
        for chunk in iter(lambda: file.read(CHUNK), b""):
            if len(chunk.translate(None, CONTROL_BYTES)) != len(chunk):
                return None
        sample = head.decode("utf-8-sig", "replace")
    return CSV if _looks_tabular(sample, whole=len(head) < HEAD_BYTES) else TEXT


def _looks_tabular(sample: str, *, whole: bool) -> bool:
    """A delimiter splits the first lines into the same number (two or more) of columns."""
    lines = sample.splitlines()
    if not whole:
        lines = lines[:-1]  # the head may end in the middle of a line
    lines = [line for line in lines[:6] if line.strip()]
    if len(lines) < 2:
        return False
    try:
        dialect = csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|")
    except csv.Error:
        return False
    widths = {len(row) for row in csv.reader(lines, dialect)}
    return len(widths) == 1 and widths.pop() >= 2
