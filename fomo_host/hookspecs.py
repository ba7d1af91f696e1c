"""Every hook of fomo-host, under one project marker.

A plugin imports ``hookimpl`` from ``fomo_host`` and implements any of these.
The host calls every hook with keyword arguments only; an implementation may
accept fewer arguments than the spec lists, so hooks can grow new keyword
arguments without breaking existing plugins.

Registration hooks receive a ``register`` callable owned by the host, typed per kind
in :mod:`fomo_host.registration` (``MethodRegister``, ...), called with keywords::

    register(name="lora", factory="fomo_peft.adapters:LoRA", params=LoRAParams, description="...")

``name`` is how a spec refers to the component; ``params`` is a pydantic model
(``extra="forbid"``) of its settings; ``factory`` builds it (see
:mod:`fomo_host.components` for each kind's contract), given either as the object or
as a lazy reference ``"package.module:attribute"`` imported only when a run builds the
component. Plugin loading must stay cheap (``fomo-host plugins`` and ``validate
--schema-only`` answer in well under a second): a plugin's registration module imports
its ``Params`` models and nothing heavy (torch, open_clip, peft, ...), and names
factories that need heavy libraries by reference. ``description`` (one line, shown by
``fomo-host plugins``) defaults to the factory's docstring; a lazy reference needs it.
The host validates the call, stamps the providing distribution and rejects a name
another plugin already registered.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .process import ProcessInfo
    from .registration import (
        DatasetRegister,
        LauncherRegister,
        LoggerRegister,
        MergeOperatorRegister,
        MergerRegister,
        MethodRegister,
        MetricRegister,
        ModelRegister,
        OptimizerRegister,
        OrderingRegister,
        SchedulerRegister,
    )
    from .spec import RunSpec

PROJECT_NAME = "fomo_host"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# ----------------------------------------------------------------------------- registration


@hookspec
def register_models(register: ModelRegister) -> None:
    """Register model components.

    :param register: call once per model; the factory is ``factory(params, context)``
        returning a :class:`fomo_host.components.ModelBundle`.
    """


@hookspec
def register_datasets(register: DatasetRegister) -> None:
    """Register dataset components.

    :param register: call once per dataset component; the factory is
        ``factory(params, context)`` returning a list of
        :class:`fomo_host.data.ImageTextDataset`.
    """


@hookspec
def register_orderings(register: OrderingRegister) -> None:
    """Register stream orderings.

    :param register: call once per ordering; the factory is ``factory(params, context)``
        returning an :class:`fomo_host.components.Ordering` callable.
    """


@hookspec
def register_methods(register: MethodRegister) -> None:
    """Register update methods.

    :param register: call once per method; the factory is ``factory(params)`` returning
        an :class:`fomo_host.components.UpdateMethod`.
    """


@hookspec
def register_optimizers(register: OptimizerRegister) -> None:
    """Register optimizers (the spec's ``[optimizer]``: how the parameters a method trains move).

    :param register: call once per optimizer; the factory is ``factory(params)`` returning
        a :class:`fomo_host.components.OptimizerBuilder`, which builds each task's
        ``torch.optim.Optimizer`` over the method's parameter groups.
    """


@hookspec
def register_schedulers(register: SchedulerRegister) -> None:
    """Register learning-rate schedulers.

    :param register: call once per scheduler; the factory is ``factory(params)``
        returning a :class:`fomo_host.components.Scheduler` (a pure function).
    """


@hookspec
def register_mergers(register: MergerRegister) -> None:
    """Register merge schedules.

    :param register: call once per merger; the factory is ``factory(params)`` returning
        a :class:`fomo_host.components.Merger`.
    """


@hookspec
def register_merge_operators(register: MergeOperatorRegister) -> None:
    """Register merge operators: what a merger combines weights with (``merger.params.operator``).

    :param register: call once per operator; the factory is ``factory(params)`` returning a
        :class:`fomo_host.components.MergeOperator`; its ``params`` model derives from
        :class:`fomo_host.params.MergeOperatorParams`, whose class attributes say what a merge
        schedule may ask of it (per-model weights, how many models).
    """


@hookspec
def register_metrics(register: MetricRegister) -> None:
    """Register evaluation metrics.

    :param register: call once per metric; the factory is ``factory(params)`` returning
        a :class:`fomo_host.components.Metric`.
    """


@hookspec
def register_launchers(register: LauncherRegister) -> None:
    """Register study launchers (what starts the runs of ``fomo-host sweep``).

    :param register: call once per launcher; the factory is ``factory(params)`` returning
        a :class:`fomo_host.study.launching.Launcher`.
    """


@hookspec
def register_loggers(register: LoggerRegister) -> None:
    """Register loggers (what a spec turns on in ``run.loggers``: CSV files, TensorBoard, a tracker).

    :param register: call once per logger; the factory is ``factory(params, context)`` returning a
        :class:`fomo_host.components.Logger`, built by the host on the main process of a run that lists it
        (``context`` is a :class:`fomo_host.components.LoggerContext`); its ``params`` model derives from
        :class:`fomo_host.params.LoggerParams`, whose ``problems()`` says what would stop the logger here
        (checked by ``fomo-host validate`` and before a run creates anything).
    """


# ----------------------------------------------------------------------------- lifecycle
#
# Every lifecycle hook receives ``loggers``: the names of the loggers the spec turns on (``run.loggers``).
# The host builds those loggers (``register_loggers``) and drives them itself; the hooks let any plugin
# observe a run besides.
#
# A run may have several processes (``accelerate launch``). Each hook says where it runs, and
# receives ``process`` (a :class:`fomo_host.process.ProcessInfo`: ``rank``, ``world_size``,
# ``is_main``): a plugin that writes shared files (logs) does so where ``process.is_main``.
# Never read ``RANK`` from the environment: the host knows how the run was launched.


@hookspec
def on_run_start(
    run_dir: Path,
    spec: RunSpec,
    num_tasks: int,
    steps_per_task: int,
    resumed_from_task: int | None,
    loggers: list[str],
    process: ProcessInfo,
) -> None:
    """A run starts, or resumes: also called when ``fomo-host run --resume`` continues a run (then
    ``resumed_from_task`` says where). Called on every process, after the base model, data and budget
    are ready and before the base model's evaluation.

    :param run_dir: the run directory.
    :param spec: the validated spec.
    :param num_tasks: the number of tasks in the stream.
    :param steps_per_task: the optimizer steps every task trains for (a budget in MAF resolved).
    :param resumed_from_task: the first task to train when resuming, else None.
    :param loggers: the loggers the spec turns on (``run.loggers``).
    :param process: this process (``process.is_main`` writes the logs of a multi-process run).
    """


@hookspec
def on_task_start(
    run_dir: Path, task: int, num_tasks: int, steps: int, concepts: list[str], loggers: list[str], process: ProcessInfo
) -> None:
    """A task's training starts. Called on every process.

    :param task: the 0-based task index.
    :param steps: the number of optimizer steps this task trains for.
    :param concepts: the task's concepts as ``dataset::classname`` strings.
    :param loggers: the loggers the spec turns on (``run.loggers``).
    :param process: this process.
    """


@hookspec
def on_train_step(
    run_dir: Path,
    task: int,
    num_tasks: int,
    step: int,
    steps: int,
    global_step: int,
    loss: float,
    lr: float,
    loggers: list[str],
    process: ProcessInfo,
) -> None:
    """Training progressed: every ``run.log_every_steps`` optimizer steps and at a task's last step.

    Called on the main process only, and only for runs whose spec turns on a logger: the loss is read
    from the device just for this call, so a run without loggers never waits for it.

    :param task: the 0-based task index.
    :param step: the optimizer steps done in this task (1 to ``steps``).
    :param global_step: the optimizer steps done since the stream began.
    :param loss: the mean contrastive training loss over the steps since the previous call.
    :param lr: the learning rate of the last step (``optimizer.lr`` times the scheduler's factor).
    :param loggers: the loggers the spec turns on (``run.loggers``).
    :param process: this (main) process.
    """


@hookspec
def on_task_end(run_dir: Path, task: int, num_tasks: int, steps: int, mean_loss: float, loggers: list[str], process: ProcessInfo) -> None:
    """A task's training, end-of-task work and merge are done (before its evaluation). Called on every process.

    :param mean_loss: the mean training loss over the task's steps.
    :param loggers: the loggers the spec turns on (``run.loggers``).
    :param process: this process.
    """


@hookspec
def on_evaluation(run_dir: Path, record: dict[str, Any], loggers: list[str], process: ProcessInfo) -> None:
    """An evaluation finished; ``record`` is the line the main process wrote to ``results.jsonl``.

    Called on every process, each with the same record; ``loggers`` and ``process`` as above.
    """


@hookspec
def on_run_end(run_dir: Path, summary: dict[str, Any], loggers: list[str], process: ProcessInfo) -> None:
    """The run finished; ``summary`` is what was written to ``summary.json``.

    Called on every process; ``summary`` is empty on processes other than the main one (only it
    reads the results back). ``loggers`` and ``process`` as above.
    """


REGISTRATION_HOOKS: dict[str, str] = {
    "model": "register_models",
    "dataset": "register_datasets",
    "ordering": "register_orderings",
    "method": "register_methods",
    "optimizer": "register_optimizers",
    "scheduler": "register_schedulers",
    "merger": "register_mergers",
    "merge_operator": "register_merge_operators",
    "metric": "register_metrics",
    "launcher": "register_launchers",
    "logger": "register_loggers",
}
"""Kind of component -> the hook that registers it."""
