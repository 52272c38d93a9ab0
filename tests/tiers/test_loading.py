"""tiers.loading (fetching, trust, instantiation) against a local double of GitHub's gist API (real JSON
shape, status codes, headers).

The double serves ``GET /gists/{id}`` with the documented body (``files: {name: {filename, type,
language, raw_url, size, truncated, content}}``), raw file URLs, GitHub's 404 body and a 403 with
``X-RateLimit-Remaining: 0``. One ``network`` test reads a real public gist from api.github.com.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from tiers import fetching, loading  # noqa: E402
from tiers.fetching import parse_gist_ref  # noqa: E402
from tiers.loading import LoadedModel, load_model  # noqa: E402
from tiers.source_error import ModelSourceError  # noqa: E402

GIST_ID = "0123456789abcdef0123456789abcdef"
OLD_GIST_ID = "b3d397397a9307b4011e"
REVISION = "1ae9138e42b348ca23ed90fa3c6a64b771e96673"

MODEL_PY = '''\
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, d_model):
        super().__init__()
        self.ff = nn.Linear(d_model, d_model)

    def forward(self, x):
        return x + torch.relu(self.ff(x))


class GistLM(nn.Module):
    def __init__(self, vocab_size, d_model, n_layers):
        super().__init__()
        self.emb = nn.Embedding(vocab_size, d_model)
        self.blocks = nn.ModuleList(Block(d_model) for _ in range(n_layers))
        self.head = nn.Linear(d_model, vocab_size)

    def forward(self, ids):
        x = self.emb(ids)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def build_model(config):
    return GistLM(config["vocab_size"], config["d_model"], config["n_layers"])
'''
CONFIG = {"model_type": "decoder-only", "vocab_size": 50, "d_model": 16, "n_layers": 2}


def gist_json(base: str, gist_id: str, files: dict[str, str], *, truncate: tuple[str, ...] = ()) -> dict:
    """A ``GET /gists/{id}`` body as GitHub sends it (fields per docs.github.com/rest/gists/gists)."""
    owner = {"login": "octocat", "id": 1, "node_id": "MDQ6VXNlcjE=", "type": "User", "site_admin": False,
             "url": f"{base}/users/octocat", "html_url": "https://github.com/octocat"}
    entries = {}
    for name, text in files.items():
        data = text.encode()
        entry = {
            "filename": name,
            "type": "application/json" if name.endswith(".json") else "application/x-python",
            "language": "JSON" if name.endswith(".json") else "Python",
            "raw_url": f"{base}/raw/{gist_id}/{name}",
            "size": len(data),
            "truncated": name in truncate,
            "content": text[:10] if name in truncate else text,
        }
        entries[name] = entry
    return {
        "url": f"{base}/gists/{gist_id}",
        "forks_url": f"{base}/gists/{gist_id}/forks",
        "commits_url": f"{base}/gists/{gist_id}/commits",
        "id": gist_id,
        "node_id": "G_kwDOAAAAAdoAIDAxMjM0NTY3ODlhYmNkZWY",
        "git_pull_url": f"https://gist.github.com/{gist_id}.git",
        "git_push_url": f"https://gist.github.com/{gist_id}.git",
        "html_url": f"https://gist.github.com/{gist_id}",
        "files": entries,
        "public": True,
        "created_at": "2025-01-01T00:00:00Z",
        "updated_at": "2025-01-01T00:00:00Z",
        "description": "Transformer Builder export",
        "comments": 0,
        "user": None,
        "comments_url": f"{base}/gists/{gist_id}/comments",
        "owner": owner,
        "forks": [],
        "history": [],
        "truncated": False,
    }


class GistAPI:
    """Routes: path -> (status, headers, body bytes). ``requests`` records every path asked for."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.requests: list[str] = []
        self.request_headers: list[dict[str, str]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                api.requests.append(self.path)
                api.request_headers.append(dict(self.headers))
                status, headers, body = api.routes.get(self.path, (404, {}, None))
                if body is None:
                    body = json.dumps({"message": "Not Found",
                                       "documentation_url": "https://docs.github.com/rest/gists/gists#get-a-gist",
                                       "status": "404"}).encode()
                    headers = {"Content-Type": "application/json; charset=utf-8"}
                self.send_response(status)
                base_headers = {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "59",
                                "X-RateLimit-Reset": str(int(time.time()) + 3600), "X-RateLimit-Resource": "core",
                                "X-GitHub-Api-Version-Selected": "2022-11-28"}
                for key, value in {**base_headers, **headers, "Content-Length": str(len(body))}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def add_gist(self, gist_id: str, files: dict[str, str], *, truncate: tuple[str, ...] = (),
                 revision: str | None = None) -> None:
        body = json.dumps(gist_json(self.base, gist_id, files, truncate=truncate)).encode()
        path = f"/gists/{gist_id}" + (f"/{revision}" if revision else "")
        self.routes[path] = (200, {"Content-Type": "application/json; charset=utf-8"}, body)
        for name, text in files.items():
            self.routes[f"/raw/{gist_id}/{name}"] = (200, {"Content-Type": "text/plain; charset=utf-8"}, text.encode())

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch):
    double = GistAPI()
    monkeypatch.setenv("COLAB_CI_GITHUB_API", double.base)
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    yield double
    double.close()


