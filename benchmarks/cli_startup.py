"""CLI start-up: `fomo-host plugins`, `validate --schema-only` and `--help` against `python -c "import torch"`.

Every command runs in a fresh interpreter, as a user types it; rounds go round-robin
over the commands so machine noise hits all of them alike, after one warm-up round
(files in the page cache). For each command: the median wall-clock time and the
median CPU time of the child process (user + system, which other work on a shared
machine disturbs far less), and both as a ratio to the torch import. Targets:
`plugins` and `validate --schema-only` at most 1.2x the torch import, `--help` under
one second.

    python benchmarks/cli_startup.py [--rounds 7] [--spec specs/quickstart.toml]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RATIO_TARGET = 1.2
HELP_TARGET_SECONDS = 1.0


def cli() -> list[str]:
    """The installed console script where there is one (what a user runs), else ``python -m fomo_host``."""
    script = shutil.which("fomo-host", path=str(Path(sys.executable).parent)) or shutil.which("fomo-host")
    return [script] if script else [sys.executable, "-m", "fomo_host"]


def measure(command: list[str]) -> tuple[float, float]:
    """(wall seconds, child CPU seconds) of one run of ``command``; a failing command stops the benchmark."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"error: {' '.join(command)} exited with {result.returncode}: {result.stderr.strip()[-500:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="measured runs of every command (after one warm-up round)")
    parser.add_argument("--spec", default="specs/quickstart.toml", help="the spec validate --schema-only checks")
    args = parser.parse_args()

    commands = {
        'python -c "import torch"': [sys.executable, "-c", "import torch"],
        "fomo-host plugins": [*cli(), "plugins"],
        f"fomo-host validate --schema-only {args.spec}": [*cli(), "validate", "--schema-only", args.spec],
        "fomo-host --help": [*cli(), "--help"],
    }
    samples: dict[str, list[tuple[float, float]]] = {label: [] for label in commands}
    for round_index in range(args.rounds + 1):
        for label, command in commands.items():
            measured = measure(command)
            if round_index:  # the first round warms the page cache
                samples[label].append(measured)

    baseline_label = next(iter(commands))
    baseline_wall = statistics.median(wall for wall, _ in samples[baseline_label])
    baseline_cpu = statistics.median(cpu for _, cpu in samples[baseline_label])
    print(f"{args.rounds} rounds, medians; {os.cpu_count()} CPUs; python {sys.version.split()[0]}; CLI: {' '.join(cli())}")
    width = max(len(label) for label in commands)
    print(f"{'command':<{width}}  {'wall s':>7}  {'x torch':>7}  {'CPU s':>7}  {'x torch':>7}  target")
    for label in commands:
        wall = statistics.median(w for w, _ in samples[label])
        cpu = statistics.median(c for _, c in samples[label])
        if label == baseline_label:
            target = "(baseline)"
        elif label.endswith("--help"):
            target = f"wall < {HELP_TARGET_SECONDS:g} s: {'met' if wall < HELP_TARGET_SECONDS else 'MISSED'}"
        else:
            met = wall / baseline_wall <= RATIO_TARGET and cpu / baseline_cpu <= RATIO_TARGET
            target = f"<= {RATIO_TARGET:g}x torch: {'met' if met else 'MISSED'}"
        print(f"{label:<{width}}  {wall:7.3f}  {wall / baseline_wall:7.2f}  {cpu:7.3f}  {cpu / baseline_cpu:7.2f}  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
