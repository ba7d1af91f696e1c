"""The contracts between the host and its components, one section per kind.

A plugin registers a *factory* per component: ``factory(params, context)`` for
models, datasets, orderings and loggers (which are built once), and ``factory(params)`` for
methods, optimizers, schedulers, mergers, metrics and launchers (which the host calls as it runs).
``params`` is an instance of the component's own pydantic ``Params`` model,
already validated against the spec.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import torch
from torch import nn

from .data import Concept, ImageTextDataset
from .process import SINGLE_PROCESS, ProcessInfo

if TYPE_CHECKING:
    from .run_request import RunRequest
    from .weights import WeightStore

StateDict = dict[str, torch.Tensor]


# ----------------------------------------------------------------------------- models


@dataclass
class ModelBundle:
    """A CLIP-style model with what the host needs to feed it.

    ``model(images, tokens)`` must return ``(image_features, text_features,
    logit_scale)`` with normalised features (open_clip's ``CLIP.forward``), and
    ``model.encode_image`` / ``model.encode_text`` accept ``normalize=True``.
    Images reach the model as ``(uint8 / 255 - mean) / std``, computed on the device.
    """

    model: nn.Module
    tokenizer: Callable[[Sequence[str]], torch.Tensor]
    image_size: int
    image_mean: tuple[float, float, float]
    image_std: tuple[float, float, float]
    name: str = ""
    info: dict[str, Any] = field(default_factory=dict)


class ProgressBar(Protocol):
    """One piece of long work as the host shows it."""

    def advance(self, amount: int = 1, note: str | None = None) -> None:
        """``amount`` more units done; ``note`` replaces the text shown beside the bar."""
        ...


ProgressFactory = Callable[[str, int], AbstractContextManager[ProgressBar]]
"""``progress(description, total)``: a context manager giving a :class:`ProgressBar` over ``total`` units."""


class SilentBar:
    def advance(self, amount: int = 1, note: str | None = None) -> None:
        pass


@contextmanager
def no_progress(description: str, total: int) -> Iterator[ProgressBar]:
    """A progress factory that shows nothing (a component built outside a run, e.g. in a test)."""
    yield SilentBar()


@dataclass
class BuildContext:
    """What a model, dataset or ordering factory may use when it is built."""

    seed: int
    cache_dir: Path
    image_size: int | None = None
    """The model's input resolution (known when datasets are built)."""
    datasets: Mapping[str, ImageTextDataset] = field(default_factory=dict)
    """Every dataset of the run by name (known when the ordering is built)."""
    bundle: ModelBundle | None = None
    """The base model (known when the ordering is built: similarity, performance orderings)."""
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    progress: ProgressFactory = no_progress
    """Shows long work (decoding a dataset the first time): ``with context.progress("decoding", total) as bar:
    bar.advance()``. In a run: a bar on a terminal, a plain line every 30 s elsewhere; silent on other processes."""
    process: ProcessInfo = SINGLE_PROCESS
    """This process's rank among the run's processes: every process builds the components."""


# ----------------------------------------------------------------------------- orderings

OrderingFactory = Callable[[Any, BuildContext], "Ordering"]


class Ordering(Protocol):
    """Sorts the stream's concepts.

    Returns either one ordered list (the host cuts it into tasks of near-equal
    size) or a list of tasks, each a list of concepts (the ordering decides the
    cut itself, e.g. one task per dataset).
    """

    def __call__(self, concepts: Sequence[Concept], num_tasks: int) -> list[Concept] | list[list[Concept]]: ...


# ----------------------------------------------------------------------------- methods


@dataclass
class TaskInfo:
    """Where the stream stands when a task starts or ends."""

    index: int
    num_tasks: int
    steps: int
    concepts: list[Concept]


@dataclass
class TrainBatch:
    """One training batch on the device, already normalised and tokenised."""

    images: torch.Tensor
    tokens: torch.Tensor


@dataclass
class StepOutput:
    """The model's outputs on a batch and the contrastive loss computed from them."""

    image_features: torch.Tensor
    text_features: torch.Tensor
    logit_scale: torch.Tensor
    contrastive_loss: torch.Tensor


class TaskData(Protocol):
    """Access to the current task's training batches (for end-of-task work such as a Fisher)."""

    def batches(self, count: int) -> Iterator[TrainBatch]: ...

    def loss(self, model: nn.Module, batch: TrainBatch) -> torch.Tensor:
        """The training loss (contrastive, with the learnable temperature) on a batch."""
        ...

    def sample_losses(self, model: nn.Module, batch: TrainBatch) -> Iterator[torch.Tensor]:
        """Each of this process's samples' share of the batch's contrastive loss, one scalar at a time (per-sample gradients).

        A sample's share is half the cross-entropy of its image's row plus half that of its
        caption's column of the global batch's logit matrix; it is differentiable through the
        sample's own image and caption, the other samples entering as fixed candidates.
        """
        ...


@dataclass
class ParamGroup:
    """Trainable parameters the optimizer treats alike (what :meth:`UpdateMethod.param_groups` returns).

    The host splits every group into its matrices (weight-decayed) and its 1-d tensors (norms,
    biases, the temperature: never decayed) and sets its learning rate at every step to
    ``optimizer.lr`` x the scheduler's factor x ``lr_scale``; how the parameters then move is
    the optimizer component's business (:class:`OptimizerBuilder`).
    """

    params: list[nn.Parameter]
    lr_scale: float = 1.0
    """Multiplies the scheduled learning rate of this group."""
    weight_decay: float | None = None
    """The weight decay of this group's matrices; None: the spec's ``optimizer.weight_decay``."""


class UpdateMethod(abc.ABC):
    """Decides what is trained and how.

    The engine calls, in order: :meth:`prepare` once, then per task
    :meth:`trainable_parameters`, :meth:`param_groups`, per step
    :meth:`extra_loss`, :meth:`after_backward` and :meth:`after_optimizer_step`,
    and :meth:`end_task`.
    Weights move in and out of the method through :meth:`export_weights` and
    :meth:`import_weights`, which always speak the base model's parameter names,
    so mergers and checkpoints see full weights whatever the method wraps.
    """

    supports_fsdp: ClassVar[bool] = False
    """True for a method the engine may train with the model sharded over processes (``run.fsdp``): it keeps no
    tensors of its own and uses the default :meth:`export_weights` and :meth:`import_weights` (the engine then
    gathers and scatters whole weights itself)."""

    def prepare(self, model: nn.Module) -> nn.Module:
        """Called once per process before the first task trained in it, and so also when a run resumes
        (``fomo-host run --resume``): then the checkpoint's model state and :meth:`load_state_dict` follow,
        so whatever ``prepare`` adds (adapters) must have the same names and shapes as in the run that
        wrote the checkpoint. May wrap or modify the model (adapters); the random numbers it draws are
        seeded by the run's seed alone."""
        return model

    @abc.abstractmethod
    def trainable_parameters(self, model: nn.Module, task: TaskInfo) -> list[tuple[str, nn.Parameter]]:
        """The parameters trained in this task; the engine freezes all others."""

    def param_groups(self, parameters: list[tuple[str, nn.Parameter]], task: TaskInfo) -> list[ParamGroup]:
        """How this task's trainable ``parameters`` (what :meth:`trainable_parameters` returned) are grouped for the
        optimizer: by default one group of all of them. Every trainable parameter must be in exactly one group.

        A method says *what* trains and with which learning-rate scale and weight decay; *how* it moves (AdamW,
        8-bit AdamW, GaLore, a schedule-free rule, ...) is the spec's ``[optimizer]``, a component of its own.
        """
        return [ParamGroup([parameter for _, parameter in parameters])]

    def extra_loss(self, model: nn.Module, batch: TrainBatch, output: StepOutput) -> torch.Tensor | None:
        """A term added to the contrastive loss (a regulariser), or None."""
        return None

    def after_backward(self, model: nn.Module) -> None:
        """Called after every backward pass, before gradient clipping and the optimizer step.

        ``.grad`` holds the gradient of the contrastive loss plus :meth:`extra_loss`, unscaled
        (mixed precision) and not yet clipped: the raw gradient a path integral needs.
        """

    def after_optimizer_step(self, model: nn.Module) -> None:
        """Called after every optimizer step, once the gradients are cleared (path integrals, projections)."""

    def end_task(self, model: nn.Module, task: TaskInfo, data: TaskData) -> None:
        """End-of-task work (Fisher information, importance, merging an adapter)."""

    def export_weights(self, model: nn.Module) -> StateDict:
        """The model's full weights under the base model's names (adapters folded in)."""
        return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}

    def import_weights(self, model: nn.Module, weights: Mapping[str, torch.Tensor]) -> None:
        """Make the model compute with ``weights`` (full weights under the base names)."""
        model.load_state_dict(dict(weights), strict=True)

    def state_dict(self) -> dict[str, Any]:
        """The method's own state for a checkpoint (tensors and plain values).

        Taken after every task and, with ``run.checkpoint_every_steps``, inside a task too: it must then hold
        whatever later steps of the task depend on (anchors taken at the task's start, running sums).
        """
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned.

        Called once the model is prepared; resuming inside a task, called again after that task's
        :meth:`trainable_parameters`, so that what the task's setup made is overwritten with the saved values.
        """


# ----------------------------------------------------------------------------- optimizers


@dataclass(frozen=True)
class OptimizerContext:
    """What an optimizer is built with besides its own params: the settings the host applies, the device, the names."""

    lr: float
    """``optimizer.lr``, the peak learning rate: the host sets every group's ``lr`` before each step."""
    weight_decay: float
    """``optimizer.weight_decay``; each group already carries its own ``weight_decay`` (0 for 1-d tensors)."""
    device: torch.device
    names: Mapping[int, str] = field(default_factory=dict, repr=False)
    """``id(parameter)`` -> the parameter's name in the model, for every trained parameter."""

    def name_of(self, parameter: torch.Tensor) -> str:
        """The model's name for a trained parameter (``visual.transformer.resblocks.0.attn.in_proj_weight``)."""
        return self.names[id(parameter)]


