"""The probe that runs *inside* the notebook's kernel: what is loaded, and did its file change?

One piece, over 400 lines, on purpose: the kernel receives it as one stdlib-only source text.

``harness.execution.probes`` reads its source and the executed notebook's start-up cell runs it in
the kernel as the module ``_colab_ci_probe`` (the after-run listing runs it the same way). So it
uses the standard library only, imports nothing at module level that an IPython kernel has not
already loaded, and defines nothing in the notebook's namespace. The harness imports it only for
``top_levels_of`` (what a distribution installs, from ``top_level.txt`` or RECORD), so that the
copy of a venv reads installed metadata exactly as the probe does.

What it does:

1. **At load time** (``LoadRecorder``, first on ``sys.meta_path``): for every module the kernel
   imports from a file in a site directory (where ``*.dist-info`` folders are), the identity of that
   file (device, inode, size, mtime) is taken *before* the module runs. A module imported inside an
   install cell is therefore captured before pip, later in the same cell, replaces it. Modules
   loaded before the recorder was installed (the kernel's own: ipykernel, zmq, ...) and modules
   found by a finder placed ahead of it are taken when the next probe first sees them.
2. **After every cell** (IPython's ``post_run_cell`` event, which also fires after a cell that
   raised or was interrupted): the loaded files are compared with their recorded identity. A site
   directory whose own identity did not change had no entry added, removed or renamed (which is
   how pip and uv install and uninstall), so only its extension modules are stat'ed; the files of a
   changed directory are all stat'ed. The installed distributions are re-listed only for
   ``sys.path`` entries whose directory changed (name and version are in the ``*.dist-info`` folder
   name). Each probe publishes one display output of MIME type ``MIME`` in the cell it follows::

    {"schema_version": 2, "phase": "startup" | "cell", "execution_count": int | null,
     "installed": {canonical name: version},                       # start-up only
     "installed_changed": {name: [before | null, after | null]},    # cells
     "loaded_new": {name: version},     # distributions whose modules were first loaded since the last probe
     "replaced": [{"distribution", "version_loaded", "version_on_disk",
                   "modules",        # top-level names of the modules whose files changed
                   "module_count",   # how many loaded modules' files changed
                   "module", "path", "identity_loaded", "identity_now",   # one of them (an extension if any)
                   "loaded_at"}],
     "pip_commands": [{"command", "exit_code", "via"}],   # cells: pip installs run by ``!``/``%pip`` ("shell",
                                                          # expanded) or ``subprocess`` ("subprocess")
     "tracked_files": int, "checked_files": int, "probe_ms": float,
     "environment": {"python", "numpy", "torch"}, "executable": str,  # start-up only
     "startup_import_errors": {module: "ExceptionType: message"},      # start-up only: installed, failed
     "error": str}                                                    # only when the probe itself failed

   ``loaded_at`` is the ``execution_count`` of the cell during which the module was loaded (null:
   before the first cell). ``version_loaded`` is the version on disk when the module was loaded;
   ``version_on_disk`` the version installed now (null: removed). Each change is reported once, by
   the probe of the cell after which it was first seen.
"""

import os
import re
import sys
import time

SCHEMA_VERSION = 2
MIME = "application/vnd.colab-ci.probe+json"
MAX_MODULE_NAMES = 12          # top-level module names listed per replaced distribution (the count is exact)
_NORM = re.compile(r"[-_.]+")
_EXTENSION_SUFFIXES = (".so", ".pyd", ".dylib")
_PIP_INSTALL = re.compile(r"\bpip3?\b.*\binstall\b")   # pip, pip3, python -m pip, uv pip: ... install
MAX_COMMAND_CHARS = 1000


def canon(name):
    return _NORM.sub("-", name).lower()


