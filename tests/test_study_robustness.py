"""Studies held to the run's standard: points are their resolved specs, labels are unique, one rule for every --set,
the index read back through its pydantic model, booleans refused for numbers; and the corrections of compare --against."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fomo_host.cli import main
from fomo_host.errors import FomoError
from fomo_host.plugins import load_plugins
from fomo_host.study.file import load_study_file
from fomo_host.study.index import read_index
from fomo_host.study.points import plan_study, split_sets
from fomo_host.study.sweep import SweepOptions, create_study, resume_study


@pytest.fixture(scope="module")
def host():
    return load_plugins()


@pytest.fixture
def write_study(small_spec, tmp_path):
    def write(text: str) -> Path:
        small_spec(num_tasks=2, steps=2)
        path = tmp_path / "study.toml"
        path.write_text('base = "spec.toml"\n' + text, encoding="utf-8")
        return path

    return write


def plan(path: Path, host, sets: list[str] = (), launcher: str | None = None):
    study_sets, spec_sets = split_sets(list(sets))
    return plan_study(load_study_file(path, study_sets, launcher), path, spec_sets, host)


def one_line_error(call) -> str:
    with pytest.raises(FomoError) as caught:
        call()
    text = str(caught.value)
    assert "\n" not in text and "Value error" not in text, text
    return text


# ----------------------------------------------------------------------------- points are their resolved specs


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # a table key and a dotted key under it
        ('[grid]\n"method" = [{ name = "lora" }]\n"method.name" = ["finetune", "bitfit"]', "'method.name' and 'method' name the same"),
        # keys that differ only by spacing
        ('[grid]\n"optimizer.lr" = [1e-3, 3e-4]\n"optimizer . lr" = [1e-3, 3e-4]', "'optimizer . lr' and 'optimizer.lr' name the same"),
        ('[[variants]]\nlabel = "x"\nset = { "method" = { name = "lora" }, "method.name" = "bitfit" }', "variants.0.set: 'method.name'"),
        # a variant that sets what the base spec already says is the plain point under another name
        ('[[variants]]\nlabel = "plain"\n[[variants]]\nlabel = "again"\nset = { "optimizer.lr" = 5e-4 }', "points 'plain' and 'again'"),
        # a grid value that is the base spec's, beside a variant that sets nothing
        ('[[variants]]\nlabel = "a"\nset = { "method.name" = "finetune" }\n[[variants]]\nlabel = "b"', "points 'a' and 'b' resolve"),
    ],
)
def test_two_points_that_resolve_to_one_spec_are_one_error_naming_both(write_study, host, text, message):
    error = one_line_error(lambda: plan(write_study(text), host))
    assert message in error, error


def test_labels_are_unique_by_construction(write_study, host):
    study = write_study('seeds = [0]\n[grid]\n"optimizer.lr" = [0.00100000001, 0.001, 3e-4]')
    points = plan(study, host).points
    labels = [point.label for point in points]
    assert len(set(labels)) == 3, labels
    # the clashing short labels ("lr=0.001") got every digit; the one without a clash stays short
    assert labels == ["optimizer.lr=0.00100000001", "optimizer.lr=0.001", "lr=0.0003"]


def test_a_resumed_study_never_merges_two_points_into_one_group(write_study, host, tmp_path):
    first = write_study('seeds = [0]\n[grid]\n"optimizer.lr" = [1e-3, 3e-4]')
    study_dir = tmp_path / "study"
    study_dir.mkdir()
    create_study(plan(first, host), study_dir, SweepOptions())
    grown = write_study('seeds = [0]\n[grid]\n"optimizer.lr" = [1e-3, 1e-4, 3e-4]')
    index, _ = resume_study(plan(grown, host), study_dir, SweepOptions())
    groups = {(run.group, run.label) for run in index.runs}
    assert len({group for group, _ in groups}) == 3 and len({label for _, label in groups}) == 3, groups
    assert {run.label: run.group for run in read_index(study_dir).runs} == {"lr=0.001": 0, "lr=0.0003": 1, "lr=0.0001": 2}


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["run.seed=5"], "--set 'run.seed' cannot be set in a study: use the study's seeds"),
        (["run.output_dir=elsewhere"], "--set 'run.output_dir' cannot be set in a study: the study directory decides"),
        (["run={ seed = 1 }"], "--set 'run' cannot be set in a study"),
    ],
)
def test_every_set_follows_the_study_files_rule(write_study, host, sets, message):
    study = write_study("seeds = [0, 1]")
    assert message in one_line_error(lambda: plan(study, host, sets))
    # the study file's own set says the same
    key = sets[0].split("=")[0]
    in_file = write_study(f'seeds = [0, 1]\nset = {{ "{key}" = 1 }}')
    assert "cannot be set in a study" in one_line_error(lambda: plan(in_file, host))


# ----------------------------------------------------------------------------- the study file's values


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("seeds = [true, 1]", "seeds.0: true is a boolean; give a number"),
        ('[launcher]\nname = "local"\nparams = { max_parallel = true }', "launcher.params.max_parallel: true is a boolean"),
        ('[launcher]\nname = "local"\nparams = { max_parallel = 0 }', "launcher.params.max_parallel: "),
    ],
)
def test_study_files_refuse_booleans_for_numbers_and_say_it_plainly(write_study, host, text, message):
    assert message in one_line_error(lambda: plan(write_study(text), host))


def test_a_launcher_given_as_a_string_with_launcher_is_one_line(write_study, host, capsys):
    study = write_study('launcher = "local"')
    for launcher in (None, "local", "ray"):
        assert "launcher: Input should be" in one_line_error(lambda launcher=launcher: plan(study, host, launcher=launcher))
    assert main(["sweep", str(study), "--launcher", "local", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "launcher" in err[0], err


# ----------------------------------------------------------------------------- the index read back


def _index(study_dir: Path) -> dict:
    return json.loads((study_dir / "study.json").read_text())


WRONG_SHAPES = [
    ("a list", lambda index: [index], "(top level): Input should be a valid dictionary"),
    ("no runs", lambda index: {k: v for k, v in index.items() if k != "runs"}, "runs: required key is missing"),
    ("runs a dict", lambda index: {**index, "runs": {}}, "runs: Input should be a valid list"),
    ("a run a string", lambda index: {**index, "runs": ["x"]}, "runs.0: Input should be a valid dictionary"),
    ("a seed a string", lambda index: {**index, "runs": [{**index["runs"][0], "seed": "0"}]}, "runs.0.seed: Input should be a valid"),
    ("an unknown status", lambda index: {**index, "runs": [{**index["runs"][0], "status": "done"}]}, "runs.0.status: Input should be"),
    ("study a list", lambda index: {**index, "study": []}, "study: Input should be a valid dictionary"),
    ("a run outside", lambda index: {**index, "runs": [{**index["runs"][0], "run_dir": "../../etc"}]}, "runs.0.run_dir: '../../etc'"),
    ("a run twice", lambda index: {**index, "runs": [index["runs"][0]] * 2}, "is listed twice"),
    ("no grid", lambda index: {**index, "runs": [{k: v for k, v in index["runs"][0].items() if k != "grid"}]}, "runs.0.grid: required"),
]


@pytest.mark.parametrize(("name", "change", "message"), WRONG_SHAPES, ids=[case[0] for case in WRONG_SHAPES])
def test_an_index_of_the_wrong_shape_is_one_line_naming_file_and_key(write_study, host, tmp_path, capsys, name, change, message):
    study = write_study("seeds = [0]")
    study_dir = tmp_path / "study"
    study_dir.mkdir()
    create_study(plan(study, host), study_dir, SweepOptions())
    (study_dir / "study.json").write_text(json.dumps(change(_index(study_dir))))
    before = sorted(path.name for path in study_dir.iterdir())
    for argv in (
        ["compare", str(study_dir)],
        ["sweep", "--resume", str(study_dir)],
        ["report", str(study_dir), "--out", str(tmp_path / "r")],
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and str(study_dir / "study.json") in err[0], (argv, err)
        assert message in err[0], (argv, err)
    assert sorted(path.name for path in study_dir.iterdir()) == before and not (tmp_path / "r").exists()


# ----------------------------------------------------------------------------- compare --against's corrections


def test_p_values_of_the_paired_t_test():
    from fomo_host.reporting.groups import Difference, t_test_p

    # t = 2.0 with 4 degrees of freedom: two-sided p = 0.116117 (R: 2*pt(-2, 4))
    assert t_test_p(2.0, 4) == pytest.approx(0.1161165, abs=1e-6)
    # t = 4.303 with 2: the two-sided 5% critical value
    assert t_test_p(4.302653, 2) == pytest.approx(0.05, abs=1e-6)
    assert t_test_p(0.0, 3) == pytest.approx(1.0)
    difference = Difference.paired({0: 0.53, 1: 0.62, 2: 0.43}, {0: 0.5, 1: 0.6, 2: 0.4})
    assert difference.p == pytest.approx(t_test_p(difference.mean / (difference.std / 3**0.5), 2))


def test_holm_and_benjamini_hochberg_against_hand_computed_values():
    from fomo_host.reporting.groups import adjust_p_values

    p = [0.01, 0.04, 0.03, 0.005]
    # Holm: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06
    assert adjust_p_values(p, "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # BH: sorted times 4/1, 4/2, 4/3, 4/4 = 0.02, 0.02, 0.04, 0.04 -> running min from the top: 0.02, 0.02, 0.04, 0.04
    assert adjust_p_values(p, "bh") == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert adjust_p_values(p, "none") == p
    # values capped at 1
    assert adjust_p_values([0.5, 0.6], "holm") == pytest.approx([1.0, 1.0])
    assert adjust_p_values([0.5, 0.6], "bh") == pytest.approx([0.6, 0.6])
    assert adjust_p_values([], "holm") == []


def test_a_difference_shown_uncorrected_is_not_shown_once_corrected():
    from fomo_host.reporting.groups import Difference, adjust_p_values

    difference = Difference.paired({0: 0.53, 1: 0.62, 2: 0.43}, {0: 0.5, 1: 0.6, 2: 0.4})
    assert difference.shown and difference.p < 0.05
    corrected = difference.corrected(adjust_p_values([difference.p] + [0.5] * 9, "holm")[0])
    assert corrected.p_adjusted == pytest.approx(min(1.0, 10 * difference.p)) and not corrected.shown


def test_a_study_whose_index_repeats_a_label_still_reads(write_study, host, tmp_path):
    from fomo_host.reporting.groups import study_groups

    study = write_study('seeds = [0]\n[grid]\n"optimizer.lr" = [1e-3, 3e-4]')
    study_dir = tmp_path / "study"
    study_dir.mkdir()
    create_study(plan(study, host), study_dir, SweepOptions())
    index = _index(study_dir)
    for run in index["runs"]:
        run["label"] = "lr"  # as an older fomo-host could write it
    (study_dir / "study.json").write_text(json.dumps(index))
    assert [group.label for group in study_groups(read_index(study_dir))] == ["lr (#0)", "lr (#1)"]
