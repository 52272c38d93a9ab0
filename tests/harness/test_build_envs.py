"""Several images' mirrors built at once (``build_envs``, what the matrix uses): real uv builds of tiny
profiles, overlapping; each result in its request's place, a failed build as its error, the others built."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import pytest

from harness.images.build import BuildError, BuildRequest, BuiltEnv, build_envs
from harness.images.closure import Pin
from harness.images.profiles import Profile

OWN = "3.11.7"


def _tiny(name: str, pins: dict[str, str]) -> Profile:
    return Profile(name=name, date="2026-01-15", runtime="cpu", python=OWN, os="", source={}, platform="",
                   roots={}, pins=[Pin(n, v, ["(root)"]) for n, v in pins.items()], outside_image={},
                   gpu_only={}, dropped=[], image=dict(pins), freeze_sha256="", closure={})


@pytest.mark.timeout(240)
def test_builds_overlap_and_each_result_keeps_its_place(tmp_path: Path):
    building: set[str] = set()
    overlapped = threading.Event()
    lock = threading.Lock()

    def log_for(name: str):
        def log(line: str) -> None:
            with lock:
                if ": building (" in line:
                    building.add(name)
                    if len(building) > 1:
                        overlapped.set()
                elif ": built in " in line or "FAILED" in line:
                    building.discard(name)
        return log

    profiles = [_tiny("one", {"six": "1.17.0"}), _tiny("broken", {"idna": "999.0.1"}),
                _tiny("two", {"six": "1.16.0"})]
    requests = [BuildRequest(p, mode="local", log=log_for(p.name)) for p in profiles]
    results = build_envs(requests, cache_dir=tmp_path, workers=3)
    assert [type(r) for r in results] == [BuiltEnv, BuildError, BuiltEnv]
    one, broken, two = results
    assert one.installed["six"] == "1.17.0" and two.installed["six"] == "1.16.0"
    assert broken.pin == "idna==999.0.1"
    assert overlapped.is_set()     # a second build started before the first had finished
    # again, one at a time: found up to date, the failed one tried again and failing again
    again = build_envs(requests, cache_dir=tmp_path, workers=1)
    assert again[0].skipped and again[2].skipped and isinstance(again[1], BuildError)


def _build_in_a_process(profile: Profile, cache: Path, start, lines) -> None:
    start.wait()
    build_envs([BuildRequest(profile, mode="local", log=lines.put)], cache_dir=cache)


@pytest.mark.timeout(240)
def test_two_processes_building_one_mirror_build_it_once(tmp_path: Path):
    """Two colab-ci processes sharing a cache (`matrix --build-only` beside the matrix, two terminals,
    pytest-xdist workers) ask for the same mirror at the same moment: one builds it, the other waits for
    it and finds it up to date; neither removes the other's half-built folder."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    start, lines = context.Event(), context.Queue()
    profile = _tiny("shared", {"six": "1.17.0"})
    workers = [context.Process(target=_build_in_a_process, args=(profile, tmp_path, start, lines)) for _ in range(2)]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(200)
    assert [w.exitcode for w in workers] == [0, 0]
    said = []
    while True:
        try:
            said.append(lines.get(timeout=2))
        except queue.Empty:
            break
    assert sum(": building (" in line for line in said) == 1, said
    assert sum("waiting for another colab-ci process" in line for line in said) == 1, said
    assert sum("build skipped" in line for line in said) == 1, said
