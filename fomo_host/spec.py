"""The spec file: a TOML document validated by strict pydantic models.

Reading a spec goes: TOML -> ``--set`` overrides applied to the raw tables ->
:class:`RunSpec` (unknown keys rejected everywhere) -> every component's
``params`` validated against that component's own ``Params`` model. Errors name
the key path, e.g. ``optimizer.lr: Input should be greater than 0``. This module
holds the models and knows no plugin; :mod:`fomo_host.spec_loading` reads a spec
against the installed plugins.
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from .errors import SpecError


class StrictModel(BaseModel):
    """The base of every model of a spec or study file: an unknown key is an error, never ignored."""

    model_config = ConfigDict(extra="forbid", frozen=False)


class ComponentRef(StrictModel):
    """A component by name, with its settings."""

    name: str = Field(min_length=1)
    """The component's name, as an installed plugin registered it (``fomo-host plugins`` lists them)."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Settings of the component, checked against its own Params model (``fomo-host plugins NAME`` lists them)."""


RESULT_NEUTRAL_RUN_KEYS = ("output_dir", "loggers", "log_every_steps", "label", "keep_deployed", "checkpoint_every_steps")
"""run.* keys that change nothing a run computes: a run may be resumed with other values of them."""
RESULT_NEUTRAL_KEYS: tuple[tuple[str, ...], ...] = (
    ("data", "prefetch"),  # how batches are prepared never changes which batches a step sees
    ("data", "workers"),
    ("release",),  # which releases are published decides nothing that is trained or evaluated
)
"""Other keys outside a run's fingerprint, by their path."""
KEYS_ADDED_LATER: dict[tuple[str, ...], Any] = {
    ("evaluation", "split"): None,  # the validation split
    ("data", "updates"): [],  # updates of a finished run
    ("data", "train_tasks"): None,
    ("model", "warm_start", "data"): None,  # the base's own pretraining data (the pool where unset)
}
"""Keys added after runs were made, by their path, with the value that means "unused": there they are left out of the
fingerprint, so runs written before the key existed still resume and their studies still match. A key added later
goes here, or older runs stop matching."""


