"""Running a study: the study directory, what is left to run, the launcher, and the index kept up to date as runs end.

A study directory holds ``study.json`` (the index, see :mod:`fomo_host.study.index`),
``study.toml`` (the study file as it was when the study started), ``runs/GROUP/seed-N/``
(one ordinary run directory per point), ``logs/`` (each run's output) and
``launcher/`` (the launcher's own files). Resuming a study skips its finished
runs, resumes interrupted ones from their checkpoints and starts the rest.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import FomoError
from ..locking import lock_holder
from ..output_path import check_output_path
from ..progress import Reporter
from ..results import SUMMARY_FILE
from ..run_request import RunRequest
from .index import LOGS_FOLDER, RUNS_FOLDER, StudyIndex, StudyRun, is_study_dir, now, read_index, update_run, write_index
from .points import StudyPlan, StudyPoint, point_identity

if TYPE_CHECKING:
    from ..components import Launcher

STUDY_COPY = "study.toml"
SWEEP_LOCK = ".sweep.lock"
LAUNCHER_FOLDER = "launcher"
FORWARDED_PREFIX = "FOMO_"
"""The sweep's own settings (plugin allow/deny lists, the cache directory) travel with every run, wherever it runs."""
INTERRUPTED_CODES = {130, -2}
"""Exit statuses of a run stopped by SIGINT: it printed where to resume and kept its last checkpoint."""
ERROR_LENGTH = 400
BUSY_POLL_S = 5.0
"""How often the sweep looks whether a run another process holds has ended."""


# ----------------------------------------------------------------------------- the study directory


def default_study_dir(plan: StudyPlan, output_dir: Path = Path("runs")) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = output_dir / f"{plan.name}-{stamp}"
    counter = 1
    while candidate.exists():
        counter += 1
        candidate = output_dir / f"{plan.name}-{stamp}-{counter}"
    return candidate


def new_entry(point: StudyPoint) -> StudyRun:
    return StudyRun(
        key=point.key,
        run_dir=f"{RUNS_FOLDER}/{point.key}",
        group=point.group,
        label=point.label,
        variant=point.variant,
        grid=dict(point.grid),
        seed=point.seed,
        overrides=list(point.overrides),
        fingerprint=point.fingerprint,
    )


@dataclass(frozen=True)
class SweepOptions:
    """What the command line added to the study file; recorded, so ``--resume DIR`` alone continues the same study."""

    sets: tuple[str, ...] = ()
    launcher: str | None = None


def study_record(plan: StudyPlan, options: SweepOptions, created: str | None = None) -> dict[str, object]:
    return {
        "name": plan.name,
        "description": plan.study.description,
        "file": str(plan.study_file),
        "base": str(plan.base),
        "sets": list(options.sets),
        "common": list(plan.common),
        "launcher": options.launcher,
        "seeds": sorted({point.seed for point in plan.points}),
        "created": created or now(),
    }


def recorded_options(study_dir: Path) -> tuple[Path | None, SweepOptions]:
    """The study file (None where the index records none) and command-line options a study directory was started (or
    last resumed) with."""
    study = read_index(study_dir).study
    return Path(str(study["file"])) if study.get("file") else None, SweepOptions(tuple(study.get("sets") or ()), study.get("launcher"))


def claim_study_dir(study_dir: Path) -> None:
    """Make a new study directory; one that exists must be empty."""
    check_output_path(study_dir, "--output")
    if study_dir.exists() and (not study_dir.is_dir() or any(study_dir.iterdir())):
        raise FomoError(f"{study_dir} exists and is not empty; pass --resume {study_dir} to continue that study, or another --output")
    try:
        study_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FomoError(f"--output {study_dir}: cannot create the study directory: {exc.strerror}") from None


def create_study(plan: StudyPlan, study_dir: Path, options: SweepOptions) -> StudyIndex:
    """The index of a new study (in a directory :func:`claim_study_dir` made), every point pending."""
    shutil.copyfile(plan.study_file, study_dir / STUDY_COPY)
    index = StudyIndex(study_dir, study_record(plan, options), [new_entry(point) for point in plan.points])
    write_index(index)
    return index


