"""Writing and reading a run's results: ``results.jsonl`` (one line per evaluation) and ``summary.json``."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"


def aggregate(scores: Mapping[str, float], adaptation: list[str], zero_shot: list[str]) -> dict[str, float]:
    """A_KA, A_ZS (means of the datasets' primary scores) and their geometric mean GM."""
    a_ka = _mean([scores[name] for name in adaptation if name in scores])
    a_zs = _mean([scores[name] for name in zero_shot if name in scores])
    return {"A_KA": a_ka, "A_ZS": a_zs, "GM": math.sqrt(max(a_ka, 0.0) * max(a_zs, 0.0))}


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def append_record(run_dir: Path, record: Mapping[str, Any]) -> None:
    """Append one evaluation and flush it to disk at once, so an interruption loses nothing written."""
    with open(run_dir / RESULTS_FILE, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_records(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / RESULTS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def truncate_records(run_dir: Path, keep: int) -> None:
    """Keep the first ``keep`` records (a resume drops evaluations newer than its checkpoint)."""
    records = read_records(run_dir)[:keep]
    write_text_atomic(run_dir / RESULTS_FILE, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Final values, base values and trajectory means (area under the curve per task) of A_KA, A_ZS, GM."""
    if not records:
        return {}
    base, final = records[0], records[-1]
    after_tasks = [r for r in records if r["task"] >= 0] or [base]
    summary: dict[str, Any] = {"num_evaluations": len(records), "tasks_done": final["task"] + 1}
    for key in ("A_KA", "A_ZS", "GM"):
        summary[key] = {
            "base": base[key],
            "final": final[key],
            "mean": _mean([r[key] for r in after_tasks]),
            "change": final[key] - base[key],
        }
    summary["final_scores"] = final["scores"]
    summary["samples_seen"] = final["samples_seen"]
    summary["steps"] = final["step"]
    return summary


def write_text_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def write_summary(run_dir: Path, summary: Mapping[str, Any]) -> None:
    write_text_atomic(run_dir / SUMMARY_FILE, json.dumps(summary, indent=2, sort_keys=True) + "\n")
