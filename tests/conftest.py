"""Shared fixtures: where the repository is, and its notebook; tests marked ``network`` skip offline;
what the suite shares between pytest-xdist workers.

``@pytest.mark.network``: the test needs the public internet (GitHub, Colab). One probe per session
(a TCP connection to ``NETWORK_PROBE``, name resolution included, at most ``NETWORK_TIMEOUT_S``)
decides; where it fails, every such test is skipped with ``offline: <why>`` before it starts,
instead of failing slowly on its own time-outs.
"""

from __future__ import annotations

import functools
import os
import shutil
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = REPO_ROOT / "notebook" / "template.ipynb"
SCHEMA = REPO_ROOT / "notebook" / "tiers" / "tier-result.schema.json"


@pytest.fixture(scope="session")
def tier_schema() -> dict:
    import json

    return json.loads(SCHEMA.read_text())


NETWORK_PROBE = ("github.com", 443)
NETWORK_TIMEOUT_S = 3.0


@functools.cache
def offline_reason() -> str | None:
    """Why the public internet cannot be reached from here (None: it can); asked once per session."""
    host, port = NETWORK_PROBE
    outcome: list[str | None] = []

    def connect() -> None:   # in a thread: name resolution has no timeout of its own
        try:
            socket.create_connection(NETWORK_PROBE, timeout=NETWORK_TIMEOUT_S).close()
            outcome.append(None)
        except OSError as exc:
            outcome.append(f"{host}:{port} is unreachable ({type(exc).__name__}: {exc})")

    probe = threading.Thread(target=connect, daemon=True)
    probe.start()
    probe.join(NETWORK_TIMEOUT_S)
    return outcome[0] if outcome else f"{host}:{port} did not answer within {NETWORK_TIMEOUT_S:g} s"


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("network") is not None:
        reason = offline_reason()
        if reason is not None:
            pytest.skip(f"offline: {reason}")


# -- pytest-xdist: `make test` runs the suite on several workers (``-n``, ``--dist loadgroup``) ----------

@pytest.hookimpl(tryfirst=True)   # before xdist's own hook, which reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that share a module-scoped fixture (a built mirror, a metadata environment, a dozen real runs)
    go to one worker, so the fixture is built once per test run rather than once per worker that gets one
    of them; every other test goes wherever a worker is free."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is not None and any(defs[-1].scope == "module" for defs in info.name2fixturedefs.values()):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """The folder ``name``, built by ``build(folder)`` once per test run: shared by every pytest-xdist
    worker (their common base folder), the first builds it while the others wait (the harness's own
    cross-process build lock), the others find it built."""
    from harness.core.cache_lock import building

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):   # each worker's base is popen-gwN under the run's
        base = base.parent
    folder = base / "shared" / name
    with building(folder):
        if not (folder / ".built").is_file():
            if folder.exists():            # a worker died mid-build: start again
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            build(folder)
            (folder / ".built").touch()
    return folder
