"""End-to-end: ``specs/real-data.toml`` through the CLI, on image folders, caption tables and tar shards
generated in a temporary folder, with unreadable, missing and damaged files among them.

The run goes through a ``python -m fomo_host`` subprocess; validations call the
same CLI entry point (``fomo_host.testing.run_cli``) in this process, since each new
process spends seconds importing torch and every plugin.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fomo_datasets.testing import COLOURS, corrupt, save_picture, write_image_folder, write_shards

from fomo_host.testing import run_cli

pytestmark = pytest.mark.slow
pytest.importorskip("fomo_openclip")
pytest.importorskip("fomo_metrics")

ROOT = Path(__file__).resolve().parents[3]
REAL_DATA = ROOT / "specs" / "real-data.toml"
PAPER = ROOT / "specs" / "paper-protocol.toml"
# the spec as a user has it, made small: the tiny CLIP (with a short warm start) instead of a ViT-B/16 checkpoint
SMALL = [
    "model.name=tiny-clip",
    "model.params={}",
    "model.warm_start={steps = 20, batch_size = 32, warmup_steps = 2}",
    "run.precision=no",
    "run.batch_size=32",
    "data.num_tasks=2",
    "budget={steps_per_task = 3}",
    "data.sources.0.params.num_samples=40",
    "evaluation.subset_fraction=0.5",
]
SPEC_VARIABLES = ("FOMO_DATA", "FOMO_POOL", "FOMO_IN_FLUX", "FOMO_IN_FLUX_INFO", "FOMO_STREAM")
VALIDATION_SPLIT = 'evaluation.split="validation"'
TOLERANT = ["data.sources.1.params.max_skipped_fraction=0.05", "data.sources.2.params.max_skipped_fraction=0.25"]


@pytest.fixture(scope="module")
def user_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The folders real-data.toml names, with one unreadable image and one missing image among them; the environment."""
    base = tmp_path_factory.mktemp("user")
    data, pool = base / "data", base / "pool"
    satellite = write_image_folder(data / "satellite", ["forest", "river", "sea", "town"], {"train": 8, "test": 3})
    corrupt(satellite / "train" / "river" / "004.jpg")  # 1 of 32 training images
    reports = data / "reports"
    rows = {"train": [], "test": []}
    for n, colour in enumerate(["red", "green", "blue", "yellow"] * 4):
        split = "test" if n >= 12 else "train"
        save_picture(reports / "images" / f"{n}.jpg", COLOURS[colour], 100 + n)
        rows[split].append(f"images/{n}.jpg,a report about something {colour}")
    rows["test"].append("images/gone.jpg,an image that is missing")  # 1 of 5 test rows
    for split, lines in rows.items():
        (reports / f"{split}.csv").write_text("image,caption\n" + "\n".join(lines) + "\n")
    write_image_folder(data / "held-out", ["red", "green", "blue"], {"test": 3}, seed=7)
    write_shards(pool, shards=2, per_shard=24)
    environment = os.environ.copy()
    environment.update(FOMO_DATA=str(data), FOMO_POOL=str(pool), FOMO_CACHE_DIR=str(base / "cache"), OMP_NUM_THREADS="1")
    return environment


