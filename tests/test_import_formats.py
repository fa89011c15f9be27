"""Reading platform exports: recognition, exact values, refusals, safety, streaming.

The sample exports in ``tests/fixtures/exports/`` are made up, with the platforms'
real headers and quirks; the expected values below were checked by hand against
those files.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import gc
import io
import tracemalloc
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest

from app.results.formats import (
    Detected,
    ExportProblem,
    ParsedRow,
    RowProblem,
    UnknownFormat,
    open_export,
)
from app.results.formats.values import (
    ValueProblem,
    parse_count,
    parse_date,
    parse_fraction,
    parse_money,
    parse_month_day,
    parse_number,
)

EXPORTS = Path(__file__).parent / "fixtures" / "exports"
MB = 1024 * 1024


def _open(name: str, **options: object) -> Detected:
    return open_export(EXPORTS / name, name, **options)  # type: ignore[arg-type]


def _rows(detected: Detected) -> list[tuple[object, ...]]:
    """Each value as (line, channel, metric, value, start, end, currency, post_ref)."""
    items = list(detected.rows())
    assert all(isinstance(item, ParsedRow) for item in items), items
    return [
        (
            row.line,
            row.channel,
            row.metric,
            row.value,
            row.period_start.isoformat(),
            row.period_end.isoformat(),
            row.currency,
            row.post_ref,
        )
        for row in items
        if isinstance(row, ParsedRow)
    ]


def _names(detected: Detected) -> dict[str, set[tuple[str, str]]]:
    """Per metric, the platform's own names and versions the rows kept."""
    names: dict[str, set[tuple[str, str]]] = {}
    for row in detected.rows():
        assert isinstance(row, ParsedRow)
        names.setdefault(row.metric, set()).add((row.platform_metric, row.platform_metric_version))
    return names


def _mapped(detected: Detected) -> list[tuple[str, str]]:
    return [pair for pair in detected.mapping if pair[1] != "ignored"]


def D(text: str) -> Decimal:  # noqa: N802 - reads like the Decimal it builds
    return Decimal(text)


# --- Recognition and exact values, format by format -----------------------------------

FB = "https://www.facebook.com/1093847562019384/"


def test_meta_facebook_export_with_bom_multiline_caption_and_views() -> None:
    detected = _open("meta_facebook_posts.csv")
    assert (detected.format, detected.label) == ("meta", "Meta Business Suite (Facebook)")
    assert _mapped(detected) == [
        ("Post ID", "post_ref"),
        ("Publish time", "period"),
        ("Permalink", "post_ref"),
        ("Date", "period"),
        ("Views", "impressions"),
        ("Reach", "reach"),
        ("Reactions, Comments and Shares", "engagements"),
        ("Link clicks", "link_clicks"),
    ]
    assert ("Likes", "ignored") not in detected.mapping  # Instagram's column, not here
    assert ("Reactions", "ignored") in detected.mapping
    first = FB + "posts/882736451928374"
    video = FB + "videos/882736451928999"
    third = FB + "posts/882736451929555"
    assert _rows(detected) == [
        # "Lifetime": the period is the publish day (01/05/2026 is month-first).
        (2, "facebook", "impressions", D("15230"), "2026-01-05", "2026-01-05", None, first),
        (2, "facebook", "reach", D("9810"), "2026-01-05", "2026-01-05", None, first),
        (2, "facebook", "engagements", D("412"), "2026-01-05", "2026-01-05", None, first),
        (2, "facebook", "link_clicks", D("310"), "2026-01-05", "2026-01-05", None, first),
        # The caption spans lines 2-3 (its second line starts with '#'): next row is 4.
        # Its Reach is empty: skipped, not zero.
        (4, "facebook", "impressions", D("48210"), "2026-01-12", "2026-01-12", None, video),
        (4, "facebook", "engagements", D("1204"), "2026-01-12", "2026-01-12", None, video),
        (4, "facebook", "link_clicks", D("1310"), "2026-01-12", "2026-01-12", None, video),
        # A dated row instead of "Lifetime": the period is that day.
        (5, "facebook", "impressions", D("2004"), "2026-01-20", "2026-01-20", None, third),
        (5, "facebook", "reach", D("1650"), "2026-01-20", "2026-01-20", None, third),
        (5, "facebook", "engagements", D("37"), "2026-01-20", "2026-01-20", None, third),
        (5, "facebook", "link_clicks", D("48"), "2026-01-20", "2026-01-20", None, third),
    ]
    assert _names(detected)["impressions"] == {("Views", "views-2024")}


