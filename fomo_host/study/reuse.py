"""``fomo-host sweep --reuse DIR``: a pending run whose spec another study already ran to the end is copied, not run again.

Studies of one benchmark share points (every finding compares against the same fine-tuning run), so a family of
studies would otherwise run the same experiment once per study. A run is taken from another study directory only
where it is finished there, its index fingerprint is this run's (the same resolved spec, seed included), and the
spec its directory holds still has that fingerprint (a run continued by ``fomo-host update`` since has another, and
is left alone). The copy goes to a temporary name and is renamed into place, and the index records where it came
from (``reused_from``), so ``compare`` and ``findings`` can tell a reused run from one this study paid for.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import FomoError
from ..locking import lock_holder
from ..progress import Reporter
from ..results import SUMMARY_FILE
from .index import LOGS_FOLDER, StudyIndex, is_study_dir, read_index, update_run


@dataclass(frozen=True)
class Donor:
    """A finished run of another study that this study may copy."""

    run_dir: Path
    log: Path
    started: str | None
    ended: str | None


def find_donors(study_dirs: list[Path], own: Path | None) -> dict[str, Donor]:
    """Finished runs of the given studies by fingerprint (the first study given wins where two hold one spec); ``own``:
    the study directory they are for (None: not made yet)."""
    from .sweep import is_finished

    donors: dict[str, Donor] = {}
    for study_dir in study_dirs:
        if not is_study_dir(study_dir):
            raise FomoError(f"--reuse {study_dir}: not a study directory (no study.json)")
        if own is not None and study_dir.resolve() == own.resolve():
            raise FomoError(f"--reuse {study_dir}: the study itself; --resume already keeps its finished runs")
        index = read_index(study_dir)
        for run in index.runs:
            if run.fingerprint in donors or not is_finished(index, run):
                continue
            run_dir = index.run_path(run)
            if not is_copy_of(run_dir, run.fingerprint):
                continue  # continued by fomo-host update since (more tasks, other data), or unreadable: not the run named
            log = study_dir / LOGS_FOLDER / f"{run.key.replace('/', '.')}.log"
            donors[run.fingerprint] = Donor(run_dir, log, run.started, run.ended)
    return donors


def is_copy_of(run_dir: Path, fingerprint: str) -> bool:
    """Whether ``run_dir`` holds a finished run of the spec with ``fingerprint`` (its spec and its summary)."""
    from ..spec_loading import load_spec

    try:
        return (run_dir / SUMMARY_FILE).is_file() and load_spec(run_dir / "spec.toml").fingerprint() == fingerprint
    except Exception:  # noqa: BLE001 - a spec that cannot be read is not the run
        return False


def reuse_runs(index: StudyIndex, study_dirs: list[Path], reporter: Reporter) -> StudyIndex:
    """Copy every not-yet-started run of ``index`` that another study has finished; returns the index as it is now."""
    if not study_dirs:
        return index
    donors = find_donors(study_dirs, index.study_dir)
    copied = 0
    for run in index.runs:
        donor = donors.get(run.fingerprint)
        target = index.run_path(run)
        if donor is None or run.status == "finished" or target.exists():
            continue  # a run that has started here keeps its own directory (it resumes from its checkpoints)
        holder = lock_holder(donor.run_dir)
        if holder is not None:  # fomo-host update is continuing it: not the finished run the other index names
            reporter.line(f"not reused {run.key}: {donor.run_dir} is in use ({holder}); it runs here instead")
            continue
        temporary = target.with_name(f".{target.name}.reusing-{os.getpid()}")
        shutil.rmtree(temporary, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(donor.run_dir, temporary, symlinks=True)
        if lock_holder(donor.run_dir) is not None or not is_copy_of(temporary, run.fingerprint):
            shutil.rmtree(temporary, ignore_errors=True)  # it changed while it was copied: run it here instead
            reporter.line(f"not reused {run.key}: {donor.run_dir} changed while it was copied; it runs here instead")
            continue
        os.replace(temporary, target)
        if donor.log.is_file():
            log = index.study_dir / LOGS_FOLDER / f"{run.key.replace('/', '.')}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(donor.log, log)
        update_run(
            index.study_dir,
            run.key,
            status="finished",
            reused_from=str(donor.run_dir.resolve()),
            started=donor.started,
            ended=donor.ended,
            job=None,
            error=None,
        )
        copied += 1
        reporter.line(f"reused {run.key} ({run.label}, seed {run.seed}): finished in {donor.run_dir}")
    reporter.line(f"reused {copied} finished run{'s' if copied != 1 else ''} of {', '.join(str(path) for path in study_dirs)}")
    return read_index(index.study_dir)
