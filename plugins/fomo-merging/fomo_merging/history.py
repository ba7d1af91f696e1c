"""Task checkpoints kept on disk in the run's weight store and read back one at a time."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import overload

import torch

from fomo_host.api import WeightStore

StateDict = dict[str, torch.Tensor]


class LazyModels(Sequence[StateDict]):
    """A sequence of state dicts whose items are loaded from a :class:`WeightStore` on each access.

    Nothing is cached: iterating holds one model in memory at a time (plus any that
    ``extra`` keeps in memory already), so merging the history of T tasks needs the
    memory of one checkpoint, not of T.
    """

    def __init__(self, store: WeightStore, keys: Sequence[str], device: torch.device | str, extra: Sequence[StateDict] = ()) -> None:
        self.store, self.keys, self.device = store, list(keys), device
        self.extra = list(extra)
        """In-memory models that follow the stored ones (the latest fine-tuned weights)."""

    def __len__(self) -> int:
        return len(self.keys) + len(self.extra)

    @overload
    def __getitem__(self, index: int) -> StateDict: ...

    @overload
    def __getitem__(self, index: slice) -> list[StateDict]: ...

    def __getitem__(self, index: int | slice) -> StateDict | list[StateDict]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        if index >= len(self.keys):
            return self.extra[index - len(self.keys)]
        return self.store.load(self.keys[index], self.device)

    def __iter__(self) -> Iterator[StateDict]:
        for index in range(len(self)):
            yield self[index]