def test_meta_instagram_export_in_spanish_with_semicolons() -> None:
    detected = _open("meta_instagram_posts_es.csv")
    assert (detected.format, detected.label) == ("meta", "Meta Business Suite (Instagram)")
    assert ("Visualizaciones", "impressions") in detected.mapping
    assert ("Alcance", "reach") in detected.mapping
    image = "https://www.instagram.com/p/DEa1b2C3d4E/"
    reel = "https://www.instagram.com/reel/DEf5g6H7i8J/"
    assert _rows(detected) == [
        # "12.480" is twelve thousand in Spanish; 05/01/2026 is day-first: 5 January.
        (2, "instagram", "impressions", D("12480"), "2026-01-05", "2026-01-05", None, image),
        (2, "instagram", "reach", D("8902"), "2026-01-05", "2026-01-05", None, image),
        # "3,4 mil" is 3,400; the reach "-" is no data.
        (3, "instagram", "impressions", D("3400"), "2026-01-13", "2026-01-13", None, reel),
    ]
    assert _names(detected)["impressions"] == {("Visualizaciones", "views-2024")}


def test_older_meta_export_in_utf16_tabs_with_description_row_says_impressions() -> None:
    detected = _open("meta_facebook_legacy_unicode.txt")
    assert detected.format == "meta"
    first = FB + "posts/771234509876543"
    second = FB + "posts/771234509876544"
    assert _rows(detected) == [
        # Line 2 describes the columns ("Lifetime: The number of…") and is skipped.
        (3, "facebook", "impressions", D("20417"), "2024-10-03", "2024-10-03", None, first),
        (3, "facebook", "reach", D("12003"), "2024-10-03", "2024-10-03", None, first),
        # Impressions "N/A": no data.
        (4, "facebook", "reach", D("7410"), "2024-10-10", "2024-10-10", None, second),
    ]
    assert _names(detected)["impressions"] == {("Impressions", "impressions-pre-2024")}


LINKEDIN = "https://www.linkedin.com/feed/update/urn:li:activity:"


def test_linkedin_xls_reads_both_sheets_under_their_disclaimer_row() -> None:
    detected = _open("linkedin_content.xls")
    assert (detected.format, detected.label, detected.container) == (
        "linkedin",
        "LinkedIn page analytics",
        "xls",
    )
    assert _mapped(detected) == [
        ("Metrics: Date", "period"),
        ("Metrics: Impressions (total)", "impressions"),
        ("Metrics: Clicks (total)", "link_clicks"),
        ("Metrics: Engagement rate (total)", "engagement_rate_impressions"),
        ("All posts: Post link", "post_ref"),
        ("All posts: Created date", "period"),
        ("All posts: Impressions", "impressions"),
        ("All posts: Clicks", "link_clicks"),
        ("All posts: Click through rate (CTR)", "ctr"),
        ("All posts: Engagement rate", "engagement_rate_impressions"),
    ]
    hiring, origin = LINKEDIN + "7281234567890123456", LINKEDIN + "7281234567890999999"
    day = "2026-01-0{}".format
    assert _rows(detected) == [
        (3, "linkedin", "impressions", D("812"), day(5), day(5), None, None),
        (3, "linkedin", "link_clicks", D("21"), day(5), day(5), None, None),
        (3, "linkedin", "engagement_rate_impressions", D("0.0703"), day(5), day(5), None, None),
        (4, "linkedin", "impressions", D("3690"), day(6), day(6), None, None),
        (4, "linkedin", "link_clicks", D("105"), day(6), day(6), None, None),
        (4, "linkedin", "engagement_rate_impressions", D("0.0566"), day(6), day(6), None, None),
        (5, "linkedin", "impressions", D("655"), day(7), day(7), None, None),
        (5, "linkedin", "link_clicks", D("12"), day(7), day(7), None, None),
        (5, "linkedin", "engagement_rate_impressions", D("0.0473"), day(7), day(7), None, None),
        (3, "linkedin", "impressions", D("2210"), day(6), day(6), None, hiring),
        (3, "linkedin", "link_clicks", D("61"), day(6), day(6), None, hiring),
        (3, "linkedin", "ctr", D("0.0276"), day(6), day(6), None, hiring),
        (3, "linkedin", "engagement_rate_impressions", D("0.0665"), day(6), day(6), None, hiring),
        (4, "linkedin", "impressions", D("14875"), day(7), day(7), None, origin),
        (4, "linkedin", "link_clicks", D("402"), day(7), day(7), None, origin),
        (4, "linkedin", "ctr", D("0.027"), day(7), day(7), None, origin),
        (4, "linkedin", "engagement_rate_impressions", D("0.0533"), day(7), day(7), None, origin),
    ]


