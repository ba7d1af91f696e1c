"""Training-step throughput: the engine's real step against a bare open_clip-style loop, side by side in one process.

Both train the same model (same initial weights, built by the model plugin: any open_clip architecture with
random weights, or the tiny CLIP) on the same batch, already on the device, at the same precision:

- engine: what ``fomo-host run`` runs for a task: the method prepares the model (adapters), picks the trained
  parameters and builds the optimizer (the spec's AdamW, fused on CUDA), and the engine's step loop runs
  :class:`~fomo_host.engine.training.TrainingStep` (autocast, the method's extra loss and hooks, backward,
  gradient clipping, optimizer step, scheduled learning rate, logit-scale clamp, loss kept on the device);
- bare: open_clip's own training step (``open_clip_train.train_one_epoch`` without the data loader):
  autocast, ``open_clip.loss.ClipLoss``, backward, ``clip_grad_norm_``, AdamW over open_clip's two parameter
  groups (no weight decay on gains, biases and the temperature), the temperature clamp.

With ``--compile`` both compile their model (the engine as ``run.compile = true`` does). Rounds alternate between
the two, so machine noise hits both; each round is timed after the device finished its work (wall clock on CUDA;
on the CPU the process's CPU time, which other work on a shared machine disturbs far less). Printed: img/s per
round and the medians, and last the median of the per-round ratios::

    engine/bare throughput ratio R

    python benchmarks/step_throughput.py --model tiny-clip --device cpu
    python benchmarks/step_throughput.py --model ViT-B-16 --batch 256 --precision bf16 --device cuda [--compile]
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import time
from collections.abc import Callable, Iterator

import torch

from fomo_host.components import BuildContext, ModelBundle, TaskInfo, TrainBatch
from fomo_host.engine.runtime import Precision
from fomo_host.engine.training import (
    StepLoop,
    TaskOptimizers,
    TrainingStep,
    compile_for_training,
    enable_activation_checkpointing,
    start_task,
)
from fomo_host.plugins import load_plugins
from fomo_host.resolve import resolve_component
from fomo_host.spec import ComponentRef, OptimizerSection

TINY = "tiny-clip"


def build_model(name: str, seed: int) -> ModelBundle:
    host = load_plugins()
    ref = ComponentRef(name=TINY) if name == TINY else ComponentRef(name="open-clip", params={"architecture": name})
    torch.manual_seed(seed)
    bundle: ModelBundle = resolve_component(host.registry, "model", ref, "--model").build(BuildContext(seed=seed, cache_dir=None))  # type: ignore[arg-type]
    return bundle


def synthetic_batch(bundle: ModelBundle, size: int, device: torch.device) -> TrainBatch:
    """Normalised random images and random token rows (start, words, end) of the model's context length."""
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(size, 3, bundle.image_size, bundle.image_size, generator=generator)
    context = int(bundle.tokenizer(["a"]).shape[-1])
    tokens = torch.zeros(size, context, dtype=torch.long)
    tokens[:, 1:12] = torch.randint(1, 49000, (size, 11), generator=generator)
    tokens[:, 0], tokens[:, 12] = 49406, 49407
    return TrainBatch(images.to(device), tokens.to(device))


class EngineSteps:
    """The engine's task setup and step loop, as a run trains one task."""

    def __init__(
        self, bundle: ModelBundle, method_name: str, optimizer_spec: OptimizerSection, precision: Precision, compile: bool
    ) -> None:
        host = load_plugins()
        device = next(bundle.model.parameters()).device
        self.method = resolve_component(host.registry, "method", ComponentRef(name=method_name), "--method").build()
        self.model = self.method.prepare(bundle.model)
        self.model.to(device)
        if compile:
            compile_for_training(self.model, self.method)
        builder = resolve_component(host.registry, "optimizer", optimizer_spec, "optimizer").build()
        optimizer = start_task(self.model, self.method, TaskInfo(0, 1, 1, []), TaskOptimizers(optimizer_spec, builder, device))
        self.step = TrainingStep(self.model, optimizer, optimizer_spec, precision, self.method)
        self.loop = StepLoop(self.step, lambda index: 1.0, device)

    def __call__(self, batches: Iterator[TrainBatch], steps: int) -> float:
        return self.loop.run(batches, steps)