def resume_study(plan: StudyPlan, study_dir: Path, options: SweepOptions, write: bool = True) -> tuple[StudyIndex, list[str]]:
    """The study's index with points the study file now adds appended; every point already there must resolve to the same spec.

    Returns the index (written back unless ``write`` is false, as for a dry run) and notes
    (runs in the index that the study no longer lists: left as they are).
    """
    if not is_study_dir(study_dir):
        raise FomoError(f"--resume {study_dir}: not a study directory (no study.json)")
    index = read_index(study_dir)
    by_identity = {point_identity(run.variant, run.grid, run.seed): run for run in index.runs}
    planned = set()
    taken = {run.key for run in index.runs}
    # a group is its point (variant and grid values): one already in the index keeps its number and label, a new
    # one gets a number and a label no other group has, so that compare never merges two points or shows one label twice
    groups = {point_identity(run.variant, run.grid, 0)[:2]: (run.group, run.label) for run in index.runs}
    for point in plan.points:
        planned.add(point.identity)
        existing = by_identity.get(point.identity)
        if existing is None:
            identity = point.identity[:2]
            if identity not in groups:
                numbers, labels = {group for group, _ in groups.values()}, {label for _, label in groups.values()}
                number = point.group if point.group not in numbers else max(numbers) + 1
                label = point.label if point.label not in labels else f"{point.label} (#{number})"
                groups[identity] = (number, label)
            entry = new_entry(point)
            entry.group, entry.label = groups[identity]
            if entry.key in taken:  # the grid grew, so group numbers moved: keep existing directories, add new ones beside
                suffix = 1
                while f"{point.group_dir}-{suffix}/seed-{point.seed}" in taken:
                    suffix += 1
                entry.key = f"{point.group_dir}-{suffix}/seed-{point.seed}"
                entry.run_dir = f"{RUNS_FOLDER}/{entry.key}"
            taken.add(entry.key)
            index.runs.append(entry)
        elif existing.fingerprint != point.fingerprint:
            raise FomoError(
                f"--resume {study_dir}: run {existing.key} ({point.label}, seed {point.seed}) would now get another spec than it "
                "started with (the base spec, the study file or --set changed); restore them, or start a new study"
            )
    notes = [
        f"{run.key} is in the index but no longer in the study; left as it is"
        for run in index.runs
        if point_identity(run.variant, run.grid, run.seed) not in planned
    ]
    index.study = {**study_record(plan, options, created=str(index.study.get("created"))), "resumed": now()}
    if write:
        write_index(index)
    return index, notes


@contextmanager
def sweep_lock(study_dir: Path) -> Iterator[None]:
    """One sweep per study directory at a time; a second one refuses with one line."""
    handle = open(study_dir / SWEEP_LOCK, "a+")  # noqa: SIM115 - held for the sweep's life
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise FomoError(f"{study_dir}: another sweep ({holder}) is running this study; wait for it or stop it first") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {os.uname().nodename}")
        handle.flush()
        yield
    finally:
        handle.close()


# ----------------------------------------------------------------------------- what to run


def is_finished(index: StudyIndex, run: StudyRun) -> bool:
    return run.status == "finished" and (index.run_path(run) / SUMMARY_FILE).is_file()


def requests_to_run(index: StudyIndex) -> list[RunRequest]:
    """A request for every run not finished yet (it resumes from its checkpoint where it has one), in the study's order."""
    env = {key: value for key, value in os.environ.items() if key.startswith(FORWARDED_PREFIX)}
    base = Path(str(index.study["base"]))
    study_dir = index.study_dir.resolve()
    requests = []
    for run in sorted(index.runs, key=lambda r: (r.group, r.seed)):
        if is_finished(index, run):
            continue
        requests.append(
            RunRequest(
                key=run.key,
                label=run.label,
                seed=run.seed,
                spec=base,
                overrides=tuple(run.overrides),
                run_dir=study_dir / run.run_dir,
                log=study_dir / LOGS_FOLDER / f"{run.key.replace('/', '.')}.log",
                env=env,
            )
        )
    return requests