class OptimizerBuilder(abc.ABC):
    """An optimizer component: how the trained parameters move (AdamW, 8-bit AdamW, GaLore, schedule-free, Lion, ...).

    The engine calls :meth:`build` at the start of every task, over the parameter groups the
    method chose (:meth:`UpdateMethod.param_groups`), each split by the host into matrices and
    1-d tensors. Around the task's steps it calls :meth:`train_mode` (after the optimizer's state
    was restored, before the first step) and :meth:`eval_mode` (after the last step, before
    anything reads the weights: the method's end-of-task work, the merger, evaluation, the
    checkpoint between tasks). A checkpoint inside a task is taken in training mode and resumes
    in it. Gradient clipping, the learning-rate schedule and mixed-precision loss scaling stay
    with the host; the optimizer's ``state_dict`` is what checkpoints keep, so it must round-trip
    exactly through ``load_state_dict``.
    """

    @abc.abstractmethod
    def build(self, groups: list[dict[str, Any]], context: OptimizerContext) -> torch.optim.Optimizer:
        """The task's optimizer over ``groups`` (torch parameter groups: ``params``, ``weight_decay``, ``lr_scale``),
        built with ``lr=context.lr``; extra per-group options an optimizer needs may be added to the groups."""

    def train_mode(self, optimizer: torch.optim.Optimizer) -> None:
        """Put the parameters in their training form (schedule-free optimizers train at another point than they
        evaluate); called before a task's first step, also when a run resumes inside a task, where the parameters
        and the state are already in training form: then it must change nothing."""

    def eval_mode(self, optimizer: torch.optim.Optimizer) -> None:
        """Put the parameters in the form the model is evaluated, merged and kept in; called after a task's last step."""


