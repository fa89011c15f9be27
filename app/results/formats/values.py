"""Reading the numbers and dates that platform exports write, exactly.

Exports write numbers the way their interface shows them: "1.2K", "3,4 mil",
"1,234" (English) or "1.234" (Spanish), "3,5 %", "€1,234.56", "-" for "no data".
Everything here turns such a cell into an exact ``Decimal`` (never a float), or
``None`` for a missing value, or raises ``ValueProblem`` with a translatable
message id. Which reading applies when a cell is ambiguous ("1,234": one thousand
two hundred and thirty-four, or 1.234?) is decided by the file's locale, which the
format detection works out from the header language and the separator.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Literal

from babel.numbers import get_currency_precision, is_currency

from app.errors import N_
from app.results.metrics import BY_KEY, Unit

# How a numeric date is read: month first, day first, or ISO only (our generic CSV).
DateOrder = Literal["mdy", "dmy", "iso"]


class ValueProblem(ValueError):
    """A cell that cannot be read; ``message`` is an ``N_`` msgid with ``params``."""

    def __init__(self, message: str, **params: Any) -> None:
        super().__init__(message % params if params else message)
        self.message = message
        self.params = params


# What exports write for "no data": Meta leaves the cell empty, X's older format and
# LinkedIn write "-", others "N/A" (Spanish interfaces "N/D", "No disponible").
MISSING = frozenset(
    {"", "-", "–", "—", "--", "n/a", "na", "n.a.", "n/d", "nd", "null", "none", "no disponible"}
)

# Spaces used as thousands separators: plain, no-break and the narrow no-break space
# that Spanish and French number formats use.
_SPACES = str.maketrans("", "", " \u00a0\u202f\u2009'’")
_MULTIPLIERS = {
    "k": Decimal(1_000),
    "mil": Decimal(1_000),  # Spanish: "3,4 mil"
    "m": Decimal(1_000_000),  # "1.5M" and the Spanish "1,5 M" alike
    "mm": Decimal(1_000_000),
    "mill": Decimal(1_000_000),
    "millones": Decimal(1_000_000),
    "b": Decimal(1_000_000_000),
    "bn": Decimal(1_000_000_000),
}
_NUMBER = re.compile(r"^(?P<digits>[0-9][0-9.,]*|[.,][0-9]+)\s*(?P<suffix>[a-z]+\.?)?$")
_GROUPED = re.compile(r"^[0-9]{1,3}(?:([.,])[0-9]{3})(?:\1[0-9]{3})*$")

# Symbols that name one currency only; "$" is left out on purpose (dollars, pesos…).
_SYMBOLS = {"€": "EUR", "£": "GBP", "¥": "JPY", "us$": "USD", "₹": "INR", "r$": "BRL"}
# Codes count only in capitals: "(all users)" must not read as Albanian lek (ALL).
_CURRENCY_IN_TEXT = re.compile(r"(?<![A-Za-z])([A-Z]{3})(?![A-Za-z])|((?i:us|r)\$|[€£¥₹$])")


def clean(value: Any) -> str:
    """A cell as trimmed text (spreadsheet cells may be numbers or dates already)."""
    if value is None:
        return ""
    text = (value if value.__class__ is str else str(value)).strip()
    # Only a file's very first cell can carry a byte-order mark that decoding left.
    return text.lstrip("\ufeff").strip() if text.startswith("\ufeff") else text


def is_missing(value: Any) -> bool:
    if value is None:
        return True
    text = clean(value)
    return not text or (len(text) < 16 and text.casefold() in MISSING)


def parse_number(value: Any, *, decimal_comma: bool) -> Decimal | None:
    """An exact number from a cell; ``None`` when the cell says "no data".

    A percent sign divides by 100. With a single separator followed by exactly three
    digits ("1,234" / "1.234") the file's locale decides; any other shape is
    unambiguous: the last separator of two kinds is the decimal one, a separator
    that repeats groups thousands, one followed by other than three digits is decimal.
    """
    if value.__class__ is str and value.isdigit():
        return Decimal(value)  # the common case, kept fast for files of a million rows
    if isinstance(value, bool):
        raise ValueProblem(N_("%(value)s is not a number"), value=str(value))
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # A spreadsheet's binary float: its shortest repr is what the cell showed.
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueProblem(N_("%(value)s is not a number"), value=str(value))
        return Decimal(repr(value))
    if isinstance(value, Decimal):
        return value
    text = clean(value)
    if is_missing(text):
        return None
    if text.isdigit():
        return Decimal(text)
    return _parse_text_number(text, decimal_comma)


@lru_cache(maxsize=4096)
def _parse_text_number(text: str, decimal_comma: bool) -> Decimal:
    body = text.casefold().translate(_SPACES)
    negative = False
    if body.startswith("(") and body.endswith(")"):  # accounting negatives: (1,234)
        negative, body = True, body[1:-1]
    if body[:1] in {"-", "−", "+"}:
        negative, body = body[0] != "+", body[1:]
    percent = body.endswith("%")
    if percent:
        body = body[:-1]
    match = _NUMBER.match(body)
    if not match:
        raise ValueProblem(N_("%(value)s is not a number"), value=text)
    digits, suffix = match["digits"], (match["suffix"] or "").rstrip(".")
    if suffix and suffix not in _MULTIPLIERS:
        raise ValueProblem(N_("%(value)s is not a number"), value=text)
    try:
        number = Decimal(_plain_digits(digits, decimal_comma))
    except (InvalidOperation, ValueProblem):
        raise ValueProblem(N_("%(value)s is not a number"), value=text) from None
    if suffix:
        number *= _MULTIPLIERS[suffix]
    if percent:
        number /= 100
    return -number if negative else number


def _plain_digits(digits: str, decimal_comma: bool) -> str:
    """Digits with the thousands separators dropped and a '.' decimal point."""
    commas, dots = digits.count(","), digits.count(".")
    if commas and dots:
        decimal = "," if digits.rfind(",") > digits.rfind(".") else "."
        thousands = "." if decimal == "," else ","
        whole, _, fraction = digits.rpartition(decimal)
        if digits.count(decimal) > 1 or not _GROUPED.match(whole):
            raise ValueProblem(N_("%(value)s is not a number"), value=digits)
        return whole.replace(thousands, "") + "." + fraction
    separator = "," if commas else "." if dots else ""
    if not separator:
        return digits
    if digits.count(separator) > 1:
        if not _GROUPED.match(digits):
            raise ValueProblem(N_("%(value)s is not a number"), value=digits)
        return digits.replace(separator, "")
    whole, _, fraction = digits.partition(separator)
    grouped = len(fraction) == 3 and whole != "" and whole != "0" and len(whole) <= 3
    if grouped:
        # "1,234" / "1.234": the locale decides which separator groups thousands.
        is_thousands = (separator == ".") == decimal_comma
        if is_thousands:
            return whole + fraction
    return (whole or "0") + "." + fraction


def parse_count(value: Any, *, decimal_comma: bool) -> Decimal | None:
    """A whole, non-negative count ("1.2K" → 1200)."""
    number = parse_number(value, decimal_comma=decimal_comma)
    if number is None:
        return None
    if number != number.to_integral_value():
        raise ValueProblem(N_("%(value)s is not a whole number"), value=clean(value))
    return number.quantize(Decimal(1))


def parse_fraction(value: Any, *, decimal_comma: bool) -> Decimal | None:
    """A rate as a fraction: "3,5 %" → 0.035; a bare number is already a fraction."""
    return parse_number(value, decimal_comma=decimal_comma)


def currency_in(text: str) -> str | None:
    """The ISO 4217 code a header or cell names ("Total revenue (EUR)", "€12")."""
    return _split_currency(text)[0]


def _split_currency(text: str) -> tuple[str | None, str]:
    """The currency a text names, and the text without it."""
    for match in _CURRENCY_IN_TEXT.finditer(text):
        code, symbol = match.group(1), match.group(2)
        found = None
        if code and is_currency(code.upper()):
            found = code.upper()
        elif symbol and symbol.casefold() in _SYMBOLS:
            found = _SYMBOLS[symbol.casefold()]
        elif symbol == "$":
            # "$" alone names no single currency; drop it and let the file's decide.
            return None, (text[: match.start()] + text[match.end() :]).strip()
        if found:
            return found, (text[: match.start()] + text[match.end() :]).strip()
    return None, text


def minor_units(amount: Decimal, currency: str, *, exact: bool) -> Decimal:
    """An amount in the currency's minor units (cents; yen have none, dinars three).

    Platform exports sometimes write revenue with float noise (123.45000000000002), so
    they are rounded half-even to the minor unit; our own generic CSV must be exact.
    """
    scaled = amount.scaleb(get_currency_precision(currency))
    whole = scaled.quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    if exact and whole != scaled:
        raise ValueProblem(
            N_("%(value)s has more decimals than %(currency)s has"),
            value=str(amount),
            currency=currency,
        )
    return whole


def parse_money(
    value: Any, *, decimal_comma: bool, currency: str | None, exact: bool
) -> tuple[Decimal, str] | None:
    """Money in minor units and its currency (stated in the cell, or else ``currency``)."""
    text = clean(value)
    if not isinstance(value, (int, float, Decimal)) and text.casefold() in MISSING:
        return None
    stated, rest = _split_currency(text) if isinstance(value, str) else (None, text)
    if stated and currency and stated != currency:
        raise ValueProblem(
            N_("%(value)s is in %(stated)s but the file is in %(currency)s"),
            value=text,
            stated=stated,
            currency=currency,
        )
    code = stated or currency
    if code is None:
        raise ValueProblem(N_("The file does not say which currency %(value)s is in"), value=text)
    if isinstance(value, str):
        value = rest
    amount = parse_number(value, decimal_comma=decimal_comma)
    if amount is None:
        return None
    return minor_units(amount, code, exact=exact), code


def value_problem(metric: str, value: Decimal) -> ValueProblem | None:
    """What is impossible for a metric whatever the engagement: a negative count, a
    rate above 100 % (ROI excepted: a return can be several times the cost), an NPS
    outside -100…100."""
    unit = BY_KEY[metric].unit
    if unit in (Unit.quantity, Unit.minutes, Unit.ratio) and value < 0:
        return ValueProblem(N_("A count cannot be negative (%(value)s)"), value=str(value))
    if unit is Unit.percent and metric != "roi" and not 0 <= value <= 1:
        return ValueProblem(
            N_("A rate must be between 0 %% and 100 %% (%(value)s %%)"),
            value=str((value * 100).normalize()),
        )
    if unit is Unit.score and not -100 <= value <= 100:
        return ValueProblem(
            N_("A score must be between -100 and 100 (%(value)s)"), value=str(value)
        )
    return None


# Dates ---------------------------------------------------------------------------

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan", "enero", "ene"),
            ("february", "feb", "febrero"),
            ("march", "mar", "marzo"),
            ("april", "apr", "abril", "abr"),
            ("may", "mayo"),
            ("june", "jun", "junio"),
            ("july", "jul", "julio"),
            ("august", "aug", "agosto", "ago"),
            ("september", "sep", "sept", "septiembre", "setiembre", "set"),
            ("october", "oct", "octubre"),
            ("november", "nov", "noviembre"),
            ("december", "dec", "diciembre", "dic"),
        ),
        start=1,
    )
    for name in names
}
_WEEKDAYS = frozenset(
    [
        "mon",
        "monday",
        "tue",
        "tues",
        "tuesday",
        "wed",
        "wednesday",
        "thu",
        "thur",
        "thurs",
        "thursday",
        "fri",
        "friday",
        "sat",
        "saturday",
        "sun",
        "sunday",
        "lun",
        "lunes",
        "mar",
        "martes",
        "mie",
        "miercoles",
        "jue",
        "jueves",
        "vie",
        "viernes",
        "sab",
        "sabado",
        "dom",
        "domingo",
    ]
)
# Words around a date that carry no part of it: "14 de julio de 2026", "10:30 p. m.", "UTC".
_FILLER = frozenset({"de", "del", "am", "pm", "a", "p", "m", "utc", "gmt", "z", "t", "at"})
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ].*)?$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_NUMERIC = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4}|\d{2})(?:[ ,T].*)?$")
_TOKEN = re.compile(r"\d{1,2}:\d{2}(?::\d{2})?|[+-]\d{4}|\d+|[^\W\d_]+")


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def parse_date(value: Any, *, order: DateOrder) -> dt.date | None:
    """A calendar date as written (times and time zones are dropped, not converted).

    ISO (2026-07-14, with or without a time), compact (20260714), numeric with the
    format's ``order`` for day and month (07/14/2026 is ``mdy``, 14/07/2026 ``dmy``),
    and month names in English or Spanish ("Tue, Jul 14, 2026", "14 de julio de 2026").
    """
    if value.__class__ is str:
        return _parse_date_text(value, order)  # cached: exports repeat their dates
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return _parse_date_text(clean(value), order)


@lru_cache(maxsize=4096)
def _parse_date_text(raw: str, order: DateOrder) -> dt.date | None:
    text = clean(raw)
    if is_missing(text):
        return None
    try:
        if match := _ISO.match(text) or _COMPACT.match(text):
            year, month, day = (int(part) for part in match.groups())
            return dt.date(year, month, day)
        if order == "iso":
            raise ValueProblem(N_("%(value)s is not a date (write YYYY-MM-DD)"), value=text)
        if match := _NUMERIC.match(text):
            first, second, year = (int(part) for part in match.groups())
            if year < 100:
                year += 2000
            month, day = (first, second) if order == "mdy" else (second, first)
            return dt.date(year, month, day)
        named_month, named_day, named_year = _month_name_parts(text)
        if named_year is None:
            raise ValueError(text)
        return dt.date(named_year, named_month, named_day)
    except ValueError:
        raise ValueProblem(N_("%(value)s is not a date"), value=text) from None


def parse_month_day(value: Any) -> tuple[int, int] | None:
    """A date written without its year ("August 31", "31 de agosto"): (month, day)."""
    text = clean(value)
    if text.casefold() in MISSING:
        return None
    try:
        month, day, year = _month_name_parts(text)
        dt.date(year or 2000, month, day)  # 2000 is a leap year: 29 February passes
    except ValueError:
        raise ValueProblem(N_("%(value)s is not a date"), value=text) from None
    return month, day


def _month_name_parts(text: str) -> tuple[int, int, int | None]:
    day = year = None
    names: list[str] = []
    for token in _TOKEN.findall(_fold(text)):
        if ":" in token or token[0] in "+-" or token in _FILLER:
            continue
        if not token.isdigit():
            names.append(token)
        elif len(token) == 4 and year is None:
            year = int(token)
        elif len(token) <= 2 and day is None:
            day = int(token)
        else:
            raise ValueError(text)
    # The month is the last month name: in "mar, 14 jul 2026" "mar" is Tuesday (martes).
    months = [index for index, name in enumerate(names) if name in _MONTHS]
    if not months or day is None:
        raise ValueError(text)
    month_at = months[-1]
    if any(name not in _WEEKDAYS for index, name in enumerate(names) if index != month_at):
        raise ValueError(text)
    return _MONTHS[names[month_at]], day, year
