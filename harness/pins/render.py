"""``pins.md`` and ``pins.json``: what the pin finder found, what preflight said of it, what must move.
``pins.json`` is written for people and other tools; the harness never reads it back."""

from __future__ import annotations

import json
from pathlib import Path

from harness.core.verdicts import PINS_VERDICT_WORDS
from harness.pins.model import LEVEL_WORDS, PinsResult


def render_markdown(result: PinsResult) -> str:
    out = [f"# colab-ci pins: {result.notebook}", "", f"**{PINS_VERDICT_WORDS[result.verdict]}**", ""]
    if result.error:
        out += [f"Could not tell: {result.error}", ""]
    if result.lines:
        kind = "one set for every image" if result.pin_set == "common" else "per image, by environment marker"
        out += [f"## Pins ({kind})", "", "```", *result.lines, "```", ""]
    out += ["## Images", "", "| image | Python | pins | keeps | preflight |", "|---|---|---|---|---|"]
    for image in result.images:
        pins = ", ".join(f"{n}=={v}" for n, v in image.pins.items()) or "none"
        python = image.python + (f" (resolved on {image.env_python})" if image.env_python != image.python else "")
        keeps = LEVEL_WORDS.get(image.level, "no pin set keeps what the kernel loaded")
        out.append(f"| {image.image} | {python} | {pins} | {keeps} | {image.preflight or 'not checked'} |")
    out.append("")
    for image in result.images:
        details = [f"- adds (not pinned): {', '.join(f'{n} {v}' for n, v in image.added.items())}"] if image.added else []
        details += [f"- moves (pre-installed, not loaded): {n} {b} -> {a}" for n, (b, a) in image.moved.items()]
        if image.error:
            details.append(f"- the request cannot be installed at all: {image.error}")
        if image.must_move:
            details.append(f"- must move ({len(image.must_move)} pre-installed distribution"
                           f"{'s' if len(image.must_move) != 1 else ''}, the fewest found):")
            details += [f"  - **{m.name} {m.before} -> {m.after}**: {m.chain}"
                        + (f"; {m.loaded}" if m.loaded else "") for m in image.must_move]
        details += [f"- preflight: {problem}" for problem in image.preflight_problems]
        if details:
            out += [f"### {image.image}", "", *details, ""]
    if result.left_alone:
        out += ["## Left alone", "", *[f"- {line}" for line in result.left_alone], ""]
    if result.notes:
        out += ["## Notes", "", *[f"- {line}" for line in result.notes], ""]
    if result.diff:
        out += ["## The install cells, pinned", "", "```diff", result.diff.rstrip("\n"), "```", ""]
    if result.written:
        out += [f"Written: {result.written}", ""]
    return "\n".join(out)


def write_outputs(folder: Path, result: PinsResult) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pins.md").write_text(render_markdown(result), encoding="utf-8")
    (folder / "pins.json").write_text(json.dumps(result.to_json(), indent=1, ensure_ascii=False) + "\n",
                                      encoding="utf-8")
