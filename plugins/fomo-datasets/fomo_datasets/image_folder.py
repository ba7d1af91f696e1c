"""``image-folder``: ``root/<split>/<class folder>/*.jpg|png`` (torchvision's ImageFolder convention)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from fomo_host.api import checks_files

from .params import DataPath, DatasetParams, check_templates, user_errors

if TYPE_CHECKING:
    from fomo_host.api import BuildContext, ImageTextDataset


class ImageFolderParams(DatasetParams):
    root: DataPath = Field(description="folder holding one sub-folder per split ('train', 'test'), each with one folder per class")
    task: Literal["classification"] = Field(default="classification", description="folders give classes: classification only")
    class_names: DataPath | None = Field(default=None, description="JSON object mapping class folder names to readable class names")
    caption_templates: list[str] | None = Field(
        default=None, min_length=1, description="training captions: each sample draws one, with '{}' for its class; default: templates"
    )

    @field_validator("caption_templates")
    @classmethod
    def _caption_templates_have_a_slot(cls, templates: list[str] | None) -> list[str] | None:
        return None if templates is None else check_templates(templates)

    @model_validator(mode="after")
    def _folders_hold_images(self, info: ValidationInfo) -> ImageFolderParams:
        if checks_files(info):
            if not self.root.is_dir():
                raise ValueError(f"root {self.root} is not a folder")
            for split in ("train", "test"):
                if self.needs(split):
                    class_folders(self.root / split)
            if self.class_names is not None:
                read_class_names(self.class_names)
        return self


def torchvision_folder() -> ModuleType:
    """torchvision's ImageFolder helpers, imported on first use: importing torchvision takes seconds,
    and the host loads every plugin whenever ``fomo-host`` starts."""
    from torchvision.datasets import folder

    return folder


def class_folders(split_dir: Path) -> list[str]:
    """The class folders of a split; a missing split or a class folder without images is an error."""
    if not split_dir.is_dir():
        raise ValueError(f"{split_dir} is not a folder; expected <root>/<split>/<class>/<images>")
    helpers = torchvision_folder()
    try:
        classes, _ = helpers.find_classes(split_dir)
    except FileNotFoundError:
        raise ValueError(f"{split_dir} has no class folders; expected <root>/<split>/<class>/<images>") from None
    empty = [name for name in classes if not _holds_an_image(split_dir / name)]
    if empty:
        extensions = ", ".join(helpers.IMG_EXTENSIONS)
        raise ValueError(f"class folder {split_dir / empty[0]} holds no images ({extensions}); remove it or add images")
    return classes


def _holds_an_image(folder: Path) -> bool:
    helpers = torchvision_folder()
    walk = os.walk(folder, followlinks=True)
    return any(helpers.has_file_allowed_extension(name, helpers.IMG_EXTENSIONS) for _, _, files in walk for name in files)


def read_class_names(path: Path) -> dict[str, str]:
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read class names file {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"class names file {path} is not valid JSON: {exc}") from None
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str) and v for k, v in mapping.items()):
        raise ValueError(f"class names file {path} must be a JSON object of folder name -> readable name")
    return mapping


def build_image_folder(params: ImageFolderParams, context: BuildContext) -> list[ImageTextDataset]:
    """A classification set from class folders: class names from the folder names (or a mapping file),
    training captions from caption templates, the splits decoded once into the memory-mapped cache."""
    with user_errors(f"dataset {params.name!r}"):
        return [_build(params, context)]


def _build(params: ImageFolderParams, context: BuildContext) -> ImageTextDataset:
    # decoding (numpy, Pillow, torch) is imported when a dataset is built, not when the plugin registers
    from .splits import SplitRecords, assemble, build_file_split, carve_validation

    splits = [split for split in ("train", "test") if params.needs(split)]
    folders_by_split = {split: class_folders(params.root / split) for split in splits}
    folders = sorted({name for names in folders_by_split.values() for name in names})
    mapping = read_class_names(params.class_names) if params.class_names is not None else {}
    unknown = sorted(set(mapping) - set(folders))
    if unknown:
        raise ValueError(f"{params.class_names}: names folders that do not exist under {params.root}: {', '.join(unknown[:5])}")
    classnames = [mapping.get(folder, folder) for folder in folders]
    if len(set(classnames)) != len(classnames):
        repeated = sorted({name for name in classnames if classnames.count(name) > 1})
        raise ValueError(f"{params.class_names}: two class folders map to the same name {repeated[0]!r}")
    index = {folder: i for i, folder in enumerate(folders)}
    caption_templates = params.caption_templates or params.templates
    captions = [[template.format(name) for template in caption_templates] for name in classnames]

    listed = {}
    helpers = torchvision_folder()
    for split in splits:
        records = listed[split] = SplitRecords()
        split_index = {folder: index[folder] for folder in folders_by_split[split]}
        for path, label in helpers.make_dataset(params.root / split, split_index, extensions=helpers.IMG_EXTENSIONS):
            records.add(Path(path), label, captions[label], name=Path(path).relative_to(params.root / split).as_posix())
    listed, validation = carve_validation(params, listed)
    built = {split: build_file_split(f"dataset {params.name!r} ({split})", records, context, params) for split, records in listed.items()}
    description = f"image folders under {params.root}: {len(classnames)} classes"
    return assemble(params, classnames, params.templates, built, description, validation)
