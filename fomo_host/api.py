"""The public surface of fomo-host: everything a plugin may import, and nothing else.

Plugins (first-party ones included) import from this module only; every other
module of ``fomo_host`` is internal and may change without notice::

    from fomo_host.api import UpdateMethod, TaskInfo, hookimpl

Importing this module is cheap: the names a plugin needs to *register* (``hookimpl``,
the ``Register`` protocols, ``NoParams``, errors, path and concept types) load at once,
while the names a plugin needs to *build* components (the component base classes,
data sets, weights; they import torch) load on first access. A plugin's registration
module and its ``Params`` models therefore stay free of torch, and ``fomo-host plugins``
or ``fomo-host validate --schema-only`` never pay for it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .choices import ComponentChoice, MergeOperatorChoice
from .concepts import Concept, Role, TaskType
from .errors import FomoError, PluginError, SpecError
from .hookspecs import PROJECT_NAME, hookimpl
from .output_path import OutputPathError, check_output_path
from .params import LoggerParams, MergeOperatorParams, NoParams
from .paths import UserPath, expand_path
from .process import ProcessInfo
from .registration import (
    DatasetRegister,
    LauncherRegister,
    LazyReference,
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
from .registry import Provider
from .run_request import RunRequest
from .spec import checks_files
from .study.launching import RunProcess, execute_run, start_run, stop_runs, thread_variables

if TYPE_CHECKING:
    from .components import (
        BuildContext,
        EvaluationContext,
        Launcher,
        LaunchEvents,
        Logger,
        LoggerContext,
        MergeDecision,
        MergeInputs,
        MergeOperator,
        Merger,
        Metric,
        ModelBundle,
        OptimizerBuilder,
        OptimizerContext,
        Ordering,
        ParamGroup,
        ProgressBar,
        ProgressFactory,
        Scheduler,
        StateDict,
        StepOutput,
        TaskData,
        TaskInfo,
        TrainBatch,
        UpdateMethod,
        needs_horizon,
        no_progress,
    )
    from .data import ImageTextDataset, SampleSet, StagedImages, TensorSampleSet
    from .deployed import OPEN_CLIP_ARCHITECTURE, OPEN_CLIP_CONFIG, OPEN_CLIP_PREPROCESS
    from .model_inputs import prepare_images
    from .testing import (
        DatasetConformance,
        LauncherConformance,
        LoggerConformance,
        MergeOperatorConformance,
        MergerConformance,
        MethodConformance,
        MetricConformance,
        ModelConformance,
        OptimizerConformance,
        OrderingConformance,
        SchedulerConformance,
    )
    from .weights import WeightStore, load_weights, save_weights

_LAZY: dict[str, str] = {
    **dict.fromkeys(
        (
            "BuildContext",
            "EvaluationContext",
            "LaunchEvents",
            "Launcher",
            "Logger",
            "LoggerContext",
            "MergeDecision",
            "MergeInputs",
            "MergeOperator",
            "Merger",
            "Metric",
            "ModelBundle",
            "OptimizerBuilder",
            "OptimizerContext",
            "Ordering",
            "ParamGroup",
            "ProgressBar",
            "ProgressFactory",
            "Scheduler",
            "StateDict",
            "StepOutput",
            "TaskData",
            "TaskInfo",
            "TrainBatch",
            "UpdateMethod",
            "needs_horizon",
            "no_progress",
        ),
        "fomo_host.components",
    ),
    **dict.fromkeys(("ImageTextDataset", "SampleSet", "StagedImages", "TensorSampleSet"), "fomo_host.data"),
    **dict.fromkeys(("OPEN_CLIP_ARCHITECTURE", "OPEN_CLIP_CONFIG", "OPEN_CLIP_PREPROCESS"), "fomo_host.deployed"),
    "prepare_images": "fomo_host.model_inputs",
    **dict.fromkeys(("WeightStore", "load_weights", "save_weights"), "fomo_host.weights"),
    **dict.fromkeys(
        (
            "DatasetConformance",
            "LauncherConformance",
            "LoggerConformance",
            "MergeOperatorConformance",
            "MergerConformance",
            "MethodConformance",
            "MetricConformance",
            "ModelConformance",
            "OptimizerConformance",
            "OrderingConformance",
            "SchedulerConformance",
        ),
        "fomo_host.testing",
    ),
}
"""Names that import torch (or more), by the module that defines them: loaded on first access."""


def component_provider(kind: str, name: str) -> Provider:
    """The installed distribution that provides a component: ``component_provider("method", "lora")`` gives its
    ``distribution`` and ``version`` (and the entry point, ``plugin``), as ``fomo-host plugins`` shows them.

    An unknown name, or one two plugins claim, is a :class:`SpecError` saying so.
    """
    from .plugins import installed_plugins

    return installed_plugins().registry.get(kind, name).provider


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "OPEN_CLIP_ARCHITECTURE",
    "OPEN_CLIP_CONFIG",
    "OPEN_CLIP_PREPROCESS",
    "PROJECT_NAME",
    "BuildContext",
    "ComponentChoice",
    "Concept",
    "DatasetConformance",
    "DatasetRegister",
    "EvaluationContext",
    "FomoError",
    "ImageTextDataset",
    "LazyReference",
    "LaunchEvents",
    "Launcher",
    "LauncherConformance",
    "LauncherRegister",
    "Logger",
    "LoggerConformance",
    "LoggerContext",
    "LoggerParams",
    "LoggerRegister",
    "MergeDecision",
    "MergeInputs",
    "MergeOperator",
    "MergeOperatorChoice",
    "MergeOperatorConformance",
    "MergeOperatorParams",
    "MergeOperatorRegister",
    "Merger",
    "MergerConformance",
    "MergerRegister",
    "MethodConformance",
    "MethodRegister",
    "Metric",
    "MetricConformance",
    "MetricRegister",
    "ModelBundle",
    "ModelConformance",
    "ModelRegister",
    "NoParams",
    "OptimizerBuilder",
    "OptimizerConformance",
    "OptimizerContext",
    "OptimizerRegister",
    "Ordering",
    "OrderingConformance",
    "OrderingRegister",
    "OutputPathError",
    "ParamGroup",
    "PluginError",
    "ProcessInfo",
    "Provider",
    "ProgressBar",
    "ProgressFactory",
    "Role",
    "RunProcess",
    "RunRequest",
    "SampleSet",
    "Scheduler",
    "SchedulerConformance",
    "SchedulerRegister",
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
    "check_output_path",
    "checks_files",
    "component_provider",
    "expand_path",
    "execute_run",
    "hookimpl",
    "load_weights",
    "needs_horizon",
    "no_progress",
    "prepare_images",
    "save_weights",
    "start_run",
    "stop_runs",
    "thread_variables",
]
