"""Exit codes and verdict words: the one place every verb, report and alert takes them from.

A verdict is the exit code said in a word: ``pass`` (0, every check holds), ``fail`` (1, a check
failed), ``error`` (2, the harness could not do its job or could not tell: never "pass"). 130 is
an interruption (Ctrl-C or SIGTERM) after the executed notebook and the reports were written.
"""

from __future__ import annotations

from collections.abc import Iterable

EXIT_OK, EXIT_FAIL, EXIT_HARNESS, EXIT_INTERRUPTED = 0, 1, 2, 130
VERDICTS = ("pass", "fail", "error")  # indexed by exit code

# How each kind of output says a verdict.
VERDICT_WORDS = {"pass": "PASS", "fail": "FAIL", "error": "ERROR (could not tell)"}             # HTML, terminal
MARKDOWN_VERDICT_WORDS = {"pass": "✅ pass", "fail": "❌ fail", "error": "❓ could not tell"}      # aggregate markdown
PINS_VERDICT_WORDS = {"pass": "PINS FOUND: PREFLIGHT PASSES THEM ON EVERY IMAGE",
                      "fail": "NO PIN SET THAT PREFLIGHT PASSES ON EVERY IMAGE", "error": "COULD NOT TELL"}
PREFLIGHT_VERDICT_WORDS = {"pass": "PASS", "fail": "CORRUPTION OR FAILED INSTALL PREDICTED", "error": "COULD NOT CHECK"}

# What each verb's exit status means (its --help epilog).
EXIT_STATUS = {
    "default": "0 every check holds; 1 a check failed; 2 could not run or could not tell; 130 interrupted "
               "(the executed notebook and the reports are written first)",
    "images": "0 done; 1 (sync) Colab published a newer image than the newest profile; 2 could not run",
    "preflight": "0 nothing the kernel imported would move; 1 an install would replace one, or fail; "
                 "2 could not check (the package index unreachable, a build failed)",
    "pins": "0 pins found that preflight passes on every image; 1 none (a pre-installed package must move, "
            "or preflight rejects the pins); 2 could not tell (the package index unreachable, a build failed)",
    "alert": "0 the issue is up to date (whatever the runs' verdict); 2 could not deliver",
    "aggregate": "0 every image passes; 1 one fails; 2 a report says error, or is missing or unreadable",
    "history": "0 the newest run is in line with its history; 1 it is an outlier; 2 could not read or judge",
}


def verdict_of(exit_code: int) -> str:
    """``pass``/``fail``/``error`` for exit codes 0/1/2; anything else (a crash, 130) is ``error``."""
    return VERDICTS[exit_code] if exit_code in (EXIT_OK, EXIT_FAIL, EXIT_HARNESS) else "error"


def worst(verdicts: Iterable[str]) -> str:
    """The worst of several verdicts (``error`` > ``fail`` > ``pass``); ``pass`` for none."""
    return max(verdicts, key=VERDICTS.index, default="pass")


def worst_exit(codes: Iterable[int]) -> int:
    """The exit status of several runs (several notebooks): 130 when one was interrupted, else the
    worst verdict's (a status that is no verdict counts as 2, could not tell); 0 for none."""
    codes = list(codes)
    if EXIT_INTERRUPTED in codes:
        return EXIT_INTERRUPTED
    return max((c if c in (EXIT_OK, EXIT_FAIL, EXIT_HARNESS) else EXIT_HARNESS for c in codes), default=EXIT_OK)
