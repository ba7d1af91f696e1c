"""The Optuna journal a search and its trials share (a file in the study directory), and the pruners a search names.

The sweep opens the journal to ask for trials; each trial's run opens it again to report after every task
(:mod:`fomo_host.engine.trial`); the reports read it back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import SpecError

PRUNER_ALIASES = {"warmup_tasks": "n_warmup_steps", "startup_trials": "n_startup_trials", "min_trials": "n_min_trials"}


def journal_storage(path: Path) -> Any:
    """An Optuna JournalStorage on a file (with a lock file, so runs on other nodes of a shared filesystem can write too)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))


def quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def build_pruner(name: str, given: dict[str, Any], where: str = "search") -> Any:
    """An Optuna pruner by its study-file name, with its params (Optuna's own names, or warmup_tasks and startup_trials)."""
    import optuna

    classes = {
        "none": optuna.pruners.NopPruner,
        "median": optuna.pruners.MedianPruner,
        "percentile": optuna.pruners.PercentilePruner,
        "hyperband": optuna.pruners.HyperbandPruner,
        "successive-halving": optuna.pruners.SuccessiveHalvingPruner,
    }
    params = {PRUNER_ALIASES.get(key, key): value for key, value in given.items()}
    try:
        return classes[name](**params)
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{where}.pruner.params: {name}: {exc}") from None