class RunSection(StrictModel):
    name: str = Field(default="run", min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    """The run's name: the run directory is output_dir/name-TIMESTAMP unless ``--output`` names one."""
    seed: int = Field(default=0, ge=0)
    """Seeds everything random: the warm start, the stream's order, every task's batches (re-seeded per task)."""
    output_dir: Path = Path("runs")
    """The folder new run directories are made in."""
    precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    """Mixed precision of forward passes: bf16 or fp16 autocast (fp16 with loss scaling, CUDA only), or none;
    auto: bf16 on a CUDA device that supports it, none elsewhere."""
    batch_size: int = Field(default=128, ge=1)
    """Training samples per optimizer step, over all processes together (each trains on its slice)."""
    cpu: bool = False
    """Force the CPU even where an accelerator is present."""
    compile: bool = False
    """torch.compile the trained model (with the adapters a method adds) and the method's extra loss; the first
    steps of a run then take longer while they compile."""
    activation_checkpointing: bool = False
    """Recompute each transformer block's activations in the backward pass instead of keeping them: far less
    memory (ViT-L/H at large batches on one GPU) for about a third more compute per step."""
    fsdp: bool = False
    """Shard parameters, gradients and optimizer state over the processes (FSDP; launch several with ``accelerate
    launch``): each holds 1/N of them. For methods that keep no tensors of their own (finetune, the locked towers,
    bitfit, lnfit)."""
    checkpoint_every_steps: int | None = Field(default=None, ge=1)
    """Also checkpoint inside a task every this many optimizer steps (long tasks of large models); a resumed run
    continues at the step exactly. None: checkpoints after each task only."""
    loggers: list[ComponentRef] = Field(default_factory=list)
    """Loggers to turn on, each ``{ name = "wandb", params = { mode = "offline" } }`` or just its name
    (``["csv", "tensorboard"]``); see ``fomo-host plugins --kind logger`` for the installed ones and their params."""
    log_every_steps: int = Field(default=10, ge=1)
    """How often (in optimizer steps) the training loss and learning rate reach the loggers; the loss is read
    from the device only then."""

    @field_validator("loggers", mode="before")
    @classmethod
    def _logger_names_alone(cls, value: Any) -> Any:
        """A logger given by its name alone is the logger with its default params."""
        return [{"name": item} if isinstance(item, str) else item for item in value] if isinstance(value, list) else value

    def logger_names(self) -> list[str]:
        """The names of the loggers the spec turns on, in its order (what the lifecycle hooks receive)."""
        return [ref.name for ref in self.loggers]

    label: str | None = Field(default=None, min_length=1)
    """How reports and figures name the run (legends, tables); default: the run directory's name."""
    keep_deployed: bool = False
    """Keep the deployed weights of every task under weights/ (for ``fomo-host export --task N``); the last
    task's are always kept."""


class WarmStart(StrictModel):
    """Pretrain the base model contrastively on the pretraining pool before the stream.

    The result is cached by a content hash of everything that determines it, so
    later runs (and the tests) load it instead of training again.
    """

    steps: int = Field(ge=1)
    """Optimizer steps of contrastive pretraining on the pool."""
    lr: float = Field(default=1e-3, gt=0)
    """Peak learning rate of AdamW, reached after warmup_steps and then annealed on a cosine to zero."""
    batch_size: int = Field(default=128, ge=2)
    """Pool samples per warm-start step."""
    weight_decay: float = Field(default=0.1, ge=0)
    """AdamW's decoupled weight decay of the warm start (matrices only; biases, norms and scales are not decayed)."""
    warmup_steps: int = Field(default=50, ge=0)
    """Steps of linear learning-rate warmup."""
    data: list[str] | None = Field(default=None, min_length=1)
    """Datasets whose training splits the base model pretrains on (names as in data.sources); none: the replay pool
    (data.pretraining). Naming more than the replay pool makes the pool a sliver of the base's pretraining, as it is
    for a web-scale model: the stream then replays part of what the base learnt, not all of it."""


class ModelSection(ComponentRef):
    warm_start: WarmStart | None = None
    """An optional warm start of the model before the stream; none: the base model is the model as built."""


class Mixture(StrictModel):
    """Shares of each batch drawn from the pretraining pool, the current task and the buffer of earlier tasks."""

    pretraining: float = Field(default=0.33, ge=0, le=1)
    """Share of each batch from the pretraining pool (replay of pretraining data)."""
    update: float = Field(default=0.34, ge=0, le=1)
    """Share of each batch from the current task's training data; 0 is a pool-only control: the stream's budget spent
    on pool replay alone (the tasks still set the evaluations)."""
    buffer: float = Field(default=0.33, ge=0, le=1)
    """Share of each batch from the buffer of all earlier tasks' data; at the first task it goes to the other two."""

    @model_validator(mode="after")
    def _sums_to_one(self) -> Mixture:
        total = self.pretraining + self.update + self.buffer
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"mixture shares must sum to 1, got {total:g}")
        if self.update == 0 and self.pretraining == 0:
            # the first task has no buffer yet: its batches would have no source at all
            raise ValueError("update = 0 (a pool-only control) needs pretraining > 0: the first task has no buffer to draw from")
        return self


class StreamUpdate(StrictModel):
    """Tasks an update appended to the stream: the concepts of these adaptation datasets, ordered by data.ordering and
    cut into ``num_tasks`` tasks (``fomo-host update`` writes these)."""

    adaptation: list[str] = Field(min_length=1)
    """The adaptation datasets whose concepts this update adds to the stream."""
    num_tasks: int = Field(default=1, ge=1)
    """Tasks this update's concepts are cut into."""


class DataSection(StrictModel):
    sources: list[ComponentRef] = Field(min_length=1)
    """Dataset components, each giving one or more named datasets with a role (pretraining, adaptation, zero_shot)."""
    pretraining: list[str] | None = None
    """Datasets forming the replay pool; default: every dataset whose role is pretraining."""
    adaptation: list[str] | None = None
    """Datasets whose concepts form the stream; default: every dataset whose role is adaptation."""
    zero_shot: list[str] | None = None
    """Held-out datasets measuring retention; default: every dataset whose role is zero_shot."""
    ordering: ComponentRef
    """How the stream's concepts are ordered; default: the ordering an installed plugin declares as the default."""
    num_tasks: int = Field(default=5, ge=1)
    """Tasks the stream is cut into, of near-equal numbers of concepts (an ordering may give the tasks itself)."""
    updates: list[StreamUpdate] = Field(default_factory=list)
    """Stream segments added by updates, after the tasks of the run's first adaptation datasets (see keeping-current)."""
    train_tasks: int | None = Field(default=None, ge=1)
    """Train only the first this many tasks of the stream; ``fomo-host update --tasks K`` trains K more. Default: all."""
    mixture: Mixture = Field(default_factory=Mixture)
    """How each training batch is shared between the pool, the current task and the buffer."""
    prefetch: int = Field(default=2, ge=0)
    """Training batches prepared ahead (gathered, tokenised, copied to the device) on a background thread while the
    current step runs; 0 prepares each batch in the training thread. The batches are the same either way."""
    workers: int = Field(default=0, ge=0)
    """DataLoader worker processes that read and decode training images (streamed datasets, cache = 'stream');
    0 reads them on the loader thread. The batches are the same either way."""