# ----------------------------------------------------------------------------- events -> index


def error_from_log(log: Path, returncode: int | None) -> str:
    """Why a run failed, in one line: its last ``error:`` line, else the last line it printed (a traceback's exception)."""
    tail = ""
    if log.is_file():
        with open(log, "rb") as handle:
            handle.seek(max(0, log.stat().st_size - 65536))
            tail = handle.read().decode("utf-8", errors="replace")
    lines = [line.strip() for line in tail.splitlines() if line.strip() and not line.startswith("$ ")]
    errors = [line for line in lines if line.startswith("error: ")]
    cause = errors[-1][len("error: ") :] if errors else (lines[-1] if lines else "no output")
    status = f"exit status {returncode}" if returncode is not None else "no exit status"
    return f"{cause[:ERROR_LENGTH]} ({status}; log: {log})"


def duration(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


@dataclass
class SweepTally:
    total: int
    finished: int = 0
    failed: int = 0
    interrupted: int = 0
    pruned: int = 0
    """Runs a search's pruner stopped (a grid study has none)."""


class SweepEvents:
    """The sweep's side of :class:`LaunchEvents`: each start and end goes to the index and to one progress line."""

    def __init__(self, index: StudyIndex, reporter: Reporter, to_run: int, stopping: threading.Event | None = None) -> None:
        self.study_dir = index.study_dir
        self.reporter = reporter
        self.stopping = stopping or threading.Event()
        """Set when the sweep itself is interrupted: runs that end from then on were stopped, not broken."""
        self._attempts = {run.key: run.attempts for run in index.runs}
        self._started_at: dict[str, float] = {}
        self.unreported: set[str] = set()
        """Requests handed to the launcher whose end it has not reported yet."""
        self._lock = threading.Lock()
        self.tally = SweepTally(total=to_run)

    def started(self, request: RunRequest, job: str) -> None:
        with self._lock:
            self._attempts[request.key] = self._attempts.get(request.key, 0) + 1
            self._started_at[request.key] = time.monotonic()
            attempts = self._attempts[request.key]
        update_run(self.study_dir, request.key, status="running", job=job, attempts=attempts, started=now(), ended=None, error=None)
        resumed = " (resuming)" if request.has_checkpoint() else ""
        self.reporter.line(f"{self._progress()} started {request.key}{resumed}: {job}")

    def finished(self, request: RunRequest, returncode: int | None, error: str | None = None) -> None:
        summary = request.run_dir / SUMMARY_FILE
        if returncode == 0 and summary.is_file():
            status, error = "finished", None
        elif returncode in INTERRUPTED_CODES or self.stopping.is_set():
            status, error = "interrupted", None
        elif returncode == 0:
            status, error = "failed", f"exited without writing {SUMMARY_FILE} (log: {request.log})"
        else:
            status = "failed"
            error = f"{error[:ERROR_LENGTH]} (log: {request.log})" if error else error_from_log(request.log, returncode)
        update_run(self.study_dir, request.key, status=status, ended=now(), error=error)
        with self._lock:
            self.unreported.discard(request.key)
            setattr(self.tally, status, getattr(self.tally, status) + 1)
            elapsed = time.monotonic() - self._started_at.pop(request.key, time.monotonic())
        if status == "finished":
            import json

            try:
                gm = json.loads(summary.read_text(encoding="utf-8")).get("GM", {}).get("final")
            except (OSError, ValueError, AttributeError):
                gm = None
            shown = f"{gm:.4f}" if isinstance(gm, int | float) and not isinstance(gm, bool) else "unknown (summary.json unreadable)"
            self.reporter.line(f"{self._progress()} finished {request.key} in {duration(elapsed)}: final GM {shown}")
        elif status == "interrupted":
            self.reporter.line(f"{self._progress()} interrupted {request.key} after {duration(elapsed)} (resumable)")
        else:
            self.reporter.line(f"{self._progress()} failed {request.key} after {duration(elapsed)}: {error}")

    def _progress(self) -> str:
        tally = self.tally
        done = tally.finished + tally.failed + tally.interrupted + tally.pruned
        width = len(str(tally.total))
        return f"[{done:{width}d}/{tally.total}]"


def run_sweep(
    index: StudyIndex,
    launcher: Launcher,
    launcher_name: str,
    reporter: Reporter,
    stopping: threading.Event | None = None,
    poll_s: float = BUSY_POLL_S,
) -> SweepTally:
    """Launch every run of the study not finished yet and keep the index current; returns how they ended.

    A run that another process still runs (its run directory is locked: a run an earlier sweep
    started that outlived it, a Slurm job still going) is not started twice: the sweep waits for it
    and then counts it as finished, or resumes it. ``stopping`` is set by whoever interrupts the
    sweep (its signal handler) before the launcher stops the runs, so that the runs ending then
    count as interrupted, not failed.
    """
    requests = requests_to_run(index)
    finished = sum(1 for run in index.runs if is_finished(index, run))
    groups = len(index.groups())
    seeds = len({run.seed for run in index.runs})
    describe = launcher.describe()
    reporter.line(
        f"study {index.study_dir}: {len(index.runs)} runs ({groups} points x {seeds} seeds), "
        f"{finished} finished, {len(requests)} to run "
        f"({sum(1 for r in requests if r.has_checkpoint())} resuming from a checkpoint); "
        f"launcher {launcher_name}" + (f": {describe}" if describe else "")
    )
    events = SweepEvents(index, reporter, len(requests), stopping)
    work_dir = index.study_dir.resolve() / LAUNCHER_FOLDER
    waited: set[str] = set()
    while requests:
        busy = {request.key: holder for request in requests if (holder := lock_holder(request.run_dir)) is not None}
        ready = [request for request in requests if request.key not in busy]
        if ready:
            work_dir.mkdir(parents=True, exist_ok=True)
            _launch_round(index, launcher, ready, events)
        if not busy:
            break
        for key, holder in busy.items():
            if key not in waited:
                waited.add(key)
                reporter.line(f"waiting for {key}: still running in another process ({holder})")
        _wait_until_one_ends(index, [request for request in requests if request.key in busy], poll_s)
        for request in requests:
            if request.key in busy and lock_holder(request.run_dir) is None and (request.run_dir / SUMMARY_FILE).is_file():
                update_run(index.study_dir, request.key, status="finished", ended=now(), error=None)
                events.tally.finished += 1
                reporter.line(f"{events._progress()} finished {request.key} (in another process)")
        # the runs this sweep launched have had their one attempt; what is left are those that were busy
        requests = [request for request in requests_to_run(read_index(index.study_dir)) if request.key in busy]
    return events.tally


def _wait_until_one_ends(index: StudyIndex, busy: list[RunRequest], poll_s: float) -> None:
    while all(lock_holder(request.run_dir) is not None for request in busy):
        time.sleep(poll_s)


def _launch_round(index: StudyIndex, launcher: Launcher, requests: list[RunRequest], events: SweepEvents) -> None:
    events.unreported = {request.key for request in requests}
    try:
        launcher.launch(requests, events, index.study_dir.resolve() / LAUNCHER_FOLDER)
    except KeyboardInterrupt:
        events.stopping.set()
        for key in sorted(events.unreported & set(events._started_at)):
            # runs the stopped launcher started and did not report: interrupted, to resume from their checkpoints
            update_run(index.study_dir, key, status="interrupted", ended=now())
        raise
    except Exception as exc:
        # a broken launcher: the runs it started are left for --resume to look at, not shown as running for ever
        for key in sorted(events.unreported & set(events._started_at)):
            update_run(index.study_dir, key, status="failed", ended=now(), error=f"the launcher failed: {type(exc).__name__}: {exc}")
        raise
    for key in sorted(events.unreported):
        # a launcher that returns without reporting a run broke its contract: the run is failed, not left as running
        update_run(index.study_dir, key, status="failed", ended=now(), error="the launcher returned without reporting this run's end")
        events.tally.failed += 1
    events.unreported = set()
