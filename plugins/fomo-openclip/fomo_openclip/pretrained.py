"""Pretrained weights by name, found in the local caches only (never downloaded).

open_clip names weights by a tag per architecture (``laion2b_s34b_b88k``) and by
Hugging Face Hub repositories (``hf-hub:laion/CLIP-ViT-B-16-laion2B-s34B-b88K``).
A connected machine downloads them into the Hugging Face cache (or, for OpenAI's
original files, ``~/.cache/clip``); here they are looked up there, as
``HF_HUB_OFFLINE=1`` would, and a missing one is one line saying where we looked
and how to fetch it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HF_SAFE_WEIGHTS = "open_clip_model.safetensors"
HF_WEIGHTS = "open_clip_pytorch_model.bin"
HF_CONFIG = "open_clip_config.json"
HUB_PREFIX = "hf-hub:"


class MissingWeights(ValueError):
    """Named weights that are not in any local cache."""


@dataclass
class ResolvedWeights:
    """A local weights file and what its name says about how the weights were trained."""

    path: Path
    quick_gelu: bool | None = None
    """True for weights trained with QuickGELU (OpenAI's and a few others), None where the name does not say."""
    preprocess: dict[str, Any] = field(default_factory=dict)
    """open_clip preprocessing settings that come with the weights (mean, std, interpolation, resize_mode)."""


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache, as huggingface_hub finds it (HF_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME, ~/.cache)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "huggingface" / "hub"


def url_cache_dir() -> Path:
    """Where open_clip keeps weights it downloads from a URL (OpenAI's original files)."""
    return Path("~/.cache/clip").expanduser()


def cached_hub_file(repo_id: str, filename: str) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename, cache_dir=str(hub_cache_dir()))
    return Path(found) if isinstance(found, str) else None


def weight_candidates(filename: str | None) -> list[str]:
    """The file names open_clip tries for a hub entry, safetensors first."""
    if not filename:
        return [HF_SAFE_WEIGHTS, HF_WEIGHTS]
    if filename.endswith((".bin", ".pth")):
        return [filename[:-4] + ".safetensors", filename]
    return [filename]


def split_hub_name(name: str) -> tuple[str, str | None]:
    """``org/repo`` or ``org/repo/file.bin`` (a trailing slash means the default files) -> (repo id, file name or None)."""
    parts = name.strip("/").split("/")
    if len(parts) < 2 or not all(parts):
        raise ValueError(f"{name!r} is not a Hugging Face repository name (org/repo)")
    return "/".join(parts[:2]), "/".join(parts[2:]) or None


def fetch_hint(architecture: str, pretrained: str | None) -> str:
    """The command that fills the caches on a connected machine."""
    arguments = f"{architecture!r}" + (f", pretrained={pretrained!r}" if pretrained else "")
    return (
        f'fetch them on a connected machine with: python -c "import open_clip; open_clip.create_model({arguments})", '
        f"then copy its cache here (or set HF_HUB_CACHE to it)"
    )


def resolve_hub(repo_id: str, filename: str | None, architecture: str, pretrained: str | None) -> Path:
    candidates = weight_candidates(filename)
    for candidate in candidates:
        path = cached_hub_file(repo_id, candidate)
        if path is not None:
            return path
    raise MissingWeights(
        f"{repo_id}/{' or '.join(candidates)} is not in the Hugging Face cache {hub_cache_dir()}; {fetch_hint(architecture, pretrained)}"
    )


def resolve_tag(architecture: str, tag: str) -> ResolvedWeights:
    """open_clip's pretrained tag of an architecture, from the hub cache or open_clip's URL cache."""
    import open_clip

    config = open_clip.get_pretrained_cfg(architecture, tag)
    if not config:
        tags = open_clip.list_pretrained_tags_by_model(architecture)
        raise ValueError(f"{tag!r} is neither a file nor a pretrained tag of {architecture} (its tags: {', '.join(tags) or 'none'})")
    preprocess = {key: config[key] for key in ("mean", "std", "interpolation", "resize_mode") if key in config}
    quick_gelu = True if config.get("quick_gelu") else None
    looked = []
    if config.get("hf_hub"):
        repo_id, filename = split_hub_name(config["hf_hub"])
        try:
            return ResolvedWeights(resolve_hub(repo_id, filename, architecture, tag), quick_gelu, preprocess)
        except MissingWeights:
            looked.append(f"{repo_id}/{' or '.join(weight_candidates(filename))} in {hub_cache_dir()}")
    if config.get("url"):
        path = url_cache_dir() / os.path.basename(config["url"])
        if path.is_file():
            return ResolvedWeights(path, quick_gelu, preprocess)
        looked.append(str(path))
    raise MissingWeights(
        f"pretrained {tag!r} of {architecture} is not in the local caches (looked for {'; '.join(looked)}); {fetch_hint(architecture, tag)}"
    )


def resolve_hub_model(name: str) -> tuple[dict[str, Any], Path]:
    """``hf-hub:org/repo`` as an architecture: its open_clip config (model_cfg, preprocess_cfg) and weights, from the cache."""
    repo_id, filename = split_hub_name(name.removeprefix(HUB_PREFIX))
    if filename:
        raise ValueError(f"{name!r}: an architecture names a repository (hf-hub:org/repo), not a file in it")
    config_path = cached_hub_file(repo_id, HF_CONFIG)
    if config_path is None:
        raise MissingWeights(f"{repo_id}/{HF_CONFIG} is not in the Hugging Face cache {hub_cache_dir()}; {fetch_hint(name, None)}")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if "model_cfg" not in config:
        raise ValueError(f"{config_path} has no 'model_cfg'; it is not an open_clip model repository")
    return config, resolve_hub(repo_id, None, name, None)
