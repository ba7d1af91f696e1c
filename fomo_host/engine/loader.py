"""A task's training batches on the device, prepared ahead of the step that uses them.

One batch goes: plan (:class:`~.mixture.MixedBatches`: which samples, which
captions; seeded by the run's seed and the task) -> this process's share ->
images gathered (on the loader thread, or read and decoded by DataLoader worker
processes) -> captions tokenised, tensors pinned and copied with
``non_blocking``. A background thread runs all of it up to ``prefetch`` batches
ahead of the training step. Batches wait on the device as uint8 (a quarter of
the memory of float32 pixels); the training thread normalises the one it takes.

Batches come out in the order they are planned, and planning is the only step
that draws random numbers, so neither prefetching nor workers nor the step a
task starts at changes which batch a step sees.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections import deque
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import torch

from ..components import ModelBundle, TrainBatch
from ..data import SampleSet, StagedImages
from ..model_inputs import TokenCache, check_image_size, image_statistics, normalise_images
from .mixture import BatchPlan, MixedBatches
from .runtime import Runtime

CHUNK_SIZE = 64
"""Samples per unit of work sent to a worker process: small enough to keep every worker busy, and the memory in
flight (workers x prefetch factor x chunk) bounded."""


@dataclass(frozen=True)
class LoaderSettings:
    """How the batches of a task are prepared: ``prefetch`` batches ahead on a background thread (0: in the training
    thread), images gathered by ``workers`` DataLoader worker processes (0: on the loader thread)."""

    prefetch: int = 2
    workers: int = 0


def local_slice(runtime: Runtime, size: int) -> slice:
    """This process's positions of a global batch of ``size``."""
    if size % runtime.world_size:
        raise ValueError(f"batch size {size} is not divisible by the {runtime.world_size} processes")
    per_process = size // runtime.world_size
    return slice(runtime.rank * per_process, (runtime.rank + 1) * per_process)


@dataclass
class CopiedBatch:
    """A batch on the device, its images still uint8."""

    images: torch.Tensor
    tokens: torch.Tensor


class DeviceTransfer:
    """uint8 images and captions -> a :class:`CopiedBatch` on the device (tokens from the cache, host memory pinned on
    CUDA so the copies run asynchronously), then -> a :class:`TrainBatch` with the images normalised there."""

    def __init__(self, runtime: Runtime, bundle: ModelBundle, tokens: TokenCache) -> None:
        self.runtime, self.bundle, self.tokens = runtime, bundle, tokens
        self.pin = runtime.device.type == "cuda"
        # made once: a tensor built from Python numbers on a CUDA device waits for its copy
        self.mean, self.std = image_statistics(bundle, runtime.device)

    def copy(self, images: torch.Tensor, captions: list[str]) -> CopiedBatch:
        check_image_size(self.bundle, images)
        tokens = self.tokens(captions)
        if self.pin:
            tokens = tokens.pin_memory()
            if images.device.type == "cpu" and not images.is_pinned():
                images = images.pin_memory()
        device = self.runtime.device
        return CopiedBatch(images.to(device, non_blocking=True), tokens.to(device, non_blocking=True))

    def normalise(self, batch: CopiedBatch) -> TrainBatch:
        return TrainBatch(images=normalise_images(batch.images, self.mean, self.std), tokens=batch.tokens)


# ----------------------------------------------------------------------------- gathering images


def gather_inline(plans: Iterator[BatchPlan]) -> Iterator[tuple[BatchPlan, torch.Tensor]]:
    """Each plan with its images, read in this thread."""
    for plan in plans:
        yield plan, plan.gather()


@dataclass(frozen=True)
class Chunk:
    """Up to :data:`CHUNK_SIZE` samples of one sample set in one batch: the unit a worker process reads."""

    batch: int
    slot: int
    positions: torch.Tensor
    indices: torch.Tensor


