"""Decoding one image to the model's input: RGB, central square crop, bicubic resize, uint8 ``[3, S, S]``.

This is CLIP's evaluation preprocessing (resize the short side, centre crop) done
in one Pillow call. JPEGs are decoded at a reduced DCT scale first when they are
much larger than the target (``Image.draft``), which is most of the speed-up on
photographs.

16-bit greyscale images (PNG, TIFF) keep their high byte, as Pillow does for
16-bit colour ones; Pillow's own conversion would clip them to near-white. Pixels
that are not 8 or 16 bits deep (32-bit integer or float) are refused by name:
their range cannot be known from the file.
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

DECODER_VERSION = "2"
"""Part of every cache key: bump when the decoded pixels would change."""

Source = Path | bytes
Item = TypeVar("Item")
Result = TypeVar("Result")


class UnreadableImage(Exception):
    """An image that cannot be decoded; the message says why."""


SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}
UNSUPPORTED_MODES = {"I": "32-bit integer", "F": "32-bit float", "I;32": "32-bit integer", "I;32B": "32-bit integer"}


def check_mode(image: Image.Image) -> None:
    """Refuse pixel formats whose conversion to 8-bit RGB would be a guess."""
    if image.mode in UNSUPPORTED_MODES:
        depth = UNSUPPORTED_MODES[image.mode]
        raise UnreadableImage(f"{depth} pixels (mode {image.mode}) are not supported; convert the image to 8 or 16 bits")


def to_rgb(image: Image.Image) -> Image.Image:
    check_mode(image)
    if image.mode in SIXTEEN_BIT_MODES:
        high_byte = (np.asarray(image).astype(np.uint16) >> 8).astype(np.uint8)
        return Image.fromarray(high_byte, mode="L").convert("RGB")
    return image.convert("RGB")


def open_image(source: Source) -> Image.Image:
    return Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)


def check_image(source: Source) -> None:
    """Read an image's header only (format, size, pixel format); raises :class:`UnreadableImage`.

    Catches what a first look can (missing, empty, not an image, an unsupported pixel format), not damage
    further into the file, which only decoding finds."""
    try:
        with open_image(source) as image:
            check_mode(image)
            if min(image.size) == 0:
                raise UnreadableImage("empty image")
    except FileNotFoundError:
        raise UnreadableImage("missing") from None
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise UnreadableImage(f"{type(exc).__name__}: {exc}") from None


def decode_image(source: Source, size: int) -> np.ndarray:
    """uint8 ``[3, size, size]`` from an image file or its bytes; raises :class:`UnreadableImage`."""
    try:
        with open_image(source) as image:
            image.draft("RGB", (size, size))
            rgb = to_rgb(image)
    except FileNotFoundError:
        raise UnreadableImage("missing") from None
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise UnreadableImage(f"{type(exc).__name__}: {exc}") from None
    width, height = rgb.size
    side = min(width, height)
    if side == 0:
        raise UnreadableImage("empty image")
    if width == height == size:
        return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1))
    box = ((width - side) / 2, (height - side) / 2, (width + side) / 2, (height + side) / 2)
    resized = rgb.resize((size, size), Image.Resampling.BICUBIC, box=box, reducing_gap=3.0)
    return np.ascontiguousarray(np.asarray(resized, dtype=np.uint8).transpose(2, 0, 1))


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
