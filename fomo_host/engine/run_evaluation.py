"""A run's evaluations: the deployed weights after each task scored on every evaluation set, recorded and summarised.

:class:`RunEvaluation` keeps the run's records (what ``results.jsonl`` holds, and what every
checkpoint carries), writes each new one and tells the plugins of it, rebuilds the file when a
run resumes, and writes ``summary.json`` at the end. How a model is scored is :mod:`.evaluation`.
"""

from __future__ import annotations

import copy
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, SupportsInt, cast

import torch

from ..components import ModelBundle, StateDict
from ..faults import fault_point
from ..progress import Reporter
from ..results import aggregate, append_record, restore_records, summarise, write_summary
from .evaluation import EvaluationSet, build_metrics, evaluate, plan_evaluation, validation_plan, validation_sets
from .run_checkpoints import StreamPosition
from .run_events import RunEvents
from .runtime import derive_seed, preserved_rng
from .setup import Setup
from .trial import split_records


def component_providers(setup: Setup) -> dict[str, dict[str, str]]:
    """Which distribution and version provided each component of the run, by the spec's key path."""
    return {
        resolved.where: {
            "kind": resolved.component.kind,
            "name": resolved.name,
            "distribution": resolved.component.provider.distribution,
            "version": resolved.component.provider.version,
        }
        for resolved in setup.components.all()
    }


def changed_providers(records: list[dict[str, Any]], providers: dict[str, dict[str, str]]) -> str:
    """What differs between the providers the last record names and the installed ones (empty when nothing does)."""
    recorded = next((record["providers"] for record in reversed(records) if "providers" in record), None)
    if recorded is None:
        return ""
    changes = [
        f"{where} {now['name']!r} comes from {now['distribution']} {now['version']} (was {then['distribution']} {then['version']})"
        for where, now in providers.items()
        if (then := recorded.get(where)) is not None and (then["distribution"], then["version"]) != (now["distribution"], now["version"])
    ]
    return "; ".join(changes)


