"""Merge schedules between tasks."""

from __future__ import annotations

from fomo_host.components import MergeDecision, MergeInputs, Merger
from fomo_host.registry import NoParams


class NoMerge(Merger):
    """No merging: train the next task from, and deploy, the latest fine-tuned model."""

    def __init__(self, params: NoParams) -> None:
        self.params = params

    def after_task(self, inputs: MergeInputs) -> MergeDecision:
        return MergeDecision(train_from=None, deploy=None)
