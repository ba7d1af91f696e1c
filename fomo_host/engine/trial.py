"""A search trial's side of pruning, inside its run: after each task, report the objective to Optuna and ask whether to stop.

The sweep starts a trial's runs with :data:`TRIAL_VARIABLE` set (a JSON object: the
journal file, the Optuna study and trial, the objective and split). After each task
(its checkpoint written) the run's first seed reports the objective, computed from its
records as if the run ended there, as the trial's intermediate value at step = tasks
done, and asks the pruner; a pruned trial leaves a marker file that every seed's run of
the trial reads after its next task. A run that stops this way writes ``pruned.json``
(the tasks it reached) and exits with :data:`EXIT_PRUNED`, its directory kept. This
needs nothing from the launcher: only that the run reaches the study directory, as it
does to write its results.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import FomoError
from ..results import lookup, summarise
from ..search_journal import build_pruner, journal_storage

TRIAL_VARIABLE = "FOMO_SEARCH_TRIAL"
PRUNED_FILE = "pruned.json"
EXIT_PRUNED = 4


class TrialPruned(FomoError):
    """The search's pruner stopped this trial; the run directory keeps the tasks it did."""

    exit_status = EXIT_PRUNED


def split_records(records: Sequence[dict[str, Any]], split: str) -> list[dict[str, Any]]:
    """The records as scored on ``split``: the test split's as they are, the validation split's from each record's block."""
    if split == "test":
        return list(records)
    return [{**record, **record["validation"]} for record in records if "validation" in record]


def objective_value(records: Sequence[dict[str, Any]], path: str, split: str) -> float | None:
    """The objective at ``path`` of the summary these records make (as if the run ended after the last of them)."""
    chosen = split_records(records, split)
    return lookup(summarise(chosen), path) if chosen else None


@dataclass(frozen=True)
class TrialReporter:
    journal: str
    study: str
    trial_id: int
    number: int
    objective: str
    split: str
    reports: bool
    """Whether this run reports (a trial's first seed); the others follow its pruning decision."""
    marker: str
    """The file that says the trial was pruned (every seed's run stops after its next task)."""
    pruner: str
    pruner_params: dict[str, Any]
    """The study's pruner: a study loaded from the journal gets Optuna's default one unless it is given."""

    @classmethod
    def from_environment(cls) -> TrialReporter | None:
        text = os.environ.get(TRIAL_VARIABLE)
        if not text:
            return None
        try:
            return cls(**json.loads(text))
        except (TypeError, ValueError) as exc:
            raise FomoError(f"{TRIAL_VARIABLE}: not a trial the sweep describes ({exc}); unset it to run outside a search") from None

    def to_environment(self) -> dict[str, str]:
        return {TRIAL_VARIABLE: json.dumps(self.__dict__)}

    def after_task(self, run_dir: Path, task: int, records: Sequence[dict[str, Any]], warn: Callable[[str], None]) -> bool:
        """Report task ``task``'s objective (step = tasks done) and return whether the trial is pruned; only the main process calls this."""
        step = task + 1
        pruned = Path(self.marker).is_file()
        if self.reports and not pruned:
            value = objective_value(records, self.objective, self.split)
            if value is None or not math.isfinite(value):
                warn(f"warning: the search objective {self.objective!r} has no finite value after task {step}; not reported")
            else:
                try:
                    pruned = self._report(value, step)
                except Exception as exc:  # the search's bookkeeping must never break the run itself
                    warn(f"warning: cannot report to the search's journal {self.journal}: {type(exc).__name__}: {exc}")
                if pruned:
                    Path(self.marker).parent.mkdir(parents=True, exist_ok=True)
                    Path(self.marker).write_text(json.dumps({"step": step, "value": value}) + "\n", encoding="utf-8")
        if pruned:
            (run_dir / PRUNED_FILE).write_text(json.dumps({"tasks_reached": step, "trial": self.number}) + "\n", encoding="utf-8")
        return pruned

    def _report(self, value: float, step: int) -> bool:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        pruner = build_pruner(self.pruner, self.pruner_params)
        study = optuna.load_study(study_name=self.study, storage=journal_storage(Path(self.journal)), pruner=pruner)
        trial = optuna.trial.Trial(study, self.trial_id)
        if step in study._storage.get_trial(self.trial_id).intermediate_values:
            # a resumed run reports a task again: the first report stands
            return bool(trial.should_prune())
        trial.report(value, step)
        return bool(trial.should_prune())


def read_pruned(run_dir: Path) -> int | None:
    """Tasks a pruned run reached, or None when the run was not pruned."""
    path = run_dir / PRUNED_FILE
    if not path.is_file():
        return None
    try:
        return int(json.loads(path.read_text(encoding="utf-8"))["tasks_reached"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