# ----------------------------------------------------------------------------- schedulers


class Scheduler(Protocol):
    """A pure function: the learning-rate factor (multiplying the spec's lr) at a step.

    A scheduler whose factor never depends on ``num_tasks`` declares ``needs_horizon = False`` (a class
    attribute): only runs with such a scheduler can be updated with more tasks (``fomo-host update``).
    One that declares nothing is taken to need the horizon.
    """

    def __call__(self, step: int, steps_per_task: int, task: int, num_tasks: int) -> float: ...


def needs_horizon(scheduler: object) -> bool:
    """Whether a scheduler's factor may depend on the number of tasks (its ``needs_horizon``; undeclared: it may)."""
    return bool(getattr(scheduler, "needs_horizon", True))


# ----------------------------------------------------------------------------- mergers


@dataclass
class MergeInputs:
    """What a merger sees after a task.

    ``base`` is theta_0 and ``finetuned`` the weights at the end of this task's
    training: both are read-only (never modify them in place). ``store`` keeps
    state dicts on disk for the merger's own history; read them back lazily.

    Under several processes (``accelerate launch``) every process calls
    ``after_task`` with the same inputs and must return the same decision. Every
    process may write the store: a write goes to a temporary file of its own and
    is renamed into place, so processes saving one key at once leave one complete
    file (write the same content), or each process keeps its own keys (the
    first-party mergers suffix them with ``process.rank``). Write a key once: the
    host's checkpoint records each stored file's checksum, and a key rewritten after
    a checkpoint makes a resume from it refuse rather than read the newer content.
    """

    task: int
    num_tasks: int
    base: StateDict
    finetuned: StateDict
    store: WeightStore
    process: ProcessInfo = SINGLE_PROCESS


