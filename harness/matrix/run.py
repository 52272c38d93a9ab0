"""``harness matrix``: the notebook run in every image's environment, in parallel, one aggregate verdict.

With several notebooks (paths and globs, harness/source/notebook_globs.py) the matrix is notebooks x
images: one leg per notebook and image, all legs sharing the same ``--jobs`` slots, each leg's folder
``OUT/<notebook slug>/<image>``, and one combined report over every leg in OUT.

For each profile: its environment is built (or found up to date: ``harness.images.build``; the images'
builds overlap, ``BUILD_JOBS`` at a time), then, as soon as that image's mirror is ready (while the
others still build),
``python -m harness run NOTEBOOK --python <env python> --out OUT/<image>`` runs as a subprocess, at
most ``--jobs`` at a time (default: the number of cores). ``--build-only`` (``prebuild``) builds the
mirrors and runs nothing: ``make ci-colab`` starts it beside preflight, and the matrix then finds
them up to date. Each run writes its own reports in its own
folder; harness/report/matrix_records.py reads their ``report.json`` and harness/report/matrix_reports.py
lays the outcome out as one images x checks table (``matrix.md``, ``matrix.json``, ``junit.xml``,
``matrix.html`` in OUT), with each image's fidelity report.

Exit status: 0 every image passes; 1 a check failed in some image; 2 a build or a run could not be
done, or a run could not tell (the other images still run and are reported).

Each run's folder is emptied of earlier reports before it starts, and a report older than the
run's start is never read: a run that dies before writing reads as "no report", never as the
previous month's verdict. Ctrl-C or SIGTERM to the matrix is passed on to every run as SIGTERM
(each writes its notebook and reports, then exits 130); a run that does not end in
``STOP_GRACE_S`` is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable

from harness.core import progress
from harness.core.checkout import default_notebook
from harness.core.errors import HarnessError
from harness.core.signals import sigterm_as_interrupt
from harness.core.verdicts import EXIT_HARNESS, EXIT_INTERRUPTED, EXIT_OK
from harness.images.build import BuildError, BuildRequest, BuiltEnv, build_envs, default_cache_dir
from harness.images.misses import add_recorded
from harness.images.profiles import Profile, select_profiles
from harness.images.shipped_metadata import image_import_names
from harness.report.matrix_records import ImageRun, exit_code, read_report
from harness.report.matrix_reports import render_markdown, write_reports
from harness.source import parameters
from harness.source.needs import notebook_needs
from harness.source.notebook_globs import expand_notebooks, notebook_slugs
from harness.source.parameters import to_cli as parameters_to_cli

STOP_GRACE_S = 30.0
COLAB_COLUMN = "colab"   # the Colab runtime's column: "colab" (CPU) or "colab-t4" (docs/colab.md)
# Image mirrors built at a time: builds overlap the index's answers, downloads, installs and bytecode
# compilation. Measured on 2 cores shared with other jobs (bench/bench_mirror_builds.py, the template's
# mirrors of the three images, uv's cache warm, 3 interleaved rounds): one after another median 111.2 s,
# two at once 93.9 s (0.84; per round 0.92, 0.67, 1.02). Three at once was not faster than two.
BUILD_JOBS = 2
RUN_OUTPUTS = ("report.json", "report.md", "junit.xml", "report.html", "executed.ipynb", "executed.html",
               "kernel.log", "harness.log")


def run_matrix(args, profiles_dir: Path) -> int:
    """The ``matrix`` verb (its arguments are parsed by ``harness.cli.images``, which also says where
    the profiles are)."""
    profiles = select_profiles(args.images, profiles_dir)
    notebooks = expand_notebooks(args.notebook) if args.notebook else [default_notebook("NOTEBOOK")]
    for path in notebooks:
        if not path.is_file():
            raise HarnessError(f"notebook {path} does not exist")
    notebook: Path | list[Path] = notebooks[0] if len(notebooks) == 1 else notebooks
    out = Path(args.out)
    if getattr(args, "build_only", False):
        return _prebuild_verb(args, profiles, notebook)
    interrupted = threading.Event()
    with sigterm_as_interrupt():
        shown = progress.display()
        try:
            runs = matrix(profiles, notebook, out, jobs=args.jobs, parameters=parameters.from_args(args),
                          timeout=args.timeout, cache_dir=args.cache_dir, mode=args.mode, python=args.python,
                          force=args.force, baselines=args.baselines, update_baselines=args.update_baselines,
                          interrupted=interrupted, accept_failures=getattr(args, "accept_failures", False),
                          run_args=_run_args(args), shown=shown, content=tuple(args.content),
                          on_colab=(args.gpu or "") if getattr(args, "on", "local") == "colab" else None)
        finally:
            shown.close()
    paths = write_reports(runs, notebook, out)
    if args.json:
        sys.stdout.write((out / "matrix.json").read_text(encoding="utf-8"))
    else:
        print(render_markdown(runs, notebook, details=False))
        print(f"\nreports: {', '.join(str(p) for p in paths)}")
    return EXIT_INTERRUPTED if interrupted.is_set() else exit_code(runs)


def _prebuild_verb(args, profiles: list[Profile], notebook: Path | list[Path]) -> int:
    """``matrix --build-only``: one line per mirror; exit 0 when every one is built (or up to date), else 2."""
    shown = progress.display()
    try:
        results = prebuild(profiles, notebook, cache_dir=args.cache_dir, mode=args.mode, python=args.python,
                           force=args.force, shown=shown, content=tuple(args.content))
    finally:
        shown.close()
    for result in results:
        if isinstance(result, BuildError):
            print(f"environment build failed: {result}")
        else:
            print(f"{result.name}: {result.python} ({'up to date' if result.skipped else 'built'}, "
                  f"{result.seconds:.1f} s)")
    return EXIT_HARNESS if any(isinstance(r, BuildError) for r in results) else EXIT_OK


def _run_args(args) -> list[str]:
    """What every run gets from the matrix's own command line: files, Drive, secrets, --retries."""
    passed: list[str] = ["--retries", str(args.retries)] if getattr(args, "retries", 0) else []
    for path in args.content:
        passed += ["--content", str(Path(path).resolve())]
    if args.drive is not None:
        passed += ["--drive", str(Path(args.drive).resolve())]
    for name in args.secret:
        passed += ["--secret", name]
    for spec in args.env:
        passed += ["--env", spec]
    return passed


