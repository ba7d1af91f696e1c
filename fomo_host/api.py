"""The public surface of fomo-host: everything a plugin may import, and nothing else.

Plugins (first-party ones included) import from this module only; every other
module of ``fomo_host`` is internal and may change without notice::

    from fomo_host.api import UpdateMethod, TaskInfo, hookimpl
"""

from __future__ import annotations

from .components import (
    BuildContext,
    EvaluationContext,
    MergeDecision,
    MergeInputs,
    Merger,
    Metric,
    ModelBundle,
    Ordering,
    ProgressBar,
    ProgressFactory,
    Scheduler,
    StateDict,
    StepOutput,
    TaskData,
    TaskInfo,
    TrainBatch,
    UpdateMethod,
    no_progress,
)
from .data import Concept, ImageTextDataset, Role, SampleSet, StagedImages, TaskType, TensorSampleSet
from .deployed import OPEN_CLIP_ARCHITECTURE, OPEN_CLIP_CONFIG, OPEN_CLIP_PREPROCESS
from .engine.training import OptimizerFactory
from .errors import FomoError, PluginError, SpecError
from .hookspecs import PROJECT_NAME, hookimpl
from .model_inputs import prepare_images
from .paths import UserPath, expand_path
from .registry import NoParams
from .spec import checks_files
from .weights import WeightStore, load_weights, save_weights

__all__ = [
    "OPEN_CLIP_ARCHITECTURE",
    "OPEN_CLIP_CONFIG",
    "OPEN_CLIP_PREPROCESS",
    "PROJECT_NAME",
    "BuildContext",
    "Concept",
    "EvaluationContext",
    "FomoError",
    "ImageTextDataset",
    "MergeDecision",
    "MergeInputs",
    "Merger",
    "Metric",
    "ModelBundle",
    "NoParams",
    "OptimizerFactory",
    "Ordering",
    "ProgressBar",
    "ProgressFactory",
    "PluginError",
    "Role",
    "SampleSet",
    "Scheduler",
    "SpecError",
    "StagedImages",
    "StateDict",
    "StepOutput",
    "TaskData",
    "TaskInfo",
    "TaskType",
    "TensorSampleSet",
    "TrainBatch",
    "UpdateMethod",
    "UserPath",
    "WeightStore",
    "checks_files",
    "expand_path",
    "hookimpl",
    "load_weights",
    "no_progress",
    "prepare_images",
    "save_weights",
]
