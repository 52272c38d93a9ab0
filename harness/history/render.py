"""history.md (step summary, alert issue) and history.html (trend charts): the judged history laid out.

GitHub renders neither inline SVG nor HTML charts in a step summary or an issue, so history.md
carries its trends as Unicode sparklines in a table and, per image, a mermaid ``xychart-beta``
block (which GitHub draws): bars for the install cells' time, a line for the Tier 1 cell's.
history.html draws every timing as an SVG line chart with the past outliers ringed and the
newest run's limit dashed, and the tiers' statuses and verdicts as coloured squares (its markup:
harness/report/templates/history.html.j2).
Everything was judged in ``trends.build``; nothing is computed here.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from harness.history.outliers import Judgement
from harness.history.trends import History, ImageHistory, Trend
from harness.report.charts import PALETTE, line_chart, number, sparkline, status_grid
from harness.report.markdown import cell as md_cell
from harness.report.templates import render as render_template

HISTORY_MD, HISTORY_HTML, HISTORY_JSON = "history.md", "history.html", "history.json"
_ICON = {"pass": "✅", "warn": "⚠️", "fail": "❌", "skip": "⏭️", "error": "❓", None: "·"}
_HEADLINE = {"pass": "no timing outlier", "outlier": "timing outlier", "error": "could not read the history"}
_HEADLINE_ICON = {"pass": "✅", "outlier": "❌", "error": "❓"}
_JUDGED_MD = {"outlier": "❌ outlier", "ok": "✅", "first": "first", "not measured": "—"}
_JUDGED_HTML = {"outlier": ("fail", "outlier"), "ok": ("pass", "ok"), "first": ("skip", "first"),   # (badge, text)
                "not measured": ("absent", "not measured")}


def x_labels(history: History) -> list[str]:
    """Run dates, with the time of day when two runs share a date."""
    days = [run.started_at.strftime("%Y-%m-%d") for run in history.runs]
    if len(set(days)) == len(days):
        return days
    return [run.started_at.strftime("%m-%d %H:%M:%S") for run in history.runs]


def headline(history: History, icon: bool = False) -> str:
    """``colab-ci history: timing outlier (12 runs, newest ...)``; with ``icon`` for Markdown (a
    browser without an emoji font would show a box)."""
    newest = history.newest
    span = (f"{len(history.runs)} run{'s' if len(history.runs) != 1 else ''}, newest "
            f"{newest.started_at.strftime('%Y-%m-%d %H:%M UTC')} ({newest.name})" if newest else "no run")
    mark = f"{_HEADLINE_ICON[history.verdict]} " if icon else ""
    return f"colab-ci history: {mark}{_HEADLINE[history.verdict]} ({span})"


def outlier_lines(history: History) -> list[str]:
    """One sentence per timing the newest run is an outlier in."""
    return [f"{image}: {trend.name} took {number(trend.newest.value, 's')} in the newest run, "
            f"above its {trend.newest.describe()}." for image, trend in history.outliers() if trend.newest]


def _verdict_word(j: Judgement | None) -> str:
    if j is None:
        return "not measured"
    if j.method == "none":
        return "first"
    return "outlier" if j.outlier else "ok"


# -- Markdown ---------------------------------------------------------------------------------------

def render_markdown(history: History) -> str:
    bullets = [f"- ❓ {md_cell(p)}" for p in history.problems]
    bullets += [f"- ❌ **{md_cell(line)}**" for line in outlier_lines(history)]
    bullets += [f"- {md_cell(n)}" for n in history.notes]
    parts = [f"## {headline(history, icon=True)}", "\n".join(bullets)]
    labels = x_labels(history)
    if history.runs:
        parts.append(f"Runs {labels[0]} → {labels[-1]}. Each timing is judged against the runs before it: "
                     f"mean ± {history.rule.sigmas:g}σ once {history.rule.min_runs} earlier runs exist, the "
                     f"baseline rule before that; ringed in history.html where a run was an outlier.")
        parts += [_timings_table(history), _earlier_outliers(history, labels), _status_table(history)]
        parts += [_mermaid(image, labels) for image in history.images]
    return "\n\n".join(p for p in parts if p) + "\n"


def _earlier_outliers(history: History, labels: list[str]) -> str:
    """Runs before the newest that were outliers when they ran (they no longer decide anything)."""
    lines = [f"- {md_cell(image.image)}, {md_cell(trend.name)}: {labels[i]} ({number(j.value, 's')})"
             for image in history.images for trend in image.trends
             for i, j in enumerate(trend.judgements[:-1]) if j is not None and j.outlier]
    return "Earlier outliers in these runs:\n\n" + "\n".join(lines) if lines else ""


def _timings_table(history: History) -> str:
    rows = ["| image | timing | trend (oldest → newest) | newest | judged | |", "|---|---|---|---|---|---|"]
    for image in history.images:
        for trend in image.trends:
            newest = trend.values[-1]
            j = trend.newest
            rows.append(f"| {md_cell(image.image)} | {md_cell(trend.name)} | `{sparkline(trend.values)}` | "
                        f"{'—' if newest is None else number(newest, 's')} | {md_cell(j.describe() if j else '')} | "
                        f"{_JUDGED_MD[_verdict_word(j)]} |")
    return "\n".join(rows) if len(rows) > 2 else ""


def _status_table(history: History) -> str:
    tiers = sorted({tier for image in history.images for tier in image.tiers})
    rows = ["| image | passed | verdicts | " + " | ".join(tiers) + " |", "|---|---|---|" + "---|" * len(tiers)]
    for image in history.images:
        cells = ["".join(_ICON.get(s, "·") for s in image.tiers.get(tier, [None] * len(image.verdicts)))
                 for tier in tiers]
        rows.append(f"| {md_cell(image.image)} | {image.passed}/{image.counted} | "
                    f"{''.join(_ICON.get(v, '·') for v in image.verdicts)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _mermaid(image: ImageHistory, labels: list[str]) -> str:
    """GitHub draws ``xychart-beta``; it has no legend, so the title names the bars and the line.
    Only runs that include the image are drawn; a timing not measured in one of them is 0."""
    present = [i for i, v in enumerate(image.verdicts) if v is not None]
    tier1 = next((t for t in image.trends if t.kind == "tier1"), None)
    if len(present) < 2:
        return ""
    quoted = ", ".join('"' + labels[i].replace('"', "'") + '"' for i in present)
    bars = ", ".join(f"{image.install_totals[i] or 0:.2f}" for i in present)
    title = f"{image.image}: install cells (bars)" + (", Tier 1 cell (line)" if tier1 else "") + ", seconds"
    lines = ["```mermaid", "xychart-beta", f'  title "{title.replace(chr(34), chr(39))}"', f"  x-axis [{quoted}]",
             '  y-axis "seconds"', f"  bar [{bars}]"]
    if tier1:
        lines.append("  line [" + ", ".join(f"{tier1.values[i] or 0:.2f}" for i in present) + "]")
    return "\n".join(lines + ["```"])


# -- HTML -------------------------------------------------------------------------------------------

def render_html(history: History) -> str:
    items = [("problem", p) for p in history.problems] + [("outlier", line) for line in outlier_lines(history)] + \
            [("note", n) for n in history.notes]
    labels = x_labels(history)
    return render_template(
        "history.html.j2", title=headline(history), headline=headline(history), items=items,
        verdict={"pass": "pass", "outlier": "fail", "error": "error"}[history.verdict],
        images=[_image_section(image, labels) for image in history.images])


def _image_section(image: ImageHistory, labels: list[str]) -> dict[str, Any]:
    share = f"{image.passed} of the {image.counted} runs with this image passed" + (
        f" ({image.passed / image.counted:.0%})." if image.counted else ".")
    charts = [_trend_chart(trend, labels, PALETTE[i % len(PALETTE)]) for i, trend in enumerate(image.trends)]
    charts.append(status_grid("Verdicts and tier statuses per run", labels,
                              [("verdict", image.verdicts), *image.tiers.items()]))
    rows = [(t.name, "—" if t.values[-1] is None else number(t.values[-1], "s"),
             t.newest.describe() if t.newest else "not measured in the newest run",
             _JUDGED_HTML[_verdict_word(t.newest)]) for t in image.trends]
    return {"image": image.image, "share": share, "rows": rows, "charts": charts}


def _trend_chart(trend: Trend, labels: list[str], colour: str) -> Markup:
    flagged = [bool(j and j.outlier) for j in trend.judgements]
    newest = trend.newest
    return line_chart(f"{trend.name}: seconds", labels, trend.values, flagged,
                      limit=newest.limit if newest and newest.method != "none" else None,
                      limit_label="newest run's limit", colour=colour)
