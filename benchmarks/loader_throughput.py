"""Throughput of the image loader of fomo-datasets: cold (decode + resize + cache write), warm (memory-mapped cache)
and the batch gather a training step pays.

    python benchmarks/loader_throughput.py                    # 3,000 JPEGs of 224 px, model size 224
    python benchmarks/loader_throughput.py --images 5000 --workers 1 2 4 8 --image-size 224

It writes a folder of JPEGs (smooth random pictures at 224 px, quality 90, some
wider than tall) in a temporary directory, then builds it as an ``image-folder``
dataset: once per worker count with an empty cache (cold), then once more with
the cache filled (warm), and finally draws random batches from the memory-mapped
training split. Figures are printed; nothing is written outside the temporary
directory.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from fomo_datasets.image_folder import ImageFolderParams, build_image_folder
from PIL import Image

from fomo_host.components import BuildContext


def write_jpegs(root: Path, count: int, classes: int, side: int, seed: int) -> int:
    """``root/train/class_k/n.jpg``: low-frequency colour noise upsampled to ``side`` px (a quarter are 4:3)."""
    rng = np.random.default_rng(seed)
    total_bytes = 0
    for n in range(count):
        folder = root / "train" / f"class_{n % classes:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        size = (side * 4 // 3, side) if n % 4 == 0 else (side, side)
        coarse = (rng.random((8, 8, 3)) * 255).astype(np.uint8)
        image = Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC)
        path = folder / f"{n:05d}.jpg"
        image.save(path, quality=90)
        total_bytes += path.stat().st_size
    return total_bytes


def build(root: Path, cache_dir: Path, image_size: int, workers: int) -> tuple[float, object]:
    params = ImageFolderParams(name="bench", root=root, role="pretraining", workers=workers)
    context = BuildContext(seed=0, cache_dir=cache_dir, image_size=image_size)
    started = time.perf_counter()
    (dataset,) = build_image_folder(params, context)
    return time.perf_counter() - started, dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--source-size", type=int, default=224, help="side of the generated JPEGs")
    parser.add_argument("--image-size", type=int, default=224, help="the model's input size (what the cache stores)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, os.cpu_count() or 1], help="decoding threads to try (cold)")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--batches", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory(prefix="fomo-loader-bench-") as temporary:
        root = Path(temporary) / "images"
        started = time.perf_counter()
        total_bytes = write_jpegs(root, args.images, args.classes, args.source_size, seed=0)
        print(
            f"wrote {args.images} JPEGs of {args.source_size} px ({total_bytes / args.images / 1024:.1f} KiB each) "
            f"in {time.perf_counter() - started:.1f}s; cpu cores: {os.cpu_count()}; model image size {args.image_size}"
        )
        cache_dir = Path(temporary) / "cache"
        for workers in args.workers:
            shutil.rmtree(cache_dir, ignore_errors=True)
            seconds, _ = build(root, cache_dir, args.image_size, workers)
            print(f"cold  (decode + resize + write cache), {workers} thread(s): {args.images / seconds:8.0f} images/s  ({seconds:.2f}s)")
        seconds, dataset = build(root, cache_dir, args.image_size, args.workers[-1])
        print(f"warm  (scan + key + memory-mapped cache):        {args.images / seconds:8.0f} images/s  ({seconds:.3f}s)")

        train = dataset.train
        generator = torch.Generator().manual_seed(0)
        batches = [torch.randint(len(train), (args.batch_size,), generator=generator) for _ in range(args.batches)]
        train.images(batches[0])  # first touch maps the pages
        started = time.perf_counter()
        for indices in batches:
            images = train.images(indices)
        seconds = time.perf_counter() - started
        megabytes = images.numel() * args.batches / 2**20
        print(
            f"gather (random batch of {args.batch_size}, uint8 {tuple(images.shape[1:])}): "
            f"{args.batch_size * args.batches / seconds:8.0f} images/s  ({megabytes / seconds:.0f} MiB/s)"
        )
        cache_bytes = sum(path.stat().st_size for path in cache_dir.rglob("images.u8"))
        print(f"cache on disk: {cache_bytes / 2**20:.1f} MiB ({cache_bytes / args.images / 1024:.1f} KiB per image)")


if __name__ == "__main__":
    main()