class BudgetSection(StrictModel):
    """Compute per task: give exactly one of samples_per_task, steps_per_task or maf_per_task."""

    samples_per_task: int | None = Field(default=None, ge=1)
    """Training samples per task, for every method alike: steps per task = ceil(samples / run.batch_size)."""
    steps_per_task: int | None = Field(default=None, ge=1)
    """Optimizer steps per task, for every method alike."""
    maf_per_task: float | None = Field(default=None, gt=0)
    """Memory-adjusted FLOPs per task (GFLOPs x memory multiplier, DESIGN §5); each method then trains
    budget / its MAF per step (see ``fomo-host budget``). The paper's ViT-B/16 budget: 1,420 full
    fine-tuning steps of 63,394.76 GFLOPs, about 9.0e7."""
    memory_measure: Literal["auto", "cuda", "analytic"] = "auto"
    """How the memory multiplier's peak memory is measured: cuda (torch.cuda.max_memory_allocated over real
    steps), analytic (bytes of the tensors a step holds, counted on the meta device; the same on every
    machine), auto (cuda where the run trains on a CUDA device, else analytic)."""

    def fixed_steps(self, batch_size: int) -> tuple[str, int] | None:
        """(the key that gave them, steps per task) where the steps need no measurement; None for a budget in MAF."""
        if self.steps_per_task is not None:
            return "steps_per_task", self.steps_per_task
        if self.samples_per_task is not None:
            return "samples_per_task", max(1, math.ceil(self.samples_per_task / batch_size))
        return None

    @model_validator(mode="after")
    def _exactly_one(self) -> BudgetSection:
        given = [value for value in (self.samples_per_task, self.steps_per_task, self.maf_per_task) if value is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of samples_per_task, steps_per_task or maf_per_task "
                "(to switch kinds with --set, replace the whole table: --set 'budget={steps_per_task=200}')"
            )
        return self


class OptimizerSection(ComponentRef):
    """How the parameters a method trains move: a registered optimizer (``fomo-host plugins --kind optimizer``) with
    its own ``params``, and the settings the host applies whatever the optimizer."""

    name: str = Field(min_length=1)
    """A registered optimizer; left out: the default an installed plugin declares."""
    lr: float = Field(default=1e-5, gt=0)
    """The peak learning rate; the scheduler multiplies it at every step."""
    weight_decay: float = Field(default=0.2, ge=0)
    """Weight decay of the trained matrices (never of 1-d tensors: norms, biases, the temperature)."""
    grad_clip: float | None = Field(default=1.0, gt=0)
    """Clip the global gradient norm to this value; none to switch clipping off."""
    reset_per_task: bool = True
    """Start every task with a fresh optimizer state; false keeps (and checkpoints) it across tasks."""


class EvaluationSection(StrictModel):
    metrics: list[ComponentRef] = Field(min_length=1)
    """The metrics every evaluation computes; default: the metrics an installed plugin declares as the default."""
    subset_fraction: float = Field(default=1.0, gt=0, le=1)
    """Share of each test set used between tasks; the first and last evaluations always use all of it."""
    batch_size: int = Field(default=512, ge=1)
    """Test samples per forward pass while evaluating."""
    split: Literal["validation"] | None = None
    """"validation": every evaluation also scores the datasets' validation splits (recorded beside the test scores, under
    "validation"), for tuning without looking at the test sets; unset: the test splits only."""


class ReleaseSection(StrictModel):
    """How a run's updates are released (``fomo-host releases``)."""

    min_A_ZS_change: float | None = Field(default=None, le=0)  # noqa: N815 (A_ZS is the paper's name)
    """Hold a release back (keep it unpublished) when its A_ZS fell by more than this from the last published release,
    e.g. -0.01; None: publish every release."""