class ChunkReader(torch.utils.data.Dataset[tuple[int, torch.Tensor, int, Any, Exception | None]]):
    """Runs in the worker processes: reads (and decodes) the images of a chunk.

    A sample set that splits reading from decoding (:class:`~fomo_host.data.StagedImages`) only loads here; the
    loader thread finishes the images (e.g. decodes JPEGs on the GPU, which worker processes cannot use)."""

    def __init__(self, sample_sets: list[SampleSet]) -> None:
        self.sample_sets = sample_sets

    def __getitem__(self, chunk: Chunk) -> tuple[int, torch.Tensor, int, Any, Exception | None]:
        samples = self.sample_sets[chunk.slot]
        try:
            loaded = samples.load_images(chunk.indices) if isinstance(samples, StagedImages) else samples.images(chunk.indices)
        except Exception as exc:
            # returned, not raised: the DataLoader would re-raise it as a RuntimeError holding a traceback, and a user
            # error (an unreadable file) must reach the run as the one line it is
            return chunk.batch, chunk.positions, chunk.slot, None, exc
        return chunk.batch, chunk.positions, chunk.slot, loaded, None


class ChunkSampler(torch.utils.data.Sampler[Chunk]):
    """Cuts each plan into chunks, in plan order; remembers the plans whose chunks it has handed out."""

    def __init__(self, plans: Iterator[BatchPlan], slots: dict[int, int], handed_out: deque[BatchPlan]) -> None:
        self.plans, self.slots, self.handed_out = plans, slots, handed_out

    def __iter__(self) -> Iterator[Chunk]:
        for number, plan in enumerate(self.plans):
            self.handed_out.append(plan)
            for part in plan.parts:
                slot = self.slots[id(part.samples)]
                for start in range(0, len(part.indices), CHUNK_SIZE):
                    end = start + CHUNK_SIZE
                    yield Chunk(number, slot, part.positions[start:end], part.indices[start:end])


def unchanged(item: Any) -> Any:
    """The DataLoader's collate step: chunks are already tensors (a module-level function, so it pickles)."""
    return item


