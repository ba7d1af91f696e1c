"""``fomo-in-flux``: the FoMo-in-Flux benchmark's layout (Roth et al., 2024, "A Practitioner's Guide to Continual
Multimodal Pretraining").

Per dataset and split an info file ``<info_dir>/<NAME>_<split><suffix>.json`` maps
each image path (relative to the data root) to its ``classname``, ``target``
(class index) and captions (``default_caption``, ``primer_caption``,
``synthetic_caption``, ``synthetic_merged_caption``); ``<NAME>_classnames.json``
lists the class names in target order. Dataset names are the info files' prefixes,
so the paper's stream files (``DTD+++banded``) name this component's concepts.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from fomo_host.api import Role, TaskType, checks_files

from .params import DATASET_NAME, NEEDED_SPLITS, DataPath, DatasetParams, LoaderParams, ValidationParams, check_templates, user_errors

if TYPE_CHECKING:
    from fomo_host.api import BuildContext, ImageTextDataset

CaptionField = Literal["default_caption", "synthetic_merged_caption", "synthetic_caption", "primer_caption"]
PAPER_CAPTIONS: list[CaptionField] = ["default_caption", "synthetic_merged_caption", "primer_caption"]
DEFAULT_TEMPLATE = "A photo of a {}."


class FomoInFluxDataset(BaseModel):
    """One dataset of the layout, by its info files' prefix."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=DATASET_NAME, description="the info files' prefix, e.g. 'DTD' (also the stream files' dataset name)")
    role: Role = "adaptation"
    task: TaskType = Field(default="classification", description="classification, or retrieval for image-caption sets")
    templates: list[str] | None = Field(
        default=None, min_length=1, description="zero-shot templates; default: the dataset's primer caption with '{}' for the class"
    )

    @field_validator("templates")
    @classmethod
    def _templates_have_a_slot(cls, templates: list[str] | None) -> list[str] | None:
        return None if templates is None else check_templates(templates)


class FomoInFluxParams(ValidationParams, LoaderParams):
    root: DataPath = Field(description="the data root: info-file keys are image paths relative to it")
    info_dir: DataPath | None = Field(default=None, description="the folder of the info files; default: root")
    datasets: list[FomoInFluxDataset] = Field(min_length=1)
    caption_fields: list[CaptionField] = Field(
        default=PAPER_CAPTIONS,
        min_length=1,
        description="training text: the first of these fields that an image has (a list field gives several captions); "
        "the paper's choice is default_caption, else synthetic_merged_caption",
    )
    info_suffix: str = Field(default="", description="'_224' reads the info files of the resized copies (<NAME>_<split>_224.json)")

    @model_validator(mode="after")
    def _info_files_exist(self, info: ValidationInfo) -> FomoInFluxParams:
        names = [dataset.name for dataset in self.datasets]
        if len(set(names)) != len(names):
            raise ValueError(f"dataset {next(n for n in names if names.count(n) > 1)!r} is listed twice")
        if checks_files(info):
            if not self.root.is_dir():
                raise ValueError(f"data root {self.root} is not a folder")
            for dataset in self.datasets:
                for split in NEEDED_SPLITS[dataset.role]:
                    path = self.info_file(dataset.name, split)
                    if not path.is_file():
                        raise ValueError(f"info file {path} does not exist (a {dataset.role} set needs its {split} split)")
        return self

    @property
    def info_folder(self) -> Path:
        return self.info_dir if self.info_dir is not None else self.root

    def info_file(self, name: str, split: str) -> Path:
        return self.info_folder / f"{name}_{split}{self.info_suffix}.json"


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None


def read_info(path: Path) -> dict[str, dict[str, Any]]:
    info = read_json(path)
    if not isinstance(info, dict) or not all(isinstance(v, dict) for v in info.values()):
        raise ValueError(f"{path}: expected a JSON object mapping image paths to their fields")
    return info


def class_names(params: FomoInFluxParams, name: str, infos: dict[str, dict[str, dict[str, Any]]]) -> tuple[list[str], dict[int, int]]:
    """Class names and the label of each target: the classnames file (targets are labels), or without one
    the classes the info files name, in target order (a target no image has is left out)."""
    path = params.info_folder / f"{name}_classnames.json"
    if path.is_file():
        names = read_json(path)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"{path}: expected a JSON list of class names in target order")
        return names, {target: target for target in range(len(names))}
    by_target: dict[int, str] = {}
    for info in infos.values():
        for entry in info.values():
            if entry.get("classname") is not None and entry.get("target") is not None:
                by_target.setdefault(int(entry["target"]), str(entry["classname"]))
    targets = sorted(by_target)
    return [by_target[t] for t in targets], {target: label for label, target in enumerate(targets)}


