"""Throughput of the image loader: cold (decode + resize + cache write), warm (memory-mapped cache), the batch gather a
training step pays on the cache, and the streaming path (cache = "stream": encoded images decoded as batches use them,
by the host loader's DataLoader worker processes).

    python benchmarks/loader_throughput.py                    # 3,000 JPEGs of 224 px, model size 224
    python benchmarks/loader_throughput.py --images 5000 --workers 1 2 4 8 --image-size 224
    python benchmarks/loader_throughput.py --skip-cache --stream-workers 15 --source-size 320   # streaming only, 15 workers

It writes a folder of JPEGs (smooth random pictures, quality 90, a quarter wider
than tall) in a temporary directory, and the same pictures as WebDataset shards.
It builds the folder as an ``image-folder`` dataset: once per thread count with
an empty cache (cold), then once more with the cache filled (warm), and draws
random batches from the memory-mapped training split. Then it builds the folder
and the shards streamed, and runs the engine's loader over random batches
(the mixture's plans) with each number of worker processes: the figure is
images per second delivered as uint8 batches at the model size, ready for the
copy to the device. Figures are printed; nothing is written outside the
temporary directory.
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
import webdataset
from fomo_datasets.image_folder import ImageFolderParams, build_image_folder
from fomo_datasets.webdataset_pool import WebDatasetParams, build_webdataset
from PIL import Image

from fomo_host.components import BuildContext
from fomo_host.data import SampleSet
from fomo_host.engine.loader import WorkerGather, gather_inline
from fomo_host.engine.mixture import UPDATE_ONLY, MixedBatches, Pool, Pools, Segment


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


def write_shards(root: Path, folder: Path, per_shard: int) -> list[Path]:
    """The folder's JPEGs as WebDataset shards of (jpg, txt) samples."""
    files = sorted(folder.rglob("*.jpg"))
    shards = []
    for start in range(0, len(files), per_shard):
        path = root / f"shard-{start // per_shard:05d}.tar"
        with webdataset.TarWriter(str(path)) as writer:
            for file in files[start : start + per_shard]:
                writer.write({"__key__": file.stem, "jpg": file.read_bytes(), "txt": f"a picture of {file.parent.name}"})
        shards.append(path)
    return shards


def build(root: Path, cache_dir: Path, image_size: int, workers: int, cache: str = "decoded") -> tuple[float, object]:
    params = ImageFolderParams(name="bench", root=root, role="pretraining", workers=workers, cache=cache)
    context = BuildContext(seed=0, cache_dir=cache_dir, image_size=image_size)
    started = time.perf_counter()
    (dataset,) = build_image_folder(params, context)
    return time.perf_counter() - started, dataset


def stream_rate(samples: SampleSet, batch_size: int, batches: int, workers: int) -> float:
    """Images per second the engine's loader gathers from a streamed set: random batches as the mixture plans them,
    decoded by ``workers`` DataLoader worker processes (0: on the loader thread, with the set's own threads)."""
    pools = Pools.update_only(Pool([Segment(samples, torch.arange(len(samples)))]))
    mixed = MixedBatches(pools, batch_size, UPDATE_ONLY, torch.Generator())
    plans = (mixed.next_plan() for _ in range(batches + 1))
    gathered = WorkerGather(plans, [samples], workers, torch.device("cpu")) if workers else None
    source = iter(gathered) if gathered is not None else gather_inline(plans)
    next(source)  # the first batch pays the workers' start
    started = time.perf_counter()
    count = sum(len(images) for _, images in source)
    seconds = time.perf_counter() - started
    if gathered is not None:
        gathered.close()
    return count / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--source-size", type=int, default=224, help="side of the generated JPEGs")
    parser.add_argument("--image-size", type=int, default=224, help="the model's input size (what the cache stores)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, os.cpu_count() or 1], help="decoding threads to try (cold)")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument(
        "--stream-workers", type=int, nargs="+", default=[0, os.cpu_count() or 1], help="loader worker processes to try (streaming)"
    )
    parser.add_argument("--stream-batches", type=int, default=8, help="batches timed per streaming figure")
    parser.add_argument("--skip-cache", action="store_true", help="only the streaming figures")
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
        if not args.skip_cache:
            cached_figures(root, cache_dir, args)

        shards = write_shards(Path(temporary), root, per_shard=1000)
        print(f"streaming: the same JPEGs as a folder and as {len(shards)} WebDataset shards; batches of {args.batch_size}")
        _, folder = build(root, cache_dir, args.image_size, args.workers[-1], cache="stream")
        pool_params = WebDatasetParams(name="pool", shards=[str(shard) for shard in shards], cache="stream", workers=args.workers[-1])
        (pool,) = build_webdataset(pool_params, BuildContext(seed=0, cache_dir=cache_dir, image_size=args.image_size))
        for workers in args.stream_workers:
            for name, samples in (("folder", folder.train), ("shards", pool.train)):
                rate = stream_rate(samples, args.batch_size, args.stream_batches, workers)
                how = f"{workers} worker process(es)" if workers else f"loader thread, {args.workers[-1]} decode thread(s)"
                print(f"stream ({name}, decode + resize to {args.image_size} px), {how}: {rate:8.0f} images/s")


def cached_figures(root: Path, cache_dir: Path, args: argparse.Namespace) -> None:
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