def test_linkedin_xlsx_in_spanish_keeps_formulas_unevaluated() -> None:
    detected = _open("linkedin_content_es.xlsx")
    assert (detected.format, detected.container) == ("linkedin", "xlsx")
    assert ("Métricas: Impresiones (totales)", "impressions") in detected.mapping
    assert ("Todas las publicaciones: Tasa de clics (CTR)", "ctr") in detected.mapping
    season, second = LINKEDIN + "7291111111111111111", LINKEDIN + "7292222222222222222"
    feb = "2026-02-0{}".format
    assert _rows(detected) == [
        # Real date cells on the daily sheet.
        (3, "linkedin", "impressions", D("1020"), feb(3), feb(3), None, None),
        (3, "linkedin", "link_clicks", D("33"), feb(3), feb(3), None, None),
        (3, "linkedin", "engagement_rate_impressions", D("0.0412"), feb(3), feb(3), None, None),
        (4, "linkedin", "impressions", D("1480"), feb(4), feb(4), None, None),
        (4, "linkedin", "link_clicks", D("40"), feb(4), feb(4), None, None),
        (4, "linkedin", "engagement_rate_impressions", D("0.0377"), feb(4), feb(4), None, None),
        # Text dates, day-first in Spanish: 03/02/2026 is 3 February.
        (3, "linkedin", "impressions", D("3021"), feb(3), feb(3), None, season),
        (3, "linkedin", "link_clicks", D("75"), feb(3), feb(3), None, season),
        (3, "linkedin", "ctr", D("0.0248"), feb(3), feb(3), None, season),
        (3, "linkedin", "engagement_rate_impressions", D("0.0579"), feb(3), feb(3), None, season),
        # Impressions is the formula "=2*500" with no cached value: never computed as
        # 1000, read as no data.
        (4, "linkedin", "link_clicks", D("12"), feb(4), feb(4), None, second),
        (4, "linkedin", "ctr", D("0.012"), feb(4), feb(4), None, second),
        (4, "linkedin", "engagement_rate_impressions", D("0.022"), feb(4), feb(4), None, second),
    ]


X = "https://x.com/northwindcafe/status/"


def test_x_current_export_with_weekday_dates() -> None:
    detected = _open("x_posts.csv")
    assert (detected.format, detected.label) == ("x", "X analytics")
    first, second = X + "1879123456789012345", X + "1879123456789099999"
    assert _rows(detected) == [
        (2, "x", "impressions", D("10482"), "2026-07-14", "2026-07-14", None, first),
        (2, "x", "engagements", D("734"), "2026-07-14", "2026-07-14", None, first),
        (2, "x", "link_clicks", D("266"), "2026-07-14", "2026-07-14", None, first),
        # "1,204" in an English file is one thousand two hundred and four.
        (3, "x", "impressions", D("1204"), "2026-07-18", "2026-07-18", None, second),
        (3, "x", "engagements", D("45"), "2026-07-18", "2026-07-18", None, second),
        (3, "x", "link_clicks", D("8"), "2026-07-18", "2026-07-18", None, second),
    ]
    assert _names(detected)["impressions"] == {("Impressions", "x-2024")}


def test_x_tweet_activity_export_leaves_promoted_dashes_out() -> None:
    detected = _open("x_tweet_activity_metrics_northwindcafe_20230301_20230331_en.csv")
    assert (detected.format, detected.label) == ("x_legacy", "X tweet activity (older format)")
    assert ("promoted impressions", "ignored") in detected.mapping
    first = "https://twitter.com/northwindcafe/status/1631234567890123456"
    second = "https://twitter.com/northwindcafe/status/1631234567890999999"
    rate = "engagement_rate_impressions"
    assert _rows(detected) == [
        (2, "x", "impressions", D("3520"), "2023-03-02", "2023-03-02", None, first),
        (2, "x", rate, D("0.028693181818181818"), "2023-03-02", "2023-03-02", None, first),
        (2, "x", "engagements", D("101"), "2023-03-02", "2023-03-02", None, first),
        (2, "x", "link_clicks", D("17"), "2023-03-02", "2023-03-02", None, first),
        (3, "x", "impressions", D("8891"), "2023-03-09", "2023-03-09", None, second),
        (3, "x", rate, D("0.04521425036553819"), "2023-03-09", "2023-03-09", None, second),
        (3, "x", "engagements", D("402"), "2023-03-09", "2023-03-09", None, second),
        (3, "x", "link_clicks", D("51"), "2023-03-09", "2023-03-09", None, second),
    ]