def model_files(config: dict | None = None, code: str = MODEL_PY) -> dict[str, str]:
    return {"model.py": code, "config.json": json.dumps(config if config is not None else CONFIG, indent=2)}


def approval(code: str = MODEL_PY) -> str:
    """TRUST_MODEL_CODE for ``code``: the first 12 hex characters of its sha256, as the model cell prints them."""
    return hashlib.sha256(code.encode("utf-8")).hexdigest()[:12]


def one_sentence(error: ModelSourceError) -> str:
    text = str(error)
    assert "\n" not in text and "Traceback" not in text
    return text


# ------------------------------------------------------------------------------------------- gist


def test_gist_success_end_to_end(api: GistAPI, capsys: pytest.CaptureFixture) -> None:
    api.add_gist(GIST_ID, {**model_files(), "README.md": "# notes\n"})
    loaded = load_model(f"https://gist.github.com/octocat/{GIST_ID}", trust_code=approval())
    assert isinstance(loaded, LoadedModel)
    model, config, description = loaded
    assert config == CONFIG
    assert type(model).__name__ == "GistLM" and not model.training
    assert f"gist {GIST_ID}" in description and "build_model(config)" in description
    logits = model(torch.randint(0, 50, (2, 7)))
    assert logits.shape == (2, 7, 50)
    assert api.requests == [f"/gists/{GIST_ID}"]
    headers = api.request_headers[0]
    assert headers["Accept"] == "application/vnd.github+json" and headers["User-Agent"]
    out = capsys.readouterr().out
    # the code is shown, numbered, before the model exists
    assert " 1 | import torch" in out and "28 | def build_model(config):" in out
    assert out.index("def build_model") < out.index('"vocab_size": 50')


def test_code_is_shown_before_it_runs(api: GistAPI, capsys: pytest.CaptureFixture) -> None:
    noisy = MODEL_PY + '\nprint("MODULE BODY RUNS NOW")\n'
    api.add_gist(GIST_ID, model_files(code=noisy))
    load_model(GIST_ID, trust_code=approval(noisy))
    out = capsys.readouterr().out
    shown = out.index('print("MODULE BODY RUNS NOW")')
    ran = out.index("\nMODULE BODY RUNS NOW")
    assert shown < ran


def test_untrusted_code_is_shown_and_not_run(api: GistAPI, capsys: pytest.CaptureFixture) -> None:
    api.add_gist(GIST_ID, model_files(code=MODEL_PY + '\nraise SystemExit("must never run")\n'))
    with pytest.raises(ModelSourceError) as info:
        load_model(GIST_ID, trust_code=False)
    message = one_sentence(info.value)
    code = MODEL_PY + '\nraise SystemExit("must never run")\n'
    assert "review the code above" in message and f'TRUST_MODEL_CODE = "{approval(code)}"' in message
    out = capsys.readouterr().out
    assert 'raise SystemExit("must never run")' in out and "def build_model" in out


