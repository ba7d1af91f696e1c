"""A nested choice of another component inside a component's Params (``operator = { name = "ties", params = {...} }``).

Validating a choice looks its name up in a registry (the host's, passed in the validation context, or the installed
plugins'), so this module sits above the registry and the plugin manager, unlike the plain bases in
:mod:`fomo_host.params`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from .params import MergeOperatorParams
from .plugins import installed_plugins
from .registry import Component, Registry

if TYPE_CHECKING:
    from .components import MergeOperator


def registry_of(info: ValidationInfo) -> Registry:
    """The registry a validation runs against: the host passes its own in the validation context; a Params model
    validated directly (a plugin's own tests, a notebook) uses the installed plugins."""
    registry = (info.context or {}).get("registry")
    if registry is not None:
        return registry
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
