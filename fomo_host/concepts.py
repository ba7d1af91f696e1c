"""The stream's vocabulary: concepts, dataset roles and evaluation types.

Kept free of torch: spec validation and plugin ``Params`` models use these names,
and listing plugins or validating a spec must not pay for importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["pretraining", "adaptation", "zero_shot"]
TaskType = Literal["classification", "retrieval"]

CONCEPT_SEPARATOR = "::"


@dataclass(frozen=True, order=True)
class Concept:
    """One unit of the stream: a class of a dataset, or a whole dataset (``classname=None``)."""

    dataset: str
    classname: str | None = None

    def __str__(self) -> str:
        return self.dataset if self.classname is None else f"{self.dataset}{CONCEPT_SEPARATOR}{self.classname}"

    @classmethod
    def parse(cls, text: str) -> Concept:
        """Read ``dataset::classname`` (ours) or ``DATASET+++classname`` (the paper's stream files)."""
        for separator in (CONCEPT_SEPARATOR, "+++"):
            if separator in text:
                dataset, classname = text.split(separator, 1)
                return cls(dataset, classname)
        return cls(text, None)
