"""What the matrix knows of each image's run (``ImageRun``: one leg, a notebook in an image), read from the run's report.json and
its exit status, and the matrix's exit status.

The matrix (harness/matrix/run.py) fills an ``ImageRun`` per image: the image's versions, then its
environment's, then (``read_report``) what the run's report.json says (its kernel's Python, numpy and
torch at start-up: what ran). ``stand_ins`` names the images whose environment ran another release
of Python, numpy or torch than the image's (no build of the image's release on this machine). A run's exit status wins over
its report: a run killed (or crashed) after writing a report, or one whose status disagrees with its
report's verdict, has no verdict ("could not tell"), whatever the report says. A report older than
the run's start is an earlier run's, never read.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.checks import CHECKS
from harness.core.json_files import JsonFileError, read_json
from harness.core.verdicts import EXIT_FAIL, EXIT_HARNESS, EXIT_INTERRUPTED, EXIT_OK
from harness.report import json_report


@dataclass
class ImageRun:
    image: str
    python: str                     # the image's
    numpy: str
    torch: str
    env_python: str = ""            # the environment's interpreter version
    env_numpy: str = ""             # the environment's numpy and torch ("absent": not there; "": unknown)
    env_torch: str = ""
    verdict: str = "error"          # "pass" | "fail" | "error"
    exit_code: int = EXIT_HARNESS
    checks: dict[str, str] = field(default_factory=dict)     # check -> "pass" | "warn" | "fail"
    failures: list[str] = field(default_factory=list)        # "check: message" of each failing finding
    error: str = ""                 # why there is no verdict (build failed, run exited 2)
    fidelity: list[str] = field(default_factory=list)
    seconds: float = 0.0
    out: str = ""
    log: str = ""
    notebook: str = ""              # with several notebooks, the notebook's folder name (its slug); else ""

    @property
    def label(self) -> str:
        """``notebook / image`` with several notebooks, else the image: how reports name the leg."""
        return f"{self.notebook} / {self.image}" if self.notebook else self.image

    @property
    def folder(self) -> str:
        """The leg's folder under the matrix's --out: ``<notebook>/<image>``, or ``<image>`` for one notebook."""
        return f"{self.notebook}/{self.image}" if self.notebook else self.image


def read_report(run: ImageRun, path: Path, log: Path, started_at: float) -> None:
    """Fill ``run`` from its report.json at ``path`` (the run's exit status already in ``run``);
    ``log`` is the run's own output, quoted when it left no report."""
    try:
        if path.stat().st_mtime < started_at:
            raise OSError(f"{path} is older than this run")
    except OSError:
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:] if log.exists() else []
        run.verdict, run.error = "error", f"the run wrote no report ({exit_words(run.exit_code)}): {' '.join(tail)}"
        return
    try:
        # Validated, not rebuilt into a RunRecord: the matrix needs only the verdict, the findings
        # and the fidelity, and a record it cannot rebuild must not hide them.
        report = read_json(path, json_report.SCHEMA)
    except JsonFileError as exc:   # unreadable, cut short by a kill, or not a report this harness reads
        run.verdict, run.error = "error", f"the run wrote no usable report ({exit_words(run.exit_code)}): {exc}"
        return
    findings = report["findings"]
    for name in CHECKS:
        severities = {f["severity"] for f in findings if f["check"] == name}
        run.checks[name] = next((s for s in ("error", "fail", "warn") if s in severities), "pass")
    run.failures = [f"{f['check']}: {f['message']}" for f in findings if f["severity"] in ("error", "fail")]
    run.fidelity = list(report["record"].get("fidelity") or run.fidelity)
    ran = report["record"].get("environment") or {}     # the kernel's, at start-up: what ran
    run.env_python = str(ran.get("python") or run.env_python)
    run.env_numpy = str(ran.get("numpy") or run.env_numpy)
    run.env_torch = str(ran.get("torch") or run.env_torch)
    verdict = report["verdict"]
    run.verdict = verdict
    # The run's exit status wins over its report: a run killed (or crashed) after writing a green
    # report did not end as that report says, and a status that disagrees with the report is no verdict.
    if run.exit_code == EXIT_INTERRUPTED:
        run.verdict, run.error = "error", "the run was interrupted"
    elif run.exit_code not in _EXPECTED_VERDICT:
        run.verdict = "error"
        run.error = f"the run ended abnormally ({exit_words(run.exit_code)}) after writing its report; see {log}"
    elif run.exit_code == EXIT_HARNESS or verdict == "error":
        run.verdict = "error"
        run.error = f"the run could not tell (exit {run.exit_code}); see {log}"
    elif _EXPECTED_VERDICT[run.exit_code] != run.verdict:
        run.verdict = "error"
        run.error = (f"the run's exit status {run.exit_code} disagrees with its report (verdict {verdict!r}); "
                     f"see {log}")


_EXPECTED_VERDICT = {EXIT_OK: "pass", EXIT_FAIL: "fail", EXIT_HARNESS: "error"}


def stand_ins(runs: list[ImageRun]) -> dict[str, list[str]]:
    """Column ("Python", "numpy", "torch") -> the images whose environment ran another release than the
    image's. A build label alone (``2.9.0+cu126`` -> ``2.9.0+cpu``: the CPU build of the release) is no
    stand-in; a component the environment lacks or that is not known is none either."""
    found: dict[str, list[str]] = {}
    for run in runs:
        for column, image, env in (("Python", run.python, run.env_python), ("numpy", run.numpy, run.env_numpy),
                                   ("torch", run.torch, run.env_torch)):
            if image and env and env != "absent" and env.split("+")[0] != image.split("+")[0]:
                found.setdefault(column, []).append(run.image)
    return {column: found[column] for column in ("Python", "numpy", "torch") if column in found}


def exit_words(code: int) -> str:
    """``exit 3``, or ``killed by SIGKILL`` for a run a signal ended (Popen's negative status)."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit {code}"


def notebooks_named(notebook: Path | Sequence[Path]) -> str:
    """The title's words for what ran: one notebook's file name, or ``3 notebooks``."""
    if isinstance(notebook, Path):
        return notebook.name
    return notebook[0].name if len(notebook) == 1 else f"{len(notebook)} notebooks"


def exit_code(runs: list[ImageRun]) -> int:
    """The matrix's exit status: 2 when an image has no verdict, 1 when one fails, else 0."""
    if any(r.verdict == "error" for r in runs):
        return EXIT_HARNESS
    return EXIT_FAIL if any(r.verdict == "fail" for r in runs) else EXIT_OK


def numpy_cell(run: ImageRun) -> str:
    """The image's numpy, and the environment's where it differs (a pin substituted for this Python)."""
    differs = run.env_numpy and run.env_numpy not in ("absent", run.numpy)
    return f"{run.numpy} -> {run.env_numpy}" if differs else run.numpy


def stand_ins_line(runs: list[ImageRun]) -> str:
    """One line: which columns ran with stand-ins (another release than the image's), in which images."""
    found = stand_ins(runs)
    if not found:
        return "Stand-ins: none; every image ran its own Python, numpy and torch releases (as far as known)."
    return "Stand-ins (the environment ran another release than the image's): " + "; ".join(
        f"{column} in {len(images)} of {len(runs)} ({', '.join(images)})" for column, images in found.items()) + "."
