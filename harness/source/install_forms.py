"""The forms of ``pip install`` in one cell's source, each read into an ``InstallSpec``: a shell cell
magic's body (``%%bash``, ``%%sh``, ``%%shell``, ``%%script bash|sh``), ``!`` and ``%pip``/``%uv`` lines,
and Python calls (``get_ipython().system``/``run_line_magic``, ``os.system``, ``subprocess.*``, the tiers
library's ``install()`` and ``restart_recovery()``). Which cells are read, and in what order, is
``harness.source.installs``."""

from __future__ import annotations

import ast
import dataclasses
import re
import shlex

from harness.source.constants import (
    CELL_MAGIC,
    Names,
    argv_words,
    elements,
    evaluate,
    expand,
    parse_cell,
    requirements_path,
)
from harness.source.install_spec import InstallSpec, restart_recovery_file, spec_from_words
from harness.source.shell import install_args, shell_installs
from harness.source.workdir import CD_LINE, Workdir

_SHELL_MAGICS = ("bash", "sh", "shell")
_LINE_SHELL = re.compile(r"^\s*!(?P<command>.*)$")
_LINE_PIP_MAGIC = re.compile(r"^\s*%(?P<tool>pip|uv)\s+(?P<args>.*)$")
_SUBPROCESS_CALLS = ("run", "call", "check_call", "check_output", "Popen")


def cell_installs(source: str, index: int, tag: str, root: Workdir, names: Names) -> list[InstallSpec]:
    magic = CELL_MAGIC.match(source)
    if magic:
        name, args = magic.group("name"), magic.group("args").split()
        if name in _SHELL_MAGICS or (name == "script" and args and args[0] in _SHELL_MAGICS):
            body = source[magic.end():]
            return [spec_from_words(args, index, tag, f"%%{name}", text, root, line)
                    for line, text, args in shell_installs(body, first_line=2)]   # $VAR: the shell's
        # another cell magic (%%capture, %%time, ...): its body is Python, read as usual below
    found = _line_installs(source, index, tag, root, names)
    tree = parse_cell(source)
    if tree is not None:
        found += _call_installs(tree, source, index, tag, root, names)
    return sorted(found, key=lambda spec: spec.line)


def _line_installs(source: str, index: int, tag: str, root: Workdir, names: Names) -> list[InstallSpec]:
    specs = []
    for line_no, line in enumerate(source.replace("\\\n", " ").splitlines(), start=1):
        shell, magic = _LINE_SHELL.match(line), _LINE_PIP_MAGIC.match(line)
        cd = CD_LINE.match(line)
        if cd:   # %cd repo: later relative paths are the kernel's, from there
            root = dataclasses.replace(root, cwd=root.relative(cd.group("folder").strip("'\"")))
        elif shell:
            for _line, text, args in shell_installs(expand(shell.group("command"), names)):
                form = "!uv pip" if text.startswith("uv ") or " uv pip" in text else "!pip"
                specs.append(spec_from_words(args, index, tag, form, line.strip(), root, line_no))
        elif magic and magic.group("args").split()[:1] in (["install"], ["pip"]):
            try:
                words = shlex.split(expand(magic.group("args"), names), comments=True)
            except ValueError as exc:   # the shell would refuse the line: the install fails as written
                spec = InstallSpec(index, tag, f"%{magic.group('tool')}", line.strip(), line=line_no, args=[])
                spec.rejected = f"the shell would reject the line ({exc})"
                specs.append(spec)
                continue
            tool = magic.group("tool")
            if tool == "pip" and words[:1] == ["install"]:
                specs.append(spec_from_words(words[1:], index, tag, "%pip", line.strip(), root, line_no))
            elif tool == "uv" and words[:2] == ["pip", "install"]:
                specs.append(spec_from_words(words[2:], index, tag, "%uv pip", line.strip(), root, line_no))
    return specs


