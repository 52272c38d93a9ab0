"""The shell lexer: which words of a shell command line (a ``!`` line, a ``%%bash`` body, an
``os.system`` string) run ``pip install`` (or ``uv pip install``), and with which arguments.

A line is split at ``&&``, ``||``, ``;`` and ``|``; leading ``VAR=value`` assignments and ``sudo`` are
skipped, and so are redirections. ``git_clones`` names the folders ``!git clone`` lines make.
"""

from __future__ import annotations

import re
import shlex

_SHELL_SEPARATORS = re.compile(r"&&|\|\||[;|]")
_ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_PYTHON_WORD = re.compile(r"^(?:.*/)?python(?:\d+(?:\.\d+)?)?$|^\{.*\}$|^\$\{?\w+\}?$")
# A shell redirection (``> /dev/null``, ``2>&1``, ``&>log``): the shell's, never pip's. Alone, its target follows.
_REDIRECT = re.compile(r"^(?:\d+|&)?(?:>>?|<)(?P<target>.*)$")


def shell_installs(text: str, first_line: int = 1) -> list[tuple[int, str, list[str]]]:
    """``(line, command as written, pip arguments)`` for each ``pip install`` in shell text."""
    found = []
    for line_no, line in enumerate(text.replace("\\\n", " ").splitlines(), start=first_line):
        for command in _SHELL_SEPARATORS.split(line.split(" #", 1)[0]):
            args = _pip_install_args(command)
            if args is not None:
                found.append((line_no, line.strip(), args))
    return found


def _pip_install_args(command: str) -> list[str] | None:
    """The arguments after ``install`` when the shell command ``command`` runs pip (or uv pip) install."""
    try:
        words = shlex.split(command, comments=True)
    except ValueError:
        words = command.split()
    return install_args(_without_redirections(words))


def _without_redirections(words: list[str]) -> list[str]:
    """The words the command itself gets: shell redirections (``> log``, ``2>&1``, ``&>/dev/null``) and a
    trailing ``&`` are the shell's."""
    kept: list[str] = []
    skip_next = False
    for word in words:
        redirect = _REDIRECT.match(word)
        if skip_next:
            skip_next = False
        elif redirect:
            skip_next = redirect.group("target") in ("", "&")    # `> log`, `>& log`: the target is the next word
        elif word != "&":
            kept.append(word)
    return kept


def install_args(words: list[str]) -> list[str] | None:
    """The arguments after ``install`` when the command ``words`` runs pip (or uv pip) install, else None."""
    while words and (_ENV_ASSIGNMENT.match(words[0]) or words[0] in ("sudo", "exec", "time")):
        words = words[1:]
    if len(words) >= 2 and re.fullmatch(r"(?:.*/)?pip(?:\d+(?:\.\d+)?)?", words[0]) and words[1] == "install":
        return words[2:]
    if len(words) >= 3 and words[0].endswith("uv") and words[1:3] == ["pip", "install"]:
        return words[3:]
    if len(words) >= 4 and _PYTHON_WORD.match(words[0]) and words[1] == "-m":
        if words[2] == "pip" and words[3] == "install":
            return words[4:]
        if words[2] == "uv" and words[3:5] == ["pip", "install"]:
            return words[5:]
    return None


_UV_ONLY = {"--system": 0, "--python": 1, "-p": 1, "--prerelease": 1, "--index-strategy": 1, "--torch-backend": 1,
            "--link-mode": 1, "--compile-bytecode": 0, "--reinstall": 0, "--strict": 0}


def pip_words(args: list[str]) -> list[str]:
    """``uv pip install``'s words without the options that only say where and how uv installs (``--system``,
    ``-p PYTHON``): what is left is pip install's."""
    kept, skip = [], 0
    for word in args:
        name = word.split("=", 1)[0]
        if skip:
            skip -= 1
        elif name in _UV_ONLY:
            skip = _UV_ONLY[name] if "=" not in word else 0
        else:
            kept.append(word)
    return kept


_GIT_CLONE = re.compile(r"^\s*!\s*git\s+clone\s+(?P<args>.+)$", re.MULTILINE)


def git_clones(source: str) -> list[str]:
    """The folders the cell's ``!git clone`` lines make (the last argument, else the repository's name)."""
    folders = []
    for match in _GIT_CLONE.finditer(source):
        try:
            words = [w for w in shlex.split(match.group("args"), comments=True) if not w.startswith("-")]
        except ValueError:
            continue
        if len(words) >= 2:
            folders.append(words[1].rstrip("/"))
        elif words:
            folders.append(words[0].rstrip("/").rsplit("/", 1)[-1].removesuffix(".git"))
    return folders
