"""English and Spanish: catalogs, language negotiation and formatting.

English is the source language; Spanish comes from the Babel catalog in
``app/translations``. The catalog is compiled in memory on first use, so a
checkout runs without a build step.
"""

from __future__ import annotations

import gettext
from datetime import datetime
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_datetime as babel_format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal
from babel.support import Translations

LANGUAGES: tuple[str, ...] = ("en", "es")
LANGUAGE_NAMES = {"en": "English", "es": "Español"}
TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"


@cache
def translations(language: str) -> gettext.NullTranslations:
    po_path = TRANSLATIONS_DIR / language / "LC_MESSAGES" / "messages.po"
    if language == "en" or not po_path.exists():
        return gettext.NullTranslations()
    with po_path.open("rb") as po_file:
        catalog = read_po(po_file, locale=language)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(fp=compiled)


def parse_accept_language(header: str | None) -> list[str]:
    """Languages from an Accept-Language header, most preferred first."""
    if not header:
        return []
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip()
        if not tag or tag == "*":
            continue
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        if quality > 0:
            weighted.append((-quality, index, tag.replace("_", "-")))
    return [tag for _, _, tag in sorted(weighted)]


def negotiate_language(header: str | None, default: str) -> str:
    preferred = parse_accept_language(header)
    chosen = Locale.negotiate(preferred, list(LANGUAGES), sep="-") if preferred else None
    return chosen.language if chosen is not None else default


def gettext_for(language: str, message: str, **params: Any) -> str:
    text = translations(language).gettext(message)
    return text % params


def format_datetime(value: datetime | None, language: str, timezone: str) -> str:
    if value is None:
        return "—"
    return babel_format_datetime(value, "medium", tzinfo=ZoneInfo(timezone), locale=language)


def format_money(minor_units: int, currency: str, language: str, exponent: int = 2) -> str:
    return format_currency(minor_units / (10**exponent), currency, locale=language)


def format_number(value: float | int, language: str) -> str:
    return format_decimal(value, locale=language)