def _call_installs(tree: ast.Module, source: str, index: int, tag: str, root: Workdir,
                   names: Names) -> list[InstallSpec]:
    specs = []
    conditions = _conditions(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        before = len(specs)
        func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        qualified = ast.unparse(node.func)
        text = (ast.get_source_segment(source, node) or func).splitlines()[0]
        if isinstance(node.func, ast.Name) and func in names.functions:
            continue   # the notebook's own function of that name
        # the tiers library's helpers by name, or through their module (``tiers.install.install``), not
        # another library's ``install()`` (``condacolab.install()``)
        tiers_helper = isinstance(node.func, ast.Name) or qualified.startswith("tiers.") \
            or qualified.endswith(f"install.{func}")
        local_subprocess = isinstance(node.func, ast.Name) or (
            isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
            and node.func.value.id in names.subprocess_names)
        if func == "install" and tiers_helper:
            specs.append(_from_install_call(node, index, tag, text, root, names))
        elif func == "restart_recovery" and tiers_helper:
            spec = InstallSpec(index, tag, "restart_recovery()", text, guarded=True)
            restart_recovery_file(spec, root)
            spec.notes.append("runs only after a runtime restart, when torchinfo is missing")
            specs.append(spec)
        elif qualified.endswith("get_ipython().run_line_magic") and len(node.args) >= 2:
            magic, line = (evaluate(a, names) or "" for a in node.args[:2])
            if magic == "pip" and line.split()[:1] == ["install"]:
                try:
                    specs.append(spec_from_words(shlex.split(line, comments=True)[1:], index, tag, "%pip", text, root))
                except ValueError as exc:   # the shell would refuse the line: the install fails as written
                    specs.append(InstallSpec(index, tag, "%pip", text, args=[],
                                             rejected=f"the shell would reject the line ({exc})"))
        elif func in ("system", "getoutput") and qualified.startswith(("get_ipython()", "os.")) and node.args:
            command = evaluate(node.args[0], names) or ""
            form = "os.system" if qualified.startswith("os.") else "get_ipython().system"
            specs += [spec_from_words(args, index, tag, form, text, root) for _l, _t, args in shell_installs(command)]
        elif func in _SUBPROCESS_CALLS and node.args and local_subprocess:
            argv = node.args[0]
            if isinstance(argv, (ast.List, ast.Tuple)):
                args = install_args(argv_words(argv.elts, names))
                if args is not None:
                    specs.append(spec_from_words(args, index, tag, "subprocess", text, root))
            else:
                command = evaluate(argv, names) or ""
                specs += [spec_from_words(args, index, tag, "subprocess", text, root)
                          for _l, _t, args in shell_installs(command)]
        for spec in specs[before:]:
            spec.line = node.lineno
            if node in conditions:
                spec.notes.append(f"runs only when {conditions[node]}")
    return specs


def _conditions(tree: ast.Module) -> dict[ast.AST, str]:
    """For each node under an ``if``: the (innermost) condition under which it runs, in words."""
    found: dict[ast.AST, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = ast.unparse(node.test)
            for branch, words in ((node.body, f"`{test}` holds"), (node.orelse, f"`{test}` does not hold")):
                for statement in branch:
                    for inner in ast.walk(statement):
                        found[inner] = words
    return found


def _from_install_call(node: ast.Call, index: int, tag: str, text: str, root: Workdir,
                       names: Names) -> InstallSpec:
    """``tiers.install.install(requirements, requirement_files, no_deps=...)``: the pip arguments it
    hands pip (its guard, every installed distribution pinned, is ``guarded``)."""
    keywords = {k.arg: k.value for k in node.keywords if k.arg}
    requirements = node.args[0] if node.args else keywords.get("requirements")
    files = node.args[1] if len(node.args) > 1 else keywords.get("requirement_files")
    no_deps = keywords.get("no_deps")
    words: list[str] = []
    unknown = ""
    for element in elements(requirements):
        value = evaluate(element, names)
        words.append(value if value is not None else "{" + ast.unparse(element) + "}")
    for element in elements(files):
        path, why = requirements_path(element, names)
        unknown = unknown or why
        words += ["-r", path] if path else []
    if isinstance(no_deps, ast.Constant) and bool(no_deps.value):
        words.append("--no-deps")
    spec = spec_from_words(words, index, tag, "install()", text, root)
    spec.guarded = True
    if unknown and not spec.unknown:
        spec.unknown = f"cell {index}: {unknown} in {text!r}"
    return spec
