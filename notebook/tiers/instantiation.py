"""Build the model from ``model.py`` and ``config.json`` (once ``tiers.trust`` approved the code).

``model.py`` is executed as a fresh module, never imported from disk; then:

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

The model is returned in eval mode, like the example. Every failure is a ``ModelSourceError``.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import sys
from typing import Any, Callable

from .source_error import ModelSourceError

BUILDER_NAMES = ("build_model", "create_model")
CONFIG_PARAM_NAMES = ("config", "cfg", "conf", "configuration", "hparams", "params", "args")


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
