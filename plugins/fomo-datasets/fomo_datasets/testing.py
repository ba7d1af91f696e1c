"""Writers of small datasets in every format this plugin reads, for tests of plugins and specs.

Images are noisy patches of one colour per class (so classes are learnable and no
two files are equal); ``corrupt`` makes a file unreadable the ways real data is.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import webdataset
from PIL import Image

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 60, 220), "yellow": (230, 220, 40), "white": (240, 240, 240)}


def picture(colour: tuple[int, int, int], seed: int, size: tuple[int, int] = (48, 40)) -> Image.Image:
    """A noisy patch of one colour (so classes are learnable and files differ)."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour)[None, None, :] + rng.normal(0, 12, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def save_picture(path: Path, colour: tuple[int, int, int], seed: int) -> Path:
    """A picture at ``path``, in the format its suffix names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    picture(colour, seed).save(path, **({"quality": 90} if path.suffix == ".jpg" else {}))
    return path


def encoded(colour: tuple[int, int, int], seed: int, image_format: str = "JPEG") -> bytes:
    """A picture as the bytes of an image file (a tar shard's entry)."""
    buffer = io.BytesIO()
    picture(colour, seed).save(buffer, format=image_format)
    return buffer.getvalue()


def write_image_folder(root: Path, classes: list[str], per_split: dict[str, int], seed: int = 0) -> Path:
    """``root/<split>/<class>/<n>.jpg|png`` with a colour per class."""
    for split, count in per_split.items():
        for index, name in enumerate(classes):
            colour = list(COLOURS.values())[index % len(COLOURS)]
            for n in range(count):
                suffix = ".png" if n % 3 == 2 else ".jpg"
                save_picture(root / split / name / f"{n:03d}{suffix}", colour, seed + 1000 * index + n + (500 if split == "test" else 0))
    return root


def write_shards(folder: Path, shards: int, per_shard: int, start: int = 0) -> list[Path]:
    """WebDataset shards of (jpg, txt) pairs, every third caption as .json instead."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    names = list(COLOURS)
    for shard in range(shards):
        path = folder / f"pool-{shard:03d}.tar"
        with webdataset.TarWriter(str(path)) as writer:
            for n in range(per_shard):
                index = start + shard * per_shard + n
                colour = names[index % len(names)]
                sample = {"__key__": f"{index:06d}", "jpg": encoded(COLOURS[colour], index)}
                if index % 3 == 0:
                    sample["json"] = {"caption": [f"a {colour} patch", f"something {colour}"]}
                else:
                    sample["txt"] = f"a photo of something {colour}"
                writer.write(sample)
        paths.append(path)
    return paths


def corrupt(path: Path, how: str = "garbage") -> Path:
    """Make an image unreadable: random bytes, or a JPEG cut in half."""
    if how == "garbage":
        path.write_bytes(b"this is not an image" * 10)
    else:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    return path
