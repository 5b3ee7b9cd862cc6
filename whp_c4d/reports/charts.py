"""Small SVG charts drawn on the server: horizontal bars, grouped funnel bars and columns over time.

Each is an ``<svg role="img">`` with a title and a description; the numbers are always in the table
next to it (the chart adds nothing a screen reader would miss). A suppressed count ("<5") is drawn with
no length and labelled "<5", so a bar never gives a small number away; the scale comes from the counts
shown. Colours are presentation attributes (the CSP allows no inline style); c4d.css may restyle them."""

from __future__ import annotations

import math
from collections.abc import Sequence

from flask_babel import format_number
from flask_babel import gettext as _
from markupsafe import Markup, escape

WIDTH = 640
LABEL_W = 210
BAR_X = LABEL_W + 8
BAR_W = 340
PALETTE = ("#1f5f8b", "#4f8fbf", "#2e8b6e", "#8fc1a9")


def _number(v) -> str:
    return str(v) if isinstance(v, str) else format_number(v)


def _length(v, top: int, room: int) -> float:
    return 0.0 if isinstance(v, str) or not top else round(room * v / top, 1)


def _short(text: str, size: int = 30) -> str:
    text = str(text)
    return text if len(text) <= size else text[: size - 1] + "…"


def _svg(key: str, title: str, height: int, body: list[str], desc: str) -> Markup:
    tid, did = f"chart-{key}-title", f"chart-{key}-desc"
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="rp-chart" viewBox="0 0 {WIDTH} {height}" width="100%" '
        f'role="img" aria-labelledby="{tid} {did}" focusable="false">'
        f'<title id="{tid}">{escape(title)}</title><desc id="{did}">{escape(desc)}</desc>'
        + "".join(body) + "</svg>")


def _top(values) -> int:
    return max((v for v in values if not isinstance(v, str)), default=0)


def bars(key: str, title: str, items: Sequence[tuple[str, int | str]]) -> Markup:
    """One horizontal bar per item."""
    if not items or not any(v for _label, v in items):
        return Markup("")
    top, row = _top(v for _label, v in items), 26
    body = []
    for n, (label, value) in enumerate(items):
        y = 8 + n * row
        w = _length(value, top, BAR_W)
        body.append(f'<text x="{LABEL_W}" y="{y + 13}" text-anchor="end" class="rp-label" font-size="13" '
                    f'fill="#1d2630">{escape(_short(label, 27))}</text>'
                    f'<rect x="{BAR_X}" y="{y}" width="{w}" height="17" rx="2" class="rp-bar" fill="{PALETTE[0]}"/>'
                    f'<text x="{BAR_X + w + 6}" y="{y + 13}" class="rp-value" font-size="13" fill="#1d2630">'
                    f'{escape(_number(value))}</text>')
    return _svg(key, title, 16 + len(items) * row, body,
                _("Bar chart; the same numbers are in the table beside it. “<5” bars are drawn with no length."))


def funnel(key: str, title: str, groups: Sequence[tuple[str, Sequence[int | str]]],
           stages: Sequence[str]) -> Markup:
    """Per group, one thin bar per stage (targeted, sent, delivered, read), on one scale."""
    if not groups or not any(v for _label, values in groups for v in values):
        return Markup("")
    top = _top(v for _label, values in groups for v in values)
    bar, gap = 11, 14
    legend_h = 26
    body = []
    x = 0
    for i, stage in enumerate(stages):
        body.append(f'<rect x="{x}" y="6" width="12" height="12" fill="{PALETTE[i % 4]}"/>'
                    f'<text x="{x + 16}" y="16" font-size="12" fill="#1d2630">{escape(stage)}</text>')
        x += 24 + 8 * len(stage)
    y = legend_h
    for label, values in groups:
        block = len(values) * bar
        body.append(f'<text x="{LABEL_W}" y="{y + block / 2 + 4}" text-anchor="end" class="rp-label" font-size="13" '
                    f'fill="#1d2630">{escape(_short(label, 27))}</text>')
        for i, value in enumerate(values):
            w = _length(value, top, BAR_W)
            body.append(f'<rect x="{BAR_X}" y="{y + i * bar}" width="{w}" height="{bar - 1}" '
                        f'fill="{PALETTE[i % 4]}"/>'
                        f'<text x="{BAR_X + w + 4}" y="{y + i * bar + bar - 2}" font-size="10" fill="#1d2630">'
                        f'{escape(_number(value))}</text>')
        y += block + gap
    return _svg(key, title, y + 4, body,
                _("Grouped bar chart of the funnel's first stages; the same numbers are in the table below it. "
                  "“<5” bars are drawn with no length."))


def columns(key: str, title: str, items: Sequence[tuple[str, int | str]]) -> Markup:
    """One vertical bar per period, oldest first."""
    if not items or not any(v for _label, v in items):
        return Markup("")
    top, height, base = _top(v for _label, v in items), 200, 160
    slot = min(64.0, (WIDTH - 20) / len(items))
    widest = max(len(_short(label, 12)) for label, _v in items) * 6.5 + 6  # 11-px text
    every = max(1, math.ceil(widest / slot))
    body = [f'<line x1="10" y1="{base}" x2="{WIDTH - 10}" y2="{base}" stroke="#8a96a3"/>']
    for n, (label, value) in enumerate(items):
        x = 10 + n * slot
        h = _length(value, top, base - 24)
        body.append(f'<rect x="{x + slot * 0.15:.1f}" y="{base - h}" width="{slot * 0.7:.1f}" height="{h}" '
                    f'class="rp-bar" fill="{PALETTE[0]}"/>'
                    f'<text x="{x + slot / 2:.1f}" y="{base - h - 4}" text-anchor="middle" font-size="11" '
                    f'fill="#1d2630">{escape(_number(value))}</text>')
        if n % every == 0:
            body.append(f'<text x="{x + slot / 2:.1f}" y="{base + 16}" text-anchor="middle" font-size="11" '
                        f'fill="#1d2630">{escape(_short(label, 12))}</text>')
    return _svg(key, title, height, body,
                _("Column chart over time; the same numbers are in the table beside it. “<5” columns are drawn "
                  "with no height."))


def for_table(table) -> Markup:
    """The chart a report table asks for (``tables.Table.chart``), drawn from its shown values."""
    title = table.title if len(table.head) <= 2 else f"{table.title}: {table.head[table.column]}"
    if table.chart == "bars":
        return bars(table.key, title, table.chart_items())
    if table.chart == "columns":
        return columns(table.key, title, table.chart_items())
    if table.chart == "funnel":
        return funnel(table.key, table.title, [(str(r[0]), r[1:5]) for r in table.rows], table.head[1:5])
    return Markup("")
