"""What a study costs over starting its runs by hand: ``fomo-host sweep`` vs the same runs started two at a time.

A study of 4 tiny runs (the tiny CLIP on the embedded data, 4 learning rates, one
seed) under the ``local`` launcher with ``max_parallel = 2`` and one thread per run,
against the same 4 runs started by hand as ``fomo-host run BASE --set ...``, two at a
time (the next pair once both of the first have ended), one thread each. The wall
time of the sweep includes everything a user waits for: loading the plugins,
validating every point, writing the index, starting and watching the runs. The
warm start of the base model is trained once before anything is timed (it is
cached), so both sides measure the same work. Prints both wall times and their
ratio (target: at most 1.10).

    python benchmarks/sweep_overhead.py [--tasks 3] [--steps 20] [--repeats 1] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tomli_w

LEARNING_RATES = [1e-3, 7e-4, 5e-4, 3e-4]
THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
CLI = [sys.executable, "-m", "fomo_host.cli"]


def base_spec(tasks: int, steps: int) -> dict:
    return {
        "run": {"name": "sweep-overhead", "seed": 0, "batch_size": 32, "cpu": True},
        "model": {"name": "tiny-clip", "warm_start": {"steps": 30, "lr": 2e-3, "batch_size": 64, "warmup_steps": 5}},
        "data": {
            "sources": [
                {
                    "name": "synthetic",
                    "params": {
                        "pool_train_per_class": 12,
                        "train_per_class": 8,
                        "test_per_class": 4,
                        "retrieval_train": 48,
                        "retrieval_test": 16,
                        "adaptation": ["letters", "arrows", "relations"],
                        "zero_shot": ["shapes-outline"],
                    },
                }
            ],
            "num_tasks": tasks,
        },
        "budget": {"steps_per_task": steps},
        "optimizer": {"lr": 5e-4},
    }


def run(arguments: list[str], log: Path) -> subprocess.Popen[bytes]:
    # a session of its own, as a run started from its own terminal has (and as the local launcher starts runs): with the
    # kernel's autogroup scheduling a session's share of a busy CPU depends on it, so both sides must be alike
    with open(log, "wb") as output:
        return subprocess.Popen(
            [*CLI, *arguments], stdout=output, stderr=subprocess.STDOUT, env={**os.environ, **THREADS}, start_new_session=True
        )


def finish(process: subprocess.Popen[bytes], what: str, log: Path) -> None:
    if process.wait() != 0:
        raise SystemExit(f"{what} failed ({process.returncode}):\n{log.read_text(errors='replace')[-3000:]}")


def by_hand(spec: Path, out: Path) -> float:
    """The 4 runs as a user starts them by hand: two at a time, the next pair when both have ended."""
    started = time.perf_counter()
    out.mkdir(parents=True)
    for pair in (LEARNING_RATES[:2], LEARNING_RATES[2:]):
        processes = []
        for lr in pair:
            log = out / f"lr-{lr}.log"
            arguments = ["run", str(spec), "--set", f"optimizer.lr={lr}", "--output", str(out / f"lr-{lr}"), "--quiet"]
            processes.append((run(arguments, log), f"run lr={lr}", log))
        for process, what, log in processes:
            finish(process, what, log)
    return time.perf_counter() - started


def swept(study: Path, out: Path) -> float:
    started = time.perf_counter()
    log = out.with_suffix(".log")
    finish(run(["sweep", str(study), "--output", str(out)], log), "sweep", log)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=3, help="tasks per run")
    parser.add_argument("--steps", type=int, default=20, help="steps per task")
    parser.add_argument("--repeats", type=int, default=1, help="measure both sides this many times, alternating; report the medians")
    parser.add_argument("--work-dir", type=Path, help="where the runs go (default: a temporary directory, removed at the end)")
    args = parser.parse_args()

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="sweep-overhead-"))
    work.mkdir(parents=True, exist_ok=True)
    spec = work / "base.toml"
    spec.write_text(tomli_w.dumps(base_spec(args.tasks, args.steps)), encoding="utf-8")
    study = work / "study.toml"
    study.write_text(
        tomli_w.dumps(
            {
                "base": "base.toml",
                "grid": {"optimizer.lr": LEARNING_RATES},
                "launcher": {"name": "local", "params": {"max_parallel": 2, "threads_per_run": 1}},
            }
        ),
        encoding="utf-8",
    )
    try:
        print("warm start (once, cached; not timed) ...", file=sys.stderr, flush=True)
        log = work / "warm-up.log"
        warm_up = ["run", str(spec), "--set", "budget.steps_per_task=1", "--output", str(work / "warm-up"), "--quiet"]
        finish(run(warm_up, log), "warm-up", log)
        hand_times, sweep_times = [], []
        for repeat in range(args.repeats):
            hand_times.append(by_hand(spec, work / f"by-hand-{repeat}"))
            sweep_times.append(swept(study, work / f"study-{repeat}"))
            print(f"repeat {repeat + 1}: by hand {hand_times[-1]:.1f} s, sweep {sweep_times[-1]:.1f} s", file=sys.stderr, flush=True)
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    hand, sweep = sorted(hand_times)[len(hand_times) // 2], sorted(sweep_times)[len(sweep_times) // 2]
    print(f"4 runs ({args.tasks} tasks x {args.steps} steps, tiny CLIP, 1 thread each), 2 at a time:")
    print(f"  by hand (fomo-host run, two at a time): {hand:7.1f} s")
    print(f"  fomo-host sweep (local, max_parallel 2): {sweep:7.1f} s")
    print(f"  ratio sweep / by hand: {sweep / hand:.3f} (target: at most 1.10)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