def test_revision_url_and_old_id(api: GistAPI) -> None:
    api.add_gist(GIST_ID, model_files(), revision=REVISION)
    api.add_gist(OLD_GIST_ID, model_files())
    load_model(f"https://gist.github.com/octocat/{GIST_ID}/{REVISION}#file-model-py", trust_code=approval())
    load_model(OLD_GIST_ID, trust_code=approval())
    assert api.requests == [f"/gists/{GIST_ID}/{REVISION}", f"/gists/{OLD_GIST_ID}"]


@pytest.mark.parametrize("value", [
    "abc123",
    GIST_ID + "0",
    "0123456789abcdef0123456789abcdeg",
    "https://gist.github.com/octocat",
    "https://github.com/octocat/" + GIST_ID,
    f"https://gist.github.com/octocat/{GIST_ID}/not-a-revision",
])
def test_invalid_id_or_url_is_refused_before_any_request(api: GistAPI, value: str) -> None:
    with pytest.raises(ModelSourceError) as info:
        load_model(value, trust_code=True)
    message = one_sentence(info.value)
    assert repr(value) in message
    assert "gist" in message and ("32 hex" in message or "gist.github.com/USER/ID" in message)
    assert api.requests == []


def test_parse_gist_ref_forms() -> None:
    assert parse_gist_ref(GIST_ID.upper()).gist_id == GIST_ID
    assert parse_gist_ref(f"https://gist.github.com/{GIST_ID}").gist_id == GIST_ID
    assert parse_gist_ref(f"https://gist.github.com/u/{GIST_ID}.git").gist_id == GIST_ID
    ref = parse_gist_ref(f"https://gist.github.com/u/{GIST_ID}/{REVISION}/")
    assert (ref.gist_id, ref.revision) == (GIST_ID, REVISION)


def test_not_found(api: GistAPI) -> None:
    with pytest.raises(ModelSourceError) as info:
        load_model(GIST_ID, trust_code=True)
    message = one_sentence(info.value)
    assert f"GitHub has no gist {GIST_ID}" in message and "HTTP 404 'Not Found'" in message


