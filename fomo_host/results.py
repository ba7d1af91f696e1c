"""Writing and reading a run's results: ``results.jsonl`` (one line per evaluation) and ``summary.json``."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import FomoError
from .faults import fault_point
from .integrity import unique_temporary
from .stored import EvaluationRecord, validated

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


REQUIRED_KEYS = ("task", "step", "samples_seen", "scores", "A_KA", "A_ZS", "GM")


def read_records(run_dir: Path) -> list[dict[str, Any]]:
    """The evaluations of a run; a line that is not a whole record is a :class:`FomoError` naming the file and line."""
    path = run_dir / RESULTS_FILE
    if not path.is_file():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise FomoError(f"{path} is damaged: not UTF-8 text") from None
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise FomoError(f"{path} is damaged: line {number} is not a JSON record (cut short?)") from None
        missing = [key for key in REQUIRED_KEYS if key not in record] if isinstance(record, dict) else list(REQUIRED_KEYS)
        if missing:
            raise FomoError(f"{path} is damaged: line {number} is not an evaluation record (no {missing[0]!r})")
        validated(EvaluationRecord, record, path, where=f"line {number}: ")
        records.append(record)
    return records


def restore_records(run_dir: Path, records: list[dict[str, Any]]) -> str | None:
    """Make ``results.jsonl`` hold exactly a checkpoint's records; a note when the file lacked or changed some of them.

    Evaluations newer than the checkpoint are dropped (the resume redoes them). The
    file is rewritten from the checkpoint in every case, so a deleted, truncated or
    damaged file cannot leave the summary built from part of the history.
    """
    path = run_dir / RESULTS_FILE
    existed = path.is_file()
    try:
        on_disk: list[dict[str, Any]] | None = read_records(run_dir)
    except FomoError:
        on_disk = None
    lines = [json.dumps(record, sort_keys=True) for record in records]
    write_text_atomic(path, "".join(line + "\n" for line in lines))
    if not records:
        return None
    if not existed:
        return f"{path} was missing; rewrote its {len(records)} evaluations from the checkpoint"
    if on_disk is None:
        return f"{path} was damaged; rewrote its {len(records)} evaluations from the checkpoint"
    kept = [json.dumps(record, sort_keys=True) for record in on_disk[: len(records)]]
    if kept != lines:
        matching = next((i for i, (a, b) in enumerate(zip(kept, lines, strict=False)) if a != b), len(kept))
        return f"{path} held {matching} of the checkpoint's {len(records)} evaluations; rewrote them from the checkpoint"
    return None


AGGREGATES = ("A_KA", "A_ZS", "GM")
DEFINITIONS = {
    "mean": "mean over the evaluations after each task; the base model's evaluation is not included",
    "auc": "area under the trajectory by the trapezoidal rule over the task axis, from the base model's evaluation "
    "(task -1, included) to the last task done, divided by the number of tasks it spans",
    "best": "the highest value of any evaluation, the base model's included",
    "change": "final value minus the base model's",
    "forgetting": "Chaudhry et al. (2018): per adaptation dataset first trained before the final task, the best score at any "
    "evaluation from the end of the first task that trained on it up to the one before the final evaluation, minus the final "
    "score (the base model is not an earlier evaluation: it never trained on the dataset); the mean is over those datasets",
    "zero_shot_drop": "per zero-shot dataset (never trained on): the base model's score minus the final score; the mean is over "
    "the zero-shot datasets",
    "drop_from_best": "per dataset: the best score at any evaluation before the final one, the base model's included, minus the "
    "final score",
    "backward_transfer": "mean over adaptation datasets last trained before the final task of "
    "(score after the final task - score after the last task that trained on the dataset)",
}
"""What each statistic of ``summary.json`` means (written into it as ``definitions``)."""
BACKWARD_TRANSFER_DEFINITION = DEFINITIONS["backward_transfer"]


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


def forgetting(records: list[dict[str, Any]], adaptation: list[str]) -> dict[str, float]:
    """Chaudhry et al.'s forgetting (Riemannian Walk, 2018) per adaptation dataset first trained before the final task.

    For a dataset first trained in task f (the first task holding any of its concepts, per the
    records' ``task_datasets``), the best score after tasks f, ..., T-2 minus the score after the
    final task T-1. Positive values are forgetting; a negative value means the final score is the
    best. The base model is not an earlier evaluation (it never trained on the dataset), and a
    dataset first trained in the final task has no earlier evaluation: it is left out.
    """
    after_tasks = [record for record in records if record["task"] >= 0]
    if len(after_tasks) < 2:
        return {}
    final = after_tasks[-1]
    drops = {}
    for name in adaptation:
        first = next((position for position, record in enumerate(after_tasks) if name in record.get("task_datasets", {})), None)
        if first is None or first == len(after_tasks) - 1 or name not in final["scores"]:
            continue
        earlier = [record["scores"][name] for record in after_tasks[first:-1] if name in record["scores"]]
        if earlier:
            drops[name] = max(earlier) - final["scores"][name]
    return drops


def zero_shot_drop(records: list[dict[str, Any]], zero_shot: list[str]) -> dict[str, float]:
    """Per zero-shot dataset (held out, never trained): the base model's score minus the final score."""
    if len(records) < 2:
        return {}
    base, final = records[0]["scores"], records[-1]["scores"]
    return {name: base[name] - final[name] for name in zero_shot if name in base and name in final}


def drop_from_best(records: list[dict[str, Any]]) -> dict[str, float]:
    """Per dataset: the best score of any evaluation before the final one (the base model's included) minus the final score."""
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
    trajectory per task; per-dataset trajectories; forgetting on the adaptation sets, the drop of
    the zero-shot sets from the base model, and each dataset's drop from its best; backward
    transfer; and the run's point on the stability-plasticity plane (change of A_KA and A_ZS from
    the base model). ``definitions`` says what each statistic is (:data:`DEFINITIONS`).
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
    drops = forgetting(records, groups["adaptation"])
    zero_shot_drops = zero_shot_drop(records, groups["zero_shot"])
    transfer = backward_transfer(records, groups["adaptation"])
    summary["datasets"] = groups
    summary["trajectories"] = trajectories(records)
    summary["forgetting"] = {"per_dataset": drops, "adaptation_mean": _mean(list(drops.values())), "definition": DEFINITIONS["forgetting"]}
    summary["zero_shot_drop"] = {
        "per_dataset": zero_shot_drops,
        "mean": _mean(list(zero_shot_drops.values())),
        "definition": DEFINITIONS["zero_shot_drop"],
    }
    summary["drop_from_best"] = {"per_dataset": drop_from_best(records), "definition": DEFINITIONS["drop_from_best"]}
    summary["backward_transfer"] = {
        "mean": _mean(list(transfer.values())) if transfer else None,
        "per_dataset": transfer,
        "definition": BACKWARD_TRANSFER_DEFINITION,
    }
    summary["definitions"] = {key: DEFINITIONS[key] for key in ("mean", "auc", "best", "change")}
    summary["stability_plasticity"] = {"delta_A_KA": summary["A_KA"]["change"], "delta_A_ZS": summary["A_ZS"]["change"]}
    summary["final_scores"] = final["scores"]
    summary["samples_seen"] = final["samples_seen"]
    summary["steps"] = final["step"]
    if "compute" in final:
        summary["compute"] = final["compute"]
    return summary


def lookup(content: Any, path: str) -> float | None:
    """The number at a dotted path of a summary (None where the path leads nowhere or not to a number)."""
    node = content
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, int | float):
        return None
    return float(node)


def read_json_lines(path: Path, required: tuple[str, ...], what: str) -> list[dict[str, Any]]:
    """A JSON-lines file of ``what`` records, oldest first (none where the file does not exist); a line that is not a
    JSON object holding every ``required`` key is one error naming the file and the line."""
    if not path.is_file():
        return []
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            raise FomoError(f"{path} is damaged: line {number} is not a JSON record") from None
        if not isinstance(entry, dict) or any(key not in entry for key in required):
            raise FomoError(f"{path} is damaged: line {number} is not {what}")
        entries.append(entry)
    return entries


def write_text_atomic(path: Path, text: str) -> None:
    temporary = unique_temporary(path)
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        fault_point("text.temporary")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_summary(run_dir: Path, summary: Mapping[str, Any]) -> None:
    write_text_atomic(run_dir / SUMMARY_FILE, json.dumps(summary, indent=2, sort_keys=True) + "\n")
