"""Load the user's model: from a local path, a GitHub Gist, or the shipped example.

Transformer Builder exports two files, ``model.py`` (an ``nn.Module`` class, ideally a builder
function) and ``config.json``. ``load_model(source, trust_code=...)`` accepts ``"example"`` (the
shipped ``tiers.models.example_model()``; no code is fetched or run), a local folder or a GitHub Gist.
Each step has its own module; this one puts them in order:

1. fetch the two files (``tiers.fetching``: a Gist through GitHub's API, or a local folder);
2. show the code with line numbers and its sha256, and run it only when ``trust_code`` approves
   exactly that code (``tiers.trust``): the sha256 printed above it (first 12 hex characters or
   more), or True for a local folder. Otherwise ``load_model`` stops with a ``ModelSourceError``
   saying what to set. A gist shown without being run is pinned to the revision shown: the next run
   of the same (unpinned) gist fetches that revision again;
3. build the model from the code and the config (``tiers.instantiation``).

Every failure is a ``ModelSourceError`` (a ``ValueError``, ``tiers.source_error``) whose message is
one sentence; in IPython it renders as that sentence in a box instead of a traceback.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from .fetching import MAX_SOURCE_BYTES, TIMEOUT_S, GistRef, fetch_gist_revision, is_gist_ref, parse_gist_ref, read_local
from .instantiation import build_model_from_source
from .source_error import ModelSourceError, quoted
from .trust import approve, code_digest, show_code

_ACCEPTED = ("'example', a local directory with model.py and config.json, a gist id (32 hex characters, "
             "or 20 for old gists) or a gist URL like https://gist.github.com/USER/ID")


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
    if is_gist_ref(text):
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
        raise ModelSourceError(f"the local path {quoted(text)} does not exist: MODEL_SOURCE accepts {_ACCEPTED}")
    raise ModelSourceError(f"{quoted(text)} is not a valid MODEL_SOURCE: use {_ACCEPTED}")


def _params(count: int) -> str:
    return f"{count / 1e6:.2f}M parameters" if count >= 1e5 else f"{count:,} parameters"
