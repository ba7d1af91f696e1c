"""What a dataset component hands the host: image-text sample sets with class names.

Images travel as uint8 tensors ``[N, 3, H, W]`` already at the model's resolution:
decoding and resizing happen once (in the dataset component, or its cache), and
normalisation happens on the training device. This keeps the data path far from
being the bottleneck of a training step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch

from .concepts import CONCEPT_SEPARATOR, Concept, Role, TaskType

__all__ = ["CONCEPT_SEPARATOR", "Concept", "ImageTextDataset", "Role", "SampleSet", "StagedImages", "TaskType", "TensorSampleSet"]


@runtime_checkable
class SampleSet(Protocol):
    """A split of a dataset: images, optional class labels and training captions."""

    labels: torch.Tensor
    """int64 ``[N]``: index into the dataset's ``classnames``; -1 where a sample has no class."""

    def __len__(self) -> int: ...

    def images(self, indices: torch.Tensor) -> torch.Tensor:
        """uint8 ``[len(indices), 3, H, W]`` for the given sample indices."""
        ...

    def captions(self, indices: torch.Tensor, generator: torch.Generator | None = None) -> list[str]:
        """One training caption per index; drawn with ``generator`` where a sample has several."""
        ...

    def all_captions(self, indices: torch.Tensor) -> list[list[str]]:
        """Every caption of each index (retrieval scores an image against all of its captions)."""
        ...


@runtime_checkable
class StagedImages(Protocol):
    """A sample set whose images come in two stages, for the host's loader worker processes.

    ``load_images`` runs in a worker process (read files, decode on the CPU);
    its result travels to the training process, where ``finish_images`` completes
    the images, possibly on the training device (decoding JPEGs on the GPU, which
    worker processes cannot use). ``images(indices)`` must equal
    ``finish_images(load_images(indices), device)``.
    """

    def load_images(self, indices: torch.Tensor) -> Any:
        """What a worker process can do for these images; must pickle (tensors, bytes, numbers)."""
        ...

    def finish_images(self, loaded: Any, device: torch.device) -> torch.Tensor:
        """uint8 ``[len(indices), 3, H, W]`` from ``load_images``' result, on the CPU or ``device``."""
        ...


@dataclass
class TensorSampleSet:
    """A :class:`SampleSet` held in memory: uint8 images, labels, captions per sample."""

    image_tensor: torch.Tensor
    labels: torch.Tensor
    caption_choices: list[list[str]]

    def __post_init__(self) -> None:
        if self.image_tensor.dtype != torch.uint8 or self.image_tensor.ndim != 4:
            raise ValueError(f"images must be uint8 [N, 3, H, W], got {self.image_tensor.dtype} {tuple(self.image_tensor.shape)}")
        n = self.image_tensor.shape[0]
        if self.labels.shape != (n,) or len(self.caption_choices) != n:
            raise ValueError(f"{n} images but {tuple(self.labels.shape)} labels and {len(self.caption_choices)} captions")
        if any(not choices for choices in self.caption_choices):
            raise ValueError("every sample needs at least one caption")

    def __len__(self) -> int:
        return self.image_tensor.shape[0]

    def images(self, indices: torch.Tensor) -> torch.Tensor:
        return self.image_tensor.index_select(0, indices)

    def captions(self, indices: torch.Tensor, generator: torch.Generator | None = None) -> list[str]:
        rows = [self.caption_choices[i] for i in indices.tolist()]
        # one uniform draw per sample, vectorised: a pick in [0, len(choices))
        draws = torch.rand(len(rows), generator=generator).tolist()
        return [choices[int(u * len(choices))] for choices, u in zip(rows, draws, strict=True)]

    def all_captions(self, indices: torch.Tensor) -> list[list[str]]:
        return [list(self.caption_choices[i]) for i in indices.tolist()]


@dataclass
class ImageTextDataset:
    """One dataset as the protocol sees it.

    ``role`` says what the dataset is for: ``pretraining`` (the replay pool),
    ``adaptation`` (its concepts form the stream; its test split measures
    knowledge accumulation) or ``zero_shot`` (held out; measures retention).
    ``task`` says how it is evaluated: ``classification`` (zero-shot accuracy
    over ``classnames`` with ``templates``) or ``retrieval`` (image-text recall).
    """

    name: str
    role: Role
    task: TaskType
    classnames: list[str]
    templates: list[str]
    train: SampleSet | None = None
    test: SampleSet | None = None
    description: str = ""
    info: dict[str, object] = field(default_factory=dict)
    validation: SampleSet | None = None
    """Held out from training and from the test split, for tuning (``evaluation.split = "validation"``); None: none. How it was
    made goes in ``info["validation"]`` (a dict, e.g. the fraction and seed of a carve), which the run's summary records."""

    def __post_init__(self) -> None:
        if self.task == "classification":
            if not self.classnames:
                raise ValueError(f"dataset {self.name!r}: a classification set needs class names")
            if not self.templates or any("{}" not in template for template in self.templates):
                raise ValueError(f"dataset {self.name!r}: templates must be non-empty and each contain '{{}}'")

    def concepts(self) -> list[Concept]:
        """The stream units of this dataset: one per class present in its training split, else the whole set."""
        if self.train is None:
            return []
        if not self.classnames:
            return [Concept(self.name, None)]
        present = sorted(set(self.train.labels[self.train.labels >= 0].tolist()))
        if not present:
            return [Concept(self.name, None)]
        return [Concept(self.name, self.classnames[index]) for index in present]

    def train_indices(self, concepts: list[Concept]) -> torch.Tensor:
        """Indices of the training samples that belong to ``concepts`` of this dataset."""
        assert self.train is not None
        wanted = [c for c in concepts if c.dataset == self.name]
        if any(c.classname is None for c in wanted):
            return torch.arange(len(self.train))
        class_index = {name: i for i, name in enumerate(self.classnames)}
        labels = torch.tensor([class_index[c.classname] for c in wanted if c.classname is not None], dtype=torch.long)
        return torch.nonzero(torch.isin(self.train.labels, labels)).flatten()
