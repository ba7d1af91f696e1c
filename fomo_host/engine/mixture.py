"""Batches mixed from the pretraining pool, the current task and the buffer of earlier tasks.

Every process draws the same global batch from seeded generators and keeps its
own slice, so the data a run sees does not depend on the number of processes,
and a task restarted from its checkpoint sees exactly the same batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..data import SampleSet
from ..spec import Mixture


@dataclass
class Segment:
    """Some samples of one sample set."""

    samples: SampleSet
    indices: torch.Tensor


class Pool:
    """A union of segments, addressed by one flat index."""

    def __init__(self, segments: Sequence[Segment]) -> None:
        self.segments = [s for s in segments if len(s.indices)]
        sizes = torch.tensor([len(s.indices) for s in self.segments], dtype=torch.long)
        self.offsets = torch.cumsum(sizes, 0) - sizes
        self.size = int(sizes.sum()) if len(sizes) else 0

    def __len__(self) -> int:
        return self.size

    def gather(self, flat: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, list[str]]:
        """Images and captions of the flat indices, in order."""
        owner = torch.searchsorted(self.offsets, flat, right=True) - 1
        images: torch.Tensor | None = None
        captions: list[str] = [""] * len(flat)
        for segment_index in torch.unique(owner).tolist():
            positions = torch.nonzero(owner == segment_index).flatten()
            segment = self.segments[segment_index]
            local = segment.indices[flat[positions] - self.offsets[segment_index]]
            segment_images = segment.samples.images(local)
            if images is None:
                images = segment_images.new_empty((len(flat), *segment_images.shape[1:]))
            images[positions] = segment_images
            for position, caption in zip(positions.tolist(), segment.samples.captions(local, generator), strict=True):
                captions[position] = caption
        assert images is not None
        return images, captions


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


def batch_shares(batch_size: int, mixture: Mixture, has_pretraining: bool, has_buffer: bool) -> dict[str, int]:
    """Samples per source in a batch; a missing source's share goes to the others in proportion."""
    weights = {
        "pretraining": mixture.pretraining if has_pretraining else 0.0,
        "update": mixture.update,
        "buffer": mixture.buffer if has_buffer else 0.0,
    }
    total = sum(weights.values())
    counts = {name: int(batch_size * weight / total) for name, weight in weights.items()}
    counts["update"] += batch_size - sum(counts.values())
    return counts


class MixedBatches:
    """The global batches of one task: fixed shares of each source per batch."""

    def __init__(
        self,
        pools: dict[str, Pool],
        batch_size: int,
        mixture: Mixture,
        generator: torch.Generator,
    ) -> None:
        if len(pools["update"]) == 0:
            raise ValueError("the current task has no training samples")
        self.pools = pools
        self.shares = batch_shares(batch_size, mixture, len(pools["pretraining"]) > 0, len(pools["buffer"]) > 0)
        self.generator = generator
        self.samplers = {name: EpochSampler(len(pool), generator) for name, pool in pools.items() if len(pool)}

    def next_batch(self) -> tuple[torch.Tensor, list[str]]:
        """uint8 images and captions of the next global batch (sources concatenated in a fixed order)."""
        images, captions = [], []
        for name in ("pretraining", "update", "buffer"):
            count = self.shares[name]
            if count == 0:
                continue
            batch_images, batch_captions = self.pools[name].gather(self.samplers[name].take(count), self.generator)
            images.append(batch_images)
            captions.extend(batch_captions)
        return torch.cat(images), captions
