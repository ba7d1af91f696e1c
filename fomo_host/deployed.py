"""The deployed weights a run keeps: the weights each evaluation scored, as plain state dicts under the base model's names.

``weights/base.safetensors`` holds the base model (task 0) and
``weights/deployed-task-NNNN.safetensors`` the weights deployed after task N
(1-based, as people count tasks). The last task's are always kept; every task's
with ``run.keep_deployed = true``. Each file carries, as safetensors metadata,
what is needed to load it anywhere else: the architecture, an open_clip model
config where the model plugin gave one, the preprocessing, and which run, task,
method and merger produced it. ``fomo-host export`` copies one out.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .components import ModelBundle, StateDict
from .errors import FomoError
from .spec import RunSpec
from .version import __version__
from .weights import save_weights

WEIGHTS_DIR = "weights"
BASE_FILE = "base.safetensors"
DEPLOYED_PATTERN = re.compile(r"^deployed-task-(\d{4,})\.safetensors$")
FORMAT = "fomo-host deployed weights"

OPEN_CLIP_ARCHITECTURE = "open_clip_architecture"
"""ModelBundle.info key: the open_clip name the model is created by (``ViT-B-16``, ``hf-hub:org/repo``); absent for
models open_clip has no built-in config for."""
OPEN_CLIP_CONFIG = "open_clip_config"
"""ModelBundle.info key: the open_clip model config (``embed_dim``, ``vision_cfg``, ``text_cfg``, ...) that builds the model."""
OPEN_CLIP_PREPROCESS = "open_clip_preprocess"
"""ModelBundle.info key: open_clip's preprocessing settings for the model (``size``, ``mean``, ``std``, ``interpolation``, ...)."""


def deployed_path(run_dir: Path, tasks_done: int) -> Path:
    """The file of the weights deployed after ``tasks_done`` tasks (0: the base model)."""
    name = BASE_FILE if tasks_done == 0 else f"deployed-task-{tasks_done:04d}.safetensors"
    return run_dir / WEIGHTS_DIR / name


def kept_tasks(run_dir: Path) -> list[int]:
    """The task numbers (tasks done; 0 for the base model) whose deployed weights the run directory holds."""
    folder = run_dir / WEIGHTS_DIR
    tasks = [0] if (folder / BASE_FILE).is_file() else []
    if folder.is_dir():
        tasks += sorted(int(match.group(1)) for path in folder.iterdir() if (match := DEPLOYED_PATTERN.match(path.name)))
    return tasks


def model_metadata(bundle: ModelBundle) -> dict[str, str]:
    """What loading the weights elsewhere needs to know about the model."""
    metadata = {
        "architecture": str(bundle.info.get(OPEN_CLIP_ARCHITECTURE) or bundle.name),
        "image_size": str(bundle.image_size),
        "image_mean": json.dumps(list(bundle.image_mean)),
        "image_std": json.dumps(list(bundle.image_std)),
    }
    if bundle.info.get(OPEN_CLIP_ARCHITECTURE):
        metadata[OPEN_CLIP_ARCHITECTURE] = str(bundle.info[OPEN_CLIP_ARCHITECTURE])
    for key in (OPEN_CLIP_CONFIG, OPEN_CLIP_PREPROCESS):
        if bundle.info.get(key):
            metadata[key] = json.dumps(bundle.info[key], sort_keys=True)
    return metadata


class DeployedWeights:
    """Writes a run's deployed weights with their metadata; called by the main process only."""

    def __init__(self, run_dir: Path, spec: RunSpec, bundle: ModelBundle, num_tasks: int) -> None:
        self.run_dir, self.spec, self.num_tasks = run_dir, spec, num_tasks
        self._model = model_metadata(bundle)

    def metadata(self, tasks_done: int) -> dict[str, str]:
        spec = self.spec
        return {
            "format": FORMAT,
            **self._model,
            "task": str(tasks_done),
            "num_tasks": str(self.num_tasks),
            "run_name": spec.run.name,
            "spec_fingerprint": spec.fingerprint(),
            "method": spec.method.name,
            "merger": spec.merger.name,
            "fomo_host_version": __version__,
        }

    def save(self, weights: StateDict, tasks_done: int) -> Path:
        """Write the weights deployed after ``tasks_done`` tasks; without ``keep_deployed``, drop earlier tasks' files."""
        path = deployed_path(self.run_dir, tasks_done)
        save_weights(weights, path, self.metadata(tasks_done))
        if tasks_done > 0 and not self.spec.run.keep_deployed:
            for earlier in kept_tasks(self.run_dir):
                if 0 < earlier < tasks_done:
                    deployed_path(self.run_dir, earlier).unlink(missing_ok=True)
        return path


def metadata_json(metadata: dict[str, str], key: str) -> Any:
    """A JSON object kept in a weights file's metadata, or None where the file has none; one line where it is damaged."""
    value = metadata.get(key)
    if not value:
        return None
    try:
        content = json.loads(value)
    except (ValueError, RecursionError):
        content = None
    if not isinstance(content, dict):
        raise FomoError(f"the weights file's metadata {key!r} is damaged (not a JSON object); export the run's weights again")
    return content
