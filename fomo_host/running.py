"""Starting, resuming and updating a run in this process, and evaluating exported weights: what ``fomo-host run`` /
``update`` / ``evaluate`` and the Python API's ``fomo_host.run`` / ``fomo_host.update`` share.

The commands and :mod:`fomo_host.python_api` read their arguments and print; the work is here, once. (A launcher
starts a run as a process of its own instead: :func:`fomo_host.study.launching.execute_run`.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .engine.evaluation import build_metrics, evaluate, plan_evaluation
from .engine.run import ContinualRun, prepare
from .engine.setup import build_model_and_data, default_cache_dir
from .engine.update import first_release, plan_update, record_start
from .errors import FomoError
from .export import ExportedWeights
from .output_path import check_output_path
from .plugins import PluginHost
from .process import is_main_process
from .progress import Reporter
from .results import aggregate, read_records, write_text_atomic
from .run_directory import SPEC_FILE, RunDirectory, environment_errors_as_one_line, has_checkpoint, path_kind
from .spec import RunSpec
from .spec_loading import load_spec
from .update_history import pending_update, update_folder


def run_in_process(host: PluginHost, spec: RunSpec, run_dir: Path, resume: bool, reporter: Reporter) -> dict[str, Any]:
    """Claim ``run_dir``, build everything from the spec, then run (or resume) the whole stream into it; returns the summary.

    The directory is claimed (created, locked) before anything is built, so a second run on
    it refuses at once, and a start that fails before writing anything leaves nothing behind.
    """
    if not resume and is_main_process():
        check_output_path(run_dir, "--output")
    claimed = RunDirectory.claim(run_dir, resume, "--resume" if resume else "--output", main_process=is_main_process())
    failed = True
    try:
        with environment_errors_as_one_line(run_dir, resumable=lambda: has_checkpoint(run_dir)):
            setup = prepare(host, spec, reporter)
            device = setup.runtime.device
            reporter.line(
                f"run {run_dir}: {len(setup.tasks)} tasks x {setup.steps_per_task} steps, batch {spec.run.batch_size}, "
                f"method {spec.method.name}, merger {spec.merger.name}, device {device if device.type == 'cuda' else device.type}"
                + (f" x{setup.runtime.world_size}" if setup.runtime.world_size > 1 else "")
            )
            summary = ContinualRun(host, setup, run_dir, reporter).execute(resume=resume)
        failed = False
        return summary
    finally:
        # a start interrupted or refused while it had written nothing leaves no directory
        claimed.release(failed=failed)


def update_in_process(
    host: PluginHost,
    run_dir: Path,
    data_path: Path | None,
    tasks: int | None,
    overrides: list[str],
    reporter: Reporter,
) -> dict[str, Any]:
    """Claim the run directory, check and build the update, record it, train it; returns the summary.

    Without data, tasks and overrides, an update that was interrupted is continued.
    """
    if path_kind(run_dir, "update") != "directory":
        raise FomoError(f"{run_dir}: no such run directory")
    if not (run_dir / SPEC_FILE).is_file():
        raise FomoError(f"{run_dir}: not a run directory (no {SPEC_FILE})")
    claimed = RunDirectory.claim(run_dir, True, "update", main_process=is_main_process())
    try:
        with environment_errors_as_one_line(run_dir, resumable=lambda: True):
            pending = pending_update(run_dir)
            if pending is not None:
                if data_path is not None or tasks is not None or overrides:
                    raise FomoError(f"{run_dir}: update {pending['update']} is unfinished; continue it first: fomo-host update {run_dir}")
                spec = load_spec(update_folder(run_dir, pending["update"]) / SPEC_FILE, (), host.registry)
                setup = prepare(host, spec, reporter)
                if setup.runtime.is_main:
                    write_text_atomic(run_dir / SPEC_FILE, spec.to_toml())
                setup.runtime.barrier()
                reporter.line(f"continuing update {pending['update']} of {run_dir}")
                return ContinualRun(host, setup, run_dir, reporter).execute(resume=True)
            plan, setup = plan_update(host, run_dir, data_path, tasks, overrides)
            run_spec_text = (run_dir / SPEC_FILE).read_text(encoding="utf-8")
            run_spec = load_spec(run_dir / SPEC_FILE)
            records = read_records(run_dir)
            if setup.runtime.is_main:
                first_release(run_dir, run_spec, records)
                record_start(run_dir, plan, run_spec_text, run_spec.fingerprint(), len(setup.tasks))
            setup.runtime.barrier()  # every process resumes under the update recorded
            count = len(setup.tasks) - plan.first_task
            added = f"{count} task{'s' if count > 1 else ''}"
            if plan.new_adaptation:
                added += f" ({', '.join(plan.new_adaptation)} new)"
            reporter.line(
                f"update {plan.number} of {run_dir}: {added} after the {plan.first_task} trained, {setup.steps_per_task} steps each"
            )
            return ContinualRun(host, setup, run_dir, reporter).execute(resume=True)
    finally:
        claimed.release(failed=False)


def evaluate_exported(host: PluginHost, spec: RunSpec, exported: ExportedWeights, reporter: Reporter) -> dict[str, Any]:
    """Evaluate the weights on every evaluation set of ``spec``, on the full test sets, as a run evaluates its deployed weights.

    Returns ``metrics`` and ``scores`` per dataset, ``A_KA``, ``A_ZS``, ``GM`` and ``groups``.
    """
    # the model and the evaluation sets only: no warm start, stream ordering or budget
    setup = build_model_and_data(host, spec, reporter, default_cache_dir())
    model = setup.bundle.model
    expected = set(model.state_dict())
    if set(exported.weights) != expected:
        missing, unexpected = sorted(expected - set(exported.weights)), sorted(set(exported.weights) - expected)
        parts = [f"{what} {', '.join(names[:3])}" for what, names in (("missing", missing), ("unexpected", unexpected)) if names]
        detail = "; ".join(parts)
        raise FomoError(f"{exported.path}: the weights do not fit the spec's model {spec.model.name!r} ({detail})")
    model.load_state_dict({name: tensor.to(setup.runtime.device) for name, tensor in exported.weights.items()}, strict=True)
    datasets = setup.data.adaptation + setup.data.zero_shot
    plan = plan_evaluation(datasets, build_metrics(setup.components.metrics))
    with reporter.bar("evaluating", len(plan)) as bar:
        metrics, scores = evaluate(
            setup.runtime, setup.bundle, plan, spec.evaluation.batch_size, 1.0, torch.Generator(), lambda name: bar.advance()
        )
    adaptation, zero_shot = [d.name for d in setup.data.adaptation], [d.name for d in setup.data.zero_shot]
    groups = {"adaptation": adaptation, "zero_shot": zero_shot}
    return {"metrics": metrics, "scores": scores, **aggregate(scores, adaptation, zero_shot), "groups": groups}
