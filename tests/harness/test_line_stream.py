"""The line-buffered stream both standard-stream wrappers are (harness.core.line_stream)."""

from __future__ import annotations

import io

from harness.core import secrets
from harness.core.line_stream import LF, LineBufferedStream


class Upper(LineBufferedStream):
    def transform(self, text: str) -> str:
        return text.upper()


def test_finished_lines_pass_transformed_and_a_cr_waits_for_a_possible_lf() -> None:
    raw = io.StringIO()
    stream = Upper(raw)
    stream.write("ab")
    assert raw.getvalue() == ""
    stream.write("c\r")           # maybe the first half of a CRLF: held
    assert raw.getvalue() == ""
    stream.write("\nde\rf")
    assert raw.getvalue() == "ABC\r\nDE\r"
    stream.flush()                # an unfinished line is not let through by flush ...
    assert raw.getvalue() == "ABC\r\nDE\r"
    stream.close_line()           # ... only at the end
    assert raw.getvalue() == "ABC\r\nDE\rF"


def test_a_command_comes_on_a_line_of_its_own_and_is_passed_to_a_guard_beneath() -> None:
    raw = io.StringIO()
    below = Upper(raw)
    stream = Upper(below)
    stream.write("unfinished")
    stream.command("::notice::ours")
    assert raw.getvalue() == "UNFINISHED\n::notice::ours\n"   # the lower stream's command: not transformed


def test_redaction_holds_a_long_line_only_up_to_its_limit_and_sees_multiline_values_whole() -> None:
    class Tiny(secrets.RedactingStream):
        hold_limit = 8

    assert secrets.RedactingStream.line_end is LF
    secrets.register_secrets(["SOME_NAME"], {"SOME_NAME": "first-line\nsecond-line"})
    try:
        raw = io.StringIO()
        stream = Tiny(raw)
        stream.write("0123456789")   # past the limit without a line end: written anyway
        assert raw.getvalue() == "0123456789"
        stream.write(" key=first-line\nsecond-line\n")
        assert raw.getvalue() == "0123456789 key=***\n"
    finally:
        secrets.forget_registered_secrets()