def test_rate_limit(api: GistAPI) -> None:
    body = json.dumps({"message": "API rate limit exceeded for 127.0.0.1. (But here's the good news: Authenticated "
                                  "requests get a higher rate limit. Check out the documentation for more details.)",
                       "documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api"
                                            "#rate-limiting"}).encode()
    reset = int(time.time()) + 600
    api.routes[f"/gists/{GIST_ID}"] = (403, {"Content-Type": "application/json; charset=utf-8",
                                             "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}, body)
    with pytest.raises(ModelSourceError) as info:
        load_model(GIST_ID, trust_code=True)
    message = one_sentence(info.value)
    assert "rate limit is used up" in message and "HTTP 403" in message
    assert "X-RateLimit-Remaining: 0" in message and time.strftime("%H:%M UTC", time.gmtime(reset)) in message


def test_server_error(api: GistAPI) -> None:
    api.routes[f"/gists/{GIST_ID}"] = (502, {"Content-Type": "text/html"}, b"<html>Bad Gateway</html>")
    with pytest.raises(ModelSourceError) as info:
        load_model(GIST_ID, trust_code=True)
    assert "HTTP 502" in one_sentence(info.value) and "GitHub's side" in str(info.value)


def test_unreachable_api(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and is closed now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("COLAB_CI_GITHUB_API", f"http://127.0.0.1:{port}")
    with pytest.raises(ModelSourceError) as info:
        load_model(GIST_ID, trust_code=True)
    message = one_sentence(info.value)
    assert f"could not reach 127.0.0.1:{port}" in message and "online" in message


def test_timeout() -> None:
    with socket.socket() as sock:  # accepts connections (backlog) and never answers
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with pytest.raises(ModelSourceError) as info:
            load_model(GIST_ID, trust_code=True, api_base=base, timeout=0.5)
    assert "no answer from 127.0.0.1" in one_sentence(info.value) and "0.5 s" in str(info.value)


def test_oversize_file_is_refused_by_name(api: GistAPI) -> None:
    big = MODEL_PY + "#" * 1_100_000
    api.add_gist(GIST_ID, model_files(code=big), truncate=("model.py",))
    with pytest.raises(ModelSourceError) as info:
        load_model(GIST_ID, trust_code=True)
    message = one_sentence(info.value)
    assert "model.py" in message and "1.1 MB" in message and "1.0 MB limit" in message
    assert api.requests == [f"/gists/{GIST_ID}"]  # refused on the API's size, raw file never fetched


def test_truncated_file_is_fetched_from_raw_url(api: GistAPI) -> None:
    api.add_gist(GIST_ID, model_files(), truncate=("model.py",))
    model, _, _ = load_model(GIST_ID, trust_code=approval())
    assert type(model).__name__ == "GistLM"
    assert api.requests == [f"/gists/{GIST_ID}", f"/raw/{GIST_ID}/model.py"]


def test_truncated_raw_body_over_the_cap(api: GistAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    api.add_gist(GIST_ID, model_files(), truncate=("model.py",))
    api.routes[f"/raw/{GIST_ID}/model.py"] = (200, {}, b"#" * 5000)  # bigger than the size the API claimed
    with pytest.raises(ModelSourceError) as info:
        load_model(GIST_ID, trust_code=True, max_bytes=len(MODEL_PY) + 200)
    assert "model.py of gist" in one_sentence(info.value) and "limit" in str(info.value)


def test_missing_file_is_named(api: GistAPI) -> None:
    api.add_gist(GIST_ID, {"model.py": MODEL_PY, "notes.txt": "x"})
    with pytest.raises(ModelSourceError) as info:
        load_model(GIST_ID, trust_code=True)
    message = one_sentence(info.value)
    assert "has no config.json" in message and "model.py, notes.txt" in message


def test_invalid_json_names_line_and_column(api: GistAPI) -> None:
    api.add_gist(GIST_ID, {"model.py": MODEL_PY, "config.json": '{\n  "vocab_size": 50,\n  "d_model": 16,,\n}'})
    with pytest.raises(ModelSourceError) as info:
        load_model(GIST_ID, trust_code=False)
    message = one_sentence(info.value)
    assert "config.json" in message and "not valid JSON" in message and "line 3, column 17" in message


def test_missing_field_in_builder_is_summarised(api: GistAPI) -> None:
    api.add_gist(GIST_ID, model_files({"vocab_size": 50, "n_layers": 2}))
    with pytest.raises(ModelSourceError) as info:
        load_model(GIST_ID, trust_code=approval())
    message = one_sentence(info.value)
    assert message.startswith("build_model(config) failed: KeyError: 'd_model' (model.py line 29)")
    assert "lacks the field 'd_model'" in message


def test_missing_field_for_class_signature_is_named(api: GistAPI) -> None:
    code = MODEL_PY.split("\ndef build_model")[0]  # no builder: GistLM(**config) is used
    api.add_gist(GIST_ID, model_files({"vocab_size": 50, "d_model": 16}, code=code))
    with pytest.raises(ModelSourceError) as info:
        load_model(GIST_ID, trust_code=approval(code))
    message = one_sentence(info.value)
    assert "config.json has no field 'n_layers'" in message and "GistLM.__init__" in message


def test_example_style_config_error_names_the_field(api: GistAPI) -> None:
    code = ("from tiers.models import TinyDecoder\n\n"
            "def build_model(config):\n    return TinyDecoder.from_config(config)\n")
    config = {"vocab_size": 64, "d_model": 32, "n_layers": 1, "max_seq_len": 16}
    api.add_gist(GIST_ID, model_files(config, code=code))
    with pytest.raises(ModelSourceError) as info:
        load_model(GIST_ID, trust_code=approval(code))
    assert "ConfigError: config: missing field 'n_heads'" in one_sentence(info.value)


def test_module_error_and_syntax_error(api: GistAPI) -> None:
    api.add_gist(GIST_ID, model_files(code="import einops_that_is_not_installed\n"))
    with pytest.raises(ModelSourceError) as info:
        load_model(GIST_ID, trust_code=approval("import einops_that_is_not_installed\n"))
    assert "ModuleNotFoundError" in one_sentence(info.value) and "%pip install einops_that_is_not_installed" in str(
        info.value)
    api.add_gist(GIST_ID, model_files(code="def broken(:\n    pass\n"))
    with pytest.raises(ModelSourceError) as info:
        load_model(GIST_ID, trust_code=approval("def broken(:\n    pass\n"))
    assert "syntax error at line 1" in one_sentence(info.value)


def test_ipython_renders_a_box_not_a_traceback() -> None:
    lines = ModelSourceError("GitHub has no gist x (HTTP 404)")._render_traceback_()
    assert lines[0].startswith("+--") and any("GitHub has no gist x" in line for line in lines)


# ----------------------------------------------------------------------------------- class rules


def build_rule_case(tmp_path: Path, code: str, config: dict) -> LoadedModel:
    (tmp_path / "model.py").write_text(code)
    (tmp_path / "config.json").write_text(json.dumps(config))
    return load_model(str(tmp_path), trust_code=True)


def test_local_directory_and_single_top_level_class(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = MODEL_PY.split("\ndef build_model")[0]
    loaded = build_rule_case(tmp_path, code, CONFIG)  # model_type is ignored by GistLM(**fields)
    assert type(loaded.model).__name__ == "GistLM" and "GistLM(**config)" in loaded.description
    assert loaded.model(torch.tensor([[1, 2, 3]])).shape == (1, 3, 50)
    assert "import torch" in capsys.readouterr().out
    # a path to model.py and a (model.py, config.json) pair work as well
    load_model(str(tmp_path / "model.py"), trust_code=True)
    load_model((tmp_path / "model.py", tmp_path / "config.json"), trust_code=True)


def test_config_dataclass_parameter(tmp_path: Path) -> None:
    code = '''\
from dataclasses import dataclass
from torch import nn

@dataclass
class LMConfig:
    vocab_size: int
    d_model: int = 8

class LM(nn.Module):
    def __init__(self, config: LMConfig):
        super().__init__()
        self.emb = nn.Embedding(config.vocab_size, config.d_model)
    def forward(self, ids):
        return self.emb(ids)
'''
    loaded = build_rule_case(tmp_path, code, {"vocab_size": 11, "dropout": 0.1})
    assert "LM(LMConfig(**config))" in loaded.description and loaded.model.emb.num_embeddings == 11


def test_ambiguous_classes_are_named(tmp_path: Path) -> None:
    code = "from torch import nn\nclass A(nn.Module):\n    pass\nclass B(nn.Module):\n    pass\n"
    with pytest.raises(ModelSourceError) as info:
        build_rule_case(tmp_path, code, {})
    assert "(A, B)" in one_sentence(info.value) and "build_model(config)" in str(info.value)
    loaded = build_rule_case(tmp_path, code + "MODEL_CLASS = 'B'\n", {})
    assert type(loaded.model).__name__ == "B"


def test_missing_local_path(tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError) as info:
        load_model(str(tmp_path / "nope" / "model.py"), trust_code=True)
    assert "does not exist" in one_sentence(info.value)
    (tmp_path / "model.py").write_text(MODEL_PY)
    with pytest.raises(ModelSourceError) as info:
        load_model(str(tmp_path), trust_code=True)
    assert "config.json" in one_sentence(info.value)


def test_example_source() -> None:
    model, config, description = load_model("example", trust_code=False)
    assert type(model).__name__ == "TinyDecoder" and config["vocab_size"] == 256
    assert "example" in description


# ------------------------------------------------------------------------------- real GitHub


def _github_reachable() -> bool:
    try:
        socket.create_connection(("api.github.com", 443), timeout=2).close()
        return True
    except OSError:
        return False


@pytest.mark.network
def test_real_public_gist(monkeypatch: pytest.MonkeyPatch) -> None:
    """GitHub's documented example gist (octocat's hello_world.rb): real shape, and no model.py in it."""
    if not _github_reachable():
        pytest.skip("api.github.com:443 is unreachable from here (no internet access)")
    monkeypatch.delenv("COLAB_CI_GITHUB_API", raising=False)
    try:
        files = fetching.fetch_gist("aa5a315d61ae9438b18d", required=())
    except ModelSourceError as exc:
        if "rate limit" in str(exc):
            pytest.skip(str(exc))
        raise
    assert "hello_world.rb" in files and files["hello_world.rb"].strip()
    with pytest.raises(ModelSourceError, match="has no model.py"):
        load_model("https://gist.github.com/octocat/aa5a315d61ae9438b18d", trust_code=False)


# ------------------------------------------------------------------ trust tied to the code shown

REVISION_B = "2bf0249f53c459e0a2ee0a19c5f0c8a4a3b7c6d1"
MODEL_PY_B = MODEL_PY.replace("torch.relu", "torch.tanh")  # the gist edited after the review


def serve_revisions(api: GistAPI, latest: tuple[str, str], older: tuple[str, str] | None = None) -> None:
    """/gists/ID answers with ``latest`` (revision, model.py) and names it in history[0], as GitHub does;
    /gists/ID/REVISION serves each revision."""
    for revision, code in [latest, *([older] if older else [])]:
        api.add_gist(GIST_ID, model_files(code=code), revision=revision)
    body = gist_json(api.base, GIST_ID, model_files(code=latest[1]))
    body["history"] = [{"version": latest[0], "url": f"{api.base}/gists/{GIST_ID}/{latest[0]}"}]
    api.routes[f"/gists/{GIST_ID}"] = (200, {"Content-Type": "application/json; charset=utf-8"},
                                       json.dumps(body).encode())


@pytest.fixture
def fresh_reviews(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    reviewed: dict[str, str] = {}
    monkeypatch.setattr(loading, "_REVIEWED_REVISIONS", reviewed)
    return reviewed


def test_true_is_refused_for_a_gist_with_the_digest_to_paste(api: GistAPI, fresh_reviews: dict) -> None:
    api.add_gist(GIST_ID, model_files(code=MODEL_PY + '\nraise SystemExit("must never run")\n'))
    with pytest.raises(ModelSourceError) as info:
        load_model(GIST_ID, trust_code=True)
    message = one_sentence(info.value)
    assert "TRUST_MODEL_CODE = True is not accepted" in message and "can change between your review" in message
    assert approval(MODEL_PY + '\nraise SystemExit("must never run")\n') in message


@pytest.mark.parametrize("given", ["", False, None, "no"])
def test_no_approval_shows_the_code_and_the_digest(api: GistAPI, fresh_reviews: dict, capsys: pytest.CaptureFixture,
                                                  given: object) -> None:
    api.add_gist(GIST_ID, model_files())
    with pytest.raises(ModelSourceError) as info:
        load_model(GIST_ID, trust_code=given)
    assert f'TRUST_MODEL_CODE = "{approval()}"' in one_sentence(info.value)
    assert f"sha256 {approval()}" in capsys.readouterr().out  # the digest is printed above the code


def test_the_full_digest_or_any_prefix_of_12_or_more_runs_the_code(api: GistAPI, fresh_reviews: dict) -> None:
    api.add_gist(GIST_ID, model_files())
    full = hashlib.sha256(MODEL_PY.encode()).hexdigest()
    for given in (full, full[:12].upper(), full[:20]):
        loaded = load_model(GIST_ID, trust_code=given)
        assert loaded.digest == full and f"sha256 {full[:12]}" in loaded.description


@pytest.mark.parametrize(("given", "words"), [
    ("0123456789ab", "does not match"),
    (approval()[:8], "too short"),
    ("let it run", "neither True nor a sha256"),
])
def test_a_wrong_approval_is_refused_saying_why(api: GistAPI, fresh_reviews: dict, given: str, words: str) -> None:
    api.add_gist(GIST_ID, model_files(code=MODEL_PY + '\nraise SystemExit("must never run")\n'))
    with pytest.raises(ModelSourceError) as info:
        load_model(GIST_ID, trust_code=given)
    assert words in one_sentence(info.value)


def test_a_gist_edited_after_review_runs_the_revision_that_was_reviewed(api: GistAPI, fresh_reviews: dict,
                                                                        capsys: pytest.CaptureFixture) -> None:
    serve_revisions(api, latest=(REVISION, MODEL_PY))
    with pytest.raises(ModelSourceError):
        load_model(GIST_ID, trust_code="")  # the review: shown, not run, revision pinned
    assert fresh_reviews == {GIST_ID: REVISION}
    serve_revisions(api, latest=(REVISION_B, MODEL_PY_B), older=(REVISION, MODEL_PY))  # edited meanwhile
    loaded = load_model(GIST_ID, trust_code=approval(MODEL_PY))
    assert loaded.code == MODEL_PY and api.requests[-1] == f"/gists/{GIST_ID}/{REVISION}"
    assert "the revision shown when this cell last ran" in capsys.readouterr().out


def test_a_gist_edited_before_a_fresh_run_is_refused(api: GistAPI, fresh_reviews: dict) -> None:
    """No review in this session (a fresh runtime): the latest revision is fetched, and its sha256 is not
    the one approved, so it does not run."""
    serve_revisions(api, latest=(REVISION_B, MODEL_PY_B + '\nraise SystemExit("must never run")\n'))
    with pytest.raises(ModelSourceError) as info:
        load_model(GIST_ID, trust_code=approval(MODEL_PY))
    message = one_sentence(info.value)
    assert "does not match" in message and "changed since it was reviewed" in message
    assert f"revision {REVISION_B[:10]}" in message


def test_local_folder_accepts_true_or_its_digest(tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text(MODEL_PY)
    (tmp_path / "config.json").write_text(json.dumps(CONFIG))
    assert load_model(str(tmp_path), trust_code=True).digest == hashlib.sha256(MODEL_PY.encode()).hexdigest()
    assert type(load_model(str(tmp_path), trust_code=approval()).model).__name__ == "GistLM"
    with pytest.raises(ModelSourceError, match="does not match"):
        load_model(str(tmp_path), trust_code=approval(MODEL_PY_B))


# ------------------------------------------------------------------------------- GITHUB_TOKEN

@pytest.mark.parametrize(("url", "api_base", "allowed"), [
    ("https://api.github.com/gists/x", None, True),
    ("http://api.github.com/gists/x", None, False),                        # never over plain http
    ("https://gist.githubusercontent.com/u/x/raw/model.py", None, False),  # raw file host
    ("https://api.github.com.evil.example/gists/x", None, False),
    ("https://ghe.example.com/api/v3/gists/x", "https://ghe.example.com/api/v3", True),  # GitHub Enterprise
    ("https://api.github.com/gists/x", "https://ghe.example.com/api/v3", False),
    ("http://127.0.0.1:8080/gists/x", "http://127.0.0.1:8080", False),      # configured, but http
])
def test_the_token_goes_to_the_configured_https_api_host_only(monkeypatch: pytest.MonkeyPatch, url: str,
                                                             api_base: str | None, allowed: bool) -> None:
    monkeypatch.delenv("COLAB_CI_GITHUB_API", raising=False)
    assert fetching.token_allowed(url, api_base) is allowed


def test_the_token_is_not_sent_over_http(api: GistAPI, fresh_reviews: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_not_a_real_token")
    api.add_gist(GIST_ID, model_files())
    load_model(GIST_ID, trust_code=approval())
    assert api.request_headers and all("Authorization" not in headers for headers in api.request_headers)


# ------------------------------------------------------------------------- nanoGPT-style config

def test_config_dataclass_for_an_unannotated_config_parameter(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = '''\
from dataclasses import dataclass
from torch import nn

@dataclass
class GPTConfig:
    vocab_size: int = 50304
    n_embd: int = 8

class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
    def forward(self, idx):
        return self.wte(idx)
'''
    loaded = build_rule_case(tmp_path, code, {"vocab_size": 11, "model_type": "gpt"})
    assert "GPT(GPTConfig(**config))" in loaded.description and loaded.model.wte.num_embeddings == 11
    assert "GPTConfig does not take (ignored): model_type" in capsys.readouterr().out