def test_tiktok_zip_reads_each_csv_and_places_yearless_dates_across_new_year() -> None:
    detected = _open("tiktok_studio_export.zip")
    assert (detected.format, detected.label, detected.container) == (
        "tiktok",
        "TikTok Studio",
        "zip",
    )
    assert ("Overview.csv: Video Views", "impressions") in detected.mapping
    assert ("Viewers.csv: Total Viewers", "reach") in detected.mapping
    assert ("FollowerHistory.csv", "ignored") in detected.mapping
    video = "https://www.tiktok.com/@northwindcafe/video/7453123456789012345"
    assert _rows(detected) == [
        # Exported on 3 January 2026: "December 30" is in 2025. "1.2K" is 1,200.
        (2, "tiktok", "impressions", D("1200"), "2025-12-30", "2025-12-30", None, None),
        (3, "tiktok", "impressions", D("2350"), "2025-12-31", "2025-12-31", None, None),
        (4, "tiktok", "impressions", D("980"), "2026-01-01", "2026-01-01", None, None),
        (5, "tiktok", "impressions", D("0"), "2026-01-02", "2026-01-02", None, None),
        (2, "tiktok", "reach", D("1010"), "2025-12-30", "2025-12-30", None, None),
        (3, "tiktok", "reach", D("1875"), "2025-12-31", "2025-12-31", None, None),
        # 1 January's "-": no data; 2 January's "0" is a real zero.
        (5, "tiktok", "reach", D("0"), "2026-01-02", "2026-01-02", None, None),
        (2, "tiktok", "impressions", D("15300"), "2025-12-30", "2025-12-30", None, video),
    ]


def test_google_analytics_export_reads_period_from_comments_and_skips_grand_total() -> None:
    detected = _open("ga4_traffic_acquisition.csv", currency="EUR")
    assert (detected.format, detected.label) == ("ga4", "Google Analytics 4")
    assert _mapped(detected) == [
        # A channel group is where the traffic came from: the row's channel, not a post.
        ("Session primary channel group (Default Channel Group)", "channel"),
        ("Sessions", "sessions"),
        ("Key events", "conversions"),
        ("Session key event rate", "conversion_rate"),
        ("Total revenue", "revenue"),
    ]
    rows = _rows(detected)
    assert {row[4:6] for row in rows} == {("2026-01-01", "2026-01-31")}
    assert {row[7] for row in rows} == {None}  # nothing for the agency to match to a post
    assert [row[:4] + row[6:] for row in rows if row[1] == "paid_social"] == [
        (14, "paid_social", "conversions", D("88"), None, None),
        (14, "paid_social", "conversion_rate", D("0.0423"), None, None),
        # 10120.45000000000002: float noise rounded to the cent.
        (14, "paid_social", "revenue", D("1012045"), "EUR", None),
        (14, "paid_social", "sessions", D("1630"), None, None),
    ]
    assert [row[1] for row in rows if row[2] == "revenue"] == [
        "direct",
        "organic_social",
        "paid_social",
        "organic_search",
    ]  # no "Grand total"
    assert [row[3] for row in rows if row[2] == "revenue"] == [
        D("1562025"),
        D("1299080"),
        D("1012045"),
        D("950000"),
    ]
    assert _names(detected)["conversions"] == {("Key events", "key-events")}


def test_google_analytics_revenue_without_a_currency_is_a_problem_not_a_guess() -> None:
    problems = [item for item in _open("ga4_traffic_acquisition.csv").rows()]
    revenue = [item for item in problems if isinstance(item, RowProblem)]
    assert len(revenue) == 4
    assert revenue[0] == RowProblem(
        12,
        "Total revenue",
        "The file does not say which currency %(value)s is in",
        {"value": "15620.25"},
    )


def test_google_analytics_export_without_its_period_is_refused(tmp_path: Path) -> None:
    text = (EXPORTS / "ga4_traffic_acquisition.csv").read_text()
    path = tmp_path / "ga4.csv"
    path.write_text("".join(line for line in text.splitlines(True) if "date:" not in line))
    with pytest.raises(ExportProblem) as caught:
        open_export(path, "ga4.csv")
    assert "Start date" in caught.value.message


