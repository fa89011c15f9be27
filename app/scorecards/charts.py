"""Charts drawn on the server as SVG: no JavaScript, the same picture on the page and in the PDF.

Each chart is decorative for assistive technology (``aria-hidden``): the template
puts its numbers in a table right after it. Series are told apart by colour AND
by marker shape and dash pattern, so the charts read in greyscale and for people
who do not tell the colours apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from markupsafe import Markup, escape

# Okabe–Ito colours: distinguishable with the common colour-vision deficiencies.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "1 2", "10 4", "4 4")
MARKERS = ("circle", "square", "diamond", "triangle", "circle", "square", "diamond")


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[date, Decimal | None]]


def _marker(kind: str, x: float, y: float, colour: str) -> str:
    if kind == "square":
        return f'<rect x="{x - 3.5:.1f}" y="{y - 3.5:.1f}" width="7" height="7" fill="{colour}"/>'
    if kind == "diamond":
        return (
            f'<path d="M{x:.1f} {y - 4.5:.1f}L{x + 4.5:.1f} {y:.1f}L{x:.1f} {y + 4.5:.1f}'
            f'L{x - 4.5:.1f} {y:.1f}Z" fill="{colour}"/>'
        )
    if kind == "triangle":
        return (
            f'<path d="M{x:.1f} {y - 4.5:.1f}L{x + 4.5:.1f} {y + 3.5:.1f}'
            f'L{x - 4.5:.1f} {y + 3.5:.1f}Z" fill="{colour}"/>'
        )
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}"/>'


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 1)] + "…"


def _svg(width: int, height: int, body: str, label: str) -> Markup:
    # Safe: every text in ``body`` went through escape(); the rest is numbers we formatted.
    return Markup(  # noqa: S704
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-hidden="true" focusable="false" preserveAspectRatio="xMinYMin meet" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>{body}</svg>'
    )


def trend(
    series: Sequence[Series],
    x_labels: Sequence[tuple[date, str]],
    *,
    y_max: Decimal,
    y_format: str = "{:.0f}",
    label: str = "",
    reference: Decimal | None = None,
) -> Markup:
    """Lines over time; a missing value breaks the line rather than drawing a zero."""
    width, height, left, right, top, bottom = 640, 240, 44, 36, 12, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    slots = max(len(x_labels) - 1, 1)
    positions = {day: left + plot_w * i / slots for i, (day, _) in enumerate(x_labels)}
    top_value = float(y_max) if y_max > 0 else 1.0

    def y_of(value: Decimal) -> float:
        return top + plot_h * (1 - min(float(value), top_value) / top_value)

    parts: list[str] = []
    for step in range(5):
        value = top_value * step / 4
        y = y_of(Decimal(str(value)))
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#444">{escape(y_format.format(value))}</text>'
        )
    if reference is not None:
        y = y_of(reference)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" '
            f'stroke="#444" stroke-dasharray="3 3"/>'
        )
    for day, text in x_labels:
        parts.append(
            f'<text x="{positions[day]:.1f}" y="{height - bottom + 18}" text-anchor="middle" '
            f'font-size="11" fill="#444">{escape(text)}</text>'
        )
    for index, line in enumerate(series):
        colour = COLOURS[index % len(COLOURS)]
        dash = DASHES[index % len(DASHES)]
        segments: list[list[tuple[float, float]]] = [[]]
        for day, point in line.points:
            if point is None or day not in positions:
                segments.append([])
                continue
            segments[-1].append((positions[day], y_of(point)))
        for segment in segments:
            if len(segment) > 1:
                path = " ".join(f"{x:.1f},{y:.1f}" for x, y in segment)
                dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
                parts.append(
                    f'<polyline points="{path}" fill="none" stroke="{colour}" '
                    f'stroke-width="2.5"{dash_attr}/>'
                )
            for x, y in segment:
                parts.append(_marker(MARKERS[index % len(MARKERS)], x, y, colour))
    legend_y = height - 10
    x = left
    for index, line in enumerate(series):
        colour = COLOURS[index % len(COLOURS)]
        parts.append(_marker(MARKERS[index % len(MARKERS)], x + 4, legend_y - 4, colour))
        parts.append(
            f'<text x="{x + 12}" y="{legend_y}" font-size="11" fill="#222">'
            f"{escape(line.name)}</text>"
        )
        x += 24 + 7 * len(line.name)
    return _svg(width, height, "".join(parts), label)


def bars(
    groups: Sequence[tuple[str, Sequence[tuple[str, Decimal | None]]]],
    *,
    x_max: Decimal,
    value_format: str = "{:.0f}",
    label: str = "",
    missing_text: str = "—",
    reference: Decimal | None = None,
) -> Markup:
    """Side-by-side horizontal bars: one group per measure, one bar per agency (or stage)."""
    bar_h, gap, group_gap, right = 14, 3, 14, 56
    width = 640
    # The name column fits the longest name (about 6.5 px a character at 11 px), within reason.
    longest = max((len(name) for _, items in groups for name, _ in items), default=10)
    left = min(max(80, int(longest * 6.5) + 12), 300)
    plot_w = width - left - right
    top_value = float(x_max) if x_max > 0 else 1.0
    parts: list[str] = []
    y = 8
    for group_label, items in groups:
        parts.append(
            f'<text x="0" y="{y + 11}" font-size="12" font-weight="600" fill="#222">'
            f"{escape(group_label)}</text>"
        )
        y += 16
        for index, (name, value) in enumerate(items):
            colour = COLOURS[index % len(COLOURS)]
            parts.append(
                f'<text x="{left - 8}" y="{y + 11}" text-anchor="end" font-size="11" '
                f'fill="#333">{escape(_short(name, (left - 12) // 6))}</text>'
            )
            if value is None:
                parts.append(
                    f'<text x="{left + 4}" y="{y + 11}" font-size="11" fill="#666">'
                    f"{escape(missing_text)}</text>"
                )
            else:
                length = plot_w * max(0.0, min(float(value), top_value)) / top_value
                pattern = ' stroke="#222" stroke-width="0.5"' if index % 2 else ""
                parts.append(
                    f'<rect x="{left}" y="{y}" width="{length:.1f}" height="{bar_h}" '
                    f'fill="{colour}"{pattern}/>'
                    f'<text x="{left + length + 4:.1f}" y="{y + 11}" font-size="11" '
                    f'fill="#222">{escape(value_format.format(float(value)))}</text>'
                )
            y += bar_h + gap
        y += group_gap
    if reference is not None:
        x = left + plot_w * min(float(reference), top_value) / top_value
        parts.append(
            f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{y}" stroke="#444" '
            f'stroke-dasharray="3 3"/>'
        )
    return _svg(width, y, "".join(parts), label)
