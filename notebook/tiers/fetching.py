"""Fetch a model's ``model.py`` and ``config.json``: from a GitHub Gist or from a local folder.

* a local directory holding both files, a path to ``model.py`` (``config.json`` beside it), or a
  ``(model_py, config_json)`` pair of paths (``read_local``);
* a GitHub Gist: its id (32 hex characters, or 20 for old gists) or its URL
  ``https://gist.github.com/USER/ID`` (optionally ``/REVISION``). The gist is read through GitHub's
  REST API, ``GET {api}/gists/{id}[/{revision}]``; ``api`` is the ``api_base`` argument, else the
  ``COLAB_CI_GITHUB_API`` environment variable, else ``https://api.github.com``. ``GITHUB_TOKEN``,
  when set, is sent to that API only, and only over https (it raises the rate limit from 60
  requests an hour); never to raw file hosts, never over http.

The source is validated before any request; at most ``MAX_SOURCE_BYTES`` of ``model.py`` plus
``config.json`` are read. Nothing here runs the code: that is ``tiers.trust``'s decision and
``tiers.instantiation``'s job. Every failure is a ``ModelSourceError`` saying what to do.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from .source_error import ModelSourceError, human_size, quoted

DEFAULT_API = "https://api.github.com"
API_ENV = "COLAB_CI_GITHUB_API"
MAX_SOURCE_BYTES = 1_000_000            # model.py + config.json together
MAX_API_RESPONSE_BYTES = 16_000_000     # the gist JSON carries every file's content (<= 1 MB each)
TIMEOUT_S = 20.0
REQUIRED_FILES = ("model.py", "config.json")

GIST_ID = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{20}")
_REVISION = re.compile(r"[0-9a-fA-F]{40}")


@dataclass(frozen=True)
class GistRef:
    gist_id: str
    revision: str | None = None

    def __str__(self) -> str:
        return f"gist {self.gist_id}" + (f" at revision {self.revision[:10]}" if self.revision else "")


# ---------------------------------------------------------------------------------- gists, folders

def is_gist_ref(text: str) -> bool:
    """Whether ``text`` is meant as a gist (an id, or any http(s) URL, checked by ``parse_gist_ref``)."""
    return bool(GIST_ID.fullmatch(text) or re.match(r"(?i)https?://", text))


def parse_gist_ref(value: str) -> GistRef:
    """A gist id or URL -> ``GistRef``; anything else -> ``ModelSourceError`` (no request is made)."""
    text = str(value).strip()
    if GIST_ID.fullmatch(text):
        return GistRef(text.lower())
    if not re.match(r"(?i)https?://", text):
        raise ModelSourceError(f"{quoted(value)} is not a valid gist id or URL: expected 32 hex characters "
                               "(20 for old gists) or https://gist.github.com/USER/ID")
    parsed = urllib.parse.urlsplit(text)
    parts = [p for p in parsed.path.split("/") if p]
    if parts and parts[-1].endswith(".git"):
        parts[-1] = parts[-1][:-4]
    ref = None
    if parsed.hostname in ("gist.github.com", "www.gist.github.com") and parts:
        # /ID, /USER/ID, /USER/ID/REVISION
        if GIST_ID.fullmatch(parts[0]) and len(parts) <= 2:
            ref = _ref(parts[0], parts[1] if len(parts) == 2 else None)
        elif len(parts) in (2, 3) and GIST_ID.fullmatch(parts[1]):
            ref = _ref(parts[1], parts[2] if len(parts) == 3 else None)
    if ref is None:
        raise ModelSourceError(f"{quoted(value)} is not a valid gist URL: expected https://gist.github.com/USER/ID "
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
            raise ModelSourceError(f"{name} from {where} is {human_size(size)}, over the {human_size(max_bytes)} limit for "
                                   "model.py and config.json together: this is not a Transformer Builder export")
    total = sum(sizes.values())
    if total > max_bytes:
        biggest = max(sizes, key=sizes.__getitem__)
        raise ModelSourceError(f"model.py and config.json from {where} are {human_size(total)} together (the biggest, "
                               f"{biggest}, is {human_size(sizes[biggest])}), over the {human_size(max_bytes)} limit")


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
            raise ModelSourceError(f"{filename} of {ref} is over {human_size(limit)}, more than is left of the "
                                   f"{human_size(MAX_SOURCE_BYTES)} limit for model.py and config.json together")
        raise ModelSourceError(f"the API answer for {ref} is over {human_size(limit)}: the gist holds too much to be "
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
