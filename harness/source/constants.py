"""What a cell's Python determines without running it: the cell as Python (IPython's ``%``/``!`` lines
blanked), the literal assignments seen so far across cells (``Names``), and the value of an expression
built from them (constant folding).

Folded: strings, f-strings, ``" ".join(LIST)``, ``*LIST`` and ``os.path.join`` over names assigned a
literal in this or an earlier cell (the notebook's parameters included); IPython's ``{expr}`` and
``$name`` in ``!``/``%`` lines likewise; ``os.environ.get``/``os.getenv`` read what a headless run sets
or else the default given; an ``if`` whose test is known that way keeps only the branch the run takes.
A value not determined stays as written (``{expr}``, ``$NAME``): ``UNRESOLVED`` finds it.
"""

from __future__ import annotations

import ast
import re

CELL_MAGIC = re.compile(r"^\s*%%(?P<name>\w+)(?P<args>[^\n]*)")
# What static reading could not determine: an f-string or IPython ``{expr}`` left as written, a ``$NAME``.
UNRESOLVED = re.compile(r"\{[^{}]*\}|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")
_IPYTHON_EXPR = re.compile(r"(?<!\{)\{(?P<expr>[^{}]+)\}(?!\})|(?<!\$)\$(?P<name>[A-Za-z_][A-Za-z0-9_]*)")


def cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def parse_cell(source: str) -> ast.Module | None:
    """The cell as Python, with IPython's ``%``/``!`` lines blanked (None if it still does not parse)."""
    if CELL_MAGIC.match(source):
        source = source.split("\n", 1)[1] if "\n" in source else ""
    cleaned = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
    try:
        return ast.parse(cleaned)
    except SyntaxError:
        return None


class Names(dict):
    """Literal assignments seen so far, across cells (name -> its values in order), and the environment
    variables a headless run sets (``os.environ.get`` reads them)."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        super().__init__()
        self.environ = dict(environ or {})
        # functions the notebook defines itself: its own ``install()`` is not the tiers library's
        self.functions: set[str] = set()
        # names the subprocess module goes by (``import subprocess as sp``): ``sandbox.commands.run(...)``
        # runs elsewhere, it is not a local install
        self.subprocess_names: set[str] = {"subprocess"}


def collect_assignments(body: list[ast.stmt], names: Names) -> None:
    """Record the assignments of ``body``; of an ``if`` whose test is known, only the branch taken."""
    for statement in body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.functions.add(statement.name)
        if isinstance(statement, ast.Import):
            names.subprocess_names.update(a.asname or a.name for a in statement.names if a.name == "subprocess")
        if isinstance(statement, ast.If):
            truth = _truth(statement.test, names)
            if truth is not False:
                collect_assignments(statement.body, names)
            if truth is not True:
                collect_assignments(statement.orelse, names)
            continue
        if isinstance(statement, ast.Assign):
            for target in statement.targets:
                if isinstance(target, ast.Name):
                    names.setdefault(target.id, []).append(statement.value)
        for field_name in ("body", "orelse", "finalbody", "handlers"):
            inner = getattr(statement, field_name, None)
            if isinstance(inner, list) and not isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                        ast.ClassDef)):
                collect_assignments([s for s in inner if isinstance(s, ast.stmt)] +
                                     [s for h in inner if isinstance(h, ast.ExceptHandler) for s in h.body], names)


def _truth(test: ast.expr, names: Names) -> bool | None:
    """Whether ``test`` holds, when it is a literal, a known name or ``not`` of one; None when unknown."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        inner = _truth(test.operand, names)
        return None if inner is None else not inner
    if isinstance(test, (ast.Name, ast.Constant, ast.Call)):
        value = evaluate(test, names)
        return None if value is None else bool(value)
    return None


def elements(node: ast.expr | None) -> list[ast.expr]:
    if node is None or (isinstance(node, ast.Constant) and node.value is None):
        return []
    if isinstance(node, (ast.List, ast.Tuple)):
        return list(node.elts)
    return [node]