def test_google_analytics_file_with_several_tables_reads_the_ones_it_knows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ga4_blocks.csv"
    path.write_text(
        "# Start date: 20260201\n# End date: 20260228\n"
        "Session manual ad content,Sessions,Key events\n"
        "spring-reel-01,120,4\n"
        "\n# Nth day\n"
        "Nth day,Active users\n"
        "0001,55\n"
        "\n# Start date: 20260301\n# End date: 20260331\n"
        "Session manual ad content,Sessions,Key events\n"
        "spring-reel-01,200,9\n"
    )
    assert _rows(open_export(path, "ga4_blocks.csv")) == [
        (4, "web", "conversions", D("4"), "2026-02-01", "2026-02-28", None, "spring-reel-01"),
        (4, "web", "sessions", D("120"), "2026-02-01", "2026-02-28", None, "spring-reel-01"),
        # Lines 6-8, the "Nth day" table, are not results.
        (13, "web", "conversions", D("9"), "2026-03-01", "2026-03-31", None, "spring-reel-01"),
        (13, "web", "sessions", D("200"), "2026-03-01", "2026-03-31", None, "spring-reel-01"),
    ]


GENERIC_HEADER = "channel,metric,period_start,period_end,value,currency,post_ref\n"


def test_generic_csv_reads_every_kind_of_value_and_keeps_formulas_as_text() -> None:
    detected = _open("generic.csv")
    assert (detected.format, detected.label) == ("generic", "Brandkeep generic CSV")
    post = "https://www.facebook.com/northwind/posts/123"
    formula = '=HYPERLINK("https://evil.example","x")'
    march = ("2026-03-01", "2026-03-31")
    assert _rows(detected) == [
        (2, "instagram", "impressions", D("48210"), *march, None, None),
        (3, "", "revenue", D("152050"), *march, "EUR", None),
        (4, "facebook", "ctr", D("0.018"), "2026-03-04", "2026-03-04", None, post),
        # Line 5: coupon_redemptions "-", no value.
        (6, "", "nps", D("42"), *march, None, None),
        (7, "x", "impressions", D("1200"), "2026-03-02", "2026-03-02", None, formula),
    ]
    names = _names(detected)
    assert names["ctr"] == {("Link CTR", "2026")}
    assert names["nps"] == {("nps", "")}


def test_generic_csv_in_spanish_from_excel_windows_1252_semicolons_decimal_comma() -> None:
    detected = _open("generico_es.csv")
    assert detected.format == "generic"
    assert ("métrica", "metric") in detected.mapping
    march = ("2026-03-01", "2026-03-31")
    assert _rows(detected) == [
        (2, "", "revenue", D("123456"), *march, "EUR", None),
        (3, "instagram", "engagement_rate_reach", D("0.045"), *march, None, None),
        (4, "tiktok", "impressions", D("12500"), *march, None, None),
    ]


def _resaved(name: str, *, delimiter: str) -> str:
    """A fixture's rows written again with another separator, as a spreadsheet would."""
    source = (EXPORTS / name).read_text(encoding="utf-8-sig")
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerows(
        csv.reader(io.StringIO(source))
    )
    return buffer.getvalue()


@pytest.mark.parametrize("bom", [codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE])
def test_utf16_with_either_byte_order_reads_like_utf8(tmp_path: Path, bom: bytes) -> None:
    codec = "utf-16-le" if bom == codecs.BOM_UTF16_LE else "utf-16-be"
    path = tmp_path / "generic.txt"
    path.write_bytes(bom + _resaved("generic.csv", delimiter="\t").encode(codec))
    assert _rows(open_export(path, "generic.txt")) == _rows(_open("generic.csv"))


def test_preview_gives_the_first_values_and_can_be_read_again() -> None:
    detected = _open("x_posts.csv")
    preview = detected.preview(2)
    assert [(row.line, row.metric) for row in preview if isinstance(row, ParsedRow)] == [
        (2, "impressions"),
        (2, "engagements"),
    ]
    assert len(list(detected.rows())) == 6
    assert len(list(detected.rows())) == 6


def test_more_rows_than_allowed_ends_with_a_problem() -> None:
    items = list(_open("generic.csv", max_rows=3).rows())
    assert items[-1] == RowProblem(
        5,
        "",
        "The file has more than %(limit)s rows; import it in parts",
        {"limit": 3},
    )
    assert sum(isinstance(item, ParsedRow) for item in items) == 3


# --- Broken files ------------------------------------------------------------------------


def test_unknown_format_lists_what_brandkeep_reads_and_what_it_found() -> None:
    with pytest.raises(UnknownFormat) as caught:
        _open("broken_unknown.csv")
    assert caught.value.params["headers"] == "Name, Email, Company"
    assert "TikTok Studio" in caught.value.params["formats"]
    assert caught.value.status_code == 422


def test_missing_required_column_is_named() -> None:
    with pytest.raises(ExportProblem) as caught:
        _open("broken_meta_missing_publish_time.csv")
    assert not isinstance(caught.value, UnknownFormat)
    assert caught.value.message == (
        "This looks like a %(format)s export, but it has no column %(column)s"
    )
    assert caught.value.params == {
        "format": "Meta Business Suite (Facebook)",
        "column": "Publish time",
    }