@dataclass
class MergeDecision:
    """The weights to train the next task from, and the weights to deploy (evaluate).

    ``None`` means "the fine-tuned model as it is": for ``train_from`` the live
    model (with any adapter state) simply continues; for ``deploy`` the
    fine-tuned weights are evaluated.
    """

    train_from: StateDict | None = None
    deploy: StateDict | None = None


class Merger(abc.ABC):
    """Decides, after each task, the weights to continue from and those to deploy."""

    @abc.abstractmethod
    def after_task(self, inputs: MergeInputs) -> MergeDecision: ...

    def state_dict(self) -> dict[str, Any]:
        """Small state for a checkpoint (weights belong in the store, not here)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


# ----------------------------------------------------------------------------- merge operators


class MergeOperator(abc.ABC):
    """Merges models relative to the base weights theta_0 (task vectors tau_i = theta_i - theta_0); a merger's tool.

    Called as ``operator(base, models, weights, model_ids)`` and returns a new state dict with
    the base's keys and dtypes, modifying nothing it is given:

    - ``models`` (oldest first) may load each model from disk on every access (a merger's
      history): walk it a model at a time and keep only what you need, so memory stays flat
      in the number of models;
    - ``weights`` (one per model, summing to 1) matter to operators whose Params say
      ``takes_weights``; ``None`` means equal weights;
    - ``model_ids`` name each model stably across merges (a task's checkpoint keeps its id),
      for operators that draw randomness per model (DARE's drop masks).

    What a schedule may ask of an operator (weights, how many models) is declared by its
    Params class, a :class:`fomo_host.params.MergeOperatorParams`, and checked when a spec
    is validated. Mergers call operators under ``torch.no_grad()``.
    """

    @abc.abstractmethod
    def __call__(
        self, base: StateDict, models: Sequence[StateDict], weights: Sequence[float] | None, model_ids: Sequence[int]
    ) -> StateDict: ...


# ----------------------------------------------------------------------------- metrics


@dataclass
class EvaluationContext:
    """What a metric needs besides the model and dataset."""

    device: torch.device
    batch_size: int
    autocast: Callable[[], Any]
    """A context manager factory for the run's precision."""
    subset: torch.Tensor | None = None
    """Test indices to use (a subset between tasks); None means the full set."""


class Metric(abc.ABC):
    """Evaluates a model on one dataset's test split.

    ``applies_to`` selects the datasets it runs on; ``primary`` names the value
    that enters A_KA / A_ZS for those datasets (top-1 accuracy for
    classification, recall@5 for retrieval).
    """

    primary: str

    @abc.abstractmethod
    def applies_to(self, dataset: ImageTextDataset) -> bool: ...

    @abc.abstractmethod
    def __call__(self, bundle: ModelBundle, dataset: ImageTextDataset, context: EvaluationContext) -> dict[str, float]: ...


# ----------------------------------------------------------------------------- loggers


@dataclass(frozen=True)
class LoggerContext:
    """What a logger is built with: the run it logs.

    ``spec`` is the validated :class:`fomo_host.spec.RunSpec`; ``resumed_from_task`` is the first task a resumed
    run trains again (None for a fresh run): a logger that keeps files drops what it logged for later tasks.
    """

    run_dir: Path
    spec: Any
    num_tasks: int
    steps_per_task: int
    resumed_from_task: int | None = None


class Logger(abc.ABC):
    """Writes a run's progress somewhere (files in the run directory, a tracker), without changing the run.

    The host builds each logger a spec turns on (``run.loggers``) when the run starts, on the main process
    only, and calls these methods as the run goes; ``close`` always ends it (after ``run_end``, or when the
    run stops early). Tasks are 0-based here as in the hooks; a logger counts as people do if it likes.
    """

    def task_start(self, task: int, concepts: list[str]) -> None:
        """A task's training starts; ``concepts`` as ``dataset::classname``."""

    def train_step(self, task: int, step: int, global_step: int, loss: float, lr: float) -> None:
        """Every ``run.log_every_steps`` optimizer steps and at a task's last: the mean loss since the last call, the lr."""

    def task_end(self, task: int, steps: int, mean_loss: float) -> None:
        """A task's training, end-of-task work and merge are done."""

    @abc.abstractmethod
    def evaluation(self, record: dict[str, Any]) -> None:
        """An evaluation finished; ``record`` is the line written to ``results.jsonl``."""

    def run_end(self, summary: dict[str, Any]) -> None:
        """The run finished; ``summary`` is what was written to ``summary.json``."""

    def close(self) -> None:
        """Release what the logger holds (files, a tracker run); called once, last."""


# ----------------------------------------------------------------------------- launchers
# A launcher never trains anything itself: for each RunRequest (fomo_host.run_request, light, so the
# sweep and the reports that read a study need no torch) it starts ``fomo-host run`` (or ``accelerate
# launch ... fomo-host run`` for a run over several GPUs) wherever it places runs, through
# ``fomo_host.api.execute_run`` or ``start_run``, and reports each run's start and end to the sweep
# through LaunchEvents. Whether a run starts fresh or resumes is decided when it starts, from its run
# directory: a run that holds a checkpoint resumes from it, so a run requeued by a cluster after a time
# limit continues where it stopped.


class LaunchEvents(Protocol):
    """How a launcher tells the sweep about its runs; safe to call from any thread."""

    def started(self, request: RunRequest, job: str) -> None:
        """The run started (or was queued on a cluster); ``job`` names it there: ``pid 4242``, ``slurm job 123_4``, ..."""

    def finished(self, request: RunRequest, returncode: int | None, error: str | None = None) -> None:
        """The run ended with ``returncode``; ``None`` when it could not be run or was lost, with ``error`` saying why."""


class Launcher(abc.ABC):
    """Starts the runs of a study: on this machine, on a Ray cluster, as Slurm jobs, ...

    A launcher is built from its validated ``Params`` (``factory(params)``). The
    sweep calls :meth:`check` before any run starts, then :meth:`launch` once
    with every run still to do.
    """

    def check(self) -> None:  # noqa: B027 - most launchers have nothing to check
        """Raise :class:`fomo_host.errors.FomoError` (one line) if the launcher cannot run here: a missing package,
        more GPUs asked for than there are, no cluster at the address. Called before anything starts."""

    def describe(self) -> str:
        """One line for the sweep's header, e.g. ``2 runs at a time, 1 thread each``."""
        return ""

    @abc.abstractmethod
    def launch(self, requests: Sequence[RunRequest], events: LaunchEvents, work_dir: Path) -> None:
        """Run every request once, through :func:`execute_run` or :func:`start_run`, and return when all have ended.

        Call ``events.started`` when a run starts and ``events.finished`` when it ends, for every
        request. A run that fails is reported and the others go on; a failure to start one is
        reported as ``finished(request, None, error)``, never raised. ``work_dir`` is the
        launcher's own folder in the study directory (job scripts, cluster logs). On
        ``KeyboardInterrupt`` stop the runs still going (each keeps its last checkpoint) and re-raise.
        """