def matrix(profiles: list[Profile], notebook: Path | Sequence[Path], out: Path, *, jobs: int | None = None,
           parameters: dict[str, Any] | None = None, timeout: float | None = None, cache_dir: Path | None = None,
           mode: str = "auto", python: str | None = None, force: bool = False,
           baselines: Path | None = None, update_baselines: bool = False, accept_failures: bool = False,
           interrupted: threading.Event | None = None, run_args: list[str] = (),
           shown: progress.Display | None = None, content: tuple[Path, ...] = (),
           on_colab: str | None = None) -> list[ImageRun]:
    """The legs, notebook by notebook and image by image: one notebook (a Path) gives one leg per image
    in ``out/<image>``; several give one per notebook and image in ``out/<notebook slug>/<image>``.
    With ``on_colab`` each notebook gets one more column: the notebook on a Colab runtime (``run --on
    colab``; "" a CPU runtime, else the GPU: ``--gpu``), beside the mirrors; None: none."""
    interrupted = interrupted or threading.Event()   # set when Ctrl-C/SIGTERM stopped the runs
    shown = shown or progress.display()
    runs, legs = _legs(profiles, notebook, cache_dir=cache_dir, mode=mode, python=python, force=force, shown=shown,
                       content=content, on_colab=on_colab)
    cores = os.cpu_count() or 1
    workers = max(1, min(jobs or default_jobs(cores), len(legs) or 1))
    env = _thread_share(cores, workers)
    children = _Children()
    requests = [(run, book, request) for run, book, request in legs if request is not None]
    started = _Started()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        def start(run: ImageRun, python: Path | None, book: Path) -> None:
            if interrupted.is_set():   # an interrupted matrix starts no run (it would be stopped at once)
                run.error = "not run: the matrix was interrupted"
                shown.show(progress.Event(run.label, run.error, done=True))
                return
            started.add(run.label, out / run.folder / PROGRESS_FILE, pool.submit(
                _run_one, run, python, book, out, parameters, timeout,
                [*_baseline_args(run.folder, baselines, update_baselines, accept_failures), *run_args],
                env, children, shown))

        def built(position: int, result: BuiltEnv | BuildError) -> None:
            # a leg's run starts as soon as its mirror is ready, while the other images' mirrors still build
            run, book, _request = requests[position]
            if isinstance(result, BuildError):
                run.error = f"environment build failed: {result}"
                shown.show(progress.Event(run.label, "environment build failed", done=True))
                return
            run.env_python, run.fidelity = result.python_version, list(result.fidelity)
            run.env_numpy = result.installed.get("numpy", "absent")
            run.env_torch = result.installed.get("torch", "absent")
            if not interrupted.is_set():
                shown.show(progress.Event(run.label, "waiting for a free slot"))
            start(run, result.python, book)

        for run, book, request in legs:
            if request is None:   # the Colab column: Colab's runtime, nothing to build
                start(run, None, book)
        # the images' builds overlap (BUILD_JOBS at a time: bench/bench_mirror_builds.py), and the runs overlap
        # the builds; a build that is not a BuildError (the closure cannot be resolved) ends the matrix as before
        builds = _Builds(lambda: build_envs([request for _run, _book, request in requests], cache_dir=cache_dir,
                                            workers=BUILD_JOBS, on_built=built, stop=interrupted))
        try:
            builds.start()
            while not builds.finished.is_set() or started.pending():
                # short waits: Ctrl-C and SIGTERM reach this thread at once
                if pending := started.pending():
                    wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                else:
                    builds.finished.wait(0.5)
                _relay(started.followers(), shown)
            _relay(started.followers(), shown)
        except KeyboardInterrupt:
            interrupted.set()    # the builds not begun are not begun, and no run starts
            children.stop()      # each run writes its notebook and reports; their threads then read them
        builds.result()          # the build under way ends (its run does not start)
    return runs