def identity(path):
    """(device, inode, size, mtime_ns) of ``path``, or None when it is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _as_json(ident):
    if ident is None:
        return None
    return {"device": ident[0], "inode": ident[1], "size": ident[2], "mtime_ns": ident[3]}


class LoadRecorder:
    """A ``sys.meta_path`` finder that finds nothing itself: it asks the finders after it, and
    records the file of the spec one of them returns before the import system loads it."""

    colab_ci_probe = True

    def __init__(self, probe):
        self.probe = probe

    def find_spec(self, name, path=None, target=None):
        for finder in list(sys.meta_path):
            if finder is self:
                continue
            find = getattr(finder, "find_spec", None)
            if find is None:
                continue
            spec = find(name, path, target)
            if spec is not None:
                origin = spec.origin
                if spec.has_location and isinstance(origin, str) and origin.startswith(self.probe.sites):
                    self.probe.pending[origin] = (name, identity(origin))
                return spec
        return None


class Probe:
    def __init__(self):
        self.listings = {}     # sys.path entry -> (identity of the folder, [(canon, version, metadata folder)])
        self.installed = {}    # canonical name -> version, as last published
        self.metadata = {}     # canonical name -> metadata folder
        self.sites = ()        # sys.path folders holding *.dist-info, each ending in os.sep
        self.pending = {}      # file -> (module name, identity before it loaded), since the last probe
        self.tracked = {}      # file -> [identity last seen, module, distribution, version loaded, loaded_at]
        self.folders = {}      # folder -> [identity when its files were last compared, its tracked files,
                               #            the extension modules among them]
        self.module_count = 0  # len(sys.modules) at the last probe (new modules are found past it)
        self.seen_modules = set()
        self.tops = {}         # metadata folder -> top-level names it installs
        self.owners = {}       # (site, top-level name) -> distribution; cleared when the listing changes
        self.loaded_dists = set()
        self.recorder = LoadRecorder(self)
        self.skip_next = False
        self.commands = []     # pip installs run through the shell since the last probe: {command, exit_code, via}
        self.processes = []    # (command, Popen) of pip installs started by subprocess since the last probe
        self.startup_import_errors = {}   # start-up module -> "ExceptionType: message"

    # --- installed distributions ---------------------------------------------------------------
    def _listing(self, entry):
        folder = entry or os.getcwd()
        ident = identity(folder)
        cached = self.listings.get(folder)
        if cached is not None and cached[0] == ident:
            return folder, cached[1]
        found = []
        try:
            names = os.listdir(folder)
        except OSError:
            names = []
        for n in names:
            if n.endswith(".dist-info"):
                name, _, version = n[:-10].rpartition("-")
            elif n.endswith(".egg-info"):
                parts = n[:-9].split("-")
                name, version = parts[0], (parts[1] if len(parts) > 1 else "")
            else:
                continue
            full = os.path.join(folder, n)
            if not name or not version:
                name, version = _metadata_name_version(full)
                if not name:
                    continue
            found.append((canon(name), version, full))
        self.listings[folder] = (ident, found)
        return folder, found

    def refresh_installed(self):
        """The installed distributions now (first on sys.path wins); updates ``sites``."""
        installed, metadata, sites = {}, {}, []
        for entry in sys.path:
            if _vendored(os.path.join(entry or os.getcwd(), ""), sites):
                continue
            folder, found = self._listing(entry)
            if found:
                sites.append(os.path.join(folder, ""))
            for name, version, full in found:
                if name not in installed:
                    installed[name] = version
                    metadata[name] = full
        self.sites = tuple(sites)
        if installed != self.installed:
            self.owners = {}
        return installed, metadata

    # --- which distribution owns a file ----------------------------------------------------------
    def _top_levels(self, meta):
        tops = self.tops.get(meta)
        if tops is None:
            tops = self.tops[meta] = frozenset(top_levels_of(meta))
        return tops

    def owner(self, path, installed, metadata, cached=True):
        """The distribution that installed ``path`` according to ``metadata`` (None: no metadata
        in that site directory claims it). ``cached`` only for the current listing."""
        # the most specific site: a checkout on sys.path ('') can hold the venv it runs from
        site = max((s for s in self.sites if path.startswith(s)), key=len, default=None)
        if site is None:
            return None
        top = path[len(site):].split(os.sep, 1)[0]
        if top.endswith(".py"):
            top = top[:-3]
        elif top.endswith(_EXTENSION_SUFFIXES):
            top = top.split(".", 1)[0]
        if not cached:
            return self._find_owner(site, top, installed, metadata)
        key = (site, top)
        if key not in self.owners:
            self.owners[key] = self._find_owner(site, top, installed, metadata)
        return self.owners[key]

    def _find_owner(self, site, top, installed, metadata):
        name = canon(top)
        if name in installed and os.path.dirname(metadata[name]) + os.sep == site:
            return name
        for dist, meta in metadata.items():
            if os.path.dirname(meta) + os.sep == site and top in self._top_levels(meta):
                return dist
        return None

    # --- the probe --------------------------------------------------------------------------------
    def _new_modules(self):
        """Files of modules that appeared in sys.modules since the last probe: (file, module, identity
        taken at load, or None when the recorder did not see it load)."""
        new = []
        if len(sys.modules) == self.module_count and not self.pending:
            return new
        for name, module in list(sys.modules.items()):
            if name in self.seen_modules:
                continue
            self.seen_modules.add(name)
            path = getattr(module, "__file__", None)
            if not isinstance(path, str) or not path.startswith(self.sites) or path in self.tracked:
                continue
            loaded = self.pending.get(path)
            new.append((path, name, loaded[1] if loaded else None))
        self.module_count = len(sys.modules)
        self.pending = {}
        return new

    def snapshot(self, phase, execution_count):
        start = time.perf_counter()
        before = self.installed
        installed, metadata = self.refresh_installed()
        loaded_at = None if phase == "startup" else execution_count
        payload = {"schema_version": SCHEMA_VERSION, "phase": phase, "execution_count": execution_count}
        if phase == "startup":
            payload["installed"] = dict(installed)
        else:
            payload["pip_commands"], self.commands = self.commands + self._finished_processes(), []
            names = set(before) | set(installed)
            payload["installed_changed"] = {n: [before.get(n), installed.get(n)] for n in sorted(names)
                                            if before.get(n) != installed.get(n)}
        replaced = {}   # distribution (or file) -> report entry
        checked = 0
        loaded_new = {}
        # 1. modules loaded since the last probe: compare with the identity taken at load time
        for path, module, at_load in self._new_modules():
            now = identity(path)
            checked += 1
            dist = self.owner(path, installed, metadata) or self.owner(path, before, self.metadata, cached=False)
            unchanged = at_load is None or at_load == now
            version = (installed if unchanged else before).get(dist) if dist else None
            self.track(path, [at_load if at_load is not None else now, module, dist, version, loaded_at])
            if dist and dist not in self.loaded_dists:
                self.loaded_dists.add(dist)
                loaded_new[dist] = version
            if not unchanged:
                self._replaced(replaced, path, now, installed, metadata)
        # 2. files loaded earlier: the folder first, every file only where the folder changed
        # (grouped as they are tracked: regrouping thousands of paths per probe was most of its cost)
        for folder, entry in self.folders.items():
            now_folder = identity(folder)
            folder_changed = now_folder != entry[0]
            entry[0] = now_folder
            _, files, extensions = entry
            for path in files if folder_changed else extensions:
                checked += 1
                now = identity(path)
                if now != self.tracked[path][0]:
                    self._replaced(replaced, path, now, installed, metadata)
        self.installed, self.metadata = installed, metadata
        payload["loaded_new"] = loaded_new
        payload["replaced"] = list(replaced.values())
        payload["tracked_files"] = len(self.tracked)
        payload["checked_files"] = checked
        if phase == "startup":
            import platform
            payload["environment"] = {"python": platform.python_version(),
                                      "numpy": installed.get("numpy", "absent"),
                                      "torch": installed.get("torch", "absent")}
            payload["executable"] = sys.executable
            payload["startup_import_errors"] = dict(self.startup_import_errors)
        payload["probe_ms"] = round((time.perf_counter() - start) * 1000, 3)
        return payload

    def _finished_processes(self):
        """The subprocess pip installs since the last probe, with their exit status (None: still running)."""
        found = []
        for command, process in self.processes:
            code = process.returncode if process.returncode is not None else process.poll()
            found.append({"command": command, "exit_code": code, "via": "subprocess"})
        self.processes = []
        return found

    def track(self, path, state):
        """Compare ``path`` from now on; ``state`` is [identity, module, distribution, version, loaded_at]."""
        self.tracked[path] = state
        folder = os.path.dirname(path)
        if folder not in self.folders:
            self.folders[folder] = [identity(folder), [], []]
        _, files, extensions = self.folders[folder]
        files.append(path)
        if path.endswith(_EXTENSION_SUFFIXES):
            extensions.append(path)

    def _replaced(self, replaced, path, now, installed, metadata):
        state = self.tracked[path]
        then, module, dist, version, loaded_at = state
        key = dist or path
        entry = replaced.get(key)
        if entry is None:
            entry = replaced[key] = {
                "distribution": dist, "version_loaded": version,
                "version_on_disk": installed.get(dist) if dist else None,
                "modules": [], "module_count": 0, "path": path, "module": module,
                "identity_loaded": _as_json(then), "identity_now": _as_json(now), "loaded_at": loaded_at}
        entry["module_count"] += 1
        top = module.partition(".")[0]
        if top not in entry["modules"] and len(entry["modules"]) < MAX_MODULE_NAMES:
            entry["modules"].append(top)
        # prefer an extension module as the example: that is the file whose mix breaks imports
        if path.endswith(_EXTENSION_SUFFIXES) and not entry["path"].endswith(_EXTENSION_SUFFIXES):
            entry.update(path=path, module=module, identity_loaded=_as_json(then), identity_now=_as_json(now))
        state[0] = now   # report each change once; a later change of the same file is reported again

    # --- publishing ---------------------------------------------------------------------------------
    def publish(self, phase, execution_count):
        from IPython.display import display
        try:
            payload = self.snapshot(phase, execution_count)
        except Exception as exc:  # the harness turns this into "could not tell" (exit 2)
            import traceback
            payload = {"schema_version": SCHEMA_VERSION, "phase": phase, "execution_count": execution_count,
                       "error": "%s: %s\n%s" % (type(exc).__name__, exc, traceback.format_exc()[-2000:])}
        display({MIME: payload, "text/plain": _describe(payload)}, raw=True)

    def post_run_cell(self, result):
        if self.skip_next:   # the start-up cell itself: it published its own snapshot
            self.skip_next = False
            return
        self.publish("cell", getattr(result, "execution_count", None))

    def start(self, imports):
        """Install the recorder, do Colab's start-up imports, publish the first snapshot, then
        probe after every cell."""
        import importlib
        self.refresh_installed()
        _record_shell_installs(self)
        _record_subprocess_installs(self)
        sys.meta_path.insert(0, self.recorder)
        for name in imports:
            try:
                importlib.import_module(name)
            except (Exception, SystemExit) as exc:
                # absent: nothing to emulate; present but broken: the run is not Colab's (on Colab it
                # is loaded before the first cell), so the harness must hear of it, not lose it here
                if not _absent(name, exc):
                    self.startup_import_errors[name] = "%s: %s" % (type(exc).__name__, exc)
        self.publish("startup", None)
        self.skip_next = True
        get_ipython().events.register("post_run_cell", self.post_run_cell)  # noqa: F821 (IPython builtin)


def _record_shell_installs(probe):
    """Keep the exit status of every pip install run through the shell (``!pip``, ``%pip``): both end
    in ipykernel's module-level ``system`` with the command already expanded, so wrapping that (and
    not the shell's ``system`` method, whose caller frame ``{var}`` expansion reads) changes nothing
    else. Without ipykernel's function there is nothing to wrap: pip's own lines are all there is."""
    zmqshell = sys.modules.get("ipykernel.zmqshell")
    original = getattr(zmqshell, "system", None)
    if original is None or getattr(original, "colab_ci_probe", False):
        return

    def system(cmd):
        code = original(cmd)
        if isinstance(cmd, str) and _PIP_INSTALL.search(cmd):
            probe.commands.append({"command": cmd[:MAX_COMMAND_CHARS], "exit_code": code, "via": "shell"})
        return code

    system.colab_ci_probe = True
    zmqshell.system = system


def _record_subprocess_installs(probe):
    """Keep every pip install a cell starts with ``subprocess`` (``run``, ``call``, ``check_call``, ``Popen``):
    the probe after the cell reads its exit status. The guarded ``tiers.install.install()`` (its
    constraints file is named ``colab-ci-installed-*``) publishes its own result and is left out."""
    import subprocess
    original = subprocess.Popen.__init__
    if getattr(original, "colab_ci_probe", False):
        return

    def __init__(self, args, *more, **options):
        original(self, args, *more, **options)
        try:
            command = args if isinstance(args, str) else " ".join(map(str, args))
            if _PIP_INSTALL.search(command) and "colab-ci-installed-" not in command:
                probe.processes.append((command[:MAX_COMMAND_CHARS], self))
        except Exception:   # never let the probe change what the notebook's own call does
            pass

    __init__.colab_ci_probe = True
    subprocess.Popen.__init__ = __init__


def _describe(payload):
    """The probe output's text/plain: one line a person reading the executed notebook can use."""
    if "error" in payload:
        return "colab-ci probe failed: " + payload["error"].splitlines()[0]
    parts = []
    for entry in payload.get("replaced", []):
        what = entry["distribution"] or entry["path"]
        parts.append("%s %s (loaded) replaced on disk by %s" % (what, entry["version_loaded"] or "?",
                                                                  entry["version_on_disk"] or "nothing"))
    changed = payload.get("installed_changed") or {}
    if changed:
        parts.append("%d distribution(s) changed on disk" % len(changed))
    for name, error in sorted((payload.get("startup_import_errors") or {}).items()):
        parts.append("start-up import of %s failed (%s)" % (name, error.splitlines()[0] if error else "?"))
    if payload["phase"] == "startup":
        parts.append("%d distributions installed, %d loaded files tracked" % (
            len(payload["installed"]), payload["tracked_files"]))
    if not parts:
        return ""
    return "colab-ci probe: " + "; ".join(parts) + " (%.1f ms)" % payload["probe_ms"]


