"""Small data on disk, written the way users keep theirs: class folders, caption tables, tar shards, FoMo-in-Flux info files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import webdataset
from PIL import Image

from fomo_host.components import BuildContext

DATA = Path(__file__).parent / "data"
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 60, 220), "yellow": (230, 220, 40), "white": (240, 240, 240)}


def picture(colour: tuple[int, int, int], seed: int, size: tuple[int, int] = (48, 40)) -> Image.Image:
    """A noisy patch of one colour (so classes are learnable and files differ)."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour)[None, None, :] + rng.normal(0, 12, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def save_picture(path: Path, colour: tuple[int, int, int], seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = picture(colour, seed)
    image.save(path, quality=90) if path.suffix == ".jpg" else image.save(path)
    return path


def encoded(colour: tuple[int, int, int], seed: int, image_format: str = "JPEG") -> bytes:
    import io

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


@pytest.fixture
def context(tmp_path: Path) -> Callable[..., BuildContext]:
    def make(image_size: int = 16, cache: str = "cache") -> BuildContext:
        return BuildContext(seed=0, cache_dir=tmp_path / cache, image_size=image_size)

    return make


@pytest.fixture
def fomo_in_flux(tmp_path: Path) -> Path:
    """The copied FoMo-in-Flux samples as a data root: info files (a test split derived from the train sample) and images."""
    root = tmp_path / "fomo"
    info = root / "00_info"
    info.mkdir(parents=True)
    dtd_train = json.loads((DATA / "fomo_in_flux" / "DTD_train.sample.json").read_text())
    dtd_test = {key.replace("/images/", "/test_images/"): value for key, value in dtd_train.items()}
    ai2d_test = json.loads((DATA / "fomo_in_flux" / "AI2DIAGRAMS_test.sample.json").read_text())
    fscoco = json.loads((DATA / "fomo_in_flux" / "FSCOCO_train.sample.json").read_text())
    fscoco_test = {key.replace("raster_sketches", "test_sketches"): value for key, value in fscoco.items()}
    files = {
        "DTD_train.json": dtd_train,
        "DTD_test.json": dtd_test,
        "AI2DIAGRAMS_test.json": ai2d_test,
        "FSCOCO_train.json": fscoco,
        "FSCOCO_test.json": fscoco_test,
    }
    for name, content in files.items():
        (info / name).write_text(json.dumps(content, indent=1))
        for n, (key, value) in enumerate(content.items()):
            save_picture(root / key, list(COLOURS.values())[value["target"] % len(COLOURS)], n)
    (info / "DTD_classnames.json").write_text((DATA / "fomo_in_flux" / "DTD_classnames.json").read_text())
    return root

