"""Decoding one image to the model's input: RGB, central square crop, bicubic resize, uint8 ``[3, S, S]``.

This is CLIP's evaluation preprocessing (resize the short side, centre crop) done
in one Pillow call. JPEGs are decoded at a reduced DCT scale first when they are
much larger than the target (``Image.draft``), which is most of the speed-up on
photographs.
"""

from __future__ import annotations

import io
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image

DECODER_VERSION = "1"
"""Part of every cache key: bump when the decoded pixels would change."""

Source = Path | bytes
Item = TypeVar("Item")
Result = TypeVar("Result")


class UnreadableImage(Exception):
    """An image that cannot be decoded; the message says why."""


def decode_image(source: Source, size: int) -> np.ndarray:
    """uint8 ``[3, size, size]`` from an image file or its bytes; raises :class:`UnreadableImage`."""
    try:
        opened = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
        with opened as image:
            image.draft("RGB", (size, size))
            rgb = image.convert("RGB")
    except FileNotFoundError:
        raise UnreadableImage("missing") from None
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise UnreadableImage(f"{type(exc).__name__}: {exc}") from None
    width, height = rgb.size
    side = min(width, height)
    if side == 0:
        raise UnreadableImage("empty image")
    if width == height == size:
        return np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1)
    box = ((width - side) / 2, (height - side) / 2, (width + side) / 2, (height + side) / 2)
    resized = rgb.resize((size, size), Image.Resampling.BICUBIC, box=box, reducing_gap=3.0)
    return np.asarray(resized, dtype=np.uint8).transpose(2, 0, 1)


def ordered_map(function: Callable[[Item], Result], items: Iterable[Item], workers: int, window: int = 64) -> Iterator[Result]:
    """``map(function, items)`` on ``workers`` threads, in input order, with at most ``window`` items per worker in flight.

    Threads suffice because Pillow releases the GIL while it decodes and resizes;
    the bounded window keeps memory flat on millions of items.
    """
    if workers <= 1:
        yield from map(function, items)
        return
    pending: deque[Future[Result]] = deque()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) >= workers * window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
