"""A pool-only control's plateau check (``fomo-host drift``) and a base model pretrained on more than the replay pool
(``model.warm_start.data``), on real runs of the small embedded spec."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from fomo_host.cli import main
from fomo_host.results import RESULTS_FILE

pytestmark = pytest.mark.slow

POOL_ONLY = ["--set", "data.mixture={ pretraining = 1.0, update = 0.0, buffer = 0.0 }"]


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(list(argv))
        except SystemExit as exc:
            status = int(exc.code or 0)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def control(tmp_path_factory: pytest.TempPathFactory, small_spec_text: str) -> Path:
    """A pool-only control of a barely warm-started base (30 steps): replaying the pool still teaches it."""
    root = tmp_path_factory.mktemp("drift")
    spec = root / "spec.toml"
    spec.write_text(small_spec_text.format(num_tasks=2, steps=6), encoding="utf-8")
    run_dir = root / "control"
    status, _, err = cli("run", str(spec), "--output", str(run_dir), "--quiet", "--set", "optimizer.lr=2e-3", *POOL_ONLY)
    assert status == 0, err[-3000:]
    return run_dir


def test_drift_reports_every_zero_shot_set_and_a_zs_from_the_records(control):
    records = [json.loads(line) for line in (control / RESULTS_FILE).read_text().splitlines()]
    status, out, _ = cli("drift", str(control), "--json")
    assert status == 0
    rows = {row["name"]: row for row in json.loads(out)}
    assert set(rows) == {*records[0]["groups"]["zero_shot"], "A_ZS"}
    for name, row in rows.items():
        values = [record["A_ZS"] if name == "A_ZS" else record["scores"][name] for record in records]
        changes = [value - values[0] for value in values]
        assert row["base"] == pytest.approx(values[0])
        assert row["final_change"] == pytest.approx(changes[-1])
        assert abs(row["largest_change"]) == pytest.approx(max(abs(change) for change in changes[1:]))
        assert changes[row["largest_at_task"]] == pytest.approx(row["largest_change"])


def test_an_unconverged_base_fails_the_control_and_a_loose_bound_passes_it(control):
    status, out, _ = cli("drift", str(control), "--max-set-change", "0.02", "--max-aggregate-change", "0.01", "--markdown")
    last = out.strip().splitlines()[-1]
    assert status == 1 and last.startswith("drift: ") and "beyond the bounds" in last, out
    assert "| beyond bound |" in out
    status, out, _ = cli("drift", str(control), "--max-set-change", "0.9", "--max-aggregate-change", "0.9")
    assert status == 0 and out.strip().splitlines()[-1].startswith("drift: every change within the bounds"), out


def test_per_run_is_each_runs_a_zs_and_its_farthest_set_with_its_count_beyond_the_bounds(control):
    _, out, _ = cli("drift", str(control), "--json", "--max-set-change", "0.02", "--max-aggregate-change", "0.01")
    rows = json.loads(out.split("\ndrift: ")[0])
    status, out, _ = cli("drift", str(control), "--json", "--per-run", "--max-set-change", "0.02", "--max-aggregate-change", "0.01")
    assert status == 1
    (summary,) = json.loads(out.split("\ndrift: ")[0])
    aggregate = next(row for row in rows if row["name"] == "A_ZS")
    farthest = max((row for row in rows if row["name"] != "A_ZS"), key=lambda row: abs(row["largest_change"]))
    assert summary["base"] == pytest.approx(aggregate["base"])
    assert summary["aggregate"]["largest_change"] == pytest.approx(aggregate["largest_change"])
    assert summary["farthest_set"]["name"] == farthest["name"]
    assert summary["beyond"] == sum(row["exceeds"] for row in rows) > 0
    _, out, _ = cli("drift", str(control), "--markdown", "--per-run")
    header, _, line = out.strip().splitlines()[:3]
    assert "set moved farthest" in header and f"| {farthest['name']} |" in line


def test_two_studies_runs_of_one_label_stay_two_runs(control, tmp_path, monkeypatch):
    """Two control studies both have "pool only seed 1": each run keeps its own line, named by its study."""
    from dataclasses import replace
    from types import SimpleNamespace

    from fomo_host.reporting import drift
    from fomo_host.reporting.runs import load_runs

    run = replace(load_runs([control])[0], label="pool only seed 1")
    monkeypatch.setattr(drift, "is_study_dir", lambda path: True)
    monkeypatch.setattr(drift, "read_index", lambda path: path)
    monkeypatch.setattr(drift, "study_groups", lambda index: [SimpleNamespace(runs=[run])])
    runs = drift.load_drift_runs([tmp_path / "small", tmp_path / "larger"])
    assert [run.label for run in runs] == ["small: pool only seed 1", "larger: pool only seed 1"]
    summaries = drift.summarise_runs([drift.run_drift(run) for run in runs], set())
    assert [summary.run for summary in summaries] == ["small: pool only seed 1", "larger: pool only seed 1"]


def test_drift_refuses_bad_input_in_one_line(tmp_path, control):
    status, _, err = cli("drift", str(tmp_path / "missing"))
    assert status == 2 and err.strip().count("\n") == 0 and "no such run or study directory" in err
    status, _, err = cli("drift", str(control), "--max-set-change", "2")
    assert status == 2 and "is not a change of a score" in err


def test_a_base_pretrained_on_more_than_the_replay_pool(tmp_path, small_spec_text):
    """``model.warm_start.data`` names the base's pretraining data; the stream replays only ``data.pretraining``."""
    text = small_spec_text.format(num_tasks=1, steps=2).replace(
        'zero_shot = ["shapes-outline"]', 'zero_shot = ["shapes-outline"]\npretraining_styles = true'
    )
    spec = tmp_path / "spec.toml"
    spec.write_text(text, encoding="utf-8")
    broad = [
        "--set",
        'model.warm_start.data=["synthetic-pool", "synthetic-pool-styles"]',
        "--set",
        'data.pretraining=["synthetic-pool"]',
    ]
    status, _, err = cli("run", str(spec), "--output", str(tmp_path / "broad"), "--quiet", *broad)
    assert status == 0, err[-3000:]
    status, _, err = cli("run", str(spec), "--output", str(tmp_path / "pool"), "--quiet", "--set", 'data.pretraining=["synthetic-pool"]')
    assert status == 0, err[-3000:]
    # a base pretrained on the styles too is another base model (cached apart from the pool-only one)
    broad_base = json.loads((tmp_path / "broad" / RESULTS_FILE).read_text().splitlines()[0])
    pool_base = json.loads((tmp_path / "pool" / RESULTS_FILE).read_text().splitlines()[0])
    assert broad_base["scores"] != pool_base["scores"]
    unknown = 'model.warm_start.data=["synthetic-nope"]'
    status, _, err = cli("run", str(spec), "--output", str(tmp_path / "bad"), "--quiet", "--set", unknown)
    assert status == 2 and "model.warm_start.data: unknown dataset 'synthetic-nope'" in err and err.strip().count("\n") == 0, err
    assert not (tmp_path / "bad" / RESULTS_FILE).exists()
