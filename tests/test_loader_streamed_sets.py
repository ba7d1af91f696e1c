"""The batch loader with a dataset plugin's streamed sample sets (fomo-datasets' cache = "stream"): worker processes and
prefetching give the batches of the decoded cache."""

from __future__ import annotations

import pytest
import torch

from fomo_host.components import BuildContext, ModelBundle, TrainBatch
from fomo_host.engine.loader import DeviceTransfer, LoaderSettings, TaskBatches
from fomo_host.engine.mixture import MixedBatches, Pool, Pools, Segment
from fomo_host.engine.runtime import Runtime
from fomo_host.model_inputs import TokenCache
from fomo_host.spec import Mixture

pytest.importorskip("fomo_datasets")
from fomo_datasets.image_folder import ImageFolderParams, build_image_folder  # noqa: E402 - after the skip
from fomo_datasets.testing import write_image_folder, write_shards  # noqa: E402
from fomo_datasets.webdataset_pool import WebDatasetParams, build_webdataset  # noqa: E402

SIZE = 16


def context_of(tmp_path):
    return lambda image_size: BuildContext(seed=0, cache_dir=tmp_path / "cache", image_size=image_size)


def test_streamed_and_cached_sets_give_the_same_batches_through_the_loader_workers(tmp_path):
    context = context_of(tmp_path)
    folder = write_image_folder(tmp_path / "sat", ["forest", "river", "sea"], {"train": 6, "test": 1})
    write_shards(tmp_path / "pool", shards=2, per_shard=8)
    runtime = Runtime.create("no", cpu=True)
    bundle = ModelBundle(torch.nn.Identity(), lambda captions: torch.tensor([[len(c)] for c in captions]), SIZE, (0.5,) * 3, (0.25,) * 3)

    def batches(cache: str, settings: LoaderSettings) -> list[TrainBatch]:
        (sat,) = build_image_folder(ImageFolderParams(name="sat", root=folder, cache=cache), context(SIZE))
        (pool,) = build_webdataset(WebDatasetParams(name="pool", shards=[str(tmp_path / "pool" / "*.tar")], cache=cache), context(SIZE))
        pools = Pools(
            pretraining=Pool([Segment(pool.train, torch.arange(len(pool.train)))]),
            update=Pool([Segment(sat.train, torch.arange(9))]),
            buffer=Pool([Segment(sat.train, torch.arange(9, 18))]),
        )
        mixed = MixedBatches(pools, 12, Mixture(pretraining=0.5, update=0.25, buffer=0.25), torch.Generator().manual_seed(4))
        with TaskBatches(mixed, DeviceTransfer(runtime, bundle, TokenCache(bundle)), 5, settings=settings) as loaded:
            return list(loaded)

    cached = batches("decoded", LoaderSettings(prefetch=0))
    for streamed in (batches("stream", LoaderSettings(prefetch=2, workers=2)), batches("stream", LoaderSettings(prefetch=0))):
        for a, b in zip(cached, streamed, strict=True):
            assert torch.equal(a.images, b.images) and torch.equal(a.tokens, b.tokens)
