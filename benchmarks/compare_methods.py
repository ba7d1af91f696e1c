"""Every update method on one base spec (default: the quickstart), as a markdown table.

Each ``specs/methods/<method>.toml`` holds only what differs from the base spec
(the ``[method]`` table, sometimes more). It is applied as ``--set`` overrides,
so every run is ``fomo-host run BASE --set ...`` and the printed command
reproduces it; ``method.params`` is replaced, not merged. Runs go one after
the other (each is a few minutes on a CPU); runs already finished under
``--output`` are reused unless ``--fresh``.

The trainable fraction is the share of the base model's weights the method
trains in a task (adapters counted as their own parameters), measured by
preparing the method on the spec's model.

    python benchmarks/compare_methods.py [--spec specs/quickstart.toml] [--methods-dir specs/methods]
                                         [--output runs/compare-methods] [--only lora ewc] [--set KEY=VALUE ...]
                                         [--fresh] [--list]
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

ORDER = ("finetune", "locked-image", "locked-text", "bitfit", "lnfit", "lora", "dora", "vera", "galore", "ewc", "si", "distillation")
"""Rows in this order first (the paper's groups), then any other spec file by name."""


@dataclass(frozen=True)
class Configuration:
    name: str
    description: str
    overrides: tuple[str, ...]


def toml_value(value: Any) -> str:
    """A value as TOML on one line (what ``--set`` reads)."""
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return tomli_w.dumps({"value": value}).split("=", 1)[1].strip()


def flatten(table: dict[str, Any], prefix: str = "") -> list[str]:
    """Nested tables -> ``a.b.c=value`` overrides; ``method.params`` first emptied so it is replaced, not merged."""
    overrides = []
    for key, value in table.items():
        path = f"{prefix}{key}"
        if path == "method.params":
            overrides.append("method.params={}")
        if isinstance(value, dict):
            overrides += flatten(value, f"{path}.")
        else:
            overrides.append(f"{path}={toml_value(value)}")
    return overrides


def read_configuration(path: Path) -> Configuration:
    text = path.read_text(encoding="utf-8")
    comment = next((line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("#")), "")
    return Configuration(path.stem, comment, tuple(flatten(tomllib.loads(text))))


def configurations(directory: Path) -> list[Configuration]:
    found = {path.stem: read_configuration(path) for path in sorted(directory.glob("*.toml"))}
    ordered = [name for name in ORDER if name in found] + sorted(name for name in found if name not in ORDER)
    return [found[name] for name in ordered]


def command(spec: Path, configuration: Configuration, extra: list[str], run_dir: Path) -> list[str]:
    arguments = ["fomo-host", "run", str(spec)]
    for override in (*configuration.overrides, *extra):
        arguments += ["--set", override]
    return [*arguments, "--output", str(run_dir), "--quiet"]


def run(arguments: list[str]) -> float:
    executable = Path(sys.executable).with_name("fomo-host")
    started = time.perf_counter()
    result = subprocess.run([str(executable), *arguments[1:]], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{shlex.join(arguments)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return time.perf_counter() - started


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "summary.json"
    return json.loads(path.read_text()) if path.is_file() else None


def same_spec(run_dir: Path, spec: Path, overrides: list[str]) -> bool:
    """Whether the finished run was made from what the spec file and overrides give now."""
    from fomo_host.spec import load_spec

    resolved = run_dir / "spec.toml"
    return resolved.is_file() and load_spec(resolved).fingerprint() == load_spec(spec, overrides).fingerprint()


def trainable_fraction(spec_path: Path, overrides: list[str]) -> float:
    """Trained weights in a task / weights of the base model, on the spec's model (no warm start needed to count)."""
    import torch

    from fomo_host.components import BuildContext, TaskInfo
    from fomo_host.plugins import load_plugins
    from fomo_host.resolve import resolve_components
    from fomo_host.spec import load_spec

    host = load_plugins()
    spec = load_spec(spec_path, overrides)
    components = resolve_components(spec, host.registry)
    model = components.model.build(BuildContext(seed=spec.run.seed, cache_dir=Path("."))).model
    base_count = sum(p.numel() for p in model.parameters())
    method = components.method.build()
    with torch.random.fork_rng():
        model = method.prepare(model)
    trained = method.trainable_parameters(model, TaskInfo(index=0, num_tasks=spec.data.num_tasks, steps=1, concepts=[]))
    return sum(p.numel() for _, p in trained) / base_count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, default=Path("specs/quickstart.toml"), help="the base spec every method runs on")
    parser.add_argument("--methods-dir", type=Path, default=Path("specs/methods"), help="one <name>.toml per configuration")
    parser.add_argument("--output", type=Path, default=Path("runs/compare-methods"), help="one run directory per configuration in here")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these configurations")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="an override for every configuration")
    parser.add_argument("--fresh", action="store_true", help="run again even where a finished run exists")
    parser.add_argument("--list", action="store_true", help="list the configurations and their overrides, then exit")
    args = parser.parse_args()

    available = configurations(args.methods_dir)
    by_name = {c.name: c for c in available}
    if args.list:
        for configuration in available:
            print(f"{configuration.name:14s} {configuration.description}\n{'':14s} {' '.join(configuration.overrides)}")
        return 0
    unknown = [name for name in args.only or [] if name not in by_name]
    if unknown:
        parser.error(f"unknown configuration {unknown[0]!r}; available: {', '.join(by_name)}")
    chosen = [by_name[name] for name in args.only] if args.only else available

    rows = []
    for configuration in chosen:
        run_dir = args.output / configuration.name
        arguments = command(args.spec, configuration, args.set, run_dir)
        fraction = trainable_fraction(args.spec, [*configuration.overrides, *args.set])
        reusable = not args.fresh and same_spec(run_dir, args.spec, [*configuration.overrides, *args.set])
        summary = read_summary(run_dir) if reusable else None
        seconds = None
        if summary is None:
            if run_dir.exists():
                shutil.rmtree(run_dir)  # an unfinished or stale run: start it over
            print(f"running {configuration.name}: {shlex.join(arguments)}", file=sys.stderr, flush=True)
            seconds = run(arguments)
            summary = read_summary(run_dir)
            assert summary is not None, f"{run_dir}: no summary.json after the run"
        rows.append((configuration, fraction, summary, seconds, arguments))

    base = rows[0][2]

    def base_scores(summary: dict[str, Any]) -> tuple[float, float]:
        return summary["A_KA"]["base"], summary["A_ZS"]["base"]

    moved = [configuration.name for configuration, _, summary, _, _ in rows if base_scores(summary) != base_scores(base)]
    if moved:
        # the same spec must give the same base model and data; otherwise the rows are not comparable
        print(f"warning: the base model's scores differ from {rows[0][0].name}'s in {', '.join(moved)}; rerun those with --fresh\n")
    print(
        f"base model (before the stream): A_KA {base['A_KA']['base']:.4f}, A_ZS {base['A_ZS']['base']:.4f}, GM {base['GM']['base']:.4f}\n"
    )
    print("| method | trained weights | final A_KA | final A_ZS | final GM | mean GM | dA_KA | dA_ZS | minutes |")
    print("|---|---|---|---|---|---|---|---|---|")
    for configuration, fraction, summary, seconds, _ in rows:
        minutes = f"{seconds / 60:.1f}" if seconds is not None else "(reused)"
        gained = summary["A_KA"]["final"] - summary["A_KA"]["base"]
        kept = summary["A_ZS"]["final"] - summary["A_ZS"]["base"]
        print(
            f"| {configuration.name} | {100 * fraction:.2f}% | {summary['A_KA']['final']:.4f} | {summary['A_ZS']['final']:.4f} | "
            f"{summary['GM']['final']:.4f} | {summary['GM']['mean']:.4f} | {gained:+.4f} | {kept:+.4f} | {minutes} |"
        )
    print("\ncommands:")
    for configuration, _, _, _, arguments in rows:
        print(f"- {configuration.name}: `{shlex.join([a for a in arguments if a != '--quiet'])}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
