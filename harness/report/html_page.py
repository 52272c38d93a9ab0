"""The page every HTML report shares: one file, its style inline, nothing loaded from anywhere.

report.html, matrix.html and history.html are opened from downloaded CI artifacts, often offline
and from ``file://``, so a page holds its own CSS and no script, font or image by URL. Every text
put into a page goes through ``esc`` (callers build HTML from escaped pieces only), and the page's
Content-Security-Policy (``OFFLINE_POLICY``) lets the browser load and run nothing else, whatever
a page contains.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from harness.core.verdicts import VERDICT_WORDS
from harness.report.charts import esc

__all__ = ["CSP_META", "OFFLINE_POLICY", "VERDICT_WORDS", "banner", "details", "esc", "page", "status_badge", "table"]

# No script, no request: only the page's own <style> and style attributes, and images inlined as data: URIs.
OFFLINE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
CSP_META = f'<meta http-equiv="Content-Security-Policy" content="{OFFLINE_POLICY}">'


_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 0; background: #fafafa; }
main { max-width: 1180px; margin: 0 auto; padding: 16px 24px 48px; }
h1 { font-size: 24px; margin: 0; } h2 { font-size: 19px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.verdict { border-radius: 6px; padding: 14px 18px; color: #fff; margin: 8px 0 12px; }
.verdict.pass { background: #2e7d32; } .verdict.fail { background: #c62828; } .verdict.error { background: #6a1b9a; }
.verdict p { margin: 4px 0 0; opacity: .95; }
.meta { color: #555; } .meta code { color: #222; }
nav.files a { margin-right: 14px; }
table { border-collapse: collapse; margin: 6px 0 12px; background: #fff; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; } td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.badge { display: inline-block; border-radius: 3px; padding: 0 6px; color: #fff; font-size: 12px; font-weight: 600; }
.badge.pass, .badge.ok { background: #2e7d32; } .badge.warn { background: #ed6c02; }
.badge.fail { background: #c62828; }
.badge.error { background: #6a1b9a; } .badge.info, .badge.skip, .badge.not-run, .badge.absent { background: #757575; }
.charts { display: flex; flex-wrap: wrap; gap: 12px 24px; } .chart { background: #fff; max-width: 100%; height: auto; }
details { margin: 6px 0; } summary { cursor: pointer; }
pre { background: #f4f4f4; padding: 8px; overflow-x: auto; white-space: pre-wrap; }
.muted { color: #666; }
"""


def page(title: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n" + CSP_META + "\n"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{esc(title)}</title>\n"
            f"<style>{_CSS}</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n")


def banner(verdict: str, headline: str, detail_html: str = "") -> str:
    """The verdict first, in colour: ``verdict`` is pass | fail | error."""
    return (f'<section class="verdict {esc(verdict)}" id="verdict"><h1>{esc(headline)}</h1>'
            + (f"<p>{detail_html}</p>" if detail_html else "") + "</section>")


def status_badge(status: str, text: str | None = None) -> str:
    return f'<span class="badge {esc(status)}">{esc(text if text is not None else status)}</span>'


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[int] = ()) -> str:
    """A table from header texts (escaped here) and row cells that are HTML already; column
    indexes in ``numeric`` are right-aligned."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def details(summary: str, inner_html: str, open_: bool = False) -> str:
    return f"<details{' open' if open_ else ''}><summary>{esc(summary)}</summary>{inner_html}</details>"
