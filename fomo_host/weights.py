"""State dicts kept on disk (safetensors), written atomically and read lazily.

Mergers keep their history here instead of in memory, so a run's memory does
not grow with the number of tasks.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .faults import fault_point
from .integrity import IntegrityError, unique_temporary, user_file_mode

StateDict = dict[str, torch.Tensor]
_KEY_PATTERN = re.compile(r"^[A-Za-z0-9._-]+$")


def save_weights(weights: StateDict, path: Path, metadata: dict[str, str] | None = None) -> None:
    """Write ``weights`` (and safetensors' string ``metadata``) to ``path`` atomically (a temporary file of this process, then rename).

    Safe when several processes write the same path at once: each writes its own
    temporary file, and the last rename wins with a complete file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = unique_temporary(path)
    contiguous = {name: tensor.detach().contiguous().cpu() for name, tensor in weights.items()}
    try:
        try:
            save_file(_untie(contiguous), str(temporary), metadata=metadata)
        except SafetensorError as exc:
            raise _as_os_error(exc, path) from None
        # safetensors creates its files 0600; weights are for people (exports, a shared run directory): the umask's mode
        os.chmod(temporary, user_file_mode())
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        fault_point("weights.temporary")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def _as_os_error(exc: SafetensorError, path: Path) -> Exception:
    """safetensors reports a failed write (a full disk) as its own error: the OSError it was, for the one-line handlers."""
    found = _OS_ERROR.search(str(exc))
    if found is None:
        return exc
    code = int(found.group(1))
    return OSError(code, os.strerror(code), str(path))


def read_metadata(path: Path) -> dict[str, str]:
    """The string metadata of a safetensors file (empty when it has none), without reading its tensors."""
    with safe_open(str(path), framework="pt") as handle:
        return dict(handle.metadata() or {})


def load_weights(path: Path, device: str | torch.device = "cpu") -> StateDict:
    try:
        return load_file(str(path), device=str(device))
    except SafetensorError as exc:
        raise IntegrityError(f"{path} is damaged: not a readable safetensors file ({exc})") from None


def _untie(weights: StateDict) -> StateDict:
    """safetensors refuses tensors sharing memory; give each its own storage."""
    seen: set[int] = set()
    result = {}
    for name, tensor in weights.items():
        pointer = tensor.untyped_storage().data_ptr() if tensor.numel() else -1
        if pointer in seen and pointer != -1:
            tensor = tensor.clone()
        seen.add(pointer)
        result[name] = tensor
    return result


class WeightStore:
    """Named state dicts in a folder, one safetensors file each."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if not _KEY_PATTERN.match(key):
            raise ValueError(f"weight store key {key!r}: use letters, digits, '.', '_' or '-'")
        return self.root / f"{key}.safetensors"

    def save(self, key: str, weights: StateDict) -> None:
        save_weights(weights, self._path(key))

    def load(self, key: str, device: str | torch.device = "cpu") -> StateDict:
        path = self._path(key)
        if not path.is_file():
            raise KeyError(f"no weights {key!r} in {self.root}")
        return load_weights(path, device)

    def __contains__(self, key: str) -> bool:
        return self._path(key).is_file()

    def keys(self) -> list[str]:
        return sorted(path.name.removesuffix(".safetensors") for path in self.root.glob("*.safetensors"))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
