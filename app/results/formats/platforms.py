"""The platform exports Brandkeep reads (DOMAIN.md §4), header by header.

Headers are listed as the platforms write them in English and in Spanish. Each
metric column names the dictionary metric it feeds and the export generation it
comes from (``platform_metric_version``), because platforms rename and redefine
metrics: Meta's "Views" (since 2024) counts repeat views where "Impressions" did
not; Google Analytics' "Key events" were "Conversions" before 2024.

Columns with no metric in the dictionary (likes, comments, saves, profile visits…)
are recognised and shown as ``ignored`` in the mapping rather than given a made-up
home; a platform's total of interactions maps to ``engagements`` only where it
writes one (Meta's "Reactions, Comments and Shares", X's "Engagements").

Dates: every platform writes the date of a row in its own way; numeric dates are
month-first in English exports (Meta's ``MM/DD/YYYY HH:MM``, LinkedIn's
``MM/DD/YYYY``) and day-first in Spanish ones. Dates with month names ("Tue, Jul
14, 2026", "14 jul 2026") are unambiguous. TikTok writes none of its years: see
``TikTokDaily``. Times and time zones are dropped: a row belongs to the calendar
date the platform printed.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from typing import Any

from app.errors import N_
from app.results.formats.reading import Comment, Record
from app.results.formats.tables import (
    CHANNEL,
    LIFETIME,
    PERIOD,
    POST_ID,
    POST_REF,
    CellProblem,
    Cells,
    Column,
    Match,
    TableSpec,
    fold,
    ignored,
    metric,
    no_period,
)
from app.results.formats.values import (
    ValueProblem,
    clean,
    is_missing,
    parse_date,
    parse_month_day,
)


def _period_of_day(match: Match, row: Cells, key: str) -> tuple[dt.date, dt.date]:
    day = row.date(key)
    if day is None:
        raise CellProblem(key, no_period(match.header(key)))
    return day, day


# Meta Business Suite ---------------------------------------------------------------


class MetaPosts(TableSpec):
    """Meta Business Suite content export (Facebook page or Instagram account).

    ``Date`` says "Lifetime" when the numbers cover the post's life until the export:
    the row's period is then the day the post was published, so a later export of the
    same post supersedes the earlier numbers instead of adding to them.
    """

    format = "meta"
    columns = (
        Column("post_id", POST_ID, ("Post ID",), ("Identificador de la publicación",)),
        Column("page_id", "ignored", ("Page ID",), ("Identificador de la página",)),
        Column("page_name", "ignored", ("Page name",), ("Nombre de la página",)),
        Column("account_id", "ignored", ("Account ID",), ("Identificador de la cuenta",)),
        Column(
            "account_username",
            "ignored",
            ("Account username",),
            ("Nombre de usuario de la cuenta",),
        ),
        Column("publish_time", PERIOD, ("Publish time",), ("Hora de publicación",)),
        Column("permalink", POST_REF, ("Permalink",), ("Enlace permanente",)),
        Column("date", PERIOD, ("Date",), ("Fecha",)),
        metric("views", "impressions", "Views", "Visualizaciones", "views-2024"),
        metric("impressions", "impressions", "Impressions", "Impresiones", "impressions-pre-2024"),
        metric("reach", "reach", "Reach", "Alcance", "reach"),
        metric(
            "engagements",
            "engagements",
            "Reactions, Comments and Shares",
            "Reacciones, comentarios y veces que se ha compartido",
            "reactions-comments-shares",
        ),
        metric("link_clicks", "link_clicks", "Link clicks", "Clics en el enlace", "link-clicks"),
        *ignored(
            ("Account name", "Nombre de la cuenta"),
            ("Title", "Título"),
            ("Description", "Descripción"),
            ("Duration (sec)", "Duración (s)"),
            ("Caption type", "Tipo de subtítulos"),
            ("Is crosspost", "Es una publicación cruzada"),
            ("Is share", "Es contenido compartido"),
            ("Post type", "Tipo de publicación"),
            ("Languages", "Idiomas"),
            ("Custom labels", "Etiquetas personalizadas"),
            ("Funded content status", "Estado del contenido financiado"),
            ("Data comment", "Comentario sobre los datos"),
            ("Reactions", "Reacciones"),
            ("Comments", "Comentarios"),
            ("Shares", "Veces que se ha compartido"),
            ("Total clicks", "Clics totales"),
            ("Other Clicks", "Otros clics"),
            ("Likes", "Me gusta"),
            ("Follows", "Seguimientos"),
            ("Saves", "Veces guardado"),
        ),
    )
    required = (
        ("post_id",),
        ("publish_time",),
        ("page_id", "page_name", "account_id", "account_username"),
        ("views", "impressions", "reach"),
    )
    prefer = (("views", "impressions"),)

    def is_instagram(self, match: Match) -> bool:
        return "account_id" in match.positions or "account_username" in match.positions

    def label(self, match: Match) -> str:
        if self.is_instagram(match):
            return N_("Meta Business Suite (Instagram)")
        return N_("Meta Business Suite (Facebook)")

    def channel(self, match: Match, row: Cells) -> str:
        return "instagram" if self.is_instagram(match) else "facebook"

    def period(self, match: Match, row: Cells) -> tuple[dt.date, dt.date]:
        if "date" in row and fold(row.raw("date")) not in LIFETIME:
            day = row.date("date")
            if day is not None:
                return day, day
        return _period_of_day(match, row, "publish_time")


# LinkedIn page analytics -------------------------------------------------------------


class LinkedInPosts(TableSpec):
    """LinkedIn page analytics, sheet "All posts": one row per post, lifetime numbers."""

    format = "linkedin"
    part = "All posts"
    columns = (
        Column("post_link", POST_REF, ("Post link",), ("Enlace de la publicación",)),
        Column("created", PERIOD, ("Created date",), ("Fecha de creación",)),
        metric("impressions", "impressions", "Impressions", "Impresiones", "page-analytics"),
        metric("clicks", "link_clicks", "Clicks", "Clics", "page-analytics"),
        metric("ctr", "ctr", "Click through rate (CTR)", "Tasa de clics (CTR)", "page-analytics"),
        metric(
            "engagement_rate",
            "engagement_rate_impressions",
            "Engagement rate",
            "Tasa de interacción",
            "page-analytics",
        ),
        *ignored(
            ("Post title", "Título de la publicación"),
            ("Post type", "Tipo de publicación"),
            ("Campaign name", "Nombre de la campaña"),
            ("Posted by", "Publicado por"),
            ("Campaign start date", "Fecha de inicio de la campaña"),
            ("Campaign end date", "Fecha de finalización de la campaña"),
            ("Audience", "Público"),
            (
                "Views (excluding off-site video views)",
                "Visualizaciones (sin incluir las visualizaciones de vídeo fuera del sitio)",
            ),
            ("Views", "Visualizaciones"),
            ("Off-site views", "Visualizaciones fuera del sitio"),
            ("Likes", "Recomendaciones"),
            ("Comments", "Comentarios"),
            ("Reposts", "Veces compartido"),
            ("Follows", "Seguimientos"),
            ("Content Type", "Tipo de contenido"),
        ),
    )
    required = (("post_link",), ("created",), ("impressions",))

    def label(self, match: Match) -> str:
        return N_("LinkedIn page analytics")

    def channel(self, match: Match, row: Cells) -> str:
        return "linkedin"

    def period(self, match: Match, row: Cells) -> tuple[dt.date, dt.date]:
        return _period_of_day(match, row, "created")


def _linkedin_split(en: str, es: str) -> tuple[tuple[str, str], ...]:
    return (
        (f"{en} (organic)", f"{es} (orgánicas)"),
        (f"{en} (sponsored)", f"{es} (patrocinadas)"),
    )


class LinkedInDaily(TableSpec):
    """LinkedIn page analytics, sheet "Metrics": the page's numbers day by day.

    Only the totals are imported: organic and sponsored would be two values for the
    same row key (same page, metric and day).
    """

    format = "linkedin"
    part = "Metrics"
    columns = (
        Column("date", PERIOD, ("Date",), ("Fecha",)),
        metric(
            "impressions",
            "impressions",
            "Impressions (total)",
            "Impresiones (totales)",
            "page-analytics",
        ),
        metric("clicks", "link_clicks", "Clicks (total)", "Clics (totales)", "page-analytics"),
        metric(
            "engagement_rate",
            "engagement_rate_impressions",
            "Engagement rate (total)",
            "Tasa de interacción (total)",
            "page-analytics",
        ),
        *ignored(
            *_linkedin_split("Impressions", "Impresiones"),
            ("Unique impressions (organic)", "Impresiones únicas (orgánicas)"),
            *_linkedin_split("Clicks", "Clics"),
            *_linkedin_split("Reactions", "Reacciones"),
            ("Reactions (total)", "Reacciones (totales)"),
            *_linkedin_split("Comments", "Comentarios"),
            ("Comments (total)", "Comentarios (totales)"),
            *_linkedin_split("Reposts", "Veces compartido"),
            ("Reposts (total)", "Veces compartido (totales)"),
            ("Engagement rate (organic)", "Tasa de interacción (orgánica)"),
            ("Engagement rate (sponsored)", "Tasa de interacción (patrocinada)"),
        ),
    )
    required = (("date",), ("impressions",))

    def label(self, match: Match) -> str:
        return N_("LinkedIn page analytics")

    def channel(self, match: Match, row: Cells) -> str:
        return "linkedin"

    def period(self, match: Match, row: Cells) -> tuple[dt.date, dt.date]:
        return _period_of_day(match, row, "date")


# X ------------------------------------------------------------------------------------


class XPosts(TableSpec):
    """X analytics content export (2024 on): one row per post, "Tue, Jul 14, 2026"."""

    format = "x"
    columns = (
        Column("post_id", POST_ID, ("Post id",), ("Id. del post",)),
        Column("date", PERIOD, ("Date",), ("Fecha",)),
        Column("link", POST_REF, ("Post Link",), ("Enlace del post",)),
        metric("impressions", "impressions", "Impressions", "Impresiones", "x-2024"),
        metric("engagements", "engagements", "Engagements", "Interacciones", "x-2024"),
        metric("url_clicks", "link_clicks", "URL Clicks", "Clics en URL", "x-2024"),
        *ignored(
            ("Post text", "Texto del post"),
            ("Likes", "Me gusta"),
            ("Bookmarks", "Elementos guardados"),
            ("Shares", "Veces compartido"),
            ("New follows", "Nuevos seguidores"),
            ("Replies", "Respuestas"),
            ("Reposts", "Reposts"),
            ("Profile visits", "Visitas al perfil"),
            ("Detail Expands", "Expansiones de detalles"),
            ("Hashtag Clicks", "Clics en hashtags"),
            ("Permalink Clicks", "Clics en el enlace permanente"),
        ),
    )
    required = (("post_id",), ("date",), ("impressions",))

    def label(self, match: Match) -> str:
        return N_("X analytics")

    def channel(self, match: Match, row: Cells) -> str:
        return "x"

    def period(self, match: Match, row: Cells) -> tuple[dt.date, dt.date]:
        return _period_of_day(match, row, "date")


_PROMOTED = (
    "promoted impressions",
    "promoted engagements",
    "promoted engagement rate",
    "promoted retweets",
    "promoted replies",
    "promoted likes",
    "promoted user profile clicks",
    "promoted url clicks",
    "promoted hashtag clicks",
    "promoted detail expands",
    "promoted permalink clicks",
    "promoted app opens",
    "promoted app installs",
    "promoted follows",
    "promoted email tweet",
    "promoted dial phone",
    "promoted media views",
    "promoted media engagements",
)


class XTweetActivity(TableSpec):
    """The older ``tweet_activity_metrics_….csv``: time as "2020-03-01 15:04 +0000".

    Its numbers are organic; the ``promoted …`` columns ("-" when a tweet was not
    promoted) are left out, as folding paid numbers into organic ones would change
    what "impressions" means between two exports of the same account.
    """

    format = "x_legacy"
    columns = (
        Column("tweet_id", POST_ID, ("Tweet id",), ("Id. del Tweet",)),
        Column("permalink", POST_REF, ("Tweet permalink",), ("Enlace permanente del Tweet",)),
        Column("time", PERIOD, ("time",), ("hora",)),
        metric("impressions", "impressions", "impressions", "impresiones", "tweet-activity"),
        metric(
            "engagement_rate",
            "engagement_rate_impressions",
            "engagement rate",
            "tasa de interacción",
            "tweet-activity",
        ),
        metric("engagements", "engagements", "engagements", "interacciones", "tweet-activity"),
        metric("url_clicks", "link_clicks", "url clicks", "clics en URL", "tweet-activity"),
        *ignored(
            ("Tweet text", "Texto del Tweet"),
            ("retweets", "retweets"),
            ("replies", "respuestas"),
            ("likes", "me gusta"),
            ("user profile clicks", "clics en el perfil del usuario"),
            ("hashtag clicks", "clics en hashtags"),
            ("detail expands", "expansiones de detalles"),
            ("permalink clicks", "clics en el enlace permanente"),
            ("app opens", "aperturas de la aplicación"),
            ("app installs", "instalaciones de la aplicación"),
            ("follows", "seguimientos"),
            ("email tweet", "enviar Tweet por correo"),
            ("dial phone", "llamar por teléfono"),
            ("media views", "visualizaciones de contenido multimedia"),
            ("media engagements", "interacciones con el contenido multimedia"),
            *((name, name) for name in _PROMOTED),
        ),
    )
    required = (("tweet_id",), ("time",), ("impressions",))

    def label(self, match: Match) -> str:
        return N_("X tweet activity (older format)")

    def channel(self, match: Match, row: Cells) -> str:
        return "x"

    def period(self, match: Match, row: Cells) -> tuple[dt.date, dt.date]:
        return _period_of_day(match, row, "time")


# TikTok Studio --------------------------------------------------------------------------


class TikTokDaily(TableSpec):
    """TikTok Studio's daily files (Overview.csv, Viewers.csv): dates like "August 31".

    The year is not written. The last row is the export's most recent day, so it takes
    the year of the day the export was made (the zip member's date, or else today's);
    going backwards, each time the month and day grow instead of shrinking, a year
    boundary was crossed. A first pass over the date column counts those boundaries
    (no rows are kept), the second assigns the years while the rows stream.
    """

    format = "tiktok"

    def label(self, match: Match) -> str:
        return N_("TikTok Studio")

    def channel(self, match: Match, row: Cells) -> str:
        return "tiktok"

    def prepare(self, match: Match, sheet: Any) -> None:
        reference = sheet.reference_date or dt.datetime.now(dt.UTC).date()
        wraps = 0
        previous: tuple[int, int] | None = None
        last: tuple[int, int] | None = None
        for record in _data_records(match, sheet):
            try:
                month_day = parse_month_day(Cells(match, record.line, record.cells).raw("date"))
            except ValueProblem:
                continue  # reported when the row is read
            if month_day is None:
                continue
            if previous is not None and month_day < previous:
                wraps += 1
            previous = last = month_day
        year = reference.year
        if last is not None and last > (reference.month, reference.day):
            year -= 1  # the export's last day cannot be after the day it was made
        match.state["year"] = year - wraps
        match.state["previous"] = None

    def period(self, match: Match, row: Cells) -> tuple[dt.date, dt.date]:
        raw = row.raw("date")
        try:
            day = parse_date(raw, order=match.date_order)
        except ValueProblem:
            month_day = row.read("date", parse_month_day)
            if month_day is None:
                raise CellProblem("date", no_period(match.header("date"))) from None
            previous = match.state["previous"]
            if previous is not None and month_day < previous:
                match.state["year"] += 1
            match.state["previous"] = month_day
            try:
                day = dt.date(match.state["year"], *month_day)
            except ValueError:  # 29 February in a year that has none
                raise CellProblem(
                    "date", ValueProblem(N_("%(value)s is not a date"), value=clean(raw))
                ) from None
        if day is None:
            raise CellProblem("date", no_period(match.header("date")))
        return day, day


class TikTokOverview(TikTokDaily):
    part = "Overview"
    columns = (
        Column("date", PERIOD, ("Date",), ("Fecha",)),
        metric(
            "video_views",
            "impressions",
            "Video Views",
            "Visualizaciones de vídeos",
            "studio-video-views",
        ),
        *ignored(
            ("Profile Views", "Visualizaciones del perfil"),
            ("Likes", "Me gusta"),
            ("Comments", "Comentarios"),
            ("Shares", "Veces compartido"),
        ),
    )
    required = (("date",), ("video_views",))


class TikTokViewers(TikTokDaily):
    part = "Viewers"
    columns = (
        Column("date", PERIOD, ("Date",), ("Fecha",)),
        metric("viewers", "reach", "Total Viewers", "Espectadores totales", "studio-viewers"),
        *ignored(
            ("New Viewers", "Espectadores nuevos"),
            ("Returning Viewers", "Espectadores recurrentes"),
        ),
    )
    required = (("date",), ("viewers",))


class TikTokContent(TableSpec):
    """TikTok Studio's Content.csv: one row per video, lifetime numbers."""

    format = "tiktok"
    part = "Content"
    columns = (
        Column("video_link", POST_REF, ("Video link",), ("Enlace del vídeo",)),
        Column("post_time", PERIOD, ("Post time",), ("Hora de publicación",)),
        metric(
            "views", "impressions", "Total views", "Visualizaciones totales", "studio-video-views"
        ),
        *ignored(
            ("Video title", "Título del vídeo"),
            ("Total likes", "Me gusta totales"),
            ("Total comments", "Comentarios totales"),
            ("Total shares", "Veces compartido totales"),
        ),
    )
    required = (("video_link",), ("post_time",), ("views",))

    def label(self, match: Match) -> str:
        return N_("TikTok Studio")

    def channel(self, match: Match, row: Cells) -> str:
        return "tiktok"

    def period(self, match: Match, row: Cells) -> tuple[dt.date, dt.date]:
        return _period_of_day(match, row, "post_time")