def list_value(node: ast.expr, names: dict[str, list[ast.expr]], depth: int = 0) -> list[str] | None:
    """A list or tuple of strings the notebook determines (a literal, or a name assigned one), else None."""
    if depth > 10:
        return None
    if isinstance(node, ast.Name):
        values = names.get(node.id, [])
        return list_value(values[-1], names, depth + 1) if values else None
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [evaluate(e, names, depth + 1) for e in node.elts]
        return None if any(i is None for i in items) else [i for i in items if i is not None]
    return None


def evaluate(node: ast.expr, names: dict[str, list[ast.expr]], depth: int = 0) -> str | None:
    """A string literal, f-string or ``os.path.join`` of them; unknown names become ``{NAME}``."""
    if depth > 10:
        return None
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                part = evaluate(value.value, names, depth + 1)
                parts.append(part if part is not None else "{" + ast.unparse(value.value) + "}")
            else:
                parts.append(evaluate(value, names, depth + 1) or "")
        return "".join(parts)
    if isinstance(node, ast.Name):
        for value in reversed(names.get(node.id, [])):
            found = evaluate(value, names, depth + 1)
            if found is not None:
                return found
        return None
    if isinstance(node, ast.Call) and ast.unparse(node.func) in ("os.path.join", "join"):
        parts = [evaluate(a, names, depth + 1) for a in node.args]
        return "/".join(p if p is not None else "{" + ast.unparse(a) + "}" for p, a in zip(parts, node.args))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join" \
            and isinstance(node.func.value, ast.Constant) and isinstance(node.func.value.value, str) \
            and len(node.args) == 1:     # " ".join(pkgs) over a list the notebook determines
        items = list_value(node.args[0], names, depth + 1)
        return node.func.value.value.join(items) if items is not None else None
    if isinstance(node, ast.Attribute) and ast.unparse(node) == "sys.executable":
        return "python"
    if isinstance(node, ast.Call) and ast.unparse(node.func) in ("os.environ.get", "os.getenv") and node.args:
        variable = evaluate(node.args[0], names, depth + 1)
        environ = getattr(names, "environ", {})
        if variable is not None and variable in environ:
            return environ[variable]
        return evaluate(node.args[1], names, depth + 1) if len(node.args) > 1 else None
    return None


def requirements_path(node: ast.expr, names: Names) -> tuple[str, str]:
    """The requirements file an expression names: the one value it may take here (a path or a URL), or
    ("", why not)."""
    candidates = names.get(node.id, []) if isinstance(node, ast.Name) else [node]
    values = {value for c in candidates if (value := evaluate(c, names)) and "{" not in value}
    if len(values) != 1:
        return "", (f"cannot tell which requirements file {ast.unparse(node)!r} names "
                    f"(found {sorted(values) or 'no literal value'})")
    return values.pop(), ""


def expand(text: str, names: Names) -> str:
    """What IPython makes of ``{expr}`` and ``$name`` in a ``!`` or ``%`` line before the shell sees it:
    the value where the notebook's parameters or earlier constant assignments determine it, else as
    written (then the install is not statically known)."""
    def value(match: re.Match[str]) -> str:
        expr = (match.group("expr") or match.group("name")).strip()
        try:
            node = ast.parse(expr, mode="eval").body
        except (SyntaxError, ValueError):
            return match.group(0)
        found = evaluate(node, names)
        return found if found is not None and not UNRESOLVED.search(found) else match.group(0)
    return _IPYTHON_EXPR.sub(value, text)


def argv_words(elements: list[ast.expr], names: Names) -> list[str]:
    """A subprocess argument list as words: a value the notebook does not determine stays ``{expr}``
    (then the install is not statically known); ``*pkgs`` of a known list is its words."""
    words = []
    for element in elements:
        if isinstance(element, ast.Starred):
            items = list_value(element.value, names)
            words += items if items is not None else ["{*" + ast.unparse(element.value) + "}"]
            continue
        value = evaluate(element, names)
        words.append(value if value is not None else "{" + ast.unparse(element) + "}")
    return words
