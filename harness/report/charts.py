"""Small charts as inline SVG (and a Unicode sparkline) for the HTML and Markdown reports.

The HTML reports must open from a downloaded artifact, offline, with nothing to load: no
JavaScript, no stylesheet, no font, no CDN. So each chart is a self-contained ``<svg>`` element
whose colours and fonts are attributes, and whose text is escaped here. The charts draw the
numbers they are given; they never decide what is good or bad (callers pass the colour a finding
or a judgement implies). A chart is returned as ``markupsafe.Markup``: the report templates
(harness/report/templates/) escape every other value they show, and insert a chart as it is.

* ``bar_chart``: horizontal bars with labels, optional group headings and a reference tick per bar
  (a baseline, a limit);
* ``line_chart``: one series over runs, flagged points ringed, an optional dashed limit line;
* ``status_grid``: one coloured square per run and row (tier statuses, verdicts);
* ``sparkline``: the same trend as ``▁▂▃▅▇`` characters, for Markdown (GitHub renders no SVG there).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#9c755f")
STATUS_COLOURS = {
    "pass": "#2e7d32", "ok": "#2e7d32", "warn": "#ed6c02", "fail": "#c62828", "error": "#6a1b9a",
    "skip": "#9e9e9e", "not-run": "#9e9e9e", "absent": "#e6e6e6",
}
FLAG_COLOUR = "#c62828"
INK, GRID, MUTED = "#222222", "#dddddd", "#666666"
FONT = 'font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12"'
SPARKS = "▁▂▃▄▅▆▇█"

ROW_H, LABEL_W, BAR_W, VALUE_W = 22, 250, 400, 210


def esc(value: object) -> str:
    return escape(str(value), quote=True)


def number(value: float, unit: str = "") -> str:
    """``0.12``, ``3.45``, ``12.3``, ``123``: three significant figures without exponents."""
    text = f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
    return f"{text} {unit}".rstrip()


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k at or above ``value``: a round top for an axis."""
    if not value > 0 or not math.isfinite(value):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if value <= step * power * (1 + 1e-9))


def _clip(text: str, width: int = 38) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _svg(title: str, width: int, height: int, body: list[str], css_class: str) -> Markup:
    # Markup: the one place a chart becomes "HTML already" for the templates (autoescape would show
    # it as text otherwise). Safe because every text in ``body`` and ``title`` went through ``esc``
    # here; everything else in it is a number or one of this module's constants.
    return Markup(f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {css_class}" role="img" '
                  f'aria-label="{esc(title)}" viewBox="0 0 {width} {height}" width="{width}" height="{height}" {FONT}>'
                  f'<title>{esc(title)}</title>'
                  f'<text x="0" y="14" font-weight="600" fill="{INK}">{esc(title)}</text>'
                  + "".join(body) + "</svg>")


# -- bars -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    colour: str = PALETTE[0]
    note: str = ""                    # after the value: "fail", "baseline 2.0 s"
    reference: float | None = None    # drawn as a tick across the bar (a baseline, a limit)


@dataclass(frozen=True)
class Heading:
    """A group label between bars (a tier, an install cell)."""

    label: str


def bar_chart(title: str, rows: Sequence[Bar | Heading], unit: str = "s") -> Markup:
    """Horizontal bars on one scale from 0, with group headings between them."""
    bars = [r for r in rows if isinstance(r, Bar)]
    top = nice_ceiling(max([b.value for b in bars] + [b.reference or 0.0 for b in bars] + [0.0]))
    scale = BAR_W / top
    y, body = 24, []
    for row in rows:
        if isinstance(row, Heading):
            body.append(f'<text x="0" y="{y + 15}" font-weight="600" fill="{MUTED}">{esc(_clip(row.label, 90))}</text>')
            y += ROW_H
            continue
        width = max(row.value * scale, 1.0) if row.value > 0 else 0.0
        label = f"{row.label}: {number(row.value, unit)}" + (f" ({row.note})" if row.note else "")
        body.append(
            f'<g class="bar-row"><title>{esc(label)}</title>'
            f'<text x="{LABEL_W - 8}" y="{y + 15}" text-anchor="end" fill="{INK}">{esc(_clip(row.label))}</text>'
            f'<rect class="bar" x="{LABEL_W}" y="{y + 3}" width="{width:.1f}" height="{ROW_H - 6}" '
            f'fill="{row.colour}" data-value="{row.value:g}"/>'
            f'<text x="{LABEL_W + width + 6:.1f}" y="{y + 15}" fill="{INK}">'
            f'{esc(number(row.value, unit) + (" · " + row.note if row.note else ""))}</text>')
        if row.reference is not None:
            x = LABEL_W + row.reference * scale
            body.append(f'<line class="reference" x1="{x:.1f}" x2="{x:.1f}" y1="{y}" y2="{y + ROW_H}" '
                        f'stroke="{INK}" stroke-width="2"/>')
        body.append("</g>")
        y += ROW_H
    axis_y = y + 4
    body.append(f'<line x1="{LABEL_W}" x2="{LABEL_W + BAR_W}" y1="{axis_y}" y2="{axis_y}" stroke="{GRID}"/>')
    for tick in (0.0, top / 2, top):
        x = LABEL_W + tick * scale
        body.append(f'<text x="{x:.1f}" y="{axis_y + 14}" text-anchor="middle" fill="{MUTED}">'
                    f'{esc(number(tick, unit))}</text>')
    return _svg(title, LABEL_W + BAR_W + VALUE_W, axis_y + 20, body, "bars")