class RunSpec(StrictModel):
    """A whole continual run."""

    run: RunSection = Field(default_factory=RunSection)
    """How the run is executed and recorded: seed, batch size, device and precision, outputs, loggers."""
    model: ModelSection
    """The model component (the base model theta_0) and an optional warm start."""
    data: DataSection
    """The datasets, the stream's tasks and the mixture of each batch."""
    budget: BudgetSection
    """Compute per task: exactly one of samples, steps or memory-adjusted FLOPs."""
    method: ComponentRef
    """The update method: what trains and how (full fine-tuning, adapters, regularisers, ...); default: the method an
    installed plugin declares as the default."""
    optimizer: OptimizerSection
    """The optimizer of every task and the settings the host applies whatever the optimizer."""
    scheduler: ComponentRef
    """The learning-rate schedule: a factor of optimizer.lr at every step of every task; default: the scheduler an
    installed plugin declares as the default."""
    merger: ComponentRef
    """The merger: after each task, the weights to train the next task from and the weights to deploy and evaluate;
    default: the merger an installed plugin declares as the default."""
    evaluation: EvaluationSection
    """How the deployed weights are evaluated before the stream and after every task."""
    release: ReleaseSection | None = None
    """How the run's updates are released (``fomo-host releases``); none: no release rule."""

    def to_toml(self) -> str:
        content = self.model_dump(mode="json")
        if not content["data"]["updates"]:
            del content["data"]["updates"]
        return tomli_w.dumps(_drop_none(content))

    def fingerprint(self) -> str:
        """A hash of everything that determines the run's results (not where it is written, what logs it, what it keeps,
        nor how it is named in reports)."""
        content = self.model_dump(mode="json")
        for path in [*(("run", key) for key in RESULT_NEUTRAL_RUN_KEYS), *RESULT_NEUTRAL_KEYS]:
            _pop_path(content, path)
        for path, unset in KEYS_ADDED_LATER.items():
            if _get_path(content, path) == unset:
                _pop_path(content, path)
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


def _get_path(content: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = content
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _pop_path(content: dict[str, Any], path: tuple[str, ...]) -> None:
    parent = _get_path(content, path[:-1]) if len(path) > 1 else content
    if isinstance(parent, dict):
        parent.pop(path[-1], None)


_MISSING = object()


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


# ----------------------------------------------------------------------------- reading


MAX_NESTING = 32
"""Deepest nesting of tables and arrays a spec may use; a spec needs a handful, and a limit far below
Python's recursion limit keeps every later step (copying, validation, writing) safe."""


def read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SpecError(f"{path}: no such spec file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the spec file: {exc.strerror or exc}") from None
    try:
        # utf-8-sig: a byte order mark (as some Windows editors write) is not part of the TOML
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(
            f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); TOML files are UTF-8, save it as UTF-8"
        ) from None
    raw = parse_toml(text, str(path))
    check_nesting(raw, str(path))
    return raw


def parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{source}: not valid TOML: {exc}") from None
    except RecursionError:
        raise SpecError(f"{source}: not valid TOML: nested too deeply (a spec nests at most {MAX_NESTING} levels)") from None


