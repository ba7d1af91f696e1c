"""A model kept current, measured: the quickstart's stream as 6 updates arriving one at a time, per schedule.

Runs ``specs/studies/keeping-current.toml`` (each run trains the first of 6 tasks), updates every
run five times with ``fomo-host update RUN --tasks 1`` (one release per update), then prints

- ``fomo-host compare STUDY --against "cosine per task"``: final and trajectory-mean A_KA, A_ZS, GM
  of each schedule, seed by seed against cosine per task;
- A_KA and A_ZS of every release, mean ± std over the seeds (from each run's releases.jsonl).

Usage::

    python benchmarks/keeping_current.py [--output runs/keeping-current] [--markdown]

Resumable: a rerun skips runs already updated to 6 tasks and continues an interrupted update.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STUDY = ROOT / "specs" / "studies" / "keeping-current.toml"
UPDATES = 5


def fomo_host(*argv: str) -> None:
    subprocess.run([sys.executable, "-m", "fomo_host", *argv], check=True)


def update_statuses(run_dir: Path) -> list[str]:
    """The status of each update of a run (``started`` for one interrupted, ``finished``), from updates.jsonl."""
    path = run_dir / "updates.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line)["status"] for line in path.read_text().splitlines() if line.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="runs/keeping-current", help="the study directory")
    parser.add_argument("--markdown", action="store_true", help="print the tables as markdown")
    args = parser.parse_args()
    study = Path(args.output)
    if (study / "study.json").is_file():
        fomo_host("sweep", "--resume", str(study))
    else:
        fomo_host("sweep", str(STUDY), "--output", str(study))

    sys.path.insert(0, str(ROOT))
    from fomo_host.study import read_index

    index = read_index(study)
    for entry in index.runs:
        run_dir = index.run_path(entry)
        if "started" in update_statuses(run_dir):  # an update was interrupted: continue it
            fomo_host("update", str(run_dir), "--quiet")
        for _ in range(update_statuses(run_dir).count("finished"), UPDATES):
            fomo_host("update", str(run_dir), "--tasks", "1", "--quiet")

    compare = ["compare", str(study), "--against", "cosine per task"] + (["--markdown"] if args.markdown else [])
    fomo_host(*compare)
    print()
    print_releases(index, args.markdown)
    return 0


def print_releases(index, markdown: bool) -> None:
    """A_KA and A_ZS per release, mean ± std over the seeds of each schedule."""
    by_label: dict[str, list[list[dict]]] = {}
    for entry in index.runs:
        lines = (index.run_path(entry) / "releases.jsonl").read_text().splitlines()
        by_label.setdefault(entry.label, []).append([json.loads(line) for line in lines])
    releases = max(len(runs[0]) for runs in by_label.values())
    header = ["schedule", "metric", *(f"v{n}" for n in range(1, releases + 1))]
    rows = []
    for label, runs in by_label.items():
        for metric in ("A_KA", "A_ZS"):
            cells = []
            for number in range(releases):
                values = [run[number][metric] for run in runs if len(run) > number]
                spread = statistics.stdev(values) if len(values) > 1 else 0.0
                cells.append(f"{statistics.mean(values):.4f} ± {spread:.4f}")
            rows.append([label, metric, *cells])
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))


if __name__ == "__main__":
    sys.exit(main())
