"""``validate`` makes every check ``run`` makes before training; ``--schema-only`` the ones that need no data."""

from __future__ import annotations

import pytest

from fomo_host.cli import main


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip() and not line.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in captured.err, captured.err
    return lines[0]


@pytest.mark.parametrize("schema_only", [False, True], ids=["validate", "schema-only"])
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["run.loggers=['nope']"], "unknown logger 'nope' at "),
        (["scheduler.name='rsqrt'", "scheduler.params={warmup=3, cooldown=2}"], "warmup (3 steps) + cooldown (2 steps) exceed the 4 steps"),
        (["scheduler.name='wsd'", "scheduler.params={warmup=0.7, decay=0.5}"], "warmup (0.7) + decay (0.5) exceed the whole task"),
        (["scheduler.name='wsd'", "scheduler.params={warmup=3, decay=2}"], "warmup (3 steps) + decay (2 steps) exceed the 4 steps"),
        (["scheduler.name='rsqrt-recovered'", "scheduler.params={warmup=2, cooldown=2}"], "leave no decay steps"),
    ],
    ids=["logger", "rsqrt steps", "wsd fractions", "wsd steps", "recovered"],
)
def test_checks_run_would_make_fail_in_validate(small_spec, capsys, schema_only, overrides, message):
    argv = ["validate", str(small_spec(num_tasks=3, steps=4)), *[f"--set={o}" for o in overrides]]
    assert main([*argv, "--schema-only"] if schema_only else argv) == 2
    assert message in error_line(capsys)


def test_validate_checks_the_warm_start_has_a_pool(small_spec, capsys):
    spec = small_spec()
    assert main(["validate", str(spec), "--set", "data.pretraining=[]"]) == 2
    assert "model.warm_start needs a pretraining pool" in error_line(capsys)


def test_run_refuses_a_schedule_that_cannot_fit_before_the_warm_start_trains(small_spec, capsys, tmp_path, monkeypatch):
    cache = tmp_path / "empty-cache"
    monkeypatch.setenv("FOMO_CACHE_DIR", str(cache))
    argv = ["run", str(small_spec(num_tasks=3, steps=4)), "--output", str(tmp_path / "run"), "--quiet"]
    assert main([*argv, "--set=scheduler.name='rsqrt'", "--set=scheduler.params={warmup=3, cooldown=2}"]) == 2
    assert "warmup (3 steps) + cooldown (2 steps) exceed the 4 steps" in error_line(capsys)
    assert not (cache / "base-models").exists()  # no warm start was trained (nor loaded) first