def prebuild(profiles: list[Profile], notebook: Path | Sequence[Path], *, cache_dir: Path | None = None,
             mode: str = "auto", python: str | None = None, force: bool = False,
             shown: progress.Display | None = None, content: tuple[Path, ...] = ()) -> list[BuiltEnv | BuildError]:
    """``matrix --build-only``: the mirrors the matrix's legs would build, built (or found up to date) the
    way the matrix builds them, and nothing run. ``make ci-colab`` starts it beside preflight, so that the
    matrix then finds every mirror up to date (or, still building, waits for it: ``build_env``'s lock)."""
    shown = shown or progress.display()
    _runs, legs = _legs(profiles, notebook, cache_dir=cache_dir, mode=mode, python=python, force=force,
                        shown=shown, content=content, on_colab=None)
    return build_envs([request for _run, _book, request in legs if request is not None], cache_dir=cache_dir,
                      workers=BUILD_JOBS)


class _Builds:
    """The matrix's builds, in a thread of their own, waited for even when Ctrl-C came at any moment."""

    def __init__(self, build: Callable[[], object]) -> None:
        self.build = build
        self.begun, self.finished = threading.Event(), threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="matrix-builds", daemon=True)

    def _run(self) -> None:
        self.begun.set()
        try:
            self.build()
        except BaseException as exc:   # re-raised by result(), in the matrix's thread
            self.error = exc
        finally:
            self.finished.set()

    def start(self) -> None:
        self.thread.start()

    def result(self) -> None:
        """Wait for the builds (when they began at all) and re-raise what ended them."""
        if self.begun.wait(5):
            self.finished.wait()
        if self.error is not None:
            raise self.error


class _Started:
    """The runs started so far (from the builder's threads and this one), and their progress files."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._futures: list[Future[None]] = []
        self._followers: dict[str, progress.Follower] = {}

    def add(self, label: str, progress_file: Path, future: Future[None]) -> None:
        with self.lock:
            self._followers[label] = progress.Follower(progress_file)
            self._futures.append(future)

    def pending(self) -> list[Future[None]]:
        with self.lock:
            return [future for future in self._futures if not future.done()]

    def followers(self) -> dict[str, progress.Follower]:
        with self.lock:
            return dict(self._followers)


Leg = tuple[ImageRun, Path, "BuildRequest | None"]   # a run, its notebook, its mirror (None: the Colab column)


def _legs(profiles: list[Profile], notebook: Path | Sequence[Path], *, cache_dir: Path | None, mode: str,
          python: str | None, force: bool, shown: progress.Display, content: tuple[Path, ...],
          on_colab: str | None) -> tuple[list[ImageRun], list[Leg]]:
    """Every leg's run (in the report's order) and the legs whose notebook could be read."""
    notebooks = [notebook] if isinstance(notebook, Path) else list(notebook)
    slugs = notebook_slugs(notebooks) if len(notebooks) > 1 else {notebooks[0]: ""}
    runs: list[ImageRun] = []
    legs: list[Leg] = []
    for book in notebooks:
        for profile in profiles:
            run = ImageRun(profile.name, profile.python, profile.version("numpy") or "", profile.version("torch") or "",
                           notebook=slugs[book])
            runs.append(run)
            try:
                # the mirror holds what this notebook imports and installs (harness.source.needs)
                needs = add_recorded(notebook_needs(book, profile.image, content=tuple(content),
                                                    provided=image_import_names(profile)), profile.name,
                                     profile.image, cache_dir or default_cache_dir(), book)   # and what runs missed
            except HarnessError as exc:
                if not run.notebook:   # one notebook: the verb cannot run at all (exit 2, one sentence)
                    raise
                run.error = f"could not read {book}: {exc}"   # several: this notebook's legs only
                shown.show(progress.Event(run.label, "could not read the notebook", done=True))
                continue
            legs.append((run, book, BuildRequest(
                profile, needs, mode,  # type: ignore[arg-type]
                lambda line, name=profile.name, label=run.label: shown.show(
                    progress.Event(label, line.removeprefix(f"{name}: "))),
                python, force=force)))
        if on_colab is not None:
            colab = ImageRun(COLAB_COLUMN + (f"-{on_colab.lower()}" if on_colab else ""), "Colab's own", "", "",
                             notebook=slugs[book])
            runs.append(colab)
            legs.append((colab, book, None))
    return runs, legs


PROGRESS_FILE = "progress.jsonl"   # each run's events, followed by the matrix (harness.core.progress)


def _relay(followers: dict[str, progress.Follower], shown: progress.Display) -> None:
    """The runs' own events (cell by cell) on the matrix's display, under each run's image name."""
    for image, follower in followers.items():
        for event in follower.new_events():
            if not event.done:   # the run's end is shown by _run_one, with the verdict
                shown.show(progress.Event(image, event.message, event.step, event.total))