class WorkerGather:
    """Images of each plan read by DataLoader worker processes, reassembled in plan order.

    The workers start (fork) when this object is made, which the engine does on its own thread, before the
    loader thread starts."""

    def __init__(self, plans: Iterator[BatchPlan], sample_sets: list[SampleSet], workers: int, device: torch.device) -> None:
        self.sample_sets = sample_sets
        self.device = device
        self.pin = device.type == "cuda"
        self.handed_out: deque[BatchPlan] = deque()
        slots = {id(samples): slot for slot, samples in enumerate(sample_sets)}
        loader = torch.utils.data.DataLoader(
            ChunkReader(sample_sets),
            batch_size=None,
            sampler=ChunkSampler(plans, slots, self.handed_out),
            num_workers=workers,
            collate_fn=unchanged,
        )
        self._iterator: Iterator[tuple[int, torch.Tensor, int, Any, Exception | None]] = iter(loader)

    def __iter__(self) -> Iterator[tuple[BatchPlan, torch.Tensor]]:
        plan: BatchPlan | None = None
        images: torch.Tensor | None = None
        current, filled = -1, 0
        for number, positions, slot, loaded, error in self._iterator:
            if error is not None:
                raise error
            samples = self.sample_sets[slot]
            chunk = samples.finish_images(loaded, self.device) if isinstance(samples, StagedImages) else loaded
            if number != current:
                plan, current, filled = self.handed_out.popleft(), number, 0
                images = torch.empty((plan.size, *chunk.shape[1:]), dtype=chunk.dtype, pin_memory=self.pin and chunk.device.type == "cpu")
            assert plan is not None and images is not None
            if chunk.device != images.device:
                images = images.to(chunk.device, non_blocking=True)
            images[positions.to(images.device)] = chunk
            filled += len(positions)
            if filled == plan.size:
                yield plan, images
                plan = images = None

    def close(self) -> None:
        # the iterator's own shutdown, also what its finaliser calls: stops and joins the worker processes now
        shutdown = getattr(self._iterator, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()


# ----------------------------------------------------------------------------- the background thread


class BackgroundBatches:
    """Runs a batch iterator on a background thread, ``depth`` items ahead; errors reach the consumer unchanged.

    On CUDA the thread queues its copies and device work on a side stream; the consumer's stream waits for an
    item's work before it uses the item."""

    POLL_S = 0.1

    def __init__(self, source: Iterator[CopiedBatch], depth: int, device: torch.device) -> None:
        self._source = source
        self._queue: queue.Queue[tuple[str, Any, Any]] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._device = device
        self._stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        self._finished = False
        self._thread = threading.Thread(target=self._produce, name="fomo-batch-loader", daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        try:
            streams = torch.cuda.stream(self._stream) if self._stream is not None else contextlib.nullcontext()
            with streams:
                for batch in self._source:
                    event = None
                    if self._stream is not None:
                        event = torch.cuda.Event()
                        event.record(self._stream)
                    if not self._put(("batch", batch, event)):
                        return
            self._put(("end", None, None))
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put(("error", exc, None))
        finally:
            close = getattr(self._source, "close", None)
            if close is not None:
                close()

    def _put(self, item: tuple[str, Any, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=self.POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[CopiedBatch]:
        return self

    def __next__(self) -> CopiedBatch:
        if self._finished:
            raise StopIteration
        kind, value, event = self._queue.get()
        if kind == "end":
            self._finished = True
            self._thread.join()
            raise StopIteration
        if kind == "error":
            self._finished = True
            self._thread.join()
            raise value
        batch: CopiedBatch = value
        if event is not None:
            stream = torch.cuda.current_stream(self._device)
            stream.wait_event(event)
            # the tensors were made on the side stream: tell the allocator the consumer's stream uses them too
            for tensor in (batch.images, batch.tokens):
                if tensor.device.type == "cuda":
                    tensor.record_stream(stream)
        return batch

    def close(self) -> None:
        """Stop the thread (it finishes the batch it is on) and wait for it; safe to call more than once."""
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=self.POLL_S)
        self._thread.join()
        self._finished = True


# ----------------------------------------------------------------------------- one task's batches


class TaskBatches:
    """The device batches of one task, steps ``start_step`` .. ``steps - 1``; use as a context manager (or call
    :meth:`close`) so that the loader thread and worker processes end with the task, whatever ends it.

    ``TaskBatches(..., start_step=k)`` yields exactly what a full pass yields from its k-th batch on: the first k
    batches are planned (cheap: indices and captions) but never read."""

    def __init__(
        self,
        batches: MixedBatches,
        transfer: DeviceTransfer,
        steps: int,
        start_step: int = 0,
        settings: LoaderSettings | None = None,
    ) -> None:
        settings = settings or LoaderSettings()
        if not 0 <= start_step <= steps:
            raise ValueError(f"start step {start_step} is outside the task's {steps} steps")
        self.steps, self.start_step = steps, start_step
        batches.skip(start_step)
        share = local_slice(transfer.runtime, sum(batches.shares.values()))
        plans = (batches.next_plan().select(share) for _ in range(start_step, steps))
        self._workers: WorkerGather | None = None
        if settings.workers > 0 and steps > start_step:
            sample_sets = list({id(s.samples): s.samples for pool in batches.pools.values() for s in pool.segments}.values())
            self._workers = WorkerGather(plans, sample_sets, settings.workers, transfer.runtime.device)
            gathered: Iterator[tuple[BatchPlan, torch.Tensor]] = iter(self._workers)
        else:
            gathered = gather_inline(plans)
        self._transfer = transfer
        self._source = self._to_device(gathered, transfer)
        self._background = BackgroundBatches(self._source, settings.prefetch, transfer.runtime.device) if settings.prefetch > 0 else None

    def _to_device(
        self, gathered: Iterator[tuple[BatchPlan, torch.Tensor]], transfer: DeviceTransfer
    ) -> Generator[CopiedBatch, None, None]:
        try:
            for plan, images in gathered:
                yield transfer.copy(images, plan.captions)
        finally:
            if self._workers is not None:
                self._workers.close()

    def __iter__(self) -> Iterator[TrainBatch]:
        return self

    def __next__(self) -> TrainBatch:
        return self._transfer.normalise(next(self._background) if self._background is not None else next(self._source))

    def close(self) -> None:
        if self._background is not None:
            self._background.close()
        else:
            self._source.close()
        if self._workers is not None:  # a source never started never ran its cleanup
            self._workers.close()

    def __enter__(self) -> TaskBatches:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None) -> None:
        self.close()
