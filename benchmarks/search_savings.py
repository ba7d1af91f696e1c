"""What pruning along the stream saves: the same 8-trial search with and without the median pruner, on tiny runs.

Both searches use the same sampler and seed, so they propose the same learning rates in the
same order (random sampling does not depend on earlier results); pruning only stops trials
after a task. Compute is counted as the MAF of the tasks the trials' runs trained
(budget.maf_per_task per task, from each run's records). Prints

    pruned search used X of the unpruned MAF
    best objective: pruned Y, unpruned Z

Tiny runs on the embedded data: 4 tasks of 6 steps, 2 runs at a time, one CPU thread each.

    python benchmarks/search_savings.py [--trials 8] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fomo_host.testing.tiny_spec import tiny_spec

SPEC = tiny_spec(num_tasks=4, steps=6, name="savings", validation_per_class=4)
STUDY = """
base = "spec.toml"
seeds = [0]
[search]
sampler = "random"
seed = 0
objectives = ["GM.final:max"]
trials = {trials}
pruner = {pruner}
split = "validation"
[search.space]
"optimizer.lr" = {{ log_uniform = [1e-5, 1e-1] }}
[launcher]
name = "local"
params = {{ max_parallel = 2, threads_per_run = 1 }}
"""
PRUNERS = {"pruned": '{ name = "median", params = { startup_trials = 2, warmup_tasks = 0 } }', "unpruned": '{ name = "none" }'}


def sweep(directory: Path, name: str, trials: int) -> tuple[float, float, float, int]:
    """(MAF used, best objective, seconds, trials pruned) of one search."""
    from fomo_host.reporting.search import load_search

    study = directory / f"{name}.toml"
    study.write_text(STUDY.format(trials=trials, pruner=PRUNERS[name]), encoding="utf-8")
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "fomo_host.cli", "sweep", str(study), "--output", str(directory / name)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - started
    search = load_search(directory / name)
    values = [trial.values[0] for trial in search.trials if trial.values]
    return search.maf_run, max(values), seconds, len(search.pruned)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--out", type=Path, help="keep the study directories here (default: a temporary folder)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as temporary:
        directory = args.out or Path(temporary)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "spec.toml").write_text(SPEC, encoding="utf-8")
        results = {name: sweep(directory, name, args.trials) for name in ("unpruned", "pruned")}
    (maf_p, best_p, secs_p, count_p), (maf_u, best_u, secs_u, _) = results["pruned"], results["unpruned"]
    print(f"{args.trials} trials each, 4 tasks per run, random sampler (seed 0), objective GM.final on the validation split")
    print(f"unpruned: {maf_u:,.1f} MAF, {secs_u:.0f} s; pruned: {maf_p:,.1f} MAF, {secs_p:.0f} s, {count_p} trials pruned")
    print(f"pruned search used {maf_p / maf_u:.2f} of the unpruned MAF")
    print(f"best objective: pruned {best_p:.4f}, unpruned {best_u:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
