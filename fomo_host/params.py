"""Building blocks of components' ``Params`` models: no params, a nested choice of another component, merge-operator traits.

Nothing here imports torch: Params models load whenever plugins register.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator, model_validator

if TYPE_CHECKING:
    from .components import MergeOperator
    from .registry import Component, Registry


class NoParams(BaseModel):
    """The Params of a component that takes none."""

    model_config = ConfigDict(extra="forbid")


def registry_of(info: ValidationInfo) -> Registry:
    """The registry a validation runs against: the host passes its own in the validation context; a Params model
    validated directly (a plugin's own tests, a notebook) uses the installed plugins."""
    registry = (info.context or {}).get("registry")
    if registry is not None:
        return registry
    from .plugins import installed_plugins

    return installed_plugins().registry


class ComponentChoice(BaseModel):
    """A component of another kind chosen inside a component's Params: ``{ name = "...", params = { ... } }``, or just the name.

    Validation looks the name up in the registry and validates ``params`` against that
    component's own Params model, so a spec's errors name the full key path
    (``merger.params.operator.params.density``); afterwards ``params`` holds the validated
    Params instance and :meth:`build` builds the component. A subclass names the ``kind``.
    """

    model_config = ConfigDict(extra="forbid")

    kind: ClassVar[str]
    name: str = Field(description="the component's name")
    params: Any = Field(default_factory=dict, validate_default=True, description="the component's params")
    _component: Component | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _name_alone(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("name")
    @classmethod
    def _known(cls, name: str, info: ValidationInfo) -> str:
        registry = registry_of(info)
        if name not in registry.names(cls.kind):
            available = ", ".join(registry.names(cls.kind)) or "none (is its plugin installed?)"
            raise ValueError(f"unknown {cls.kind.replace('_', ' ')} {name!r}; available: {available}")
        return name

    @field_validator("params", mode="before")
    @classmethod
    def _params_validate(cls, raw: Any, info: ValidationInfo) -> Any:
        name = info.data.get("name")
        if name is None:  # the name was rejected already
            return raw
        component = registry_of(info).get(cls.kind, name)
        if isinstance(raw, BaseModel):
            raw = raw.model_dump(by_alias=True)
        return component.validate_params(raw, info.context)

    @model_validator(mode="after")
    def _remember_component(self, info: ValidationInfo) -> ComponentChoice:
        self._component = registry_of(info).get(self.kind, self.name)
        return self

    def build(self) -> Any:
        """The component, built by its factory from the validated params."""
        if self._component is None:
            raise RuntimeError(f"{type(self).__name__} {self.name!r} was not validated (construct it with model_validate)")
        return self._component.factory(self.params)


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


class MergeOperatorChoice(ComponentChoice):
    """A merge operator chosen in a merger's Params: ``operator = "ties"``, or with params
    ``operator = { name = "ties", params = { density = 0.2 } }``."""

    kind: ClassVar[str] = "merge_operator"

    @property
    def traits(self) -> type[MergeOperatorParams]:
        """The operator's Params class, whose class attributes are its traits."""
        if not isinstance(self.params, MergeOperatorParams):
            raise RuntimeError(f"merge operator {self.name!r} was not validated")
        return type(self.params)

    def build(self) -> MergeOperator:
        operator: MergeOperator = super().build()
        return operator


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
