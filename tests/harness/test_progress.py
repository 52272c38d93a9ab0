"""Progress: a live display in a terminal, plain timestamped lines in CI, cell by cell inside a matrix.

The matrix tests run the real verb on two images (their mirror environments built once for the
module), once in a pseudo-terminal and once as CI runs it.
"""

from __future__ import annotations

import io
import os
import pty
import re
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness.core import progress
from harness.images.build import build_env
from harness.images.profiles import select_profiles
from tests.harness.conftest import REPO_ROOT, make_notebook

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \[(?P<scope>[^\]]+)\] (?P<message>.+)$")
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def test_lines_are_whole_timestamped_and_never_interleaved() -> None:
    stream = io.StringIO()
    shown = progress.LineDisplay(stream)

    def burst(scope: str) -> None:
        for i in range(200):
            shown.show(progress.Event(scope, f"cell {i}/199 running " + "x" * 50))

    threads = [threading.Thread(target=burst, args=(f"image-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 800 and all(LINE.match(line) for line in lines)


def test_a_run_reports_to_the_file_its_matrix_follows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(progress.PROGRESS_FILE_ENV, str(tmp_path / "progress.jsonl"))
    monkeypatch.setenv("CI", "true")
    follower = progress.Follower(tmp_path / "progress.jsonl")
    assert follower.new_events() == []                    # nothing written yet: nothing read, no error
    shown = progress.for_this_process()
    shown.show(progress.Event("run", "cell 0/1 running", step=0, total=2))
    with open(tmp_path / "progress.jsonl", "a") as partial:
        partial.write('{"scope": "run", "mess')             # a line still being written is left for later
    assert [e.message for e in follower.new_events()] == ["cell 0/1 running"]
    assert follower.new_events() == []


def test_live_only_on_a_terminal_outside_ci() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert progress.live_wanted(Tty(), {})
    assert not progress.live_wanted(Tty(), {"CI": "true"})
    assert not progress.live_wanted(Tty(), {"TERM": "dumb"})
    assert not progress.live_wanted(io.StringIO(), {})


@pytest.fixture(scope="module")
def two_images(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    cache = tmp_path_factory.mktemp("progress-cache")
    names = [p.name for p in select_profiles([])[:2]]
    for profile in select_profiles([])[:2]:
        build_env(profile, cache_dir=cache, mode="local", log=lambda _line: None)
    return cache, names


def _matrix(cache: Path, names: list[str], tmp_path: Path) -> list[str]:
    nb = make_notebook(tmp_path / "two-cells.ipynb", [("import time\ntime.sleep(1.5)", []), ("print('done')", [])])
    return [sys.executable, "-m", "harness", "matrix", str(nb), "--images", *names, "--mode", "local",
            "--cache-dir", str(cache), "--out", str(tmp_path / "out"), "--baselines", str(tmp_path / "none")]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_matrix_in_ci_prints_one_timestamped_line_per_event_per_image(two_images, tmp_path: Path) -> None:
    cache, names = two_images
    done = subprocess.run(_matrix(cache, names, tmp_path), capture_output=True, text=True, timeout=600,
                          cwd=REPO_ROOT, env={**os.environ, "CI": "true"})
    assert done.returncode == 0, done.stdout + done.stderr
    events = [m.groupdict() for m in map(LINE.match, done.stderr.splitlines()) if m]
    for name in names:
        mine = [e["message"] for e in events if e["scope"] == name]
        assert any(m.startswith("running two-cells.ipynb") for m in mine), mine
        assert "cell 0/1 running" in mine and any(m.startswith("cell 1/1 ok in") for m in mine), mine
        assert mine[-1].startswith("pass in "), mine
    assert not [line for line in done.stderr.splitlines() if line.count("Z [") > 1]   # never two on one line


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_matrix_on_a_terminal_draws_a_live_line_per_image(two_images, tmp_path: Path) -> None:
    cache, names = two_images
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "GITHUB_ACTIONS")}
    env.update(TERM="xterm-256color", COLUMNS="160", LINES="40")
    leader, follower = pty.openpty()
    proc = subprocess.Popen(_matrix(cache, names, tmp_path), stdin=follower, stdout=follower, stderr=follower,
                            cwd=REPO_ROOT, env=env, close_fds=True)
    os.close(follower)
    screen = b""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:        # the terminal closed: the matrix ended
                break
            if not chunk:
                break
            screen += chunk
        elif proc.poll() is not None:
            break
    proc.wait(timeout=60)
    os.close(leader)
    assert proc.returncode == 0, screen.decode(errors="replace")[-3000:]
    text = screen.decode(errors="replace")
    assert "\x1b[" in text                                   # drawn in place, not printed line by line
    plain = ANSI.sub("", text)
    for name in names:
        assert re.search(rf"{re.escape(name)}.*cell [01]/1", plain), plain[-3000:]   # a cell shown in the live line
        assert re.search(rf"{re.escape(name)}.*pass in \d+ s", plain), plain[-3000:]
    assert not re.search(LINE.pattern, plain, re.M)          # no CI-style lines on a terminal