class _Children:
    """The runs' processes, so that an interrupted matrix ends each of them cleanly."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.procs: list[subprocess.Popen[bytes]] = []
        self.stopping = False

    def start(self, command: list[str], **kwargs: object) -> subprocess.Popen[bytes] | None:
        with self.lock:
            if self.stopping:
                return None
            proc = subprocess.Popen(command, **kwargs)  # type: ignore[call-overload]
            self.procs.append(proc)
            return proc

    def stop(self) -> None:
        """SIGTERM to every run (each saves its notebook and reports), SIGKILL after the grace period."""
        with self.lock:
            self.stopping = True
            procs = list(self.procs)
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def default_jobs(cores: int) -> int:
    """One run more than there are cores.

    A run is not CPU-bound all the time: the kernel's start-up, pip and the disk leave a core idle
    for about a third of it. Measured here (3 images, 2 cores, bench/bench_images.py): one at a time
    31 s; 2 at once 21 s (1.5x); 3 at once 18 s (1.75x).
    """
    return cores + 1


def _thread_share(cores: int, workers: int) -> dict[str, str]:
    """The environment of each run: its share of the cores for torch's and BLAS's thread pools.

    Every kernel would otherwise start one thread per core, and parallel runs would fight over
    them (measured here: 3 runs on 2 cores, 1.08x faster in parallel than one by one; with a
    fair share of threads each, see bench/bench_images.py). A value the caller set wins.
    """
    share = str(max(1, cores // workers))
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env.setdefault(name, share)
    return env


def _baseline_args(image: str, baselines: Path | None, update: bool, accept_failures: bool = False) -> list[str]:
    """Each image is compared with its own baseline: durations and metrics differ between images.
    A run with failing tier tests is written only with --accept-failures (docs/baselines.md).
    ``image`` is the leg's folder: with several notebooks ``<notebook>/<image>``, so each notebook
    has its own baselines (DIR/<notebook>/<image>.json)."""
    if baselines is None:
        return []
    path = baselines / f"{image}.json"
    if update:
        return ["--baseline", str(path), "--update-baseline", *(["--accept-failures"] if accept_failures else [])]
    return ["--baseline", str(path)] if path.is_file() else []


def _run_one(run: ImageRun, python: Path | None, notebook: Path, out: Path, parameters, timeout,
             baseline_args: list[str], env: dict[str, str], children: _Children,
             shown: progress.Display, harness: Sequence[str] = ()) -> None:
    """One leg's run: ``harness`` (default: this interpreter's ``-m harness``) ``run ...``."""
    folder = out / run.folder
    folder.mkdir(parents=True, exist_ok=True)
    for name in (*RUN_OUTPUTS, PROGRESS_FILE):   # never leave the previous run's verdict behind
        (folder / name).unlink(missing_ok=True)
    env = {**env, progress.PROGRESS_FILE_ENV: str(folder / PROGRESS_FILE)}
    gpu = run.image.removeprefix(f"{COLAB_COLUMN}-").upper() if run.image.startswith(f"{COLAB_COLUMN}-") else ""
    where = ["--python", str(python)] if python is not None else ["--on", "colab", *(["--gpu", gpu] if gpu else [])]
    command = [*(harness or (sys.executable, "-m", "harness")), "run", str(notebook), *where, "--out", str(folder),
               *parameters_to_cli(parameters or {})]
    if timeout:
        command += ["--timeout", str(timeout)]
    command += baseline_args
    log = folder / "harness.log"
    start = time.perf_counter()
    started_at = time.time()
    shown.show(progress.Event(run.label, f"running {notebook.name} (Python {run.env_python})"))
    with open(log, "w", encoding="utf-8") as handle:
        proc = children.start(command, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        code = proc.wait() if proc is not None else EXIT_HARNESS
    run.seconds, run.out, run.log, run.exit_code = time.perf_counter() - start, str(folder), str(log), code
    read_report(run, folder / "report.json", log, started_at)
    shown.show(progress.Event(run.label, f"{run.verdict} in {run.seconds:.0f} s", done=True))
