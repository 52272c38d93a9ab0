"""executed.html: the executed notebook rendered by nbconvert, readable without Jupyter.

nbconvert's ``lab`` template inlines its stylesheet but loads require.js, MathJax and mermaid from
a CDN. The artifact must open offline and from ``file://``, so a small template extending ``lab``
empties those script blocks: the page keeps JupyterLab's look, and only LaTeX in Markdown cells
stays unrendered (shown as its source). Images are embedded (``embed_images``). Outputs and
Markdown keep their HTML (nbconvert's ``sanitize_html`` would show the notebook's own headings and
tables as escaped text); instead the page carries the reports' Content-Security-Policy
(harness/report/templates.py): no script or event handler in a cell's output runs, and nothing
is fetched, when someone opens the artifact.

The notebook is redacted before it is rendered (escaping can split a secret in the HTML) and the
HTML once more after.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from harness.core.secrets import redact, redact_data
from harness.report.templates import CSP_META

NOTEBOOK_HTML = "executed.html"
_TEMPLATE_NAME = "colab_ci_offline.html.j2"
_OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}""" + CSP_META + """{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


class NotebookRenderError(Exception):
    """The executed notebook could not be rendered; the message says why, in one sentence."""


def render_notebook(ipynb: Path, env: Mapping[str, str] | None = None) -> str:
    """The HTML page of the notebook at ``ipynb`` (NotebookRenderError when it cannot be made)."""
    try:
        import jinja2
        import nbformat
        from nbconvert import HTMLExporter
    except ImportError as exc:
        raise NotebookRenderError(f"nbconvert is not installed in this environment ({exc})") from None
    try:
        data = json.loads(ipynb.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NotebookRenderError(f"{ipynb} cannot be read as a notebook ({exc})") from None
    exporter = HTMLExporter(
        extra_loaders=[jinja2.DictLoader({_TEMPLATE_NAME: _OFFLINE_TEMPLATE})], template_file=_TEMPLATE_NAME,
        embed_images=True, exclude_anchor_links=True)
    try:
        node = nbformat.reads(json.dumps(redact_data(data, env)), as_version=4)   # joins multi-line sources
        body, _ = exporter.from_notebook_node(node, resources={"metadata": {"name": ipynb.stem}})
    except Exception as exc:  # noqa: BLE001 - nbconvert raises many types; the report says which
        raise NotebookRenderError(f"nbconvert could not render {ipynb.name} ({type(exc).__name__}: {exc})") from None
    return redact(body, env)
