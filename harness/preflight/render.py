"""The preflight's verdicts for people: the terminal's text and ``preflight.md`` for a step summary."""

from __future__ import annotations

from harness.core.verdicts import EXIT_HARNESS, PREFLIGHT_VERDICT_WORDS, VERDICTS
from harness.preflight.model import PROBLEMS, ImageVerdict, exit_code


def render_text(verdicts: list[ImageVerdict], problems_only: bool = False) -> str:
    """Per image: its status, each install's answer, replacements with their chains, fixes, the guard,
    and the environment's fidelity. ``problems_only``: only the installs in ``PROBLEMS``, no fidelity
    (the combined report's evidence)."""
    out = []
    for verdict in verdicts:
        build = "skipped" if verdict.build_skipped else f"{verdict.build_seconds:.1f} s"
        out.append(f"{verdict.image}: {verdict.status.upper()}  (image Python {verdict.python}, environment "
                   f"Python {verdict.env_python}; preflight {verdict.seconds:.1f} s, build {build})")
        for install in verdict.installs:
            if problems_only and install.status not in PROBLEMS:
                continue
            wanted = ", ".join(install.requirements) or "(nothing)"
            summary = "; ".join(c.describe() for c in install.changes) or "nothing to install"
            out.append(f"  {install.install}: {wanted}")
            for file in install.files:
                out.append(f"    reads {file}")
            answer = (f"would fail: {install.error}" if install.error else install.unchecked or
                      (f"not statically known: {install.unknown}" if install.unknown else summary))
            out.append(f"    {install.status}: {answer}  [{install.resolver or 'no resolver answered'}, "
                       f"{install.seconds:.1f} s]")
            for change in install.replaced:
                flag = (f"CORRUPTS: {change.imported}" if change.imported else
                        f"not loaded yet: {change.later}, and gets {change.after}" if change.later else
                        "pre-installed, not imported before")
                out.append(f"    {change.name} {change.before} -> {change.after} ({flag})")
                if change.chain:
                    out.append(f"      chain: {change.chain}")
            for fix in install.fixes:
                out.append(f"    fix: {fix}")
            if install.guard:
                out.append(f"    {install.guard}")
            for note in install.notes:
                out.append(f"    note: {note}")
        out += [f"  note: {note}" for note in verdict.notes]
        if verdict.fidelity and not problems_only:
            out.append(f"  fidelity ({len(verdict.fidelity)} deviations of this environment from the image):")
            out += [f"    - {line}" for line in verdict.fidelity]
    return "\n".join(out)


def render_markdown(verdicts: list[ImageVerdict], error: str = "") -> str:
    """``preflight.md``: the verdict, a status per image, and the text, for a step summary."""
    code = EXIT_HARNESS if error else exit_code(verdicts)
    lines = [f"## colab-ci preflight: {PREFLIGHT_VERDICT_WORDS[VERDICTS[code]]}", ""]
    if error:
        lines += [f"The preflight could not run: {error}", ""]
    if verdicts:
        lines += ["| image | status |", "|---|---|"]
        lines += [f"| {v.image} | {v.status} |" for v in verdicts]
        lines += ["", "```text", render_text(verdicts), "```"]
    return "\n".join(lines).rstrip() + "\n"