def evaluation_sets(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Which sets the evaluations had, as runs of consecutive evaluations with the same sets (new sets join with an update).

    ``tasks_done``: the first and last evaluation of the run, counted in tasks done (0: the base model).
    """
    spans: list[dict[str, Any]] = []
    for record in records:
        groups = record.get("groups") or {}
        sets = {"adaptation": groups.get("adaptation", []), "zero_shot": groups.get("zero_shot", [])}
        done = record["task"] + 1
        if spans and {key: spans[-1][key] for key in sets} == sets:
            spans[-1]["tasks_done"][1] = done
        else:
            spans.append({"tasks_done": [done, done], **sets})
    return spans


class RunEvaluation:
    """Scores weights on the run's evaluation plan and keeps the records.

    Weights are scored in a copy of the base model taken when this is built, before the method wraps the model
    (adapters): deployed weights are always under the base model's names.
    """

    def __init__(self, setup: Setup, run_dir: Path, reporter: Reporter, events: RunEvents, warn: Callable[[str], None]) -> None:
        self.setup, self.spec, self.runtime, self.run_dir = setup, setup.spec, setup.runtime, run_dir
        self.reporter, self.events, self.warn = reporter, events, warn
        self.metrics = build_metrics(setup.components.metrics)
        self.plan: list[EvaluationSet] = plan_evaluation(setup.data.adaptation + setup.data.zero_shot, self.metrics)
        self.validation_plan = validation_plan(self.plan) if self.spec.evaluation.split == "validation" else None
        self.adaptation_names = [d.name for d in setup.data.adaptation]
        self.zero_shot_names = [d.name for d in setup.data.zero_shot]
        self.num_tasks = len(setup.tasks)
        self.providers = component_providers(setup)
        self.records: list[dict[str, Any]] = []
        """The evaluations so far: what results.jsonl holds, and what the checkpoints carry to check and rebuild it.
        Changed in place only (the run's checkpoints hold this list)."""
        self.model = copy.deepcopy(setup.bundle.model)

    def restore(self, records: list[dict[str, Any]]) -> None:
        """A resumed run: the checkpoint's records, and ``results.jsonl`` rebuilt to hold exactly them."""
        self.records[:] = records
        changed = changed_providers(self.records, self.providers)
        if changed:
            self.warn(f"warning: since this run started, {changed}; the evaluations from here on record the new ones")
        if self.runtime.is_main:
            note = restore_records(self.run_dir, self.records)
            if note:
                self.warn(f"note: {note}")

    def record(
        self,
        weights: StateDict,
        task: int,
        position: StreamPosition,
        full: bool,
        mean_loss: float | None = None,
    ) -> dict[str, Any]:
        """Score ``weights`` as deployed after ``task`` (-1: the base model), on a subset unless ``full``; the record
        is appended to ``results.jsonl`` and handed to the ``on_evaluation`` hook."""
        self.model.load_state_dict(weights, strict=True)
        base = self.setup.bundle
        bundle = ModelBundle(self.model, base.tokenizer, base.image_size, base.image_mean, base.image_std, base.name)
        fraction = 1.0 if full else self.spec.evaluation.subset_fraction
        generator = torch.Generator().manual_seed(derive_seed(self.spec.run.seed, "evaluation", task))
        started = time.perf_counter()
        label = "base model" if task < 0 else f"task {task + 1}/{self.num_tasks}"
        with preserved_rng(), self.reporter.bar(f"{label}: evaluating", len(self.plan)) as bar:
            metrics, scores = evaluate(
                self.runtime, bundle, self.plan, self.spec.evaluation.batch_size, fraction, generator, lambda name: bar.advance()
            )
        record: dict[str, Any] = {
            "task": task,
            "step": position.global_step,
            "samples_seen": position.samples_seen,
            "subset_fraction": fraction,
            "metrics": metrics,
            "scores": scores,
            **aggregate(scores, self.adaptation_names, self.zero_shot_names),
            "eval_seconds": round(time.perf_counter() - started, 3),
        }
        if mean_loss is not None:
            record["train_loss"] = mean_loss
        budget = self.setup.budget
        record["budget"] = budget.as_record()
        record["compute"] = {"gflops": (task + 1) * budget.gflops_per_task, "maf": (task + 1) * budget.maf_per_task}
        record["groups"] = {"adaptation": self.adaptation_names, "zero_shot": self.zero_shot_names}
        record["providers"] = self.providers
        if task >= 0:
            record["task_datasets"] = dict(Counter(concept.dataset for concept in self.setup.tasks[task]))
        if task < 0:
            # images a dataset component could not read and skipped (under its limit): reported once, with the base model
            by_name = self.setup.data.by_name
            skipped = {name: int(cast(SupportsInt, d.info["skipped_images"])) for name, d in by_name.items() if "skipped_images" in d.info}
            if skipped:
                record["skipped_images"] = skipped
        if self.validation_plan is not None:
            record["validation"] = self.score_validation(bundle, task, fraction)
        self.records.append(record)
        if self.runtime.is_main:
            append_record(self.run_dir, record)
            fault_point("evaluation.recorded")
        self.events.evaluation(record)
        return record

    def score_validation(self, bundle: ModelBundle, task: int, fraction: float) -> dict[str, Any]:
        """The same evaluation on the validation splits (``evaluation.split = "validation"``): what a search tunes on."""
        assert self.validation_plan is not None
        generator = torch.Generator().manual_seed(derive_seed(self.spec.run.seed, "validation", task))
        with preserved_rng():
            metrics, scores = evaluate(self.runtime, bundle, self.validation_plan, self.spec.evaluation.batch_size, fraction, generator)
        return {"metrics": metrics, "scores": scores, **aggregate(scores, self.adaptation_names, self.zero_shot_names)}

    def write_summary(self) -> dict[str, Any]:
        """``summary.json`` from the records (the main process writes it; the others get an empty summary)."""
        if not self.runtime.is_main:
            return {}
        spec = self.spec
        summary = summarise(self.records)
        if self.validation_plan is not None:
            summary["validation"] = summarise(split_records(self.records, "validation"))
            summary["validation"]["sets"] = validation_sets(self.plan)
        summary["run"] = {"name": spec.run.name, "num_tasks": self.num_tasks, "steps_per_task": self.setup.steps_per_task}
        summary["method"], summary["merger"] = spec.method.name, spec.merger.name
        summary["budget"] = self.setup.budget.as_record()
        summary["providers"] = self.providers
        summary["evaluation_sets"] = evaluation_sets(self.records)
        write_summary(self.run_dir, summary)
        fault_point("run.summarised")
        return summary