def _absent(name, exc):
    """Whether ``exc`` says the start-up module ``name`` (or a package above it) is not installed, as
    opposed to installed and failing (a missing dependency of it, a broken extension, ...)."""
    missing = getattr(exc, "name", None) if isinstance(exc, ModuleNotFoundError) else None
    return bool(missing) and (name == missing or name.startswith(missing + "."))


def _vendored(folder, sites):
    """A folder inside a package of a site directory (``setuptools/_vendor``, put on sys.path by
    setuptools): its ``*.dist-info`` are copies bundled with that package, not installations."""
    for site in sites:
        if folder.startswith(site):
            top = folder[len(site):].split(os.sep, 1)[0]
            if os.path.isfile(os.path.join(site, top, "__init__.py")):
                return True
    return False


def _metadata_name_version(meta):
    for fname in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(meta, fname), encoding="utf-8", errors="replace") as f:
                name = version = None
                for line in f:
                    if line.startswith("Name:"):
                        name = line[5:].strip()
                    elif line.startswith("Version:"):
                        version = line[8:].strip()
                    elif not line.strip():
                        break
                return name, version
        except OSError:
            continue
    return None, None


def top_levels_of(meta):
    """Top-level names a distribution installs: top_level.txt, else the first parts of RECORD."""
    names = set()
    try:
        with open(os.path.join(meta, "top_level.txt"), encoding="utf-8") as f:
            names.update(line.strip() for line in f if line.strip())
        return names
    except OSError:
        pass
    try:
        with open(os.path.join(meta, "RECORD"), encoding="utf-8", errors="replace") as f:
            for line in f:
                first = line.split(",", 1)[0].split("/", 1)[0]
                if first.endswith(".py"):
                    first = first[:-3]
                elif first.endswith(_EXTENSION_SUFFIXES):
                    first = first.split(".", 1)[0]
                if first and not first.startswith(".") and first != "__pycache__" and not first.endswith(
                        (".dist-info", ".data", ".pth")):
                    names.add(first)
    except OSError:
        pass
    return names


PROBE = Probe()