def test_date_that_does_not_parse_is_reported_by_line_and_column() -> None:
    items = list(_open("broken_x_bad_date.csv").rows())
    problems = [item for item in items if isinstance(item, RowProblem)]
    assert problems == [RowProblem(3, "Date", "%(value)s is not a date", {"value": "Jul 32, 2026"})]
    assert {item.line for item in items if isinstance(item, ParsedRow)} == {2}


def test_negative_count_is_reported_by_line_and_column() -> None:
    assert next(iter(_open("broken_x_negative_count.csv").rows())) == RowProblem(
        2, "Impressions", "A count cannot be negative (%(value)s)", {"value": "-120"}
    )


def test_rate_over_100_percent_is_reported_by_line_and_column() -> None:
    items = list(_open("broken_generic_rate_over_100.csv").rows())
    assert items[-1] == RowProblem(
        3, "value", "A rate must be between 0 %% and 100 %% (%(value)s %%)", {"value": "135"}
    )
    assert items[-1].message % items[-1].params == "A rate must be between 0 % and 100 % (135 %)"


def test_generic_row_problems_name_their_column(tmp_path: Path) -> None:
    path = tmp_path / "problems.csv"
    path.write_text(
        GENERIC_HEADER
        + "facebook,likes,2026-03-01,,5,,\n"
        + "facebook,impressions,01/03/2026,,5,,\n"
        + "myspace,impressions,2026-03-01,,5,,\n"
        + ",revenue,2026-03-01,,5,,\n"
        + ",revenue,2026-03-01,,5.123,EUR,\n"
        + ",impressions,2026-03-05,2026-03-01,5,,\n"
        + ",impressions,2026-03-01,,12 apples,,\n"
    )
    problems = list(open_export(path, "problems.csv").rows())
    assert [(p.line, p.column, p.params) for p in problems if isinstance(p, RowProblem)] == [
        (2, "metric", {"value": "likes"}),
        (3, "period_start", {"value": "01/03/2026"}),
        (4, "channel", {"value": "myspace"}),
        (5, "value", {"value": "5"}),  # money without a currency
        (6, "value", {"value": "5.123", "currency": "EUR"}),
        (7, "period_end", {"end": "2026-03-01", "start": "2026-03-05"}),
        (8, "value", {"value": "12 apples"}),
    ]


def test_empty_file_and_binary_file_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(ExportProblem, match="empty"):
        open_export(empty, "empty.csv")
    binary = tmp_path / "photo.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(ExportProblem, match="not a CSV"):
        open_export(binary, "photo.csv")


def test_file_over_the_size_limit_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text(GENERIC_HEADER + ",impressions,2026-03-01,,5,,\n" * 100)
    with pytest.raises(ExportProblem) as caught:
        open_export(path, "big.csv", max_bytes=1000)
    assert caught.value.message == "The file is %(size)s MB; the limit is %(limit)s MB"
    assert open_export(path, "big.csv").format == "generic"  # under the default limit


# --- Zip safety --------------------------------------------------------------------------


