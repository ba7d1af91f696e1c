"""The checks ``run`` makes before it trains; ``validate`` makes the same ones, so a spec it passes does not fail later.

Each check looks at something a typo or an impossible combination of settings can
break, and that would otherwise only fail (or, worse, quietly misbehave) once
training has started: a logger nobody provides or that could not write, a warm start without a pool to
pretrain on, a schedule whose phases do not fit the steps the budget gives, a
component whose constructor rejects its settings, a dataset no metric scores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import FomoError, SpecError
from ..plugins import PluginHost
from ..resolve import SpecComponents, resolve_loggers
from ..spec import RunSpec

if TYPE_CHECKING:
    from ..components import Scheduler
    from ..data import ImageTextDataset


def check_loggers(host: PluginHost, spec: RunSpec) -> None:
    """Every logger in run.loggers must be registered, its params valid, and able to work here (its Params' ``problems``).

    Runs before a run creates anything, so a tracker that would refuse its settings fails here, in one line naming the
    logger and the setting, instead of after the run directory exists.
    """
    from ..params import LoggerParams

    for resolved in resolve_loggers(spec, host.registry):
        params = resolved.params
        problems = params.problems() if isinstance(params, LoggerParams) else []
        if problems:
            raise SpecError(f"{resolved.where} (logger {resolved.name!r} of {resolved.component.provider}): {problems[0]}")


def check_warm_start_pool(spec: RunSpec, pretraining: Sequence[ImageTextDataset]) -> None:
    if spec.model.warm_start is not None and spec.model.warm_start.data is None and not pretraining:
        raise SpecError("model.warm_start needs a pretraining pool; no dataset has role 'pretraining' (see data.pretraining)")
    if spec.data.mixture.update == 0 and not pretraining:
        raise SpecError(
            "data.mixture.update = 0 (a pool-only control) needs a pretraining pool; no dataset has role 'pretraining' "
            "(see data.pretraining)"
        )


def check_schedule(name: str, scheduler: Scheduler, steps_per_task: int, num_tasks: int) -> None:
    """Evaluate the schedule at every step of the stream (a sample of a very long one): a pure function, microseconds a step.

    A scheduler that refuses its settings only once it knows the steps per task (warmup and
    cooldown given in steps that do not fit) fails here instead of at the first step; a factor
    that is not a finite non-negative number would train with a nonsense learning rate.
    """
    for task, step in schedule_points(steps_per_task, num_tasks):
        try:
            factor = float(scheduler(step, steps_per_task, task, num_tasks))
        except FomoError:
            raise
        except Exception as exc:
            raise FomoError(
                f"scheduler {name!r} fails at task {task + 1} step {step + 1} of {steps_per_task}: {type(exc).__name__}: {exc}; "
                "check scheduler.params"
            ) from exc
        if not math.isfinite(factor) or factor < 0:
            raise FomoError(
                f"scheduler {name!r} gives the learning-rate factor {factor} at task {task + 1} step {step + 1}; "
                "a factor must be finite and not negative; check scheduler.params"
            )


DRY_RUN_LIMIT = 200_000
"""Steps of a stream evaluated in full by the schedule dry run; longer streams are sampled (see :func:`schedule_points`)."""


def schedule_points(steps_per_task: int, num_tasks: int) -> list[tuple[int, int]]:
    """Every (task, step) of the stream, or for a stream longer than :data:`DRY_RUN_LIMIT` steps a sample of them.

    The sample keeps what a schedule's phases depend on: the first and last tasks, and in each
    the first and last thousand steps (warmups and cooldowns) and an even spread between.
    """
    if steps_per_task * num_tasks <= DRY_RUN_LIMIT:
        return [(task, step) for task in range(num_tasks) for step in range(steps_per_task)]
    tasks = sorted({*range(min(num_tasks, 3)), *range(max(num_tasks - 3, 0), num_tasks)})
    edge = min(1000, steps_per_task)
    spread = range(0, steps_per_task, max(1, steps_per_task // 1000))
    steps = sorted({*range(edge), *range(steps_per_task - edge, steps_per_task), *spread})
    return [(task, step) for task in tasks for step in steps]


def check_components(components: SpecComponents, evaluated: Sequence[ImageTextDataset], steps_per_task: int | None, num_tasks: int) -> None:
    """Build the components the loop builds (their constructors may refuse settings), dry-run the schedule, plan the evaluation.

    ``steps_per_task`` None skips the dry run (a budget in memory-adjusted FLOPs is only known once measured);
    no ``evaluated`` datasets skips the plan (``validate --schema-only`` builds none).
    """
    components.method.build()
    components.merger.build()
    scheduler = components.scheduler.build()
    if steps_per_task is not None:
        check_schedule(components.scheduler.name, scheduler, steps_per_task, num_tasks)
    from .evaluation import build_metrics, plan_evaluation  # torch: only where the full validation builds the model anyway

    metrics = build_metrics(components.metrics)
    if evaluated:
        plan_evaluation(evaluated, metrics)


def check_schema_level(host: PluginHost, spec: RunSpec, components: SpecComponents) -> None:
    """What ``validate --schema-only`` can check without data, checkpoint files or heavy imports.

    The loggers, and the schedule dry-run when the budget gives the steps without measuring
    (steps or samples per task), over ``data.num_tasks`` tasks (an ordering that forms its own
    tasks may make another number; the full ``validate`` checks with the real one and builds
    every component).
    """
    check_loggers(host, spec)
    fixed = spec.budget.fixed_steps(spec.run.batch_size)
    if fixed is not None:
        check_schedule(components.scheduler.name, components.scheduler.build(), fixed[1], spec.data.num_tasks)
