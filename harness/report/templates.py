"""The HTML reports' templates (harness/report/templates/*.html.j2) and the one jinja2 environment
that renders them: report.html, matrix.html and history.html.

Autoescape is on for every template, whatever its name, so every value a page shows is escaped by
jinja2; the Python modules that lay a page out (report/html.py, report/matrix_html.py,
history/render.py) pass texts and numbers, never markup. The exceptions are ``markupsafe.Markup``
values made in one place each: the SVG charts (report/charts.py escapes their texts itself) and
``csp_meta`` here (a constant). A name a template uses but is not given is an error
(StrictUndefined), never an empty cell.

The pages open from downloaded CI artifacts, offline and from ``file://``: base.html.j2 holds the
CSS inline, and its first element in <head> after the charset is the Content-Security-Policy
below, which lets the browser load and run nothing that is not in the page.
"""

from __future__ import annotations

from functools import cache

import jinja2
from markupsafe import Markup

__all__ = ["CSP_META", "OFFLINE_POLICY", "environment", "render"]

# No script, no request: only the page's own <style> and style attributes, and images inlined as data: URIs.
OFFLINE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
# Also put in executed.html by harness/report/notebook_html.py (nbconvert's own template).
CSP_META = f'<meta http-equiv="Content-Security-Policy" content="{OFFLINE_POLICY}">'


@cache
def environment() -> jinja2.Environment:
    """Templates from the package (they travel in the wheel: pyproject's package-data)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("harness.report", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    # Markup: our constant, not data; escaping it would turn the policy's quotes into entities.
    env.globals["csp_meta"] = Markup(CSP_META)
    return env


def render(name: str, **context: object) -> str:
    """The page ``name`` (a file in harness/report/templates/) with ``context``'s names."""
    return environment().get_template(name).render(**context)
