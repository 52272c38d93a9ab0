"""Load the user's model: from a local path, a GitHub Gist, or the shipped example.

Transformer Builder exports two files, ``model.py`` (an ``nn.Module`` class, ideally a builder
function) and ``config.json``. ``load_model(source, trust_code=...)`` accepts:

* ``"example"``: the shipped ``tiers.models.example_model()`` (no code is fetched or run);
* a local directory holding both files, a path to ``model.py`` (``config.json`` beside it), or a
  ``(model_py, config_json)`` pair of paths;
* a GitHub Gist: its id (32 hex characters, or 20 for old gists) or its URL
  ``https://gist.github.com/USER/ID`` (optionally ``/REVISION``). The gist is read through GitHub's
  REST API, ``GET {api}/gists/{id}[/{revision}]``; ``api`` is the ``api_base`` argument, else the
  ``COLAB_CI_GITHUB_API`` environment variable, else ``https://api.github.com``. ``GITHUB_TOKEN``,
  when set, is sent to that API only, and only over https (it raises the rate limit from 60
  requests an hour); never to raw file hosts, never over http.

The source is validated before any request; at most ``MAX_SOURCE_BYTES`` of ``model.py`` plus
``config.json`` are read. The code is always shown (with line numbers and its sha256) before it runs,
and it runs only when ``trust_code`` approves exactly that code (``tiers.trust``): the sha256 printed
above it (first 12 hex characters or more), or True for a local folder. Otherwise ``load_model``
stops with a ``ModelSourceError`` saying what to set. A gist shown without being run is pinned to the
revision shown: the next run of the same (unpinned) gist fetches that revision again.

Every failure is a ``ModelSourceError`` (a ``ValueError``) whose message is one sentence; in IPython
it renders as that sentence in a box instead of a traceback.

How the model is built from ``model.py`` (executed as a fresh module, never imported from disk):

1. a function ``build_model(config)``, else ``create_model(config)``, is called with the dict;
2. otherwise the ``nn.Module`` subclasses *defined in* model.py are the candidates: the one named by
   ``config["model_class"]`` or by a module-level ``MODEL_CLASS``; else the only candidate; else the
   only "top-level" one (not a base class of another candidate and not referenced in another
   candidate's body); else the candidates are named in the error. The class is instantiated with
   ``cls.from_config(config)`` if it has that classmethod; ``cls(config)`` when ``__init__`` takes
   one parameter named like a config (``config``, ``cfg``, ...) or annotated with a class from
   model.py (then ``cls(ThatClass(**config))``, e.g. a dataclass ``GPTConfig``); else
   ``cls(**fields)`` with the config fields ``__init__`` accepts (extra fields are ignored, a
   missing required one is named).

The model is returned in eval mode, like the example.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import json
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from .trust import approve, code_digest

DEFAULT_API = "https://api.github.com"
API_ENV = "COLAB_CI_GITHUB_API"
MAX_SOURCE_BYTES = 1_000_000            # model.py + config.json together
MAX_API_RESPONSE_BYTES = 16_000_000     # the gist JSON carries every file's content (<= 1 MB each)
TIMEOUT_S = 20.0
REQUIRED_FILES = ("model.py", "config.json")
BUILDER_NAMES = ("build_model", "create_model")
CONFIG_PARAM_NAMES = ("config", "cfg", "conf", "configuration", "hparams", "params", "args")

_GIST_ID = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{20}")
_REVISION = re.compile(r"[0-9a-fA-F]{40}")
_ACCEPTED = ("'example', a local directory with model.py and config.json, a gist id (32 hex characters, "
             "or 20 for old gists) or a gist URL like https://gist.github.com/USER/ID")


class ModelSourceError(ValueError):
    """The model could not be loaded; ``str(error)`` is one sentence saying why and what to do."""

    def _render_traceback_(self) -> list[str]:  # IPython shows this instead of a traceback
        return _box(["MODEL NOT LOADED", *_wrap(str(self), 100)]).splitlines()


@dataclass
class LoadedModel:
    """What ``load_model`` returns; unpacks as ``model, config, description = load_model(...)``."""

    model: Any
    config: dict[str, Any]
    description: str
    source: str = "example"
    code: str | None = None                      # model.py as run (None for the example)
    files: dict[str, str] = field(default_factory=dict, repr=False)
    digest: str | None = None                    # sha256 of model.py as run (None for the example)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.model, self.config, self.description))


@dataclass(frozen=True)
class GistRef:
    gist_id: str
    revision: str | None = None

    def __str__(self) -> str:
        return f"gist {self.gist_id}" + (f" at revision {self.revision[:10]}" if self.revision else "")


# ---------------------------------------------------------------------------------------- sources

def parse_gist_ref(value: str) -> GistRef:
    """A gist id or URL -> ``GistRef``; anything else -> ``ModelSourceError`` (no request is made)."""
    text = str(value).strip()
    if _GIST_ID.fullmatch(text):
        return GistRef(text.lower())
    if not re.match(r"(?i)https?://", text):
        raise ModelSourceError(f"{_shown(value)} is not a valid gist id or URL: expected 32 hex characters "
                               "(20 for old gists) or https://gist.github.com/USER/ID")
    parsed = urllib.parse.urlsplit(text)
    parts = [p for p in parsed.path.split("/") if p]
    if parts and parts[-1].endswith(".git"):
        parts[-1] = parts[-1][:-4]
    ref = None
    if parsed.hostname in ("gist.github.com", "www.gist.github.com") and parts:
        # /ID, /USER/ID, /USER/ID/REVISION
        if _GIST_ID.fullmatch(parts[0]) and len(parts) <= 2:
            ref = _ref(parts[0], parts[1] if len(parts) == 2 else None)
        elif len(parts) in (2, 3) and _GIST_ID.fullmatch(parts[1]):
            ref = _ref(parts[1], parts[2] if len(parts) == 3 else None)
    if ref is None:
        raise ModelSourceError(f"{_shown(value)} is not a valid gist URL: expected https://gist.github.com/USER/ID "
                               "(optionally followed by /REVISION) or a bare gist id of 32 hex characters")
    return ref


def _ref(gist_id: str, revision: str | None) -> GistRef | None:
    if revision is not None and not _REVISION.fullmatch(revision):
        return None
    return GistRef(gist_id.lower(), revision.lower() if revision else None)


def api_base_url(api_base: str | None = None) -> str:
    base = (api_base or os.environ.get(API_ENV) or DEFAULT_API).strip().rstrip("/")
    if not re.match(r"(?i)https?://[^/]", base):
        raise ModelSourceError(f"the GitHub API base URL {base!r} (argument api_base or ${API_ENV}) must start "
                               "with https:// or http://")
    return base


def fetch_gist(ref: GistRef | str, *, api_base: str | None = None, timeout: float = TIMEOUT_S,
               required: Sequence[str] = REQUIRED_FILES, max_bytes: int = MAX_SOURCE_BYTES) -> dict[str, str]:
    """The ``required`` files of a gist as ``{filename: text}`` (all files when ``required`` is empty).

    Uses ``GET {api}/gists/{id}`` whose JSON has ``files: {name: {filename, size, truncated, raw_url,
    content}}``; a truncated file (or one without content) is fetched from its ``raw_url``. Files
    beyond ``max_bytes`` in total are refused before they are downloaded where ``size`` allows.
    """
    return fetch_gist_revision(ref, api_base=api_base, timeout=timeout, required=required, max_bytes=max_bytes)[0]


def fetch_gist_revision(ref: GistRef | str, *, api_base: str | None = None, timeout: float = TIMEOUT_S,
                        required: Sequence[str] = REQUIRED_FILES,
                        max_bytes: int = MAX_SOURCE_BYTES) -> tuple[dict[str, str], str | None]:
    """``fetch_gist`` and the revision fetched: the one asked for, else the gist's latest
    (``history[0].version`` of the API answer); None when the answer names none."""
    if isinstance(ref, str):
        ref = parse_gist_ref(ref)
    base = api_base_url(api_base)
    url = f"{base}/gists/{ref.gist_id}" + (f"/{ref.revision}" if ref.revision else "")
    body = _http_get(url, ref, timeout, MAX_API_RESPONSE_BYTES, api=True, api_base=base)
    try:
        gist = json.loads(body.decode("utf-8"))
        files = gist["files"]
        if not isinstance(files, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise ModelSourceError(f"the answer from {url} is not a gist (no 'files' object in its JSON): check "
                               f"${API_ENV} if you set it") from None
    wanted = list(required) or sorted(files)
    missing = [name for name in wanted if name not in files]
    if missing:
        present = ", ".join(sorted(files)) or "no files"
        raise ModelSourceError(f"{ref} has no {' and no '.join(missing)} (it holds {present}): the Transformer "
                               "Builder export needs model.py and config.json in the same gist")
    sizes = {name: int(files[name].get("size") or len((files[name].get("content") or "").encode())) for name in wanted}
    _check_sizes(sizes, max_bytes, str(ref))
    out: dict[str, str] = {}
    used = 0
    for name in wanted:
        entry = files[name]
        content = entry.get("content")
        if entry.get("truncated") or content is None:
            raw_url = entry.get("raw_url")
            if not raw_url:
                raise ModelSourceError(f"{name} in {ref} is truncated in the API answer and has no raw_url to "
                                       "fetch it from")
            data = _http_get(raw_url, ref, timeout, max_bytes - used, api=False, filename=name)
            content = _decode(data, name, str(ref))
        used += len(content.encode("utf-8"))
        if used > max_bytes:
            _check_sizes({name: used}, max_bytes, str(ref))
        out[name] = content
    history = gist.get("history")
    latest = history[0].get("version") if isinstance(history, list) and history and isinstance(history[0], dict) else None
    revision = ref.revision or (latest if isinstance(latest, str) and _REVISION.fullmatch(latest) else None)
    return out, revision


def read_local(source: str | os.PathLike | Sequence[str | os.PathLike],
               max_bytes: int = MAX_SOURCE_BYTES) -> dict[str, str]:
    """``{"model.py": text, "config.json": text}`` from a directory, a model.py path or a pair of paths."""
    if isinstance(source, (list, tuple)):
        if len(source) != 2:
            raise ModelSourceError(f"a pair of paths (model.py, config.json) was expected, got {len(source)} items")
        paths = {"model.py": Path(source[0]), "config.json": Path(source[1])}
    else:
        path = Path(source).expanduser()
        folder = path if path.is_dir() else path.parent
        paths = {"model.py": path if path.is_file() and path.suffix == ".py" else folder / "model.py",
                 "config.json": folder / "config.json"}
    for name, path in paths.items():
        if not path.is_file():
            raise ModelSourceError(f"{path} does not exist: a local model needs {name} "
                                   f"(looked in {path.parent})")
    sizes = {name: path.stat().st_size for name, path in paths.items()}
    _check_sizes(sizes, max_bytes, str(paths["model.py"].parent))
    return {name: _decode(path.read_bytes(), name, str(path)) for name, path in paths.items()}


def _check_sizes(sizes: Mapping[str, int], max_bytes: int, where: str) -> None:
    for name, size in sizes.items():
        if size > max_bytes:
            raise ModelSourceError(f"{name} from {where} is {_human(size)}, over the {_human(max_bytes)} limit for "
                                   "model.py and config.json together: this is not a Transformer Builder export")
    total = sum(sizes.values())
    if total > max_bytes:
        biggest = max(sizes, key=sizes.__getitem__)
        raise ModelSourceError(f"model.py and config.json from {where} are {_human(total)} together (the biggest, "
                               f"{biggest}, is {_human(sizes[biggest])}), over the {_human(max_bytes)} limit")


def _decode(data: bytes, name: str, where: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ModelSourceError(f"{name} from {where} is not UTF-8 text (byte {exc.start} is invalid)") from None


# ------------------------------------------------------------------------------------------- HTTP

def token_allowed(url: str, api_base: str | None = None) -> bool:
    """Whether ``GITHUB_TOKEN`` may go with a request to ``url``: https, to the configured API host only.

    The configured host is that of ``api_base`` / ``$COLAB_CI_GITHUB_API`` (GitHub Enterprise), else
    api.github.com; never plain http (the token would cross the network readable), never a raw file host.
    """
    target = urllib.parse.urlsplit(url)
    configured = urllib.parse.urlsplit(api_base_url(api_base))
    return (target.scheme.lower() == "https" and configured.scheme.lower() == "https"
            and bool(target.hostname) and target.hostname == configured.hostname and target.port == configured.port)


def _http_get(url: str, ref: GistRef, timeout: float, limit: int, *, api: bool, filename: str = "",
              api_base: str | None = None) -> bytes:
    headers = {"User-Agent": "colab-ci-tiers", "Accept": "application/vnd.github+json" if api else "*/*"}
    if api:
        headers["X-GitHub-Api-Version"] = "2022-11-28"
        token = os.environ.get("GITHUB_TOKEN")
        if token and token_allowed(url, api_base):
            headers["Authorization"] = f"Bearer {token}"
    host = urllib.parse.urlsplit(url).netloc or url
    what = f"{filename} of {ref}" if filename else str(ref)
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as response:
            data = response.read(limit + 1)
    except urllib.error.HTTPError as exc:
        raise ModelSourceError(_http_error_sentence(exc, url, what)) from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise ModelSourceError(f"no answer from {host} within {timeout:g} s while fetching {what}: GitHub or "
                                   "the network is slow or down, re-run the cell in a minute") from None
        raise ModelSourceError(f"could not reach {host} to fetch {what} ({_reason(reason)}): check that this "
                               "runtime is online, then re-run the cell") from None
    except (socket.timeout, TimeoutError):
        raise ModelSourceError(f"no answer from {host} within {timeout:g} s while fetching {what}: GitHub or the "
                               "network is slow or down, re-run the cell in a minute") from None
    except OSError as exc:  # connection reset mid-body, SSL errors raised outside URLError
        raise ModelSourceError(f"the connection to {host} failed while fetching {what} ({_reason(exc)}): re-run "
                               "the cell in a minute") from None
    if len(data) > limit:
        if filename:
            raise ModelSourceError(f"{filename} of {ref} is over {_human(limit)}, more than is left of the "
                                   f"{_human(MAX_SOURCE_BYTES)} limit for model.py and config.json together")
        raise ModelSourceError(f"the API answer for {ref} is over {_human(limit)}: the gist holds too much to be "
                               "a Transformer Builder export")
    return data


def _http_error_sentence(exc: urllib.error.HTTPError, url: str, what: str) -> str:
    code = exc.code
    headers = exc.headers or {}
    try:
        message = json.loads(exc.read(64_000).decode("utf-8")).get("message", "")
    except Exception:  # noqa: BLE001 - the body is only a detail
        message = ""
    detail = f"HTTP {code}" + (f" {message!r}" if message else (f" {exc.reason}" if exc.reason else ""))
    remaining = headers.get("X-RateLimit-Remaining")
    if code in (403, 429) and (remaining == "0" or headers.get("Retry-After") or "rate limit" in message.lower()):
        when = ""
        if headers.get("Retry-After"):
            when = f"; retry after {headers['Retry-After']} s"
        elif (reset := headers.get("X-RateLimit-Reset", "")).isdigit():
            wait = max(0, int(reset) - int(time.time()))
            when = f"; it resets at {time.strftime('%H:%M UTC', time.gmtime(int(reset)))}, in {max(1, -(-wait // 60))} min"
        return (f"GitHub's API rate limit is used up for this runtime's address ({detail}, X-RateLimit-Remaining: "
                f"{remaining if remaining is not None else 'absent'}{when}) while fetching {what}: wait and re-run, "
                "set GITHUB_TOKEN, or download the two files and use a local path")
    if code == 404:
        return (f"GitHub has no {what} ({detail}): check the id or URL in MODEL_SOURCE; the gist must be public "
                "or a secret gist you have the URL of")
    if code == 401:
        return f"GitHub rejected the credentials while fetching {what} ({detail}): check or unset GITHUB_TOKEN"
    if code == 403:
        return f"GitHub refused access to {what} ({detail})"
    if code >= 500:
        return (f"GitHub failed to answer for {what} ({detail} from {url}): the problem is on GitHub's side, "
                "re-run the cell in a few minutes")
    return f"unexpected answer {detail} from {url} while fetching {what}"


def _reason(reason: Any) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__


# ------------------------------------------------------------------------------------- show code

def format_code(code: str, filename: str = "model.py") -> str:
    """The code with right-aligned line numbers, under a header naming it (lines and sha256)."""
    lines = code.splitlines()
    width = len(str(len(lines)))
    digest = hashlib.sha256(code.encode("utf-8")).hexdigest()[:12]
    header = f"----- {filename}: {len(lines)} lines, sha256 {digest} -----"
    body = "\n".join(f"{i:>{width}} | {line}" for i, line in enumerate(lines, 1))
    return f"{header}\n{body}\n" + "-" * len(header)


def show_code(code: str, filename: str = "model.py", source: str = "") -> str:
    """Print the numbered code (the notebook shows it before running it); returns the printed text."""
    text = format_code(code, filename)
    if source:
        text = f"Code to run, from {source}:\n{text}"
    print(text, flush=True)
    return text


# --------------------------------------------------------------------------------------- loading

def parse_config(text: str, where: str = "config.json") -> dict[str, Any]:
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelSourceError(f"{where} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") \
            from None
    if not isinstance(config, dict):
        raise ModelSourceError(f"{where} must hold a JSON object of fields, not a {type(config).__name__}")
    return config


# Gists whose code was shown without being run, and the revision shown: a later run of the same
# unpinned gist fetches that revision, so the code that runs is the code that was reviewed even if
# the gist changed in between (the sha256 in TRUST_MODEL_CODE then matches, or the run is refused).
_REVIEWED_REVISIONS: dict[str, str] = {}


def load_model(source: Any = "example", *, trust_code: Any, api_base: str | None = None,
               timeout: float = TIMEOUT_S, max_bytes: int = MAX_SOURCE_BYTES) -> LoadedModel:
    """Load the model named by ``source`` (see the module docstring); the code runs only if approved.

    ``trust_code`` is ``TRUST_MODEL_CODE``: the sha256 (12 hex characters or more) of the model.py
    shown, or True for a local folder (see ``tiers.trust``).
    """
    if source is None or (isinstance(source, str) and source.strip().lower() in ("", "example")):
        from .models import example_model, parameter_count

        model, config = example_model()
        return LoadedModel(model, config, f"the example TinyDecoder ({_params(parameter_count(model))})")
    files, where, gist = _read_source(source, api_base=api_base, timeout=timeout, max_bytes=max_bytes)
    config = parse_config(files["config.json"], f"config.json from {where}")
    code = files["model.py"]
    show_code(code, "model.py", where)
    print(f"config.json from {where}:\n{json.dumps(config, indent=2)}", flush=True)
    digest = code_digest(code)
    approval = approve(trust_code, digest, remote=gist is not None, where=where)
    if not approval.granted:
        if gist is not None and gist.revision:
            _REVIEWED_REVISIONS[gist.gist_id] = gist.revision
            print(f"Pinned for the next run of this cell: revision {gist.revision[:10]} of gist {gist.gist_id} (the "
                  f"code shown), or use MODEL_SOURCE = https://gist.github.com/{gist.gist_id}/{gist.revision}",
                  flush=True)
        raise ModelSourceError(approval.reason)
    print(approval.reason, flush=True)
    model, how = build_model_from_source(code, config, origin=where)
    from .models import parameter_count

    cls = type(model).__name__
    description = f"{cls} from {where} (built with {how}; {_params(parameter_count(model))}; sha256 {digest[:12]})"
    return LoadedModel(model, config, description, where, code, files, digest)


def _read_source(source: Any, *, api_base: str | None, timeout: float,
                 max_bytes: int) -> tuple[dict[str, str], str, GistRef | None]:
    """(files, where they came from in words, the gist and revision read, or None for local files)."""
    if isinstance(source, (list, tuple)):
        return read_local(source, max_bytes), f"{source[0]}" if source else "?", None
    if isinstance(source, os.PathLike):
        return read_local(source, max_bytes), str(source), None
    if not isinstance(source, str):
        raise ModelSourceError(f"MODEL_SOURCE must be a string, got {type(source).__name__}: use {_ACCEPTED}")
    text = source.strip()
    try:
        is_path = Path(text).expanduser().exists()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        is_path = False
    if is_path:
        return read_local(text, max_bytes), text, None
    if _GIST_ID.fullmatch(text) or re.match(r"(?i)https?://", text):
        ref = parse_gist_ref(text)
        if ref.revision is None and ref.gist_id in _REVIEWED_REVISIONS:
            ref = GistRef(ref.gist_id, _REVIEWED_REVISIONS[ref.gist_id])
            print(f"{ref}: the revision shown when this cell last ran (a newer one needs its URL with /REVISION in "
                  "MODEL_SOURCE)", flush=True)
        files, revision = fetch_gist_revision(ref, api_base=api_base, timeout=timeout, max_bytes=max_bytes)
        fetched = GistRef(ref.gist_id, revision)
        return files, str(fetched), fetched
    looks_like_path = "/" in text or "\\" in text or text.startswith((".", "~"))
    if looks_like_path:
        raise ModelSourceError(f"the local path {_shown(text)} does not exist: MODEL_SOURCE accepts {_ACCEPTED}")
    raise ModelSourceError(f"{_shown(text)} is not a valid MODEL_SOURCE: use {_ACCEPTED}")


def build_model_from_source(code: str, config: dict[str, Any], origin: str = "model.py") -> tuple[Any, str]:
    """Run ``code`` as a fresh module and build the model from ``config``: ``(model, how it was built)``."""
    import torch

    module = exec_module(code, origin)
    builder, how = _find_builder(module, config, torch.nn.Module)
    try:
        model = builder()
    except ModelSourceError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's code may raise anything
        raise ModelSourceError(f"{how} failed: {_summarise(exc, module)}") from None
    if isinstance(model, (tuple, list)) and model and isinstance(model[0], torch.nn.Module):
        model = model[0]
    if not isinstance(model, torch.nn.Module):
        raise ModelSourceError(f"{how} returned {type(model).__name__}, not a torch.nn.Module")
    return model.eval(), how


def exec_module(code: str, origin: str = "model.py") -> Any:
    """Execute ``code`` in a new module registered in ``sys.modules`` (tracebacks name model.py)."""
    import linecache

    digest = hashlib.sha256(code.encode("utf-8")).hexdigest()[:12]
    name = f"colab_ci_user_model_{digest}"
    filename = f"<model.py from {origin}>"
    spec = importlib.util.spec_from_loader(name, loader=None, origin=filename)
    module = importlib.util.module_from_spec(spec)
    module.__file__ = filename
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    try:
        compiled = compile(code, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise ModelSourceError(f"model.py from {origin} has a syntax error at line {exc.lineno}: {exc.msg}") from None
    sys.modules[name] = module  # dataclasses, pickling and typing look the module up by name
    try:
        exec(compiled, module.__dict__)  # noqa: S102 - the user reviewed this code and set trust_code
    except Exception as exc:  # noqa: BLE001
        sys.modules.pop(name, None)
        hint = ""
        if isinstance(exc, ModuleNotFoundError) and exc.name:
            hint = f" (install it with %pip install {exc.name.split('.')[0]} and re-run)"
        raise ModelSourceError(f"running model.py from {origin} failed: {_summarise(exc, module)}{hint}") from None
    return module


def _find_builder(module: Any, config: dict[str, Any], module_base: type) -> tuple[Callable[[], Any], str]:
    for name in BUILDER_NAMES:
        fn = getattr(module, name, None)
        if callable(fn):
            return (lambda: fn(dict(config))), f"{name}(config)"
    candidates = {n: c for n, c in vars(module).items()
                  if isinstance(c, type) and issubclass(c, module_base) and c.__module__ == module.__name__}
    if not candidates:
        raise ModelSourceError("model.py defines neither build_model(config) nor create_model(config) nor any "
                               "torch.nn.Module subclass, so there is no model to build")
    chosen = config.get("model_class") or getattr(module, "MODEL_CLASS", None)
    if isinstance(chosen, type):
        chosen = chosen.__name__
    if chosen:
        if chosen not in candidates:
            raise ModelSourceError(f"the model class {chosen!r} (from model_class/MODEL_CLASS) is not an nn.Module "
                                   f"defined in model.py; candidates: {', '.join(sorted(candidates))}")
        cls = candidates[chosen]
    else:
        roots = _top_level(candidates, module)
        if len(roots) != 1:
            listed = ", ".join(sorted(roots or candidates))
            raise ModelSourceError(f"model.py defines several nn.Module classes that could be the model ({listed}): "
                                   "add build_model(config) returning the model, or MODEL_CLASS = 'Name'")
        cls = candidates[roots[0]]
    return _instantiate(cls, config, module)


def _top_level(candidates: dict[str, type], module: Any) -> list[str]:
    """Candidates that no other candidate subclasses or mentions in its class body."""
    if len(candidates) == 1:
        return list(candidates)
    code = "".join(_source_lines(module))
    mentioned: set[str] = set()
    try:
        tree = ast.parse(code)
    except SyntaxError:
        tree = None
    if tree is not None:
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name in candidates:
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Name) and inner.id in candidates and inner.id != node.name:
                        mentioned.add(inner.id)
    for cls in candidates.values():
        for base in cls.__mro__[1:]:
            if base.__name__ in candidates and candidates[base.__name__] is base:
                mentioned.add(base.__name__)
    return [n for n in candidates if n not in mentioned]


def _source_lines(module: Any) -> list[str]:
    import linecache

    entry = linecache.cache.get(module.__file__)
    return list(entry[2]) if entry else []


def _instantiate(cls: type, config: dict[str, Any], module: Any) -> tuple[Callable[[], Any], str]:
    name = cls.__name__
    if callable(getattr(cls, "from_config", None)) and "from_config" in _own_attrs(cls):
        return (lambda: cls.from_config(dict(config))), f"{name}.from_config(config)"
    try:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        return (lambda: cls(dict(config))), f"{name}(config)"
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    var_kw = any(p.kind == p.VAR_KEYWORD for p in params)
    if len(positional) == 1 and not var_kw:
        param = positional[0]
        config_cls = _annotation_class(param.annotation, module)
        if config_cls is not None:
            return (lambda: cls(_build_config_object(config_cls, config))), f"{name}({config_cls.__name__}(**config))"
        if param.name.lower() in CONFIG_PARAM_NAMES or param.name.lower().endswith("config"):
            config_cls = _config_dataclass(module)
            if config_cls is not None:  # nanoGPT: GPT(config) reads config.vocab_size from a GPTConfig
                return (lambda: cls(_build_config_object(config_cls, config))), f"{name}({config_cls.__name__}(**config))"
            return (lambda: cls(dict(config))), f"{name}(config)"
    if var_kw:
        return (lambda: cls(**config)), f"{name}(**config)"
    accepted = {p.name for p in positional}
    missing = [p.name for p in positional if p.default is p.empty and p.name not in config]
    if missing:
        raise ModelSourceError(f"config.json has no field {missing[0]!r}, which {name}.__init__ requires "
                               f"(required: {', '.join(p.name for p in positional if p.default is p.empty)})")
    return (lambda: cls(**{k: v for k, v in config.items() if k in accepted})), f"{name}(**config)"


def _own_attrs(cls: type) -> set[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass.__module__.startswith("torch"):
            break
        names.update(vars(klass))
    return names


def _annotation_class(annotation: Any, module: Any) -> type | None:
    if isinstance(annotation, str):
        annotation = getattr(module, annotation.strip("'\""), None)
    if isinstance(annotation, type) and getattr(annotation, "__module__", None) == module.__name__:
        return annotation
    return None


def _config_dataclass(module: Any) -> type | None:
    """The config dataclass model.py defines: the only one, else the only one named like ``*Config``."""
    import dataclasses

    found = [c for c in vars(module).values()
             if isinstance(c, type) and dataclasses.is_dataclass(c) and c.__module__ == module.__name__]
    if len(found) > 1:
        found = [c for c in found if c.__name__.lower().endswith(("config", "args", "hparams"))]
    return found[0] if len(found) == 1 else None


def _build_config_object(config_cls: type, config: dict[str, Any]) -> Any:
    """``config_cls(**fields)`` with the config.json fields it accepts; says which ones it ignores."""
    try:
        parameters = inspect.signature(config_cls).parameters
    except (TypeError, ValueError):
        return config_cls(**config)
    missing = [n for n, p in parameters.items() if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD,
               p.KEYWORD_ONLY) and n not in config]
    if missing:
        raise ModelSourceError(f"config.json has no field {missing[0]!r}, which {config_cls.__name__} requires "
                               f"(it has no default)")
    ignored = sorted(k for k in config if k not in parameters)
    if ignored:
        print(f"config.json fields {config_cls.__name__} does not take (ignored): {', '.join(ignored)}", flush=True)
    return config_cls(**{k: v for k, v in config.items() if k in parameters})


def _summarise(exc: BaseException, module: Any) -> str:
    """``Type: message (model.py line N)``, with a hint when a KeyError names a missing config field."""
    text = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    text = " ".join(text.split())
    if len(text) > 300:
        text = text[:297] + "..."
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == getattr(module, "__file__", None):
            line = tb.tb_lineno
        tb = tb.tb_next
    if line is not None:
        text += f" (model.py line {line})"
    if isinstance(exc, KeyError) and exc.args and isinstance(exc.args[0], str):
        text += f"; config.json probably lacks the field {exc.args[0]!r}"
    return text


# ------------------------------------------------------------------------------------------ text

def _shown(value: Any, limit: int = 120) -> str:
    text = repr(str(value))
    return text if len(text) <= limit else text[:limit - 4] + "...'"


def _params(count: int) -> str:
    return f"{count / 1e6:.2f}M parameters" if count >= 1e5 else f"{count:,} parameters"


def _human(size: int) -> str:
    if size >= 1_000_000:
        return f"{size / 1e6:.1f} MB"
    if size >= 1_000:
        return f"{size / 1e3:.1f} kB"
    return f"{size} bytes"


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width) or [""]


def _box(lines: list[str]) -> str:
    width = max(map(len, lines))
    border = "+" + "-" * (width + 2) + "+"
    return "\n".join([border, *(f"| {line:<{width}} |" for line in lines), border])