# -- one series over runs ---------------------------------------------------------------------------

LINE_W, LINE_H = 420, 190
CHAR_W = 6.5   # about how wide a character of the 12 px font is
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 26, 38


def line_chart(title: str, x_labels: Sequence[str], values: Sequence[float | None],
               flagged: Sequence[bool] = (), limit: float | None = None, limit_label: str = "limit",
               unit: str = "s", colour: str = PALETTE[0]) -> Markup:
    """``values`` over ``x_labels`` (oldest first); None: not measured in that run (a gap).
    ``flagged`` points are ringed in red; ``limit`` is a dashed horizontal line."""
    known = [v for v in values if v is not None]
    top = nice_ceiling(max(known + [limit or 0.0, 0.0]))
    label_w = max((len(label) for label in x_labels), default=0) * CHAR_W + 10
    right = max(RIGHT, label_w / 2)   # room for the newest run's label, centred under its point
    plot_w, plot_h = LINE_W - LEFT - right, LINE_H - TOP - BOTTOM
    step = plot_w / max(len(values) - 1, 1)

    def x(i: int) -> float:
        return LEFT + (i * step if len(values) > 1 else plot_w / 2)

    def y(v: float) -> float:
        return TOP + plot_h * (1 - v / top)

    body = []
    for tick in (0.0, top / 2, top):
        body.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="{GRID}"/>'
                    f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" fill="{MUTED}">'
                    f'{esc(number(tick))}</text>')
    # Labels must not overlap: every k-th one, counted back from the newest run (the one that matters).
    every = max(1, math.ceil(label_w / step)) if len(x_labels) > 1 else 1
    for i in range(len(x_labels) - 1, -1, -every):
        body.append(f'<text x="{x(i):.1f}" y="{LINE_H - BOTTOM + 16}" text-anchor="middle" '
                    f'fill="{MUTED}">{esc(x_labels[i])}</text>')
    if limit is not None:
        body.append(f'<line class="limit" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(limit):.1f}" y2="{y(limit):.1f}" '
                    f'stroke="{FLAG_COLOUR}" stroke-dasharray="5 4"/>'
                    f'<text x="{LEFT + plot_w}" y="{y(limit) - 4:.1f}" text-anchor="end" fill="{FLAG_COLOUR}">'
                    f'{esc(f"{limit_label} {number(limit, unit)}")}</text>')
    for segment in _segments(values):   # a gap (not measured) breaks the line
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in segment)
        body.append(f'<polyline class="series" points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
    for i, v in enumerate(values):
        if v is None:
            continue
        hot = i < len(flagged) and flagged[i]
        tip = f"{x_labels[i] if i < len(x_labels) else i}: {number(v, unit)}" + (" (outlier)" if hot else "")
        body.append(f'<circle class="{"point outlier" if hot else "point"}" cx="{x(i):.1f}" cy="{y(v):.1f}" '
                    f'r="{6 if hot else 3}" fill="{FLAG_COLOUR if hot else colour}" '
                    f'stroke="{"#ffffff" if hot else "none"}" data-value="{v:g}"><title>{esc(tip)}</title></circle>')
    return _svg(title, LINE_W, LINE_H, body, "line")


def _segments(values: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    segments: list[list[tuple[int, float]]] = [[]]
    for i, v in enumerate(values):
        if v is None:
            segments.append([])
        else:
            segments[-1].append((i, v))
    return [s for s in segments if s]


# -- statuses over runs -----------------------------------------------------------------------------

CELL = 18
STATUS_LEGEND = "green pass · orange warn · red fail · purple error · grey skipped · pale absent"


def status_grid(title: str, x_labels: Sequence[str], rows: Sequence[tuple[str, Sequence[str | None]]]) -> Markup:
    """One square per run (column) and row; None: absent in that run."""
    label_w = 90
    body = []
    for r, (name, statuses) in enumerate(rows):
        top = 24 + r * (CELL + 4)
        body.append(f'<text x="{label_w - 8}" y="{top + 13}" text-anchor="end" fill="{INK}">{esc(name)}</text>')
        for c, status in enumerate(statuses):
            word = status or "absent"
            tip = f"{name}, {x_labels[c] if c < len(x_labels) else c}: {word}"
            body.append(f'<rect class="status {esc(word)}" x="{label_w + c * (CELL + 3)}" y="{top}" '
                        f'width="{CELL}" height="{CELL}" rx="3" fill="{STATUS_COLOURS.get(word, MUTED)}">'
                        f'<title>{esc(tip)}</title></rect>')
    bottom = 24 + len(rows) * (CELL + 4) + 14
    body.append(f'<text x="{label_w}" y="{bottom}" fill="{MUTED}">{esc(STATUS_LEGEND)}</text>')
    width = label_w + max((len(s) for _, s in rows), default=0) * (CELL + 3) + 10
    return _svg(title, max(width, label_w + int(len(STATUS_LEGEND) * CHAR_W)), bottom + 8, body, "statuses")


# -- Markdown ---------------------------------------------------------------------------------------

def sparkline(values: Sequence[float | None]) -> str:
    """``▁▂▇`` from 0 to the largest value; ``·`` where nothing was measured."""
    top = max((v for v in values if v is not None), default=0.0)
    if top <= 0:
        return "".join("·" if v is None else SPARKS[0] for v in values)
    return "".join("·" if v is None else SPARKS[min(len(SPARKS) - 1, int(v / top * (len(SPARKS) - 1) + 0.5))]
                   for v in values)
