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


AGGREGATES = ("A_KA", "A_ZS", "GM")
BACKWARD_TRANSFER_DEFINITION = (
    "mean over adaptation datasets last trained before the final task of "
    "(score after the final task - score after the last task that trained on the dataset)"
)


def dataset_groups(records: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The adaptation and zero-shot dataset names the records were aggregated over (empty when not recorded)."""
    groups = records[-1].get("groups", {}) if records else {}
    return {"adaptation": list(groups.get("adaptation", [])), "zero_shot": list(groups.get("zero_shot", []))}


def trajectories(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per evaluation (base model first): the task index, A_KA, A_ZS, GM and every dataset's score."""
    names = list(dict.fromkeys(name for record in records for name in record["scores"]))
    return {
        "task": [record["task"] for record in records],
        **{key: [record[key] for record in records] for key in AGGREGATES},
        "scores": {name: [record["scores"].get(name, float("nan")) for record in records] for name in names},
    }


def area_under(tasks: list[int], values: list[float]) -> float:
    """Trapezoidal area under a trajectory over the task axis (the base model at -1), divided by the number of tasks it spans."""
    if len(values) < 2:
        return values[0] if values else float("nan")
    area = sum((tasks[i + 1] - tasks[i]) * (values[i] + values[i + 1]) / 2 for i in range(len(values) - 1))
    return area / (tasks[-1] - tasks[0])


def forgetting(records: list[dict[str, Any]]) -> dict[str, float]:
    """Per dataset: the best score of any earlier evaluation (the base model's included) minus the final score.

    Positive values are forgetting; a negative value means the final score is the best so far.
    """
    if len(records) < 2:
        return {}
    final = records[-1]["scores"]
    drops = {}
    for name, score in final.items():
        earlier = [record["scores"][name] for record in records[:-1] if name in record["scores"]]
        if earlier:
            drops[name] = max(earlier) - score
    return drops


def backward_transfer(records: list[dict[str, Any]], adaptation: list[str]) -> dict[str, float]:
    """Per adaptation dataset last trained before the final task: final score - score right after that last training task.

    The standard BWT (Lopez-Paz and Ranzato 2017) compares each task's accuracy at the end of the
    stream with its accuracy right after it was learnt, over every task but the last. Here a
    dataset plays the role of a task: it is learnt once the last task holding its concepts is
    done (``task_datasets`` of the records). A dataset trained in the final task has no later
    evaluation and is left out, as the last task is in the standard definition.
    """
    after_tasks = [record for record in records if record["task"] >= 0]
    if not after_tasks:
        return {}
    final = after_tasks[-1]
    transfer = {}
    for name in adaptation:
        trained = [record for record in after_tasks if name in record.get("task_datasets", {})]
        if trained and trained[-1] is not final and name in final["scores"]:
            transfer[name] = final["scores"][name] - trained[-1]["scores"][name]
    return transfer


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Everything a report shows about one run, from its records alone.

    Final, base, best and trajectory-mean values of A_KA, A_ZS and GM; the area under each
    trajectory per task; per-dataset trajectories and forgetting; backward transfer; and the run's
    point on the stability-plasticity plane (change of A_KA and A_ZS from the base model).
    """
    if not records:
        return {}
    base, final = records[0], records[-1]
    after_tasks = [r for r in records if r["task"] >= 0] or [base]
    tasks = [r["task"] for r in records]
    summary: dict[str, Any] = {"num_evaluations": len(records), "tasks_done": final["task"] + 1}
    for key in AGGREGATES:
        summary[key] = {
            "base": base[key],
            "final": final[key],
            "mean": _mean([r[key] for r in after_tasks]),
            "best": max(r[key] for r in records),
            "auc": area_under(tasks, [r[key] for r in records]),
            "change": final[key] - base[key],
        }
    groups = dataset_groups(records)
    drops = forgetting(records)
    transfer = backward_transfer(records, groups["adaptation"])
    summary["datasets"] = groups
    summary["trajectories"] = trajectories(records)
    summary["forgetting"] = {
        "per_dataset": drops,
        "adaptation_mean": _mean([drops[name] for name in groups["adaptation"] if name in drops]),
        "zero_shot_mean": _mean([drops[name] for name in groups["zero_shot"] if name in drops]),
    }
    summary["backward_transfer"] = {
        "mean": _mean(list(transfer.values())) if transfer else None,
        "per_dataset": transfer,
        "definition": BACKWARD_TRANSFER_DEFINITION,
    }
    summary["stability_plasticity"] = {"delta_A_KA": summary["A_KA"]["change"], "delta_A_ZS": summary["A_ZS"]["change"]}
    summary["final_scores"] = final["scores"]
    summary["samples_seen"] = final["samples_seen"]
    summary["steps"] = final["step"]
    if "compute" in final:
        summary["compute"] = final["compute"]
    return summary


def write_text_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def write_summary(run_dir: Path, summary: Mapping[str, Any]) -> None:
    write_text_atomic(run_dir / SUMMARY_FILE, json.dumps(summary, indent=2, sort_keys=True) + "\n")
