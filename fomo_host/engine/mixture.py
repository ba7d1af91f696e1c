"""Batches mixed from the pretraining pool, the current task and the buffer of earlier tasks.

Every process draws the same global batch from seeded generators and keeps its
own slice, so the data a run sees does not depend on the number of processes,
and a task restarted from its checkpoint sees exactly the same batches.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields

import torch

from ..data import SampleSet
from ..spec import Mixture


@dataclass
class Segment:
    """Some samples of one sample set."""

    samples: SampleSet
    indices: torch.Tensor


@dataclass
class PlanPart:
    """The samples of one sample set in a batch: where they sit in the batch, and which they are."""

    samples: SampleSet
    positions: torch.Tensor
    indices: torch.Tensor


@dataclass
class BatchPlan:
    """A batch decided but not yet read: which sample fills each position, and its caption.

    Planning draws every random number a batch needs (sample order, caption
    choice) and reads no image, so a task's batches can be planned ahead, skipped
    cheaply up to any step, and gathered elsewhere (a background thread, worker
    processes) with the same result.
    """

    size: int
    parts: list[PlanPart]
    captions: list[str]

    def select(self, part: slice) -> BatchPlan:
        """The plan of the positions in ``part`` (this process's share of a global batch), renumbered from 0."""
        start, stop, _ = part.indices(self.size)
        selected = []
        for entry in self.parts:
            keep = (entry.positions >= start) & (entry.positions < stop)
            if bool(keep.any()):
                selected.append(PlanPart(entry.samples, entry.positions[keep] - start, entry.indices[keep]))
        return BatchPlan(stop - start, selected, self.captions[start:stop])

    def gather(self) -> torch.Tensor:
        """The uint8 images of the batch, in position order."""
        images: torch.Tensor | None = None
        for entry in self.parts:
            part_images = entry.samples.images(entry.indices)
            if images is None:
                images = part_images.new_empty((self.size, *part_images.shape[1:]))
            images[entry.positions.to(images.device)] = part_images.to(images.device)
        assert images is not None, "a batch plan without samples"
        return images


class Pool:
    """A union of segments, addressed by one flat index."""

    def __init__(self, segments: Sequence[Segment]) -> None:
        self.segments = [s for s in segments if len(s.indices)]
        sizes = torch.tensor([len(s.indices) for s in self.segments], dtype=torch.long)
        self.offsets = torch.cumsum(sizes, 0) - sizes
        self.size = int(sizes.sum()) if len(sizes) else 0

    def __len__(self) -> int:
        return self.size

    def plan(self, flat: torch.Tensor, generator: torch.Generator, offset: int = 0) -> tuple[list[PlanPart], list[str]]:
        """Which sample of which set each flat index is (at batch position ``offset + i``), and a caption drawn for each."""
        owner = torch.searchsorted(self.offsets, flat, right=True) - 1
        parts: list[PlanPart] = []
        captions: list[str] = [""] * len(flat)
        for segment_index in torch.unique(owner).tolist():
            positions = torch.nonzero(owner == segment_index).flatten()
            segment = self.segments[segment_index]
            local = segment.indices[flat[positions] - self.offsets[segment_index]]
            parts.append(PlanPart(segment.samples, positions + offset, local))
            for position, caption in zip(positions.tolist(), segment.samples.captions(local, generator), strict=True):
                captions[position] = caption
        return parts, captions


class EpochSampler:
    """Draws indices of a pool without replacement, reshuffling at every pass."""

    def __init__(self, size: int, generator: torch.Generator) -> None:
        self.size = size
        self.generator = generator
        self._order = torch.empty(0, dtype=torch.long)
        self._position = 0

    def take(self, count: int) -> torch.Tensor:
        chunks = []
        while count > 0:
            if self._position >= len(self._order):
                self._order = torch.randperm(self.size, generator=self.generator)
                self._position = 0
            chunk = self._order[self._position : self._position + count]
            self._position += len(chunk)
            count -= len(chunk)
            chunks.append(chunk)
        return torch.cat(chunks) if chunks else torch.empty(0, dtype=torch.long)


@dataclass(frozen=True)
class Pools:
    """The three sources of a task's batches, in the order a batch concatenates them (the names of :class:`Mixture`)."""

    pretraining: Pool
    update: Pool
    buffer: Pool

    @classmethod
    def update_only(cls, update: Pool) -> Pools:
        """One source only: the warm start's pool, or a task's own data for end-of-task work."""
        return cls(pretraining=Pool([]), update=update, buffer=Pool([]))

    def items(self) -> Iterator[tuple[str, Pool]]:
        for source in fields(self):
            yield source.name, getattr(self, source.name)

    def values(self) -> Iterator[Pool]:
        return (pool for _, pool in self.items())


UPDATE_ONLY = Mixture(pretraining=0, update=1, buffer=0)
"""The mixture of :meth:`Pools.update_only`."""


def batch_shares(batch_size: int, mixture: Mixture, has_pretraining: bool, has_buffer: bool) -> dict[str, int]:
    """Samples per source in a batch; a missing source's share goes to the others in proportion."""
    weights = {
        "pretraining": mixture.pretraining if has_pretraining else 0.0,
        "update": mixture.update,
        "buffer": mixture.buffer if has_buffer else 0.0,
    }
    total = sum(weights.values())
    counts = {name: int(batch_size * weight / total) for name, weight in weights.items()}
    # what rounding leaves goes to the task's data, or (a pool-only control, update = 0) to the largest other source
    rest = "update" if weights["update"] > 0 else max(weights, key=lambda name: weights[name])
    counts[rest] += batch_size - sum(counts.values())
    return counts


class MixedBatches:
    """The global batches of one task: fixed shares of each source per batch."""

    def __init__(
        self,
        pools: Pools,
        batch_size: int,
        mixture: Mixture,
        generator: torch.Generator,
    ) -> None:
        if len(pools.update) == 0:
            raise ValueError("the current task has no training samples")
        self.pools = pools
        self.shares = batch_shares(batch_size, mixture, len(pools.pretraining) > 0, len(pools.buffer) > 0)
        self.generator = generator
        self.samplers = {name: EpochSampler(len(pool), generator) for name, pool in pools.items() if len(pool)}

    def next_plan(self) -> BatchPlan:
        """The plan of the next global batch (sources concatenated in a fixed order); reads no image."""
        parts: list[PlanPart] = []
        captions: list[str] = []
        for name, pool in self.pools.items():
            count = self.shares[name]
            if count == 0:
                continue
            source_parts, source_captions = pool.plan(self.samplers[name].take(count), self.generator, offset=len(captions))
            parts.extend(source_parts)
            captions.extend(source_captions)
        return BatchPlan(len(captions), parts, captions)

    def skip(self, steps: int) -> None:
        """Advance past ``steps`` batches without reading their images (a task resumed at a step)."""
        for _ in range(steps):
            self.next_plan()

    def next_batch(self) -> tuple[torch.Tensor, list[str]]:
        """uint8 images and captions of the next global batch."""
        plan = self.next_plan()
        return plan.gather(), plan.captions
