"""What every logger writes about an evaluation, named once: the scalars of one ``results.jsonl`` record."""

from __future__ import annotations

from typing import Any


def tasks_done(record: dict[str, Any]) -> int:
    """The record's place on the task axis as people count it: 0 for the base model, t for the evaluation after task t."""
    return int(record["task"]) + 1


def evaluation_scalars(record: dict[str, Any]) -> dict[str, float]:
    """``aggregate/A_KA``, ``aggregate/A_ZS``, ``aggregate/GM``, ``score/<dataset>``, ``metric/<dataset>/<metric>``,
    ``compute/gflops``, ``compute/maf`` and ``progress/samples_seen`` of one evaluation."""
    scalars = {f"aggregate/{key}": float(record[key]) for key in ("A_KA", "A_ZS", "GM")}
    scalars.update({f"score/{name}": float(value) for name, value in record.get("scores", {}).items()})
    for dataset, values in record.get("metrics", {}).items():
        scalars.update({f"metric/{dataset}/{metric}": float(value) for metric, value in values.items()})
    scalars.update({f"compute/{key}": float(value) for key, value in record.get("compute", {}).items()})
    if "samples_seen" in record:
        scalars["progress/samples_seen"] = float(record["samples_seen"])
    return scalars


def final_scalars(summary: dict[str, Any]) -> dict[str, float]:
    """The run's end point: final and trajectory-mean A_KA, A_ZS and GM, forgetting and backward transfer."""
    scalars: dict[str, float] = {}
    for key in ("A_KA", "A_ZS", "GM"):
        if key in summary:
            scalars[f"final/{key}"] = float(summary[key]["final"])
            scalars[f"mean/{key}"] = float(summary[key]["mean"])
    forgetting = summary.get("forgetting", {}).get("adaptation_mean")
    if forgetting is not None:
        scalars["final/forgetting"] = float(forgetting)
    transfer = summary.get("backward_transfer", {}).get("mean")
    if transfer is not None:
        scalars["final/backward_transfer"] = float(transfer)
    return scalars


def flat_spec(spec: Any) -> dict[str, str]:
    """The resolved spec as dotted keys (``optimizer.lr``), values as text, for trackers' parameter tables."""
    import json

    flat: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        else:
            flat[prefix] = value if isinstance(value, str) else json.dumps(value)

    walk("", spec.model_dump(mode="json"))
    return flat
