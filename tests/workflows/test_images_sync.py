"""``harness images sync --import``, what the weekly workflow runs, against a local double of GitHub.

The double serves what GitHub serves: the API's newest commit of ``pip-freeze.txt``
(``/repos/googlecolab/backend-info/commits?path=pip-freeze.txt&per_page=1``) and the raw files at
that commit (``/googlecolab/backend-info/<sha>/pip-freeze.txt``). The files are Colab's real
snapshot a724079 (2026-08-19), copied byte for byte into ``fixtures/backend-info/<sha>/``, the GPU
image's ``pip-freeze.gpu.txt`` and ``os-info-gpu.txt`` beside the CPU ones; the profiles folder holds
the profile before it, so the snapshot drifts exactly as it did for real.
"""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from harness.cli.main import main
from harness.images import sync
from harness.images.profiles import PROFILES_DIR, load_profile

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "backend-info"
SHA = "a72407924822ea377410b69f0a290150bcb5c9c2"
NEW = "2026-08-19-a724079-cpu"          # the shipped profile imported from this very snapshot
OLDER = "2025-11-24-13d109b-cpu"        # the profile before it
NEW_GPU = "2026-08-19-a724079-gpu"      # the shipped GPU profile, imported from pip-freeze.gpu.txt of the same commit


class FakeGitHub:
    """A local server answering like api.github.com and raw.githubusercontent.com; records requests."""

    def __init__(self, commits_status: int = 200) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.commits_status = commits_status
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                owner.requests.append((self.path, dict(self.headers)))
                status, body = owner.answer(self.path)
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if self.path.startswith("/repos/") else "text/plain")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, path: str) -> tuple[int, bytes]:
        if path in (sync.COMMITS, sync.commits_path("gpu")):
            if self.commits_status != 200:
                return self.commits_status, b'{"message": "API rate limit exceeded"}'
            return 200, json.dumps([{"sha": SHA, "commit": {"committer": {"date": "2026-08-19T17:02:11Z"}}}]).encode()
        prefix = f"/{sync.REPOSITORY}/"
        if path.startswith(prefix):
            ref, _, name = path[len(prefix):].partition("/")
            file = FIXTURES / ref / name
            if ref == SHA and file.is_file():
                return 200, file.read_bytes()
        return 404, b"404: Not Found"

    @property
    def base(self) -> str:
        return f"{self.url}/{sync.REPOSITORY}/{{commit}}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    yield fake
    fake.close()