def primer_template(infos: dict[str, dict[str, dict[str, Any]]]) -> str:
    """The dataset's zero-shot template, read off its primer captions ("A photo of a banded texture." -> "A photo of a {} texture.")."""
    found: Counter[str] = Counter()
    for info in infos.values():
        for entry in info.values():
            primer, classname = entry.get("primer_caption"), entry.get("classname")
            if isinstance(primer, str) and isinstance(classname, str) and classname and primer.count(classname) == 1:
                found[primer.replace(classname, "{}")] += 1
    return found.most_common(1)[0][0] if found else DEFAULT_TEMPLATE


def training_captions(entry: dict[str, Any], fields: list[CaptionField]) -> list[str]:
    for field_name in fields:
        value = entry.get(field_name)
        values = value if isinstance(value, list) else [value]
        texts = [text.strip() for text in values if isinstance(text, str) and text.strip()]
        if texts:
            return texts
    return []


def build_one(params: FomoInFluxParams, dataset: FomoInFluxDataset, context: BuildContext) -> ImageTextDataset:
    # decoding (numpy, Pillow, torch) is imported when a dataset is built, not when the plugin registers
    from .splits import SplitRecords, assemble, build_file_split, carve_validation

    infos = {split: read_info(params.info_file(dataset.name, split)) for split in NEEDED_SPLITS[dataset.role]}
    classnames, label_of = class_names(params, dataset.name, infos)
    if dataset.task == "classification" and not classnames:
        raise ValueError(f"no class names in the info files of {dataset.name}; give task = 'retrieval' for an image-caption set")
    templates = dataset.templates or [primer_template(infos)]
    identity = DatasetParams(
        name=dataset.name,
        role=dataset.role,
        task=dataset.task,
        templates=templates,
        max_skipped_fraction=params.max_skipped_fraction,
        workers=params.workers,
        cache=params.cache,
        decode=params.decode,
        # a pretraining set is never evaluated: the carve is for the others
        validation_fraction=params.validation_fraction if dataset.role != "pretraining" else 0.0,
        validation_seed=params.validation_seed,
    )
    listed = {}
    for split, info in infos.items():
        records = listed[split] = SplitRecords()
        for key, entry in info.items():
            path = params.root / key
            target = entry.get("target")
            label = label_of.get(int(target), len(classnames)) if target is not None else -1
            if label >= len(classnames):
                raise ValueError(f"{params.info_file(dataset.name, split)}: {key} has target {target}, past the {len(classnames)} classes")
            captions = training_captions(entry, params.caption_fields)
            if not captions and label >= 0:
                captions = [template.format(classnames[label]) for template in templates]
            if not captions:
                records.skipped.append((str(path), f"no caption in {', '.join(params.caption_fields)}"))
            elif label < 0 and dataset.task == "classification":
                records.skipped.append((str(path), "no target"))
            else:
                records.add(path, label, captions, name=key)
    listed, validation = carve_validation(identity, listed)
    built = {
        split: build_file_split(f"dataset {dataset.name!r} ({split})", records, context, identity) for split, records in listed.items()
    }
    description = f"FoMo-in-Flux {dataset.name} under {params.root}: {len(classnames)} classes"
    return assemble(identity, classnames, templates, built, description, validation)


def build_fomo_in_flux(params: FomoInFluxParams, context: BuildContext) -> list[ImageTextDataset]:
    """Datasets in the FoMo-in-Flux layout (Roth et al., 2024): images with class names and captions from per-dataset
    info files; trains on default_caption, else synthetic_merged_caption (the paper's choice, configurable)."""
    built = []
    for dataset in params.datasets:
        with user_errors(f"dataset {dataset.name!r}"):
            built.append(build_one(params, dataset, context))
    return built
