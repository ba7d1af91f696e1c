"""The ``register`` callable each registration hook receives, typed per kind of component.

A plugin registers a component by name, with its pydantic ``Params`` model and its
factory::

    from fomo_host.api import MethodRegister, hookimpl

    from .params import LoRAParams

    @hookimpl
    def register_methods(register: MethodRegister) -> None:
        register(name="lora", factory="my_plugin.adapters:LoRA", params=LoRAParams, description="Low-rank adapters ...")

``factory`` is either the factory itself or a *lazy reference* ``"package.module:attribute"``
that the host imports only when a run builds the component. Listing plugins and
validating a spec then import no more than the plugin's registration module and its
``Params`` models, so a component that needs a heavy library (open_clip, peft, ...)
costs nothing until it is used. A lazy factory needs ``description`` (the host does not
import it to read its docstring); a factory given as an object defaults to its docstring.

``default=True`` declares the component a spec gets when it names none of that kind (``method``,
``scheduler``, ``merger``, ``data.ordering``; for ``evaluation.metrics`` every metric one plugin declares,
in the order it registers them). The host names no component of its own: without a declared default, a
spec must name one. Two plugins declaring a default of the same kind make it a one-line error.

Nothing here imports torch: the component types appear in annotations only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from pydantic import BaseModel

if TYPE_CHECKING:
    from .components import (
        BuildContext,
        Launcher,
        Logger,
        LoggerContext,
        MergeOperator,
        Merger,
        Metric,
        ModelBundle,
        OptimizerBuilder,
        Ordering,
        Scheduler,
        UpdateMethod,
    )
    from .data import ImageTextDataset

LazyReference: TypeAlias = str
"""``"package.module:attribute"``: a factory imported when the component is first built."""

ModelFactory: TypeAlias = "Callable[[Any, BuildContext], ModelBundle]"
DatasetFactory: TypeAlias = "Callable[[Any, BuildContext], Sequence[ImageTextDataset]]"
OrderingFactory: TypeAlias = "Callable[[Any, BuildContext], Ordering]"
MethodFactory: TypeAlias = "Callable[[Any], UpdateMethod]"
OptimizerFactory: TypeAlias = "Callable[[Any], OptimizerBuilder]"
SchedulerFactory: TypeAlias = "Callable[[Any], Scheduler]"
MergerFactory: TypeAlias = "Callable[[Any], Merger]"
MergeOperatorFactory: TypeAlias = "Callable[[Any], MergeOperator]"
MetricFactory: TypeAlias = "Callable[[Any], Metric]"
LauncherFactory: TypeAlias = "Callable[[Any], Launcher]"
LoggerFactory: TypeAlias = "Callable[[Any, LoggerContext], Logger]"


class ModelRegister(Protocol):
    """``register`` of ``register_models``: ``factory(params, context)`` returns a :class:`ModelBundle`."""

    def __call__(
        self,
        *,
        name: str,
        factory: ModelFactory | LazyReference,
        params: type[BaseModel] | None = None,
        description: str | None = None,
        default: bool = False,
    ) -> None: ...


class DatasetRegister(Protocol):
    """``register`` of ``register_datasets``: ``factory(params, context)`` returns a list of :class:`ImageTextDataset`."""

    def __call__(
        self,
        *,
        name: str,
        factory: DatasetFactory | LazyReference,
        params: type[BaseModel] | None = None,
        description: str | None = None,
        default: bool = False,
    ) -> None: ...


class OrderingRegister(Protocol):
    """``register`` of ``register_orderings``: ``factory(params, context)`` returns an :class:`Ordering`."""

    def __call__(
        self,
        *,
        name: str,
        factory: OrderingFactory | LazyReference,
        params: type[BaseModel] | None = None,
        description: str | None = None,
        default: bool = False,
    ) -> None: ...


class MethodRegister(Protocol):
    """``register`` of ``register_methods``: ``factory(params)`` returns an :class:`UpdateMethod`.

    ``budget_reference=True`` declares the method whose peak training memory is the denominator of every
    method's memory multiplier (full fine-tuning, DESIGN §5); one method may declare it.
    """

    def __call__(
        self,
        *,
        name: str,
        factory: MethodFactory | LazyReference,
        params: type[BaseModel] | None = None,
        description: str | None = None,
        default: bool = False,
        budget_reference: bool = False,
    ) -> None: ...


class OptimizerRegister(Protocol):
    """``register`` of ``register_optimizers``: ``factory(params)`` returns an :class:`OptimizerBuilder`.

    The declared default (``default=True``) is also the optimizer the budget's reference method trains with.
    """

    def __call__(
        self,
        *,
        name: str,
        factory: OptimizerFactory | LazyReference,
        params: type[BaseModel] | None = None,
        description: str | None = None,
        default: bool = False,
    ) -> None: ...


class SchedulerRegister(Protocol):
    """``register`` of ``register_schedulers``: ``factory(params)`` returns a :class:`Scheduler` (a pure function)."""

    def __call__(
        self,
        *,
        name: str,
        factory: SchedulerFactory | LazyReference,
        params: type[BaseModel] | None = None,
        description: str | None = None,
        default: bool = False,
    ) -> None: ...


class MergerRegister(Protocol):
    """``register`` of ``register_mergers``: ``factory(params)`` returns a :class:`Merger`."""

    def __call__(
        self,
        *,
        name: str,
        factory: MergerFactory | LazyReference,
        params: type[BaseModel] | None = None,
        description: str | None = None,
        default: bool = False,
    ) -> None: ...


class MergeOperatorRegister(Protocol):
    """``register`` of ``register_merge_operators``: ``factory(params)`` returns a :class:`MergeOperator`; ``params``
    derives from :class:`MergeOperatorParams`."""

    def __call__(
        self,
        *,
        name: str,
        factory: MergeOperatorFactory | LazyReference,
        params: type[BaseModel] | None = None,
        description: str | None = None,
        default: bool = False,
    ) -> None: ...


class MetricRegister(Protocol):
    """``register`` of ``register_metrics``: ``factory(params)`` returns a :class:`Metric`."""

    def __call__(
        self,
        *,
        name: str,
        factory: MetricFactory | LazyReference,
        params: type[BaseModel] | None = None,
        description: str | None = None,
        default: bool = False,
    ) -> None: ...


class LauncherRegister(Protocol):
    """``register`` of ``register_launchers``: ``factory(params)`` returns a :class:`Launcher` that starts a study's runs."""

    def __call__(
        self,
        *,
        name: str,
        factory: LauncherFactory | LazyReference,
        params: type[BaseModel] | None = None,
        description: str | None = None,
        default: bool = False,
    ) -> None: ...


class LoggerRegister(Protocol):
    """``register`` of ``register_loggers``: ``factory(params, context)`` returns a :class:`Logger`; ``params`` derives from
    :class:`LoggerParams`."""

    def __call__(
        self,
        *,
        name: str,
        factory: LoggerFactory | LazyReference,
        params: type[BaseModel] | None = None,
        description: str | None = None,
        default: bool = False,
    ) -> None: ...