def profiles_with(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "profiles"
    folder.mkdir()
    for name in names:
        shutil.copy(PROFILES_DIR / f"{name}.json", folder)
    return folder


@pytest.mark.slow   # the closure is computed for real (uv's resolver, package metadata from PyPI)
def test_import_writes_the_new_profile_and_the_pull_request_body(tmp_path: Path, github: FakeGitHub, capsys,
                                                                 monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_never-sent-to-a-mirror")
    profiles = profiles_with(tmp_path, OLDER)
    report = tmp_path / "out" / "drift.md"
    status = main(["images", "sync", "--import", "--base", github.base, "--api", github.url,
                   "--report", str(report), "--json", "--profiles-dir", str(profiles)])
    captured = capsys.readouterr()
    assert status == 1, captured.err
    result = json.loads(captured.out)
    assert result["drifted"] is True and result["imported"]["name"] == NEW

    # The new profile is what `images import` made of the same snapshot: the one the project ships.
    written = load_profile(profiles / f"{NEW}.json")
    shipped = load_profile(PROFILES_DIR / f"{NEW}.json")
    assert (written.commit, written.date, written.python, written.runtime) == (SHA, "2026-08-19", "3.13.15", "cpu")
    assert written.freeze_sha256 == shipped.freeze_sha256
    assert {(p.name, p.version) for p in written.pins} == {(p.name, p.version) for p in shipped.pins}
    assert written.source["freeze"] == "pip-freeze.txt" and written.source["os_info"] == "os-info.txt"

    # The body: numpy, torch, Python first, each with both versions; then the closure's other moves.
    body = report.read_text()
    assert body.startswith(f"## Colab image snapshot {NEW}: drift\n")
    rows = [line for line in body.splitlines() if line.startswith("| ") and "**changed**" in line]
    assert rows[:3] == ["| numpy | 2.0.2 | 2.1.3 | **changed** |",
                        "| torch | 2.9.0+cu126 | 2.11.0+cpu | **changed** |",
                        "| Python | 3.12.12 | 3.13.15 | **changed** |"]
    assert body.index("| numpy |") < body.index("What Colab's kernel or the notebook uses that changed")
    assert f"https://github.com/googlecolab/backend-info/commit/{SHA}" in body
    assert f"`harness/images/profiles/{NEW}.json`: Python 3.13.15" in body

    # The files were read at the commit the API named, and the token went nowhere but GitHub's API.
    paths = [path for path, _ in github.requests]
    assert paths == [sync.COMMITS, f"/{sync.REPOSITORY}/{SHA}/pip-freeze.txt", f"/{sync.REPOSITORY}/{SHA}/os-info.txt"]
    assert all("Authorization" not in headers for _, headers in github.requests)

    # Run again (next week, the pull request not merged yet): the same drift, and no second import.
    assert main(["images", "sync", "--import", "--base", github.base, "--api", github.url,
                 "--profiles-dir", str(profiles)]) == 0   # the new profile is now the newest: no drift
    assert "no drift" in capsys.readouterr().out


def test_no_drift_imports_nothing_and_says_so(tmp_path: Path, github: FakeGitHub, capsys):
    profiles = profiles_with(tmp_path, OLDER, NEW)
    report = tmp_path / "drift.md"
    status = main(["images", "sync", "--import", "--base", github.base, "--api", github.url,
                   "--report", str(report), "--profiles-dir", str(profiles)])
    assert status == 0
    assert sorted(p.name for p in profiles.iterdir()) == [f"{OLDER}.json", f"{NEW}.json"]
    assert f"against profile {NEW}: no drift" in capsys.readouterr().out
    assert report.read_text().startswith("## Colab image snapshot: no drift\n")
    assert "| Python | 3.13.15 | 3.13.15 |  |" in report.read_text()


def test_without_a_commit_id_the_drift_is_told_but_not_imported(tmp_path: Path, capsys):
    fake = FakeGitHub(commits_status=403)   # the API's rate limit, as shared CI runners meet it
    try:
        profiles = profiles_with(tmp_path, OLDER)
        # Plain sync still reports the drift (a mirror holding the files, the API refusing)...
        base = f"{fake.url}/{sync.REPOSITORY}/{SHA}"
        assert main(["images", "sync", "--base", base, "--api", fake.url, "--profiles-dir", str(profiles)]) == 1
        assert "newest snapshot against profile" in capsys.readouterr().out
        # ...but an import needs the commit to name the profile and record its source: exit 2, nothing written.
        assert main(["images", "sync", "--import", "--base", base, "--api", fake.url,
                     "--profiles-dir", str(profiles)]) == 2
        err = capsys.readouterr().err
        assert "cannot import the snapshot without its commit id" in err and "HTTP 403 Forbidden" in err
        assert [p.name for p in profiles.iterdir()] == [f"{OLDER}.json"]
    finally:
        fake.close()


def test_an_unknown_commit_is_unreachable_not_main(tmp_path: Path, github: FakeGitHub, capsys):
    # {commit} falls back to `main` only when the API did not answer; this double has no `main`.
    github.commits_status = 500
    profiles = profiles_with(tmp_path, OLDER)
    assert main(["images", "sync", "--base", github.base, "--api", github.url, "--profiles-dir", str(profiles)]) == 2
    assert f"/{sync.REPOSITORY}/main/pip-freeze.txt" in capsys.readouterr().err


def test_the_token_goes_to_githubs_api_only(monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_example")
    assert sync._headers(sync.API_ROOT + sync.COMMITS)["Authorization"] == "Bearer ghs_example"
    for url in (f"{sync.RAW_ROOT}/main/pip-freeze.txt", "http://api.github.com/repos/x",
                "https://api.github.com.evil.example/repos/x", "http://127.0.0.1:9/repos/x",
                "file:///tmp/pip-freeze.txt"):
        assert sync._headers(url) == {}, url
    monkeypatch.delenv("GITHUB_TOKEN")
    assert sync._headers(sync.API_ROOT + sync.COMMITS) == {}


def older_gpu_profile(folder: Path) -> None:
    """A GPU profile of January's image (numpy 2.0.2, torch 2.9.0+cu126, Python 3.12): what the
    sync of August's GPU snapshot drifts from."""
    data = json.loads((PROFILES_DIR / f"{NEW_GPU}.json").read_text())
    data.update(name="2026-01-08-bd8aaa4-gpu", date="2026-01-08", python="3.12.12")
    data["image"].update(numpy="2.0.2", torch="2.9.0+cu126")
    (folder / "2026-01-08-bd8aaa4-gpu.json").write_text(json.dumps(data))


def test_gpu_sync_reads_the_gpu_freeze_and_compares_with_the_gpu_profile(tmp_path: Path, github: FakeGitHub, capsys):
    profiles = profiles_with(tmp_path, NEW, NEW_GPU)
    assert main(["images", "sync", "--runtime", "gpu", "--base", github.base, "--api", github.url,
                 "--profiles-dir", str(profiles)]) == 0
    assert f"against profile {NEW_GPU}: no drift" in capsys.readouterr().out
    assert [path for path, _ in github.requests] == [
        sync.commits_path("gpu"), f"/{sync.REPOSITORY}/{SHA}/pip-freeze.gpu.txt",
        f"/{sync.REPOSITORY}/{SHA}/os-info-gpu.txt"]
    assert "path=pip-freeze.gpu.txt" in sync.commits_path("gpu")


def test_gpu_sync_without_a_gpu_profile_cannot_tell(tmp_path: Path, github: FakeGitHub, capsys):
    profiles = profiles_with(tmp_path, NEW)
    assert main(["images", "sync", "--runtime", "gpu", "--base", github.base, "--api", github.url,
                 "--profiles-dir", str(profiles)]) == 2
    assert "no gpu profile in" in capsys.readouterr().err and not github.requests


@pytest.mark.slow   # the closure is computed for real (uv's resolver, package metadata from PyPI)
@pytest.mark.timeout(600)
def test_gpu_sync_imports_a_gpu_profile_as_images_import_does(tmp_path: Path, github: FakeGitHub, capsys):
    profiles = profiles_with(tmp_path, NEW)     # the newest profile overall is the CPU one: not compared
    older_gpu_profile(profiles)
    status = main(["images", "sync", "--runtime", "gpu", "--import", "--base", github.base, "--api", github.url,
                   "--json", "--profiles-dir", str(profiles)])
    captured = capsys.readouterr()
    assert status == 1, captured.err
    result = json.loads(captured.out)
    assert result["profile"] == "2026-01-08-bd8aaa4-gpu" and result["imported"]["name"] == NEW_GPU
    assert result["key"]["torch"] == ["2.9.0+cu126", "2.11.0+cu128"]
    written, shipped = load_profile(profiles / f"{NEW_GPU}.json"), load_profile(PROFILES_DIR / f"{NEW_GPU}.json")
    assert (written.runtime, written.version("torch"), written.source["freeze"], written.source["os_info"]) == \
        ("gpu", "2.11.0+cu128", "pip-freeze.gpu.txt", "os-info-gpu.txt")
    assert written.freeze_sha256 == shipped.freeze_sha256 and written.gpu_only == shipped.gpu_only
    assert {(p.name, p.version) for p in written.pins} == {(p.name, p.version) for p in shipped.pins}