# Google Analytics 4 ---------------------------------------------------------------------

_GA4_START = frozenset({"start date", "fecha de inicio"})
_GA4_END = frozenset({"end date", "fecha de finalizacion", "fecha de fin"})
_GA4_TOTALS = frozenset({"grand total", "total general", "totals", "total", "totales"})
# A report by channel group ("Session primary channel group (Default Channel Group)",
# "Grupo de canales principal de la sesión"): its rows are traffic sources, not posts.
_GA4_CHANNEL_GROUP = ("channel group", "grupo de canales")
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def channel_group_slug(value: str | None) -> str:
    """ "Organic Social" → ``organic_social``: a channel group as a row's channel."""
    slug = _NOT_SLUG.sub("_", fold(value or "")).strip("_")[:32].rstrip("_")
    return slug or "not_set"


class GoogleAnalytics(TableSpec):
    """A Google Analytics 4 report downloaded as CSV.

    The preamble's ``# Start date: YYYYMMDD`` and ``# End date:`` lines give the period
    of every row (or the "Date" dimension, when the report is by day). The first column
    is the report's dimension (channel group, source / medium, campaign, ad content…).
    A channel group ("Organic Social", "Paid Search") becomes the row's channel
    (``organic_social``): it names where the traffic came from, never a post, so it must
    not wait to be matched to one. Any other dimension's value becomes the row's
    ``post_ref``, so that rows by UTM content match posts and other segments stay
    apart. The "Grand total" row is skipped: it is the sum of
    the rows above it. Rates are written as fractions (0.0532). Revenue is in the
    property's currency, which the file does not state unless the header does
    ("Total revenue (EUR)"): the import passes the engagement's currency.
    """

    format = "ga4"
    comments_anywhere = True
    columns = (
        Column("dimension", POST_REF, ()),
        metric("key_events", "conversions", "Key events", "Eventos clave", "key-events"),
        metric("conversions", "conversions", "Conversions", "Conversiones", "conversions-pre-2024"),
        metric(
            "key_event_rate",
            "conversion_rate",
            "Session key event rate",
            "Porcentaje de eventos clave de la sesión",
            "key-events",
        ),
        metric(
            "conversion_rate",
            "conversion_rate",
            "Session conversion rate",
            "Porcentaje de conversiones de la sesión",
            "conversions-pre-2024",
        ),
        metric("revenue", "revenue", "Total revenue", "Ingresos totales", "ga4", prefix=True),
        metric("sessions", "sessions", "Sessions", "Sesiones", "ga4"),
        metric("transactions", "transactions", "Transactions", "Transacciones", "ga4"),
        metric(
            "purchases",
            "transactions",
            "Ecommerce purchases",
            "Compras de comercio electrónico",
            "ga4-ecommerce-purchases",
        ),
        *ignored(
            ("Engaged sessions", "Sesiones con interacción"),
            ("Engagement rate", "Porcentaje de interacción"),
            ("Average engagement time per session", "Tiempo medio de interacción por sesión"),
            ("Events per session", "Eventos por sesión"),
            ("Event count", "Número de eventos"),
            ("Users", "Usuarios"),
            ("Total users", "Total de usuarios"),
            ("New users", "Usuarios nuevos"),
            ("Purchase revenue", "Ingresos por compras"),
        ),
    )
    required = (
        ("sessions",),
        ("key_events", "conversions", "key_event_rate", "conversion_rate", "revenue"),
    )
    prefer = (
        ("key_events", "conversions"),
        ("key_event_rate", "conversion_rate"),
        ("transactions", "purchases"),
    )

    def extra_positions(self, folded: list[str], positions: dict[str, int]) -> None:
        if folded and 0 not in positions.values():
            positions["dimension"] = 0

    def target(self, match: Match, key: str) -> str:
        if key == "dimension" and self.by_day(match):
            return PERIOD
        if key == "dimension" and self.by_channel_group(match):
            return CHANNEL
        return super().target(match, key)

    def by_day(self, match: Match) -> bool:
        return fold(match.header("dimension")) in {"date", "fecha"}

    def by_channel_group(self, match: Match) -> bool:
        header = fold(match.header("dimension"))
        return any(words in header for words in _GA4_CHANNEL_GROUP)

    def label(self, match: Match) -> str:
        return N_("Google Analytics 4")

    def channel(self, match: Match, row: Cells) -> str:
        if self.by_channel_group(match):
            return channel_group_slug(row.text("dimension"))
        return "web"

    def prepare(self, match: Match, sheet: Any) -> None:
        for record in itertools.islice(sheet.records(comments_anywhere=True), 200):
            if isinstance(record, Comment):
                self.comment(match, record)
            elif record.line >= match.header_line:
                break
        if not self.by_day(match) and not (match.state.get("start") and match.state.get("end")):
            raise ValueProblem(
                N_(
                    "The Google Analytics export does not say its period: keep the "
                    "'# Start date' and '# End date' lines at its top"
                )
            )

    def comment(self, match: Match, comment: Comment) -> None:
        name, _, value = comment.text.partition(":")
        key = {**dict.fromkeys(_GA4_START, "start"), **dict.fromkeys(_GA4_END, "end")}.get(
            fold(name)
        )
        if key and value.strip():
            try:
                match.state[key] = parse_date(value.strip(), order="mdy")
            except ValueProblem:
                match.state[key] = None

    def skip(self, match: Match, row: Cells) -> bool:
        return fold(row.raw("dimension")) in _GA4_TOTALS

    def post_ref(self, match: Match, row: Cells) -> str | None:
        if self.by_day(match) or self.by_channel_group(match):
            return None
        return row.text("dimension")

    def period(self, match: Match, row: Cells) -> tuple[dt.date, dt.date]:
        if self.by_day(match):
            return _period_of_day(match, row, "dimension")
        return match.state["start"], match.state["end"]


def _data_records(match: Match, sheet: Any) -> Any:
    for record in sheet.records():
        if (
            isinstance(record, Record)
            and record.line > match.header_line
            and any(not is_missing(cell) for cell in record.cells)
        ):
            yield record


PLATFORM_SPECS: tuple[TableSpec, ...] = (
    MetaPosts(),
    LinkedInPosts(),
    LinkedInDaily(),
    XPosts(),
    XTweetActivity(),
    TikTokOverview(),
    TikTokViewers(),
    TikTokContent(),
    GoogleAnalytics(),
)
