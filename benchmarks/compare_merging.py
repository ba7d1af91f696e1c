"""Merging and meta learning-rate schedules against plain fine-tuning, on one spec (default: the quickstart).

Runs each configuration as ``fomo-host run SPEC --set ...`` one after the other
(each run is a few minutes on a CPU), then prints a markdown table: the final
A_KA, A_ZS and GM, the trajectory means of A_KA and A_ZS over the evaluations
after each task, the lowest A_ZS on the way (a single final point can hide
forgetting that happened earlier in the stream), and the command that reproduces
each row. A run already finished under ``--output`` is reused when its resolved
spec is the one the command gives now (same spec file and overrides), unless ``--fresh``.

    python benchmarks/compare_merging.py [--spec specs/quickstart.toml] [--output runs/compare-merging]
                                         [--only ema zero-shot] [--set KEY=VALUE ...] [--fresh] [--list]
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

# the method comparison's runner pieces: one way to build, run and read a comparison run
from compare_methods import Configuration, command, read_summary, run, same_spec

CONFIGURATIONS: tuple[Configuration, ...] = (
    Configuration("finetune", "fine-tuning, no merge (cosine per task)", ()),
    Configuration(
        "ema", "EMA-merge, interpolation w = 0.5", ("merger.name=ema", "merger.params.operator=interpolation", "merger.params.weight=0.5")
    ),
    Configuration(
        "zero-shot",
        "ZS-merge, interpolation w = 0.5",
        ("merger.name=zero-shot", "merger.params.operator=interpolation", "merger.params.weight=0.5"),
    ),
    Configuration(
        "finetuned",
        "FT-merge, interpolation w = 0.5",
        ("merger.name=finetuned", "merger.params.operator=interpolation", "merger.params.weight=0.5"),
    ),
    Configuration(
        "offline-ta",
        "offline merge, task arithmetic lambda = 0.5",
        ("merger.name=offline", "merger.params.operator.name=task-arithmetic", "merger.params.operator.params.lambda=0.5"),
    ),
    Configuration(
        "offline-ties",
        "offline merge, TIES density 0.2, lambda = 1",
        (
            "merger.name=offline",
            "merger.params.operator.name=ties",
            "merger.params.operator.params.density=0.2",
            "merger.params.operator.params.lambda=1.0",
        ),
    ),
    Configuration("rsqrt", "fine-tuning, rsqrt per task", ("scheduler.name=rsqrt",)),
    Configuration("rsqrt-autoregressive", "fine-tuning, rsqrt autoregressive meta schedule", ("scheduler.name=rsqrt-autoregressive",)),
    Configuration("cosine-autoregressive", "fine-tuning, cosine autoregressive meta schedule", ("scheduler.name=cosine-autoregressive",)),
    Configuration(
        "cosine-dynamic-recovery", "fine-tuning, cosine dynamic-recovery meta schedule", ("scheduler.name=cosine-dynamic-recovery",)
    ),
)


def lowest_zero_shot(run_dir: Path) -> float:
    records = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    return min(record["A_ZS"] for record in records if record["task"] >= 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, default=Path("specs/quickstart.toml"))
    parser.add_argument("--output", type=Path, default=Path("runs/compare-merging"), help="one run directory per configuration in here")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these configurations")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="an override for every configuration")
    parser.add_argument("--fresh", action="store_true", help="run again even where a finished run exists")
    parser.add_argument("--list", action="store_true", help="list the configurations and exit")
    args = parser.parse_args()

    by_name = {c.name: c for c in CONFIGURATIONS}
    if args.list:
        for configuration in CONFIGURATIONS:
            print(f"{configuration.name:26s} {configuration.description}")
        return 0
    unknown = [name for name in args.only or [] if name not in by_name]
    if unknown:
        parser.error(f"unknown configuration {unknown[0]!r}; available: {', '.join(by_name)}")
    chosen = [by_name[name] for name in args.only] if args.only else list(CONFIGURATIONS)

    rows = []
    for configuration in chosen:
        run_dir = args.output / configuration.name
        arguments = command(args.spec, configuration, args.set, run_dir)
        reusable = not args.fresh and same_spec(run_dir, args.spec, [*configuration.overrides, *args.set])
        summary = read_summary(run_dir) if reusable else None
        seconds = None
        if summary is None:
            if run_dir.exists():
                # an unfinished run, or one made from another spec: start it over
                subprocess.run(["rm", "-rf", str(run_dir)], check=True)
            print(f"running {configuration.name}: {shlex.join(arguments)}", file=sys.stderr, flush=True)
            seconds = run(arguments)
            summary = read_summary(run_dir)
            assert summary is not None, f"{run_dir}: no summary.json after the run"
        rows.append((configuration, summary, seconds, arguments, lowest_zero_shot(run_dir)))

    base = rows[0][1]
    if len({json.dumps([s[k]["base"] for k in ("A_KA", "A_ZS")]) for _, s, _, _, _ in rows}) > 1:
        print("warning: the runs start from different base scores (the data or the base model changed between runs)\n")
    print(
        f"base model (before the stream): A_KA {base['A_KA']['base']:.4f}, A_ZS {base['A_ZS']['base']:.4f}, GM {base['GM']['base']:.4f}\n"
    )
    print("| configuration | final A_KA | final A_ZS | final GM | mean A_KA | mean A_ZS | lowest A_ZS | minutes | command |")
    print("|---|---|---|---|---|---|---|---|---|")
    for configuration, summary, seconds, arguments, lowest in rows:
        minutes = f"{seconds / 60:.1f}" if seconds is not None else "(reused)"
        shown = shlex.join([a for a in arguments if a != "--quiet"])
        print(
            f"| {configuration.description} | {summary['A_KA']['final']:.4f} | {summary['A_ZS']['final']:.4f} | "
            f"{summary['GM']['final']:.4f} | {summary['A_KA']['mean']:.4f} | {summary['A_ZS']['mean']:.4f} | {lowest:.4f} | "
            f"{minutes} | `{shown}` |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
