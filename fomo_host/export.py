"""Exporting a run's deployed weights as a plain open_clip model, and reading such an export back.

Two forms, both safetensors with the run's metadata:

- a file (``--out model.safetensors``): the state dict under the base model's
  parameter names; ``open_clip.create_model(ARCH, pretrained=FILE)`` loads it
  for any built-in open_clip architecture;
- a folder (``--out DIR``): ``open_clip_model.safetensors`` beside an
  ``open_clip_config.json`` (model and preprocessing config), open_clip's own
  Hugging Face Hub layout: ``open_clip.create_model_and_transforms("local-dir:DIR")``
  loads it for any model with an open_clip config, the tiny CLIP included, and
  the folder can be uploaded to the Hub as it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safetensors import SafetensorError

from .deployed import FORMAT, OPEN_CLIP_ARCHITECTURE, OPEN_CLIP_CONFIG, OPEN_CLIP_PREPROCESS, deployed_path, kept_tasks, metadata_json
from .errors import FomoError
from .output_path import check_output_path
from .results import write_text_atomic
from .run_records import checked_records
from .weights import StateDict, load_weights, read_metadata, save_weights

EXPORT_WEIGHTS_FILE = "open_clip_model.safetensors"
EXPORT_CONFIG_FILE = "open_clip_config.json"


@dataclass
class Export:
    """What ``export_run`` wrote."""

    weights: Path
    config: Path | None
    metadata: dict[str, str]
    load_hint: str | None
    """The Python line that loads the export in open_clip; None where open_clip cannot load it as written."""
    note: str | None = None
    """Why there is no load line, and what to do instead."""

    @property
    def tasks_done(self) -> int:
        return int(self.metadata["task"])


@dataclass
class ExportedWeights:
    """An exported (or deployed) weights file read back: tensors, metadata and the run's recorded evaluation of them."""

    path: Path
    weights: StateDict
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def recorded(self) -> dict[str, Any] | None:
        """The run's evaluation of these weights (scores, A_KA, A_ZS, GM, subset_fraction), where the file carries it."""
        return metadata_json(self.metadata, "recorded")

    def describe(self) -> str:
        meta = self.metadata
        if "task" not in meta:
            return str(self.path)
        task = "base model" if meta["task"] == "0" else f"task {meta['task']}/{meta.get('num_tasks', '?')}"
        merger = "" if meta.get("merger") in (None, "none") else f" + {meta['merger']}"
        return f"{self.path} ({task} of run {meta.get('run_name', '?')}, {meta.get('method', '?')}{merger})"


def choose_task(run_dir: Path, task: int | None) -> tuple[int, dict[str, Any] | None]:
    """The task to export (tasks done; 0 = base model) and the run's record of its evaluation."""
    if not run_dir.is_dir():
        raise FomoError(f"{run_dir}: no such run directory")
    records = checked_records(run_dir)
    kept = kept_tasks(run_dir)
    if not kept:
        raise FomoError(f"{run_dir}: no deployed weights under weights/; is it a run directory?")
    if task is None:
        task = records[-1]["task"] + 1 if records else kept[-1]
    if task not in kept:
        shown = ", ".join("0 (base)" if t == 0 else str(t) for t in kept)
        why = " (the run keeps every task's only with run.keep_deployed = true)" if records and task <= records[-1]["task"] + 1 else ""
        raise FomoError(f"{run_dir}: no deployed weights of task {task}{why}; kept: {shown}")
    record = next((r for r in reversed(records) if r["task"] == task - 1), None)
    return task, record


def recorded_evaluation(record: dict[str, Any] | None) -> dict[str, Any] | None:
    if record is None:
        return None
    keys = ("scores", "A_KA", "A_ZS", "GM", "subset_fraction")
    return {key: record[key] for key in keys if key in record}


