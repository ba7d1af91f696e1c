"""Host overhead: the engine's training step loop against a bare PyTorch loop, same model, data and batch.

Both loops train the tiny CLIP on the same uint8 images and captions: the bare
loop indexes pre-tokenised tensors directly; the host loop goes through the
mixture sampler, the token cache, the method hooks, the scheduler and the
logit-scale clamp. Rounds alternate between the two so machine noise hits both;
the figure is the median ratio of host time to bare time. Times are the
process's CPU time (all threads), which other work on a shared machine
disturbs far less than wall-clock time.

    python benchmarks/host_overhead.py [--steps 40] [--rounds 5] [--batch 128] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from fomo_openclip.models import build_tiny_clip
from fomo_openclip.params import TinyCLIPParams

from fomo_host.components import BuildContext, ParamGroup
from fomo_host.data import TensorSampleSet
from fomo_host.engine.loader import DeviceTransfer, TaskBatches
from fomo_host.engine.loss import contrastive_loss
from fomo_host.engine.mixture import MixedBatches, Pool, Pools, Segment
from fomo_host.engine.runtime import Runtime
from fomo_host.engine.training import HostAdamW, StepLoop, TaskOptimizers, TrainingStep, clamp_logit_scale
from fomo_host.model_inputs import TokenCache
from fomo_host.spec import Mixture, OptimizerSection


def make_data(count: int, classes: int = 40) -> TensorSampleSet:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (count, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.arange(count) % classes
    captions = [[f"a photo of the {i % classes}th thing", f"thing number {i % classes}"] for i in range(count)]
    return TensorSampleSet(images, labels, captions)


def bare_loop(bundle, data: TensorSampleSet, steps: int, batch: int) -> float:
    model = bundle.model
    tokens = bundle.tokenizer([choices[0] for choices in data.caption_choices])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.2)
    mean = torch.tensor(bundle.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(bundle.image_std).view(1, 3, 1, 1)
    generator = torch.Generator().manual_seed(1)
    started = time.process_time()
    for _ in range(steps):
        index = torch.randint(len(data), (batch,), generator=generator)
        images = (data.image_tensor[index].float() / 255 - mean) / std
        image_features, text_features, scale = model(images, tokens[index])[:3]
        loss = contrastive_loss(image_features, text_features, scale)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        clamp_logit_scale(model)
    return time.process_time() - started


def host_loop(bundle, data: TensorSampleSet, steps: int, batch: int) -> float:
    runtime = Runtime.create("no", cpu=True)
    spec = OptimizerSection(name="adamw", lr=1e-4)
    optimizer = TaskOptimizers(spec, HostAdamW(), runtime.device).build([ParamGroup(list(bundle.model.parameters()))])
    half = len(data) // 2
    pools = Pools(
        pretraining=Pool([Segment(data, torch.arange(half))]),
        update=Pool([Segment(data, torch.arange(half, len(data)))]),
        buffer=Pool([]),
    )
    batches = MixedBatches(pools, batch, Mixture(pretraining=0.5, update=0.5, buffer=0.0), torch.Generator().manual_seed(1))
    step = TrainingStep(bundle.model, optimizer, spec, runtime.mixed_precision)
    loop = StepLoop(step, lambda index: 1.0, runtime.device)
    started = time.process_time()
    with TaskBatches(batches, DeviceTransfer(runtime, bundle, TokenCache(bundle)), steps) as device_batches:
        loop.run(device_batches, steps)
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: no spin-waiting inflates CPU time)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = make_data(4096)
    bundle = build_tiny_clip(TinyCLIPParams(), BuildContext(seed=0, cache_dir=None))  # type: ignore[arg-type]
    # one warm-up of each, untimed (allocator, thread pools, token cache)
    bare_loop(bundle, data, 3, args.batch)
    host_loop(bundle, data, 3, args.batch)
    ratios, bare_times, host_times = [], [], []
    for _ in range(args.rounds):
        bare = bare_loop(bundle, data, args.steps, args.batch)
        host = host_loop(bundle, data, args.steps, args.batch)
        bare_times.append(bare)
        host_times.append(host)
        ratios.append(host / bare)
    print(f"tiny CLIP, batch {args.batch}, {args.steps} steps x {args.rounds} rounds, {torch.get_num_threads()} threads")
    print(f"bare PyTorch loop: median {statistics.median(bare_times) / args.steps * 1000:.1f} CPU ms/step")
    print(f"host step loop:    median {statistics.median(host_times) / args.steps * 1000:.1f} CPU ms/step")
    print(f"host / bare time:  median ratio {statistics.median(ratios):.3f} (rounds: {', '.join(f'{r:.3f}' for r in ratios)})")
    print(f"host overhead:     {100 * (statistics.median(ratios) - 1):+.1f}% (target: under 5%)")


if __name__ == "__main__":
    main()
