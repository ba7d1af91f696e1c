"""Merge schedules between tasks: which weights the next task trains from, and which are deployed.

After task t the schedule can form (DESIGN §6; Roth et al., 2024, and its follow-up
Dziadzio et al., 2024, "How to Merge Your Multimodal Models Over Time?"):

- ``base``: theta_0;
- ``latest``: ft_t, the weights at the end of task t's training;
- ``running``: m_t = merge(m_{t-1}, ft_t), m_{-1} = theta_0 (two models per step;
  with interpolation, m_t = w ft_t + (1-w) m_{t-1}: an EMA of the task models);
- ``all``: merge(ft_0, ..., ft_t), one merge of every task checkpoint so far;
- ``finetuned``: merge(theta_0, ft_t).

Every merge is relative to theta_0 (the task vectors are tau = theta - theta_0).
Only what a schedule needs is kept, on disk in the run's weight store: the last
two running merges (m_t, and m_{t-1} for a task re-run after a resume) and, for
``all``, every task checkpoint, read back one at a time. The merger's own state
is just those keys, so memory does not grow with the number of tasks.

In a multi-process run every process forms the same merges; each writes its own
files (``-rank<N>`` appended to the keys of processes other than rank 0), so no
two processes ever write one file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from fomo_host.api import MergeDecision, MergeInputs, Merger, NoParams

from . import operators
from .history import LazyModels
from .operators import StateDict
from .params import GeneralMergeParams, ScheduleParams

RUNNING_KEY = "merge-running-{task:04d}"
TASK_KEY = "merge-task-{task:04d}"
RUNNING_MODEL_ID = 1_000_000
"""DARE seeds m_{t-1} with RUNNING_MODEL_ID + t - 1 and ft_t with t, so no two models share masks."""


class NoMerge(Merger):
    """No merging: train the next task from, and deploy, the latest fine-tuned model."""

    def __init__(self, params: NoParams) -> None:
        self.params = params

    def after_task(self, inputs: MergeInputs) -> MergeDecision:
        return MergeDecision(train_from=None, deploy=None)


# ----------------------------------------------------------------------------- schedules


class ScheduledMerge(Merger):
    """Forms the weights its ``init`` and ``deploy`` targets name, after every task."""

    init: str = "latest"
    deploy: str = "latest"

    def __init__(self, params: ScheduleParams) -> None:
        self.params = params
        self.operator = params.operator.build()
        self.running_key: str | None = None
        self.history: list[str] = []

    def merge(self, base: StateDict, models: Sequence[StateDict], weights: Sequence[float] | None, model_ids: Sequence[int]) -> StateDict:
        """The operator's merge, with LiNeS on top when the params ask for it."""
        with torch.no_grad():
            merged = self.operator(base, models, weights, model_ids)
            if self.params.lines is not None:
                merged = operators.lines(base, merged, self.params.lines.alpha, self.params.lines.beta)
        return merged

    @staticmethod
    def _file(key: str, inputs: MergeInputs) -> str:
        """This process's store key for a history key: processes other than the main one write their own files."""
        rank = inputs.process.rank
        return key if rank == 0 else f"{key}-rank{rank}"

    def _weight(self) -> float:
        return getattr(self.params, "weight", 0.5)

    def after_task(self, inputs: MergeInputs) -> MergeDecision:
        targets = {self.init, self.deploy}
        formed: dict[str, StateDict | None] = {"base": inputs.base, "latest": None}
        if "running" in targets:
            formed["running"] = self._running(inputs)
        if "all" in targets:
            formed["all"] = self._all(inputs)
        if "finetuned" in targets:
            weight = self._weight()
            formed["finetuned"] = self.merge(
                inputs.base, [inputs.base, inputs.finetuned], [1 - weight, weight], [RUNNING_MODEL_ID - 1, inputs.task]
            )
        return MergeDecision(train_from=formed[self.init], deploy=formed[self.deploy])

    def _running(self, inputs: MergeInputs) -> StateDict:
        """m_t = merge(m_{t-1}, ft_t) with weights (1-w, w); m_{-1} = theta_0."""
        task, store = inputs.task, inputs.store
        previous = inputs.base if self.running_key is None else store.load(self._file(self.running_key, inputs), _device(inputs.base))
        weight = self._weight()
        merged = self.merge(inputs.base, [previous, inputs.finetuned], [1 - weight, weight], [RUNNING_MODEL_ID + task - 1, task])
        del previous
        key = RUNNING_KEY.format(task=task)
        store.save(self._file(key, inputs), merged)
        if task >= 2:
            # m_{t-1} stays: a task re-run after a resume starts again from it.
            store.delete(self._file(RUNNING_KEY.format(task=task - 2), inputs))
        self.running_key = key
        return merged

    def _all(self, inputs: MergeInputs) -> StateDict:
        """merge(ft_0, ..., ft_t): the earlier checkpoints are read from the store one at a time."""
        key = TASK_KEY.format(task=inputs.task)
        inputs.store.save(self._file(key, inputs), inputs.finetuned)
        earlier = [k for k in self.history if k != key]
        models = LazyModels(inputs.store, [self._file(k, inputs) for k in earlier], _device(inputs.base), extra=[inputs.finetuned])
        merged = self.merge(inputs.base, models, None, list(range(len(models))))
        self.history = [*earlier, key]
        return merged

    def state_dict(self) -> dict[str, Any]:
        return {"running": self.running_key, "history": list(self.history)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.running_key = state.get("running")
        self.history = list(state.get("history", []))


def _device(weights: StateDict) -> torch.device:
    return next(iter(weights.values())).device


class EMAMerge(ScheduledMerge):
    """EMA-merge (Roth et al., 2024): train from and deploy m_t = merge(m_{t-1}, ft_t), m_{-1} = theta_0.

    With interpolation, m_t = w ft_t + (1-w) m_{t-1}.
    """

    init, deploy = "running", "running"


class ZeroShotMerge(ScheduledMerge):
    """ZS-merge (Roth et al., 2024): train every task from theta_0; deploy the running merge of all task models."""

    init, deploy = "base", "running"


class FinetunedMerge(ScheduledMerge):
    """FT-merge (Roth et al., 2024): train from and deploy merge(theta_0, ft_t) of the latest fine-tuned model.

    With interpolation, w ft_t + (1-w) theta_0 (WiSE-FT after every task).
    """

    init, deploy = "finetuned", "finetuned"


class OfflineMerge(ScheduledMerge):
    """Offline merge (Roth et al., 2024): train every task from theta_0; deploy one merge of all task checkpoints so far."""

    init, deploy = "base", "all"


class GeneralMerge(ScheduledMerge):
    """The general schedule (Dziadzio et al., 2024): initialisation in {base, latest, running, all} x deployment in
    {latest, running, all}.

    ema = (running, running), zero-shot = (base, running), offline = (base, all),
    none = (latest, latest).
    """

    def __init__(self, params: GeneralMergeParams) -> None:
        super().__init__(params)
        self.init, self.deploy = params.init, params.deploy