def export_run(run_dir: Path, out: Path, task: int | None = None, force: bool = False) -> Export:
    """Write the weights deployed after ``task`` tasks (default: the last evaluated) to ``out`` (a .safetensors file or a folder)."""
    # the place first, before anything is read or written
    if out.suffix == ".safetensors":
        check_output_path(out, "--out", "file")
    elif out.exists() and not out.is_dir():
        raise FomoError(f"--out {out}: exists and is not a folder (a file export needs the .safetensors suffix)")
    else:
        check_output_path(out, "--out")
    task, record = choose_task(run_dir, task)
    source = deployed_path(run_dir, task)
    metadata = read_metadata(source)
    if metadata.get("format") != FORMAT:
        raise FomoError(f"{source}: no fomo-host metadata (written by a version before export); rerun to get exportable weights")
    weights = load_weights(source)
    metadata["exported_from"] = str(run_dir.resolve())
    recorded = recorded_evaluation(record)
    if recorded is not None:
        metadata["recorded"] = json.dumps(recorded, sort_keys=True)
    architecture = metadata.get(OPEN_CLIP_ARCHITECTURE)
    quick_gelu = bool((metadata_json(metadata, OPEN_CLIP_CONFIG) or {}).get("quick_gelu"))
    if out.suffix == ".safetensors":
        refuse_to_overwrite([out], force)
        save_weights(weights, out, metadata)
        if architecture and open_clip_knows(architecture):
            options = ", force_quick_gelu=True" if quick_gelu else ""
            return Export(out, None, metadata, f"open_clip.create_model({architecture!r}, pretrained={str(out)!r}{options})")
        note = (
            f"{metadata.get('architecture', 'this model')} is no built-in open_clip architecture, so open_clip cannot load "
            f"this file by an architecture name; export to a folder (--out DIR) to get a model open_clip loads with "
            "open_clip.create_model_and_transforms('local-dir:DIR')"
        )
        return Export(out, None, metadata, None, note)
    model_config = metadata_json(metadata, OPEN_CLIP_CONFIG)
    if model_config is None:
        raise FomoError(
            f"{source}: the model plugin gave no open_clip config, so no open_clip folder can be written; use --out FILE.safetensors"
        )
    if out.exists() and not out.is_dir():
        raise FomoError(f"--out {out}: exists and is not a folder (a file export needs the .safetensors suffix)")
    weights_path, config_path = out / EXPORT_WEIGHTS_FILE, out / EXPORT_CONFIG_FILE
    refuse_to_overwrite([weights_path, config_path], force)
    out.mkdir(parents=True, exist_ok=True)
    preprocess = metadata_json(metadata, OPEN_CLIP_PREPROCESS) or {
        "size": int(metadata["image_size"]),
        "mean": json.loads(metadata["image_mean"]),
        "std": json.loads(metadata["image_std"]),
    }
    save_weights(weights, weights_path, metadata)
    write_text_atomic(config_path, json.dumps({"model_cfg": model_config, "preprocess_cfg": preprocess}, indent=2, sort_keys=True) + "\n")
    return Export(weights_path, config_path, metadata, f"open_clip.create_model_and_transforms('local-dir:{out}')")


def open_clip_knows(architecture: str) -> bool:
    """Whether ``open_clip.create_model(architecture)`` finds a config (True where open_clip is not installed here:
    the line is for wherever the file is loaded)."""
    try:
        import open_clip
    except ImportError:
        return True
    return architecture in open_clip.list_models()


def refuse_to_overwrite(paths: list[Path], force: bool) -> None:
    existing = [path for path in paths if path.exists()]
    if existing and not force:
        raise FomoError(f"--out: {existing[0]} exists; pass --force to overwrite it")


def read_exported(path: Path) -> ExportedWeights:
    """An export (file or folder), a run's deployed weights file, or any safetensors state dict."""
    if path.is_dir():
        path = path / EXPORT_WEIGHTS_FILE
    if not path.is_file():
        raise FomoError(f"{path}: no such weights file")
    if path.suffix != ".safetensors":
        raise FomoError(f"{path}: not a safetensors file (give what fomo-host export wrote)")
    try:
        return ExportedWeights(path, load_weights(path), read_metadata(path))
    except (OSError, SafetensorError) as exc:
        raise FomoError(f"{path}: cannot read it as safetensors: {exc}") from None