class BareSteps:
    """open_clip's training step without its data loader (open_clip_train.train.train_one_epoch)."""

    def __init__(self, bundle: ModelBundle, optimizer_spec: OptimizerSection, precision: Precision, compile: bool) -> None:
        from open_clip.loss import ClipLoss

        self.model = bundle.model
        device = next(self.model.parameters()).device
        self.forward = torch.compile(self.model) if compile else self.model

        def exclude(name: str, parameter: torch.nn.Parameter) -> bool:
            return parameter.ndim < 2 or "bn" in name or "ln" in name or "bias" in name or "logit_scale" in name

        named = list(self.model.named_parameters())
        groups = [
            {"params": [p for n, p in named if exclude(n, p) and p.requires_grad], "weight_decay": 0.0},
            {"params": [p for n, p in named if not exclude(n, p) and p.requires_grad], "weight_decay": optimizer_spec.weight_decay},
        ]
        self.optimizer = torch.optim.AdamW(
            groups,
            lr=optimizer_spec.lr,
            betas=tuple(optimizer_spec.params["betas"]),
            eps=optimizer_spec.params["eps"],
            fused=device.type == "cuda",
        )
        self.loss = ClipLoss()
        self.precision = precision
        self.scaler = precision.grad_scaler()
        self.grad_clip = optimizer_spec.grad_clip

    def __call__(self, batches: Iterator[TrainBatch], steps: int) -> float:
        self.model.train()
        last = torch.zeros(())
        for _ in range(steps):
            batch = next(batches)
            with self.precision.autocast():
                image_features, text_features, logit_scale = self.forward(batch.images, batch.tokens)[:3]
                total = self.loss(image_features, text_features, logit_scale)
            if self.scaler is not None:
                self.scaler.scale(total).backward()
                self.scaler.unscale_(self.optimizer)
            else:
                total.backward()
            if self.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            if self.scaler is not None:
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            with torch.no_grad():
                self.model.logit_scale.clamp_(0, math.log(100))
            last = total.detach()
        return float(last)


def timed(run: Callable[[Iterator[TrainBatch], int], float], batch: TrainBatch, steps: int, device: torch.device) -> float:
    """Seconds for ``steps`` steps, the device's work included (wall clock on CUDA, process CPU time elsewhere)."""
    clock = time.perf_counter if device.type == "cuda" else time.process_time
    repeated = iter(lambda: batch, None)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = clock()
    run(repeated, steps)  # both read the loss at the end, which waits for the device
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return clock() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=TINY, help="an open_clip architecture (random weights), or tiny-clip (default)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--precision", choices=("no", "bf16", "fp16"), default=None, help="default: bf16 on CUDA, no on the CPU")
    parser.add_argument("--method", default="finetune", help="the engine's update method (default: finetune)")
    parser.add_argument("--compile", action="store_true", help="torch.compile both models")
    parser.add_argument(
        "--activation-checkpointing", action="store_true", help="recompute transformer blocks in the backward pass, in both loops"
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=None, help="steps per round (default: 20 on CUDA, 8 on the CPU)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps of each loop first (compilation happens here)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on the CPU (1: no spin-waiting inflates CPU time)")
    args = parser.parse_args()

    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    else:
        torch.set_num_threads(args.threads)
    precision = Precision(args.precision or ("bf16" if device.type == "cuda" else "no"), device.type)
    steps = args.steps or (20 if device.type == "cuda" else 8)
    optimizer_spec = OptimizerSection(name="adamw", lr=1e-5, weight_decay=0.2, grad_clip=1.0, params={"betas": [0.9, 0.98], "eps": 1e-6})

    bundle = build_model(args.model, seed=0)
    if args.activation_checkpointing:
        enable_activation_checkpointing(bundle.model, args.model)  # the twin below is a copy, checkpointing included
    bundle.model.to(device)
    twin = copy.copy(bundle)
    twin.model = copy.deepcopy(bundle.model)
    batch = synthetic_batch(bundle, args.batch, device)
    engine = EngineSteps(bundle, args.method, optimizer_spec, precision, args.compile)
    bare = BareSteps(twin, optimizer_spec, precision, args.compile)

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(
        f"{args.model}, batch {args.batch}, precision {precision.name}, method {args.method}, "
        f"compile {'on' if args.compile else 'off'}, activation checkpointing {'on' if args.activation_checkpointing else 'off'}, "
        f"{name}, torch {torch.__version__}"
    )
    print(f"{args.warmup} warm-up steps each, then {args.rounds} rounds of {steps} steps, alternating")
    timed(engine, batch, args.warmup, device)
    timed(bare, batch, args.warmup, device)
    engine_rates, bare_rates, ratios = [], [], []
    for round_index in range(args.rounds):
        # alternate which loop goes first, so neither always follows the other's allocations
        order = (("engine", engine), ("bare", bare)) if round_index % 2 == 0 else (("bare", bare), ("engine", engine))
        rates = {label: args.batch * steps / timed(run, batch, steps, device) for label, run in order}
        engine_rates.append(rates["engine"])
        bare_rates.append(rates["bare"])
        ratios.append(rates["engine"] / rates["bare"])
        print(f"round {round_index + 1}: engine {rates['engine']:,.1f} img/s, bare {rates['bare']:,.1f} img/s, ratio {ratios[-1]:.3f}")
    clock = "wall clock" if device.type == "cuda" else "process CPU time"
    print(f"engine step: median {statistics.median(engine_rates):,.1f} img/s ({clock})")
    print(f"bare step:   median {statistics.median(bare_rates):,.1f} img/s ({clock})")
    if device.type == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB (both models)")
    print(f"engine/bare throughput ratio {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
