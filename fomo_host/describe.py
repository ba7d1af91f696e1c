"""What a component's Params model says, as rows a person reads: key, type, default, range, description.

``fomo-host plugins NAME`` prints these; they come from the pydantic model itself, so
the listing cannot disagree with what validation accepts.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from dataclasses import dataclass
from typing import Any

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from .choices import ComponentChoice

CONSTRAINTS: tuple[tuple[type, str, str], ...] = (
    (annotated_types.Gt, "gt", "> {}"),
    (annotated_types.Ge, "ge", ">= {}"),
    (annotated_types.Lt, "lt", "< {}"),
    (annotated_types.Le, "le", "<= {}"),
    (annotated_types.MinLen, "min_length", "length >= {}"),
    (annotated_types.MaxLen, "max_length", "length <= {}"),
)


@dataclass(frozen=True)
class ParamRow:
    """One key of a Params model."""

    key: str
    type: str
    default: str
    """``required`` when the key has no default."""
    range: str
    description: str

    def as_record(self) -> dict[str, str]:
        return {"key": self.key, "type": self.type, "default": self.default, "range": self.range, "description": self.description}


def describe_params(model: type[BaseModel]) -> list[ParamRow]:
    """One row per key, in declaration order, under the name a spec uses (the alias where there is one)."""
    return [_row(field.alias or name, field) for name, field in model.model_fields.items()]


def _row(key: str, field: FieldInfo) -> ParamRow:
    return ParamRow(key, type_name(field.annotation), _default(field), _range(field), (field.description or "").strip())


def type_name(annotation: Any) -> str:
    """A type as a spec writer reads it: ``int``, ``list[int] | 'all'``, ``'std' | 'left'``, a choice of component."""
    if annotation is None or annotation is type(None):
        return "none"
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(repr(value) for value in arguments)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(argument) for argument in arguments)
    if origin is typing.Annotated:
        return type_name(arguments[0])
    if origin is not None:
        inner = ", ".join(type_name(argument) for argument in arguments)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if inspect.isclass(annotation) and issubclass(annotation, ComponentChoice):
        return f"{annotation.kind.replace('_', ' ')}: name or {{ name, params }}"
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        keys = ", ".join(field.alias or name for name, field in annotation.model_fields.items())
        return f"{{ {keys} }}"
    name = getattr(annotation, "__name__", None)
    return name if name is not None else re.sub(r"\btyping\.", "", str(annotation))


def field_default(field: FieldInfo) -> tuple[str | None, Any]:
    """A field's default: ``("computed", None)`` for a factory of the validated data (nothing to show before
    validation), ``("required", None)`` for none, else ``(None, value)``."""
    if field.default_factory is not None:
        try:
            return None, field.default_factory()  # type: ignore[call-arg]
        except TypeError:
            return "computed", None
    if field.default is PydanticUndefined:
        return "required", None
    return None, field.default


def _default(field: FieldInfo) -> str:
    word, value = field_default(field)
    if word is not None:
        return word
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", by_alias=True)
    return "none" if value is None else repr(value) if isinstance(value, str) else str(value)


def _range(field: FieldInfo) -> str:
    parts = []
    for constraint in field.metadata:
        for kind, attribute, text in CONSTRAINTS:
            if isinstance(constraint, kind):
                parts.append(text.format(getattr(constraint, attribute)))
    return ", ".join(parts)