def _refuse_inflating(monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes reading any zip member fail the test: refusals must come first."""

    def no_open(*args: object, **kwargs: object) -> None:
        raise AssertionError("a zip member was opened")

    monkeypatch.setattr(zipfile.ZipFile, "open", no_open)


def test_zip_bomb_is_refused_before_anything_is_inflated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("Overview.csv", b"Date,Video Views\n" + b"0" * (20 * MB))
    assert path.stat().st_size < 100_000
    _refuse_inflating(monkeypatch)
    with pytest.raises(ExportProblem) as caught:
        open_export(path, "bomb.zip")
    assert "zip bomb" in caught.value.message
    assert caught.value.params["name"] == "Overview.csv"


def test_zip_unpacking_past_the_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for index in range(5):
            archive.writestr(f"part{index}.csv", b"Date,Video Views\n" + b"1" * (MB // 2))
    _refuse_inflating(monkeypatch)
    with pytest.raises(ExportProblem) as caught:
        open_export(path, "many.zip", max_bytes=2 * MB)
    assert caught.value.message == "Unpacked, the zip file would be larger than %(limit)s MB"


def test_xlsx_bomb_is_refused_like_any_zip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", b"<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"<sheetData>" + b" " * (20 * MB))
    _refuse_inflating(monkeypatch)
    with pytest.raises(ExportProblem, match="zip bomb"):
        open_export(path, "bomb.xlsx")


def test_encrypted_zip_is_refused(tmp_path: Path) -> None:
    plain = io.BytesIO()
    with zipfile.ZipFile(plain, "w") as archive:
        archive.writestr("Overview.csv", b"Date,Video Views\nAugust 31,5\n")
    # Python cannot write encrypted zips: set the "encrypted" bit of the general-purpose
    # flags in the local header (offset 6) and the central directory entry (offset 8).
    data = bytearray(plain.getvalue())
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        data[data.index(signature) + offset] |= 0x1
    path = tmp_path / "locked.zip"
    path.write_bytes(bytes(data))
    with pytest.raises(ExportProblem, match="password-protected"):
        open_export(path, "locked.zip")


@pytest.mark.parametrize(
    ("member", "message"),
    [("../../etc/cron.d/x.csv", "outside it"), ("export/Overview.csv", "folders")],
)
def test_zip_with_paths_is_refused(tmp_path: Path, member: str, message: str) -> None:
    path = tmp_path / "paths.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, b"Date,Video Views\nAugust 31,5\n")
    with pytest.raises(ExportProblem, match=message):
        open_export(path, "paths.zip")


def test_xml_entity_expansion_in_a_workbook_is_refused(tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["channel", "metric", "period_start", "value"])
    sheet.append(["x", "impressions", "2026-01-01", 5])
    plain = io.BytesIO()
    book.save(plain)
    laughs = '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
    path = tmp_path / "laughs.xlsx"
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = (laughs + data.decode().replace("<v>5</v>", "<v>&lol2;</v>")).encode()
            target.writestr(info, data)
    # defusedxml (installed beside openpyxl) refuses the entity declarations outright.
    with pytest.raises(ExportProblem, match="damaged"):
        open_export(path, "laughs.xlsx")


def test_password_protected_workbook_is_refused_with_that_reason(tmp_path: Path) -> None:
    # Excel saves a protected .xlsx as an OLE2 container holding "EncryptedPackage".
    path = tmp_path / "locked.xlsx"
    ole2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    path.write_bytes(ole2 + bytes(504) + "EncryptedPackage".encode("utf-16-le") + bytes(512))
    with pytest.raises(ExportProblem, match="password-protected"):
        open_export(path, "locked.xlsx")


def test_damaged_spreadsheet_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "damaged.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", b"not xml")
        archive.writestr("xl/workbook.xml", b"not xml either")
    with pytest.raises(ExportProblem, match="damaged"):
        open_export(path, "damaged.xlsx")


# --- Streaming ---------------------------------------------------------------------------


def _generic_file(path: Path, rows: int) -> None:
    start = dt.date(2026, 1, 1)
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(GENERIC_HEADER)
        for index in range(rows):
            day = (start + dt.timedelta(days=index % 365)).isoformat()
            handle.write(
                f"instagram,impressions,{day},{day},{index},,"
                f"https://www.instagram.com/p/{index:011d}/\n"
            )


def _peak_while_reading(path: Path) -> tuple[int, int]:
    detected = open_export(path, path.name)
    gc.collect()
    tracemalloc.start()
    try:
        count = sum(1 for item in detected.rows() if isinstance(item, ParsedRow))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return count, peak


def test_memory_stays_flat_as_the_file_grows(tmp_path: Path) -> None:
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    _generic_file(small, 20_000)
    _generic_file(large, 200_000)
    small_count, small_peak = _peak_while_reading(small)
    large_count, large_peak = _peak_while_reading(large)
    assert (small_count, large_count) == (20_000, 200_000)
    # Ten times the rows, not ten times the memory: the same working set plus slack.
    assert large_peak < small_peak * 1.5 + 256 * 1024, (small_peak, large_peak)
    assert large.stat().st_size > 20 * large_peak  # the file never sat in memory


# --- Values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "decimal_comma", "expected"),
    [
        ("1.2K", False, "1200"),
        ("1,5 M", True, "1500000"),
        ("3,4 mil", True, "3400"),
        ("1,234", False, "1234"),
        ("1.234", True, "1234"),
        ("1,234", True, "1.234"),
        ("1.234.567,89", True, "1234567.89"),
        ("1,234,567.89", False, "1234567.89"),
        ("12\u202f500", True, "12500"),
        ("(1,200)", False, "-1200"),
        ("3,5 %", True, "0.035"),
        ("3.5%", False, "0.035"),
        ("0.035", False, "0.035"),
    ],
)
def test_numbers_are_read_exactly(text: str, decimal_comma: bool, expected: str) -> None:
    assert parse_number(text, decimal_comma=decimal_comma) == Decimal(expected)


@pytest.mark.parametrize("text", ["", "-", "N/A", "n/d", "—"])
def test_no_data_is_none_not_zero(text: str) -> None:
    assert parse_number(text, decimal_comma=False) is None
    assert parse_count(text, decimal_comma=True) is None


@pytest.mark.parametrize("text", ["=1+2", "1.2.3", "12 apples", "1e5", "@SUM(A1)"])
def test_what_is_not_a_number_is_a_problem(text: str) -> None:
    with pytest.raises(ValueProblem):
        parse_number(text, decimal_comma=False)


def test_counts_must_be_whole_and_rates_are_fractions() -> None:
    with pytest.raises(ValueProblem, match="whole"):
        parse_count("12.5", decimal_comma=False)
    assert parse_count(61.0, decimal_comma=False) == 61
    assert parse_fraction(0.0276, decimal_comma=False) == Decimal("0.0276")


def test_money_is_in_minor_units_of_its_currency() -> None:
    assert parse_money("€1,234.56", decimal_comma=False, currency=None, exact=True) == (
        Decimal(123456),
        "EUR",
    )
    assert parse_money("1.234,56 EUR", decimal_comma=True, currency=None, exact=True) == (
        Decimal(123456),
        "EUR",
    )
    assert parse_money("1500", decimal_comma=False, currency="JPY", exact=True) == (
        Decimal(1500),
        "JPY",
    )
    assert parse_money("$12.50", decimal_comma=False, currency="USD", exact=True) == (
        Decimal(1250),
        "USD",
    )
    with pytest.raises(ValueProblem, match="is in GBP"):
        parse_money("£12", decimal_comma=False, currency="EUR", exact=True)
    with pytest.raises(ValueProblem, match="more decimals"):
        parse_money("12.345", decimal_comma=False, currency="EUR", exact=True)


@pytest.mark.parametrize(
    ("text", "order", "expected"),
    [
        ("2026-07-14", "mdy", "2026-07-14"),
        ("2026-07-14T22:30:00Z", "dmy", "2026-07-14"),
        ("20260714", "mdy", "2026-07-14"),
        ("07/04/2026 10:30", "mdy", "2026-07-04"),
        ("07/04/2026 10:30", "dmy", "2026-04-07"),
        ("Tue, Jul 14, 2026", "mdy", "2026-07-14"),
        ("Jan 5, 2026", "dmy", "2026-01-05"),
        ("mar, 14 jul 2026", "dmy", "2026-07-14"),
        ("14 de julio de 2026", "dmy", "2026-07-14"),
        ("2020-03-01 15:04 +0000", "mdy", "2020-03-01"),
    ],
)
def test_dates_in_each_platforms_way(text: str, order: str, expected: str) -> None:
    assert parse_date(text, order=order) == dt.date.fromisoformat(expected)  # type: ignore[arg-type]


def test_dates_without_year_and_impossible_dates() -> None:
    assert parse_month_day("August 31") == (8, 31)
    assert parse_month_day("31 de agosto") == (8, 31)
    for text in ("13/13/2026", "Feb 30, 2026", "Lifetime"):
        with pytest.raises(ValueProblem):
            parse_date(text, order="mdy")


def test_sniffing_survives_a_quoted_header_with_commas(tmp_path: Path) -> None:
    # Meta's "Reactions, Comments and Shares" holds the separator of the other locale.
    path = tmp_path / "semicolons.csv"
    path.write_text(_resaved("meta_facebook_posts.csv", delimiter=";"), encoding="utf-8")
    assert _rows(open_export(path, "semicolons.csv")) == _rows(_open("meta_facebook_posts.csv"))


def test_google_analytics_channel_groups_in_spanish_are_channels(tmp_path: Path) -> None:
    path = tmp_path / "ga4_es.csv"
    path.write_text(
        "# Fecha de inicio: 20260201\n# Fecha de finalización: 20260228\n"
        "Grupo de canales principal de la sesión (grupo de canales predeterminado),"
        "Sesiones,Eventos clave\n"
        "Búsqueda de pago,310,12\n"
        "Social orgánico,120,4\n"
        "(not set),3,0\n"
    )
    february = ("2026-02-01", "2026-02-28")
    assert _rows(open_export(path, "ga4_es.csv")) == [
        (4, "busqueda_de_pago", "conversions", D("12"), *february, None, None),
        (4, "busqueda_de_pago", "sessions", D("310"), *february, None, None),
        (5, "social_organico", "conversions", D("4"), *february, None, None),
        (5, "social_organico", "sessions", D("120"), *february, None, None),
        (6, "not_set", "conversions", D("0"), *february, None, None),
        (6, "not_set", "sessions", D("3"), *february, None, None),
    ]
