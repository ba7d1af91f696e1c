"""``caption-table``: a CSV/TSV or JSONL table per split of image path, caption and (optionally) class name."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, ValidationInfo, model_validator

from fomo_host.api import FomoError, TaskType, checks_files

from .params import DataPath, DatasetParams, user_errors

if TYPE_CHECKING:
    from fomo_host.api import BuildContext, ImageTextDataset

CSV_SUFFIXES = {".csv": ",", ".tsv": "\t"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}


class CaptionTableParams(DatasetParams):
    task: TaskType = Field(default="retrieval", description="retrieval (recall@k on test captions) or classification (with class_column)")
    train: DataPath | None = Field(default=None, description="the training table (.csv, .tsv or .jsonl)")
    test: DataPath | None = Field(default=None, description="the test table (.csv, .tsv or .jsonl)")
    root: DataPath | None = Field(default=None, description="folder that relative image paths start from; default: the table's folder")
    image_column: str = Field(default="image", min_length=1)
    caption_column: str = Field(default="caption", min_length=1, description="a caption (a JSONL row may give a list of them)")
    class_column: str | None = Field(default=None, min_length=1, description="class name column; needed for classification")

    @model_validator(mode="after")
    def _tables_fit_the_role(self, info: ValidationInfo) -> CaptionTableParams:
        if self.task == "classification" and self.class_column is None:
            raise ValueError("a classification set needs class_column (the table column holding each image's class name)")
        for split in ("train", "test"):
            table = getattr(self, split)
            if self.needs(split) and table is None:
                raise ValueError(f"a {self.role} set needs a {split} table; give {split} = 'path/to/table.csv'")
            if table is not None and checks_files(info):
                columns = [self.image_column, self.caption_column] + ([self.class_column] if self.class_column else [])
                check_header(table, columns)
        return self


def table_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES or suffix in JSONL_SUFFIXES:
        return suffix
    raise ValueError(f"{path}: unknown table format {suffix!r}; use .csv, .tsv or .jsonl")


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) for every row of a CSV/TSV (header first) or JSONL table."""
    suffix = table_format(path)
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            if suffix in CSV_SUFFIXES:
                reader = csv.DictReader(handle, delimiter=CSV_SUFFIXES[suffix])
                for row in reader:
                    yield reader.line_num, row
                return
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: not valid JSON: {exc}") from None
                if not isinstance(row, dict):
                    raise ValueError(f"{path}:{number}: expected a JSON object per line")
                yield number, row
    except OSError as exc:
        raise ValueError(f"cannot read table {path}: {exc.strerror}") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a readable table: {exc}") from None


def check_header(path: Path, columns: list[str]) -> None:
    """The table exists and its header (CSV) or first row (JSONL) has the columns."""
    table_format(path)
    if not path.is_file():
        raise ValueError(f"table {path} does not exist")
    first = next(read_rows(path), None)
    if first is None:
        raise ValueError(f"table {path} has no rows")
    missing = [column for column in columns if column not in first[1]]
    if missing:
        raise ValueError(f"table {path} has no column {missing[0]!r}; its columns: {', '.join(first[1])}")


def _captions(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [text.strip() for text in values if isinstance(text, str) and text.strip()]


def read_split(params: CaptionTableParams, table: Path) -> tuple[list[tuple[Path, str | None, list[str]]], list[tuple[str, str]]]:
    """One entry per distinct image (its rows' captions merged, in order), and the rows skipped with the reason."""
    root = params.root if params.root is not None else table.parent
    by_image: dict[Path, tuple[str | None, list[str]]] = {}
    skipped: list[tuple[str, str]] = []
    for line, row in read_rows(table):
        where = f"{table}:{line}"
        image = row.get(params.image_column)
        if not isinstance(image, str) or not image.strip():
            skipped.append((where, "no image path"))
            continue
        path = root / image.strip()
        captions = _captions(row.get(params.caption_column))
        if not captions:
            skipped.append((str(path), f"no caption ({where})"))
            continue
        classname = None
        if params.class_column is not None:
            value = row.get(params.class_column)
            classname = str(value).strip() if value is not None and str(value).strip() else None
            if classname is None and params.task == "classification":
                skipped.append((str(path), f"no class ({where})"))
                continue
        if path in by_image:
            known_class, known_captions = by_image[path]
            if known_class != classname:
                raise ValueError(f"{where}: image {image!r} has class {classname!r} here and {known_class!r} on an earlier row")
            known_captions.extend(captions)
        else:
            by_image[path] = (classname, captions)
    return [(path, classname, captions) for path, (classname, captions) in by_image.items()], skipped


def build_caption_table(params: CaptionTableParams, context: BuildContext) -> list[ImageTextDataset]:
    """Image-text pairs from tables: captions train the model, the test split serves retrieval (recall@k)
    or, with a class column, zero-shot classification; rows of the same image pool their captions."""
    with user_errors(f"dataset {params.name!r}"):
        return [_build(params, context)]


def _build(params: CaptionTableParams, context: BuildContext) -> ImageTextDataset:
    # decoding (numpy, Pillow, torch) is imported when a dataset is built, not when the plugin registers
    from .splits import SplitRecords, assemble, build_file_split, carve_validation

    tables = {split: getattr(params, split) for split in ("train", "test") if getattr(params, split) is not None}
    entries = {split: read_split(params, table) for split, table in tables.items()}
    classnames = sorted({c for rows, _ in entries.values() for _, c, _ in rows if c is not None}) if params.class_column else []
    if params.task == "classification" and not classnames:
        raise FomoError(f"dataset {params.name!r}: column {params.class_column!r} holds no class names")
    index = {name: i for i, name in enumerate(classnames)}
    listed = {}
    for split, (rows, skipped) in entries.items():
        records = listed[split] = SplitRecords(skipped=list(skipped))
        root = params.root if params.root is not None else tables[split].parent
        for path, classname, captions in rows:
            records.add(path, index[classname] if classname is not None else -1, captions, name=relative_name(path, root))
    listed, validation = carve_validation(params, listed)
    built = {split: build_file_split(f"dataset {params.name!r} ({split})", records, context, params) for split, records in listed.items()}
    description = f"caption tables {', '.join(str(t) for t in tables.values())}"
    return assemble(params, classnames, params.templates, built, description, validation)


def relative_name(path: Path, root: Path) -> str:
    """An image's name for the validation carve: its path as the table gives it (below the root), else the whole path."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()