def fomo(environment: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "fomo_host", *args], capture_output=True, text=True, env=environment, timeout=600)
    if result.returncode != 0:
        raise AssertionError(f"fomo-host {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def overrides(*settings: str) -> list[str]:
    return [part for setting in settings for part in ("--set", setting)]


@pytest.fixture
def validate(monkeypatch, capsys):
    """``fomo-host validate`` in this process, in a given environment: (exit code, stdout, error lines)."""
    torch.set_num_threads(1)

    def run(environment: dict[str, str], *args: str) -> tuple[int, str, list[str]]:
        for name in SPEC_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        for name in (*SPEC_VARIABLES, "FOMO_CACHE_DIR"):
            if name in environment:
                monkeypatch.setenv(name, environment[name])
        capsys.readouterr()
        code = run_cli("validate", *args)
        captured = capsys.readouterr()
        return code, captured.out, [line for line in captured.err.splitlines() if line.startswith("error: ")]

    return run


def test_both_specs_pass_schema_only_validation_without_the_files(validate):
    for spec in (REAL_DATA, PAPER):
        code, out, errors = validate({}, str(spec), "--schema-only")
        assert code == 0 and "valid" in out and not errors


def test_real_data_spec_runs_on_generated_files(user_files, tmp_path, validate):
    run_dir = tmp_path / "run"
    # the stream ordered by the base model's text similarity of the class names
    similarity = "data.ordering.name=similarity"
    result = fomo(user_files, "run", str(REAL_DATA), "--output", str(run_dir), *overrides(*SMALL, *TOLERANT, similarity))
    # the first decode shows progress (off a terminal: a line when each dataset is done, and every 30 s)
    assert re.search(r"dataset 'satellite' \(train\): decoding images: 32 done in [0-9.]+s", result.stderr)
    records = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert [r["task"] for r in records] == [-1, 0, 1]
    base = records[0]
    assert base["skipped_images"] == {"pool": 0, "satellite": 1, "reports": 1, "held-out": 0}
    assert set(base["scores"]) == {"satellite", "reports", "held-out"}
    assert "zero-shot-accuracy/top1" in base["metrics"]["satellite"] and "retrieval-recall/recall@5" in base["metrics"]["reports"]
    assert all("skipped_images" not in r for r in records[1:])

    # a second build reads every split from the cache instead of decoding it again (here with the stream
    # ordered hard-to-easy by the base model's zero-shot accuracy on the generated test folders)
    cache = Path(user_files["FOMO_CACHE_DIR"]) / "fomo-datasets"
    entries = {p.name: (p / "manifest.json").stat().st_mtime_ns for p in cache.iterdir() if p.name != "shard-index"}
    assert len(entries) == 6  # pool; satellite train, test; reports train, test; held-out test
    performance = ["data.ordering.name=performance", "data.ordering.params={reverse = true}"]
    code, out, _ = validate(user_files, str(REAL_DATA), *overrides(*SMALL, *TOLERANT, *performance))
    assert code == 0 and "2 tasks x 3 steps" in out
    assert {p.name: (p / "manifest.json").stat().st_mtime_ns for p in cache.iterdir() if p.name != "shard-index"} == entries

    # every source streamed, read by two loader worker processes: the same run, to the last digit
    streamed_dir = tmp_path / "streamed"
    streaming = [f"data.sources.{index}.params.cache=stream" for index in range(4)] + ["data.workers=2"]
    fomo(user_files, "run", str(REAL_DATA), "--output", str(streamed_dir), *overrides(*SMALL, *TOLERANT, similarity, *streaming))
    streamed = [json.loads(line) for line in (streamed_dir / "results.jsonl").read_text().splitlines()]
    assert [{k: v for k, v in r.items() if k != "eval_seconds"} for r in streamed] == [
        {k: v for k, v in r.items() if k != "eval_seconds"} for r in records
    ]


def test_a_run_scores_validation_splits_carved_from_the_files(user_files, tmp_path):
    run_dir = tmp_path / "run"
    carve = [
        "data.sources.1.params.validation_fraction=0.25",  # satellite: 2 of each class's 8 training images
        "data.sources.1.params.max_skipped_fraction=0.2",  # the carve takes the unreadable river/004.jpg (seed 0)
        "data.sources.2.params.validation_fraction=0.25",  # reports: 3 of its 12 training images
        "data.sources.3.params.validation_fraction=0.34",  # held-out has no training split: 1 of each class's 3 test images
    ]
    fomo(user_files, "run", str(REAL_DATA), "--output", str(run_dir), *overrides(*SMALL, *TOLERANT, VALIDATION_SPLIT, *carve))
    records = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert [r["task"] for r in records] == [-1, 0, 1]
    assert all(set(r["validation"]["scores"]) == {"satellite", "reports", "held-out"} for r in records)
    assert records[0]["skipped_images"] == {"pool": 0, "satellite": 1, "reports": 1, "held-out": 0}
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["validation"]["sets"] == {
        "satellite": {"train": 24, "validation": 7, "test": 12, "fraction": 0.25, "seed": 0, "carved_from": "train"},
        "reports": {"train": 9, "validation": 3, "test": 4, "fraction": 0.25, "seed": 0, "carved_from": "train"},
        "held-out": {"validation": 3, "test": 6, "fraction": 0.34, "seed": 0, "carved_from": "test"},
    }
    assert "A_KA" in summary["validation"] and summary["validation"]["A_KA"] != summary["A_KA"]
    resolved = (run_dir / "spec.toml").read_text()
    assert resolved.count("validation_fraction") == 3 and 'split = "validation"' in resolved


def damaged_shard(folder: Path) -> str:
    shards = write_shards(folder, shards=1, per_shard=4)
    data = shards[0].read_bytes()
    shards[0].write_bytes(data[: len(data) // 2 + 100])
    return str(shards[0])


def empty_class_folder(folder: Path) -> str:
    write_image_folder(folder, ["full"], {"train": 1, "test": 1})
    (folder / "train" / "empty").mkdir()
    return str(folder)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (None, r"'satellite' \(train\): 1 of 32 samples are unreadable .*river/004.jpg: UnidentifiedImageError"),
        ("data.sources.1.params.root=/nowhere/satellite", "data.sources.1.params: root /nowhere/satellite is not a folder"),
        ("empty-class", "class folder .*train/empty holds no images"),
        ("damaged-shard", r"shard .*pool-000.tar is not a readable tar file"),
        ("no-variable", "environment variable FOMO_POOL in '\\$\\{FOMO_POOL\\}/\\*.tar' is not set"),
        ("no-validation-split", r"split = 'validation': dataset 'satellite' of data.sources.1 \(image-folder\) has no validation split"),
    ],
)
def test_bad_input_stops_validation_with_one_clear_line(user_files, tmp_path, validate, setting, message):
    environment = dict(user_files)
    settings = list(SMALL)
    if setting == "empty-class":
        settings.append(f"data.sources.1.params.root={empty_class_folder(tmp_path / 'classes')}")
    elif setting == "damaged-shard":
        settings += TOLERANT + [f"data.sources.0.params.shards=['{damaged_shard(tmp_path / 'shards')}']"]
    elif setting == "no-variable":
        del environment["FOMO_POOL"]
    elif setting == "no-validation-split":
        settings += [*TOLERANT, VALIDATION_SPLIT]
    elif setting is not None:
        settings.append(setting)
    code, _, errors = validate(environment, str(REAL_DATA), *overrides(*settings))
    assert code == 2 and len(errors) == 1, errors
    assert re.search(message, errors[0]), errors[0]