def check_nesting(value: Any, source: str) -> None:
    """Refuse tables and arrays nested deeper than :data:`MAX_NESTING` (checked without recursion)."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        node, depth = pending.pop()
        if depth > MAX_NESTING:
            raise SpecError(f"{source}: tables and arrays nested deeper than {MAX_NESTING} levels; a spec needs far fewer")
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        pending.extend((child, depth + 1) for child in children)


def non_finite_numbers(value: Any, path: str = "") -> list[str]:
    """Key paths of NaN and infinite floats anywhere in nested tables, arrays and models."""
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, float):
        return [] if math.isfinite(value) else [f"{path or '(top level)'} = {value}"]
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in non_finite_numbers(item, f"{path}.{key}" if path else str(key))]
    if isinstance(value, list | tuple):
        return [found for index, item in enumerate(value) for found in non_finite_numbers(item, f"{path}.{index}" if path else str(index))]
    return []


def refuse_booleans_for_numbers(model: type[BaseModel], raw: Any, source: str, prefix: str = "") -> None:
    """``true`` where a number belongs is refused (pydantic would read it as 1): ``num_tasks = true`` is a mistake, not a count."""
    if not isinstance(raw, dict):
        return
    for name, field in model.model_fields.items():
        key = field.alias or name
        if key not in raw:
            continue
        value, path = raw[key], f"{prefix}.{key}" if prefix else key
        options = [option for option in (get_args(field.annotation) or (field.annotation,)) if option is not type(None)]
        if isinstance(value, bool) and options and all(option in (int, float) for option in options):
            raise SpecError(f"{source}: {path}: {str(value).lower()} is a boolean; give a number")
        for option in options:
            if isinstance(option, type) and issubclass(option, BaseModel):
                refuse_booleans_for_numbers(option, value, source, path)
            elif get_origin(option) is list and isinstance(value, list):
                (item,) = get_args(option) or (None,)
                if item in (int, float) and any(isinstance(element, bool) for element in value):
                    index = next(i for i, element in enumerate(value) if isinstance(element, bool))
                    raise SpecError(f"{source}: {path}.{index}: {str(value[index]).lower()} is a boolean; give a number")
                if isinstance(item, type) and issubclass(item, BaseModel):
                    for index, element in enumerate(value):
                        refuse_booleans_for_numbers(item, element, source, f"{path}.{index}")


def refuse_non_finite(value: Any, source: str, prefix: str = "") -> None:
    """Every float of a spec and of every component's params must be finite: nan and inf are never a setting."""
    found = non_finite_numbers(value, prefix)
    if found:
        raise SpecError(f"{source}: {found[0]} is not a finite number; give a finite value")


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` -> (["a", "b", "c"], value); the value is read as TOML, else as a plain string."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # the shell passed bytes that are not UTF-8 (Python keeps them as lone surrogates)
        raise SpecError(f"--set {text!r}: not UTF-8 text") from None
    if "=" not in text:
        raise SpecError(f"--set {text!r}: expected KEY.PATH=VALUE")
    key, raw = text.split("=", 1)
    path = [part.strip() for part in key.strip().split(".")]
    if not all(path):
        raise SpecError(f"--set {text!r}: empty part in key path {key!r}")
    try:
        value = tomllib.loads(f"value = {raw.strip()}")["value"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    except RecursionError:
        raise SpecError(f"--set {key.strip()}: the value nests too deeply (a spec nests at most {MAX_NESTING} levels)") from None
    check_nesting(value, f"--set {key.strip()}")
    return path, value


def apply_override(raw: dict[str, Any], path: list[str], value: Any) -> None:
    """Set ``value`` at ``path`` in nested tables; integer parts index arrays of tables."""
    node: Any = raw
    dotted = ".".join(path)
    for depth, part in enumerate(path[:-1]):
        if isinstance(node, list):
            node = _list_item(node, part, dotted)
            continue
        if part not in node:
            node[part] = {}
        elif not isinstance(node[part], dict | list):
            raise SpecError(f"--set {dotted}: {'.'.join(path[: depth + 1])} is a value, not a table")
        node = node[part]
    last = path[-1]
    if isinstance(node, list):
        index = _index(last, len(node), dotted)
        node[index] = value
    else:
        node[last] = value


def _index(part: str, length: int, dotted: str) -> int:
    if not part.isdigit() or int(part) >= length:
        raise SpecError(f"--set {dotted}: {part!r} is not an index of an array of {length} items")
    return int(part)


def _list_item(node: list[Any], part: str, dotted: str) -> Any:
    return node[_index(part, len(node), dotted)]


def format_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """One line per problem: ``key.path: message``."""
    lines = []
    for error in exc.errors():
        location = ".".join(str(part) for part in (prefix, *error["loc"]) if part != "")
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see `fomo-host validate --help`)"
        elif error["type"] == "missing":
            message = "required key is missing"
        elif error["type"] == "value_error":
            # the validator's own message: pydantic's "Value error, " prefix adds nothing a user needs
            message = message.removeprefix("Value error, ")
        lines.append(f"{location or '(top level)'}: {message}")
    return "; ".join(lines)


def checks_files(info: ValidationInfo) -> bool:
    """Whether a params validator should look at the disk (paths exist, folders hold files).

    False under ``fomo-host validate --schema-only``, which checks a spec's keys and
    values without the user's data and checkpoints; every other validation looks.
    """
    return not (info.context or {}).get("schema_only", False)
