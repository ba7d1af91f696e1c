"""fomo_host.load_study: a study directory's runs as Run objects, its records as a list and a DataFrame."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import fomo_host


def write_run(run_dir: Path, method: str, seed: int, gms: list[float]) -> None:
    run_dir.mkdir(parents=True)
    spec = f'[run]\nname = "x"\nseed = {seed}\n[model]\nname = "tiny-clip"\n[[data.sources]]\nname = "synthetic"\n'
    spec += f'[budget]\nsteps_per_task = 2\n[method]\nname = "{method}"\n'
    (run_dir / "spec.toml").write_text(spec, encoding="utf-8")
    records = [
        {
            "task": task - 1,
            "step": 2 * task,
            "samples_seen": 16 * task,
            "scores": {"letters": gm},
            "metrics": {},
            "A_KA": gm,
            "A_ZS": gm,
            "GM": gm,
        }
        for task, gm in enumerate(gms)
    ]
    (run_dir / "results.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")


def entry(key: str, group: int, label: str, seed: int, status: str, grid: dict) -> dict:
    return {"key": key, "run_dir": f"runs/{key}", "group": group, "label": label, "variant": label, "grid": grid, "seed": seed,
            "overrides": [], "fingerprint": "f", "status": status}  # fmt: skip


@pytest.fixture
def study(tmp_path: Path) -> Path:
    """A study as fomo-host sweep leaves it: two seeds of lora, one of finetune, one run that has not started."""
    runs = [
        entry("01-lora/seed-0", 1, "lora", 0, "finished", {"optimizer.lr": 1e-4}),
        entry("01-lora/seed-1", 1, "lora", 1, "finished", {"optimizer.lr": 1e-4}),
        entry("02-finetune/seed-0", 2, "finetune", 0, "running", {"optimizer.lr": 1e-3}),
        entry("03-ewc/seed-0", 3, "ewc", 0, "pending", {"optimizer.lr": 1e-3}),
    ]
    (tmp_path / "study.json").write_text(json.dumps({"format": 1, "study": {"name": "methods"}, "runs": runs}), encoding="utf-8")
    write_run(tmp_path / "runs/01-lora/seed-0", "lora", 0, [0.3, 0.4, 0.5])
    write_run(tmp_path / "runs/01-lora/seed-1", "lora", 1, [0.3, 0.45, 0.55])
    write_run(tmp_path / "runs/02-finetune/seed-0", "finetune", 0, [0.3, 0.6])
    return tmp_path


def test_a_study_gives_its_runs_labelled_by_point_and_seed(study):
    loaded = fomo_host.load_study(study)
    assert [run.label for run in loaded.runs] == ["lora seed 0", "lora seed 1", "finetune"]
    assert [entry.status for entry in loaded.index.runs] == ["finished", "finished", "running", "pending"]
    assert loaded.runs[1].summary["GM"]["final"] == pytest.approx(0.55)
    records = loaded.records
    assert len(records) == 8 and {record["key"] for record in records} == {"01-lora/seed-0", "01-lora/seed-1", "02-finetune/seed-0"}
    assert records[3]["label"] == "lora" and records[3]["seed"] == 1 and records[3]["task"] == -1


def test_a_studys_records_as_a_dataframe_group_by_point(study):
    pytest.importorskip("pandas")
    frame = fomo_host.load_study(study).to_pandas()
    assert len(frame) == 8 and list(frame.columns[:2]) == ["run", "task"]
    finals = frame[frame["task"] == frame.groupby("key")["task"].transform("max")]
    assert finals.groupby("label")["GM"].mean().to_dict() == {"finetune": pytest.approx(0.6), "lora": pytest.approx(0.525)}
    assert set(frame["grid/optimizer.lr"]) == {1e-4, 1e-3} and set(frame["status"]) == {"finished", "running"}
    assert set(frame[frame["label"] == "lora"]["seed"]) == {0, 1}


def test_a_folder_that_is_no_study_is_one_clear_error(tmp_path):
    from fomo_host.errors import FomoError

    with pytest.raises(FomoError, match="not a study directory"):
        fomo_host.load_study(tmp_path)
