"""Brandkeep's generic results CSV: for numbers no supported export carries.

One row per value ("long" format). Headers, in any order, English or Spanish
(case, accents and spaces do not matter); the separator may be a comma, a semicolon
or a tab; UTF-8 (with or without a byte-order mark), UTF-16 with a mark, or
Windows-1252 as Excel saves it:

================================  ========================  ==========================
column                            Spanish header            required / meaning
================================  ========================  ==========================
``metric``                        ``metrica``               required: a key of the
                                                            metric dictionary
                                                            (``impressions``,
                                                            ``revenue``, ``ctr``…)
``period_start``                  ``inicio_periodo``        required: ISO date
                                                            ``YYYY-MM-DD``
``period_end``                    ``fin_periodo``           optional, inclusive ISO
                                                            date; defaults to
                                                            ``period_start``
``value``                         ``valor``                 required, see below
``channel``                       ``canal``                 optional: ``facebook``,
                                                            ``instagram``, ``x``,
                                                            ``linkedin``, ``tiktok``,
                                                            ``youtube``, ``blog``,
                                                            ``forums``, ``other``,
                                                            ``web``; empty for the
                                                            whole engagement
``currency``                      ``moneda``                ISO 4217 code; required on
                                                            rows of money metrics
``post_ref``                      ``referencia_publicacion`` optional: the post's
                                                            permalink, platform id or
                                                            UTM content
``platform_metric``               ``metrica_plataforma``    optional: the source's own
                                                            name for the metric
``platform_metric_version``       ``version_metrica_plataforma``  optional
================================  ========================  ==========================

Values: counts are whole numbers (``1200``; ``1.2K`` and ``1,200`` are read too);
rates are fractions (``0.035``) or percentages with the sign (``3.5%``); money is
in major units (``1234.56``), with no more decimals than the currency has, and is
stored in minor units (cents). The decimal separator is ``.``; in files separated
by ``;`` (Excel in Spanish) a decimal comma (``0,035``) is read as well. An empty
value, ``-`` or ``N/A`` means "no value": the row is skipped, not read as zero.

Example::

    channel,metric,period_start,period_end,value,currency,post_ref
    instagram,impressions,2026-03-01,2026-03-31,48210,,
    ,revenue,2026-03-01,2026-03-31,1520.50,EUR,
    facebook,ctr,2026-03-04,2026-03-04,1.8%,,https://www.facebook.com/northwind/posts/123
"""

from __future__ import annotations

import datetime as dt

from babel.numbers import is_currency

from app.engagements.models import Channel
from app.errors import N_
from app.results.formats.tables import (
    CHANNEL,
    METRIC,
    PERIOD,
    POST_REF,
    CellProblem,
    Cells,
    Column,
    Match,
    TableSpec,
    no_period,
)
from app.results.formats.values import ValueProblem
from app.results.metrics import BY_KEY

CHANNELS = frozenset({*(channel.value for channel in Channel), "web", ""})
# The value column as each metric reads it: made once, not once per row of a big file.
_VALUE_COLUMNS = {key: [Column("value", METRIC, (), metric=key)] for key in BY_KEY}


class GenericCSV(TableSpec):
    format = "generic"
    money_exact = True
    # ISO only: the one way of writing a date that nobody reads two ways.
    date_order = "iso"
    columns = (
        Column("metric", METRIC, ("metric",), ("metrica",)),
        Column("period_start", PERIOD, ("period_start",), ("inicio_periodo",)),
        Column("period_end", PERIOD, ("period_end",), ("fin_periodo",)),
        Column("value", "value", ("value",), ("valor",)),
        Column("channel", CHANNEL, ("channel",), ("canal",)),
        Column("currency", "currency", ("currency",), ("moneda",)),
        Column("post_ref", POST_REF, ("post_ref",), ("referencia_publicacion",)),
        Column("platform_metric", "platform_metric", ("platform_metric",), ("metrica_plataforma",)),
        Column(
            "platform_metric_version",
            "platform_metric_version",
            ("platform_metric_version",),
            ("version_metrica_plataforma",),
        ),
    )
    required = (("metric",), ("period_start",), ("value",))

    def label(self, match: Match) -> str:
        return N_("Brandkeep generic CSV")

    def channel(self, match: Match, row: Cells) -> str:
        channel = (row.text("channel") or "").casefold()
        if channel not in CHANNELS:
            raise CellProblem(
                "channel",
                ValueProblem(N_("%(value)s is not a channel Brandkeep knows"), value=channel),
            )
        return channel

    def period(self, match: Match, row: Cells) -> tuple[dt.date, dt.date]:
        start = row.date("period_start")
        if start is None:
            raise CellProblem("period_start", no_period(match.header("period_start")))
        end = row.date("period_end") if "period_end" in row else None
        end = end or start
        if end < start:
            raise CellProblem(
                "period_end",
                ValueProblem(
                    N_("The period ends (%(end)s) before it starts (%(start)s)"),
                    end=end.isoformat(),
                    start=start.isoformat(),
                ),
            )
        return start, end

    def metric_columns(self, match: Match, row: Cells) -> list[Column]:
        key = row.text("metric") or ""
        if key not in BY_KEY:
            raise CellProblem(
                "metric",
                ValueProblem(N_("%(value)s is not a metric of the dictionary"), value=key),
            )
        return _VALUE_COLUMNS[key]

    def platform_metric(self, match: Match, row: Cells, column: Column) -> tuple[str, str]:
        name = row.text("platform_metric") if "platform_metric" in row else None
        version = row.text("platform_metric_version") if "platform_metric_version" in row else None
        return name or column.metric, version or ""

    def currency(self, match: Match, row: Cells) -> str | None:
        code = (row.text("currency") or "").upper()
        if code and not is_currency(code):
            raise CellProblem(
                "currency",
                ValueProblem(N_("%(value)s is not a currency code (ISO 4217)"), value=code),
            )
        return code or None

    def post_ref(self, match: Match, row: Cells) -> str | None:
        return row.text("post_ref")
