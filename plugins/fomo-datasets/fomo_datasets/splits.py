"""From a split's list of image files, labels and captions to a sample set (decoded into the cache, or streamed), counting
what is skipped."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from fomo_host.api import BuildContext, FomoError, ImageTextDataset

from .cache import CaptionedSamples, ImageCache, MemmapSampleSet, content_key, file_jobs, file_signature, logger
from .params import DatasetIdentity, LoaderParams, ValidationParams
from .streaming import FileImages, StreamedSampleSet

SKIP_EXAMPLES = 20
"""How many skipped files a dataset's info lists by name (the count covers them all)."""


@dataclass
class SplitRecords:
    """One split before decoding: an image file, a label (-1: none) and caption choices per sample."""

    files: list[Path] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    captions: list[Sequence[str]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    """What names each sample within its dataset wherever the data lies (a path below the split's folder, a table's image
    path, an info file's key): the validation carve draws on these, so it does not move with the data or its listing order."""
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """Samples dropped before decoding (no caption, no class), with the reason."""

    def add(self, file: Path, label: int, captions: Sequence[str], name: str | None = None) -> None:
        self.files.append(file)
        self.labels.append(label)
        self.captions.append(captions)
        self.names.append(name if name is not None else file.as_posix())

    def take(self, positions: Sequence[int], skipped: list[tuple[str, str]] | None = None) -> SplitRecords:
        """The samples at ``positions``, in that order."""
        taken = SplitRecords(skipped=list(skipped or []))
        for position in positions:
            taken.add(self.files[position], self.labels[position], self.captions[position], self.names[position])
        return taken


def carve_rank(seed: int, name: str) -> bytes:
    """A sample's place in the carve's draw: a hash of the seed and its name (so no listing order enters)."""
    return hashlib.sha256(f"{seed}\0{name}".encode()).digest()


def carve_positions(labels: Sequence[int], names: Sequence[str], fraction: float, seed: int) -> list[int]:
    """The positions the validation split takes: in each class (all samples, where there are no classes) the
    ``round(fraction * n)`` samples whose hash of seed and name ranks first, at least one and never the whole class
    (a class of one sample gives none), listed in name order."""
    by_label: dict[int, list[int]] = {}
    for position, label in enumerate(labels):
        by_label.setdefault(label, []).append(position)
    chosen: list[int] = []
    for positions in by_label.values():
        count = min(len(positions) - 1, max(1, round(fraction * len(positions))))
        ranked = sorted(positions, key=lambda position: (carve_rank(seed, names[position]), names[position]))
        chosen.extend(ranked[:count])
    return sorted(chosen, key=lambda position: names[position])


def carve_validation(
    identity: ValidationParams, records: dict[str, SplitRecords]
) -> tuple[dict[str, SplitRecords], dict[str, object] | None]:
    """The splits with a validation split carved out (``validation_fraction``): from the training split where the set
    reads one, else from its test split; the carved samples leave the split they came from. Also how it was carved
    (the dataset's ``info["validation"]``, which the run records); unchanged splits and None without a fraction."""
    if not identity.validation_fraction:
        return records, None
    source = carve_source(records)
    carved = carve_positions(records[source].labels, records[source].names, identity.validation_fraction, identity.validation_seed)
    taken = set(carved)
    kept = [position for position in range(len(records[source].files)) if position not in taken]
    splits = {
        **records,
        source: records[source].take(kept, records[source].skipped),
        "validation": records[source].take(carved),
    }
    return splits, carve_record(identity, source)


def carve_source(splits: Iterable[str]) -> str:
    """The split a validation split is carved from: the training split where the set reads one, else the test split."""
    return "train" if "train" in splits else "test"


def carve_record(identity: ValidationParams, source: str) -> dict[str, object]:
    """How a validation split was carved, as the dataset's ``info["validation"]`` (the run records it)."""
    return {"fraction": identity.validation_fraction, "seed": identity.validation_seed, "carved_from": source}


@dataclass
class BuiltSplit:
    samples: CaptionedSamples
    skipped: list[tuple[str, str]]


def image_size(context: BuildContext) -> int:
    if context.image_size is None:
        raise FomoError("dataset components need the model's image size; build the model first")
    return context.image_size


def decode_device(label: str, loader: LoaderParams, context: BuildContext) -> torch.device | None:
    """The device streamed JPEGs are decoded on: None for the CPU; ``decode = 'gpu'`` needs the run on a CUDA device."""
    if loader.decode != "gpu":
        return None
    if context.device.type != "cuda":
        raise FomoError(f"{label}: decode = 'gpu' needs a CUDA device, and this run is on {context.device.type}; use decode = 'cpu'")
    return context.device


def check_skipped(label: str, skipped: list[tuple[str, str]], total: int, max_fraction: float) -> None:
    """Stop with a clear error naming files when too many samples of a split were skipped; else note them."""
    if not skipped:
        return
    named = "; ".join(f"{name}: {reason}" for name, reason in skipped[:5])
    more = f" (and {len(skipped) - 5} more)" if len(skipped) > 5 else ""
    if len(skipped) >= total or len(skipped) > max_fraction * total:
        raise FomoError(
            f"{label}: {len(skipped)} of {total} samples are unreadable ({len(skipped) / total:.1%}, "
            f"more than max_skipped_fraction {max_fraction:g}): {named}{more}; fix or remove them, or raise max_skipped_fraction"
        )
    logger.warning("%s: skipped %d of %d unreadable samples: %s%s", label, len(skipped), total, named, more)


def build_file_split(label: str, records: SplitRecords, context: BuildContext, loader: LoaderParams) -> BuiltSplit:
    """Decode (or load from the cache) the split's images and keep the samples whose image could be read; with
    ``cache = 'stream'`` only check the images (their headers) and decode them when batches use them."""
    total = len(records.files) + len(records.skipped)
    if total == 0:
        raise FomoError(f"{label}: the split has no samples")
    size = image_size(context)
    device = decode_device(label, loader, context)
    signatures = [file_signature(path) for path in records.files]
    key = content_key(kind="files", files=signatures, size=size)
    stream = loader.cache == "stream"
    entry_key = content_key(kind="files-checked", files=signatures, size=size) if stream else key
    jobs = file_jobs(records.files)
    built = ImageCache(context.cache_dir).get_or_build(
        entry_key, jobs, size, loader.workers, label, total=len(jobs), progress=context.progress, pixels=not stream
    )
    skipped = records.skipped + built.skipped
    check_skipped(label, skipped, total, loader.max_skipped_fraction)
    kept = built.kept.tolist()
    labels = torch.tensor(records.labels, dtype=torch.int64)[built.kept] if kept else torch.empty(0, dtype=torch.int64)
    captions = [records.captions[i] for i in kept]
    samples: CaptionedSamples
    if stream:
        pixel_key = key if device is None else content_key(kind="files", pixels=key, decode="gpu")
        encoded = FileImages([records.files[i] for i in kept])
        samples = StreamedSampleSet(encoded, labels, captions, pixel_key, size, label, loader.workers, device)
    else:
        assert built.images is not None
        samples = MemmapSampleSet(built.images, labels, captions, key)
    return BuiltSplit(samples, skipped)


def assemble(
    identity: DatasetIdentity,
    classnames: list[str],
    templates: list[str],
    splits: dict[str, BuiltSplit],
    description: str,
    validation: dict[str, object] | None = None,
) -> ImageTextDataset:
    """The :class:`ImageTextDataset`, with the skipped count (and the first skipped files) in ``info``, and how its
    validation split was carved (:func:`carve_validation`) under ``info["validation"]``."""
    skipped = [entry for split in splits.values() for entry in split.skipped]
    info: dict[str, object] = {"skipped_images": len(skipped)}
    if skipped:
        info["skipped_files"] = [f"{path}: {reason}" for path, reason in skipped[:SKIP_EXAMPLES]]
    if validation is not None:
        info["validation"] = validation
    return ImageTextDataset(
        name=identity.name,
        role=identity.role,
        task=identity.task,
        classnames=classnames,
        templates=templates,
        train=splits["train"].samples if "train" in splits else None,
        test=splits["test"].samples if "test" in splits else None,
        validation=splits["validation"].samples if "validation" in splits else None,
        description=description,
        info=info,
    )
