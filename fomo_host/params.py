"""Building blocks of components' ``Params`` models: no params, merge-operator traits, a logger's settings.

Nothing here imports torch: Params models load whenever plugins register. The registry checks a component's Params
against these bases, so this module knows no registry; a nested choice of another component, which validates against
one, is in :mod:`fomo_host.choices`.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class NoParams(BaseModel):
    """The Params of a component that takes none."""

    model_config = ConfigDict(extra="forbid")


class MergeOperatorParams(BaseModel):
    """The base of every merge operator's Params: its class attributes say what the merge schedules may ask of the operator.

    Schedules check these when a spec is validated (a two-model operator where every
    checkpoint is merged is an error before the run, not during it).
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    takes_weights: ClassVar[bool] = False
    """The operator uses per-model weights (a schedule's ``weight``); otherwise every model has an equal say."""
    max_models: ClassVar[int | None] = None
    """The most models it merges at once (SLERP: 2); None for any number."""
    base_as_model: ClassVar[bool] = True
    """theta_0 itself may be one of the merged models (FT-merge merges theta_0 with the fine-tuned model)."""


class LoggerParams(BaseModel):
    """The base of every logger's Params: its settings as spec keys (``run.loggers.N.params``), plus what would stop it here.

    A tracker's own environment variables (``WANDB_PROJECT``, ``MLFLOW_TRACKING_URI``, ...) stay what
    they are to the tracker library: the fallback of a setting the spec leaves unset.
    """

    model_config = ConfigDict(extra="forbid")

    def problems(self) -> list[str]:
        """What would stop the logger on this machine (a missing package, a store it cannot write, a setting its library
        refuses), one line each naming the setting; checked by ``fomo-host validate`` and by ``run`` before it creates
        anything. The default finds none."""
        return []
