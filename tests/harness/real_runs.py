"""Real runs for the HTML report and history tests, recorded in the test itself.

A tiny notebook, executed by the harness (``harness.execution.execute``, a real kernel in a
disposable copy of the ``target_venv`` fixture), checked by the real checks and written by the
real writer (``harness.report.write_reports``):

* ``parameters``: ``WHEEL_URL`` and ``BROKEN_TEST``;
* ``install``: ``%pip install --no-cache-dir --no-deps {WHEEL_URL}``: a real pip download and
  install of a wheel made here, from a local HTTP server that waits ``delay`` seconds before it
  answers. A slowed install is a real one: pip really waits on the network, as it does behind a
  slow mirror or a wheel that grew;
* ``tier1``: three small timed computations published as a Tier 1 payload; ``BROKEN_TEST`` names
  one that reports ``fail`` (a tier regression, as the template's tier cells publish it);
* an untagged cell displaying HTML with a script and a remote image, as a widget or a plotting
  library's output would: the rendered notebook must show the HTML and neither run nor fetch them.

No timing, date or status is edited after the run: what the history and the pages show is what
the kernel, pip and the checks produced. About 4 s per run plus its delay.
"""

from __future__ import annotations

import base64
import hashlib
import textwrap
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from harness.checks import CheckOptions, run_checks
from harness.checks.baseline import Baseline
from harness.execution.execute import execute
from harness.core.records import Finding, RunRecord
from harness.report import write_reports
from tests.harness.conftest import make_notebook

DISTRIBUTION = "colabci-slowdep"
WHEEL = "colabci_slowdep-1.0-py3-none-any.whl"
INSTALL_CELL = "cell 1 [install]"
HTML_OUTPUT_CELL = """from IPython.display import HTML, display
display(HTML('<b id="from-output">HTML from an output</b><img src="https://example.invalid/x.png">'
             '<script src="https://example.invalid/x.js"></script>'
             '<script>document.body.dataset.ran = "yes"</script>'))"""

TIER1_CELL = textwrap.dedent('''
    import time
    from IPython.display import display
    tests = []
    for name, size in (("shape_robustness", 300_000), ("gradient_flow", 600_000), ("output_stability", 150_000)):
        start = time.perf_counter()
        total = sum(i * i for i in range(size))
        status = "fail" if name == BROKEN_TEST else "pass"
        tests.append({"name": name, "status": status, "message": f"{name}: {status} (checksum {total % 97})",
                      "metrics": {"items": size}, "duration_s": round(time.perf_counter() - start, 4)})
    payload = {"schema_version": 1, "tier": "tier1", "status": "fail" if BROKEN_TEST else "pass",
               "environment": {"python": "3", "torch": "absent", "numpy": "absent", "device": "cpu"},
               "tests": tests}
    display({"application/vnd.colab-ci.tier+json": payload, "text/plain": payload["status"]}, raw=True)
''')


def make_history_notebook(path: Path) -> Path:
    return make_notebook(path, [
        ('WHEEL_URL = ""\nBROKEN_TEST = ""', ["parameters"]),
        ("%pip install --no-cache-dir --no-deps --disable-pip-version-check {WHEEL_URL}", ["install"]),
        (TIER1_CELL, ["tier1"]),
        (HTML_OUTPUT_CELL, []),
    ])


def build_wheel(folder: Path) -> Path:
    """A pure-Python wheel of DISTRIBUTION, written by hand (a wheel is a zip with metadata)."""
    files = {
        "colabci_slowdep/__init__.py": b"VERSION = '1.0'\n",
        "colabci_slowdep-1.0.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {DISTRIBUTION}\nVersion: 1.0\n"
                                                  .encode(),
        "colabci_slowdep-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: colab-ci tests\n"
                                               b"Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    def digest(data: bytes) -> str:
        return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()

    record = [f"{name},sha256={digest(data)},{len(data)}" for name, data in files.items()]
    files["colabci_slowdep-1.0.dist-info/RECORD"] = ("\n".join(record + ["colabci_slowdep-1.0.dist-info/RECORD,,"])
                                                     + "\n").encode()
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / WHEEL
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel


@contextmanager
def wheel_server(wheel: Path) -> Iterator[str]:
    """Serves ``wheel`` at ``BASE/delay/<seconds>/<wheel name>``, answering after that many seconds.
    Yields BASE (``http://127.0.0.1:PORT``)."""
    data = wheel.read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            parts = self.path.strip("/").split("/")
            if len(parts) != 3 or parts[0] != "delay" or parts[2] != wheel.name:
                self.send_error(404)
                return
            time.sleep(float(parts[1]))
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


Written = tuple[RunRecord, list[Finding], dict[str, Path]]


def record_run(notebook: Path, out: Path, python: Path, base_url: str, delay_s: float = 0.0,
               broken_test: str = "", baseline: Baseline | None = None) -> Written:
    """Execute ``notebook``, check it, write its reports into ``out``; returns what was written."""
    url = f"{base_url}/delay/{delay_s:g}/{WHEEL}"
    record = execute(notebook, out, python=python, parameters={"WHEEL_URL": url, "BROKEN_TEST": broken_test},
                     cell_timeout=300)
    assert record.outcome == "completed", record.outcome_detail
    assert [obs.changed for obs in record.installs] == [{DISTRIBUTION: [None, "1.0"]}], record.installs
    findings = run_checks(record, baseline, CheckOptions())
    return record, findings, write_reports(record, findings, out, env={})
