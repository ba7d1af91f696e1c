"""Conformance suites and helpers that plugin authors reuse in their own tests (``pip install fomo-host[testing]``).

A suite is a class of pytest tests: subclass it in your plugin's tests, name your
component in a class attribute, and the tests run against it as the host would use it::

    from fomo_host.testing import MethodConformance

    class TestMyMethod(MethodConformance):
        method_name = "my-method"

One suite per kind of component (methods, optimizers, mergers, merge operators, schedulers, metrics,
datasets, orderings, models, launchers) and one for loggers. Their tests carry the
``fomo_conformance`` marker (and the long ones ``slow``), which this package registers
with pytest, so ``pytest -m "not slow"`` works in a plugin's own repository.
"""

from .datasets import DatasetConformance
from .helpers import (
    build_component,
    lifecycle_hooks,
    make_spec,
    read_checkpoint,
    run_cli,
    stream_tasks,
    task_optimizer,
    validate_params,
)
from .launchers import LauncherConformance
from .loggers import LoggerConformance
from .merge_operators import MergeOperatorConformance
from .mergers import MergerConformance
from .methods import MethodConformance
from .metrics import MetricConformance
from .models import ModelConformance
from .optimizers import OptimizerConformance
from .orderings import OrderingConformance
from .schedulers import SchedulerConformance
from .toy_plugin import processes_seen, toy_environment
from .toys import ToyCLIP, toy_bundle, toy_classification_set, toy_retrieval_set

__all__ = [
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
    "ToyCLIP",
    "build_component",
    "lifecycle_hooks",
    "make_spec",
    "processes_seen",
    "read_checkpoint",
    "run_cli",
    "stream_tasks",
    "task_optimizer",
    "toy_bundle",
    "toy_classification_set",
    "toy_environment",
    "toy_retrieval_set",
    "validate_params",
]
