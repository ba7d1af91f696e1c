"""The Python API: fomo_host.run on a spec, records and summary back, a DataFrame, an export; load_run reads it again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import fomo_host
from fomo_host.errors import FomoError
from fomo_host.python_api import override_strings
from fomo_host.spec import parse_override


def test_overrides_are_written_as_toml():
    given = {"optimizer.lr": 1e-4, "method.name": "lora", "run.loggers": ["csv"], "run.cpu": True, "budget": {"steps_per_task": 5}}
    assert override_strings(given) == [
        "optimizer.lr=0.0001",
        'method.name="lora"',
        'run.loggers=["csv"]',
        "run.cpu=true",
        'budget={"steps_per_task" = 5}',
    ]
    assert [parse_override(text) for text in override_strings(given)][-1] == (["budget"], {"steps_per_task": 5})
    assert override_strings(["optimizer.lr=1e-4"]) == ["optimizer.lr=1e-4"] and override_strings(None) == []
    with pytest.raises(FomoError, match="not one string"):
        override_strings("optimizer.lr=1e-4")


def test_importing_fomo_host_loads_no_engine():
    import subprocess
    import sys

    code = "import sys, fomo_host; print('torch' in sys.modules, callable(fomo_host.run))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split() == ["False", "True"]


def docs_example() -> str:
    """The Python block of the docs page "From Python"."""
    section = (Path(__file__).resolve().parents[1] / "docs" / "python.md").read_text(encoding="utf-8")
    return section[section.index("```python\n") + len("```python\n") : section.index("```\n", section.index("```python"))]


@pytest.mark.slow
def test_the_docs_python_example_runs_and_its_runs_hold_records_summary_paths_and_a_dataframe(small_spec, tmp_path, monkeypatch):
    pandas = pytest.importorskip("pandas")
    code = docs_example()
    assert '"specs/quickstart.toml"' in code
    spec = small_spec(num_tasks=2, steps=2)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code.replace('"specs/quickstart.toml"', repr(str(spec))), "docs/python.md", "exec"), namespace)  # noqa: S102

    finetune, lora = namespace["runs"]
    output = tmp_path / "runs" / "notebook-lora"
    lines = [json.loads(line) for line in (output / "results.jsonl").read_text().splitlines()]
    assert lora.records == lines and [record["task"] for record in lora.records] == [-1, 0, 1]
    assert lora.summary["GM"]["final"] == pytest.approx(lines[-1]["GM"]) and lora.complete
    assert lora.label == "lora" and lora.run_dir == Path("runs/notebook-lora")
    assert lora.settings["method"].startswith("lora") and lora.settings["seed"] == 0 and lora.settings["lr"] == 5e-4
    assert lora.paths["results"] == lora.run_dir / "results.jsonl" and lora.paths["weights/task-2"].is_file()

    frame = namespace["frame"]
    assert isinstance(frame, pandas.DataFrame) and len(frame) == 6
    assert list(frame[frame["run"] == "lora"]["task"]) == [0, 1, 2]  # tasks done: the base model is 0
    assert list(frame[frame["run"] == "lora"]["GM"]) == pytest.approx([record["GM"] for record in lines])
    assert frame["score/synthetic-letters"].iloc[-1] == pytest.approx(lines[-1]["scores"]["synthetic-letters"])
    assert list(namespace["table"].columns) == ["finetune", "lora"] and list(namespace["table"].index) == [0, 1, 2]
    assert (tmp_path / "quickstart-lora.safetensors").is_file()
    assert namespace["again"].records == lora.records and finetune.summary["GM"]["final"] != lora.summary["GM"]["final"]

    with pytest.raises(FomoError, match="exists and is not empty"):
        fomo_host.run(spec, output=output, quiet=True)
    with pytest.raises(FomoError, match="optimizer.lr: Input should be greater than 0"):
        fomo_host.run(spec, overrides={"optimizer.lr": -1.0}, output=tmp_path / "never", quiet=True)
    assert not (tmp_path / "never").exists()
