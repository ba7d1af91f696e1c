"""What the commands read and write, held to the run's standard: one reader of a run's records that notices lost lines,
one check of every place a command writes (refused in one line, nothing created), a disk that fills midway, file modes
that follow the umask; and a pool-only control (``data.mixture.update = 0``) run end to end."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import fomo_host
from fomo_host.cli import main
from fomo_host.engine.checkpoint import Checkpoint
from fomo_host.errors import FomoError
from fomo_host.results import RESULTS_FILE
from fomo_host.spec import Mixture

pytestmark = pytest.mark.slow

POOL_ONLY = ["--set", "data.mixture={ pretraining = 1.0, update = 0.0, buffer = 0.0 }"]


def cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as exc:
            status = int(exc.code or 0)
    return status, out.getvalue(), err.getvalue()


def one_error_line(status: int, stdout: str, stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert status == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in stderr, (status, stderr)
    return lines[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory, small_spec_text) -> tuple[Path, Path]:
    """A small run (2 tasks of 2 steps) through the in-process CLI: (spec, run dir)."""
    root = tmp_path_factory.mktemp("robust")
    spec = root / "spec.toml"
    spec.write_text(small_spec_text.format(num_tasks=2, steps=2), encoding="utf-8")
    run_dir = root / "run"
    status, _, err = cli(["run", str(spec), "--output", str(run_dir), "--quiet"])
    assert status == 0, err[-3000:]
    return spec, run_dir


def test_a_pool_only_control_runs_end_to_end(finished, tmp_path):
    from fomo_host.engine.mixture import batch_shares

    spec, _ = finished
    run_dir = tmp_path / "pool-only"
    status, _, err = cli(["run", str(spec), "--output", str(run_dir), "--quiet", *POOL_ONLY])
    assert status == 0, err[-3000:]
    records = [json.loads(line) for line in (run_dir / RESULTS_FILE).read_text().splitlines()]
    assert [record["task"] for record in records] == [-1, 0, 1]
    assert json.loads((run_dir / "summary.json").read_text())["tasks_done"] == 2
    # every sample of every batch comes from the pool, whatever the rounding
    for batch in (32, 33, 7):
        assert batch_shares(batch, Mixture(pretraining=1.0, update=0.0, buffer=0.0), True, False) == {
            "pretraining": batch,
            "update": 0,
            "buffer": 0,
        }
        shares = batch_shares(batch, Mixture(pretraining=0.6, update=0.0, buffer=0.4), True, True)
        assert shares["update"] == 0 and sum(shares.values()) == batch
    with pytest.raises(ValueError, match="needs pretraining > 0"):
        Mixture(pretraining=0.0, update=0.0, buffer=1.0)


# ----------------------------------------------------------------------------- one reader of a run's records


def cut_copy(run_dir: Path, destination: Path, keep: int) -> Path:
    shutil.copytree(run_dir, destination)
    (destination / ".lock").unlink(missing_ok=True)
    lines = (destination / RESULTS_FILE).read_text().splitlines()
    (destination / RESULTS_FILE).write_text("".join(line + "\n" for line in lines[:keep]))
    return destination


def test_compare_report_and_the_python_api_rebuild_cut_records_from_the_checkpoint(finished, tmp_path):
    _, run_dir = finished
    whole = (run_dir / RESULTS_FILE).read_text()
    expected_gm = json.loads((run_dir / "summary.json").read_text())["GM"]["final"]
    for number, command in enumerate(("compare", "report", "python")):
        cut = cut_copy(run_dir, tmp_path / f"cut-{command}", keep=2)
        if command == "compare":
            status, out, err = cli(["compare", str(cut), "--json"])
            assert status == 0 and json.loads(out)[0]["GM"] == pytest.approx(expected_gm), err
        elif command == "report":
            status, out, err = cli(["report", str(cut), "--out", str(tmp_path / f"report-{number}")])
            assert status == 0, err
        else:
            with contextlib.redirect_stderr(io.StringIO()) as captured:
                run = fomo_host.load_run(cut)
            err = captured.getvalue()
            assert run.summary["GM"]["final"] == pytest.approx(expected_gm) and len(run.records) == 3
        # it says what it did, and the file is whole again
        assert "note: " in err and "rewrote them from the checkpoint" in err and "summary.json records 2 tasks" in err, err
        assert (cut / RESULTS_FILE).read_text() == whole


def test_cut_records_no_checkpoint_holds_are_refused_in_one_line(finished, tmp_path):
    _, run_dir = finished
    cut = cut_copy(run_dir, tmp_path / "cut", keep=2)
    shutil.rmtree(cut / "checkpoints")
    for argv in (
        ["compare", str(cut)],
        ["report", str(cut), "--out", str(tmp_path / "report")],
        ["export", str(cut), "--out", str(tmp_path / "x")],
    ):
        line = one_error_line(*cli(argv))
        assert "it holds 2 evaluations, but summary.json records 2 tasks" in line and "no intact checkpoint" in line, line
    assert not (tmp_path / "report").exists() and not (tmp_path / "x").exists()
    with pytest.raises(FomoError, match="cannot rebuild it from the checkpoint|no intact checkpoint"):
        fomo_host.load_run(cut)
    # a line lost in the middle: the task numbers say so even without summary.json
    middle = tmp_path / "middle"
    shutil.copytree(run_dir, middle)
    lines = (middle / RESULTS_FILE).read_text().splitlines()
    (middle / RESULTS_FILE).write_text(lines[0] + "\n" + lines[2] + "\n")
    (middle / "summary.json").unlink()
    shutil.rmtree(middle / "checkpoints")
    assert "line 2 is task 2, where task 1 belongs" in one_error_line(*cli(["compare", str(middle)]))


# ----------------------------------------------------------------------------- one check of every place a command writes


@pytest.fixture(scope="module")
def mounts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """A read-only file system and a full one (small tmpfs mounts), where this machine lets the tests mount."""
    root = tmp_path_factory.mktemp("mounts")
    made: list[Path] = []
    try:
        for name, options in (("readonly", "ro,size=1m"), ("full", "size=256k")):
            (root / name).mkdir()
            result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(root / name)], capture_output=True)
            if result.returncode != 0:
                pytest.skip(f"cannot mount a tmpfs here ({result.stderr.decode().strip() or 'mount failed'}): needs root")
            made.append(root / name)
        with contextlib.suppress(OSError), open(root / "full" / "filler", "wb") as handle:
            while True:
                handle.write(b"\0" * 4096)
                handle.flush()
        yield {"readonly": root / "readonly", "full": root / "full"}
    finally:
        for mount in made:
            subprocess.run(["umount", str(mount)], capture_output=True)


def places(tmp_path: Path, mounts: dict[str, Path]) -> dict[str, tuple[Path, str]]:
    """A place of each kind that cannot be written, and what the refusal says."""
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    return {
        "exists as a file": (a_file, "exists and is not a directory"),
        "under a file": (a_file / "out", "is a file, not a directory"),
        "too long": (tmp_path / ("x" * 300), "too long for the file system"),
        "read-only": (mounts["readonly"] / "out", "read-only file system"),
        "no space": (mounts["full"] / "out", "no space left"),
    }


KINDS = ["exists as a file", "under a file", "too long", "read-only", "no space"]
COMMANDS = ["run", "sweep", "report", "findings", "export", "validate"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("command", COMMANDS)
def test_every_writing_command_checks_its_place_first(finished, tmp_path, mounts, command, kind):
    spec, run_dir = finished
    place, message = places(tmp_path, mounts)[kind]
    study = tmp_path / "study.toml"
    study.write_text(f'base = "{spec}"\nseeds = [0]\n')
    if command == "export" and kind == "exists as a file":
        place, message = tmp_path / "a-file", "exists and is not a folder"
    argv = {
        "run": ["run", str(spec), "--output", str(place), "--quiet"],
        "sweep": ["sweep", str(study), "--output", str(place)],
        "report": ["report", str(run_dir), "--out", str(place)],
        "findings": ["findings", str(run_dir), "--out", str(place)],
        "export": ["export", str(run_dir), "--out", str(place if kind == "exists as a file" else Path(f"{place}.safetensors"))],
        "validate": ["validate", str(spec), "--set", f"run.output_dir={json.dumps(str(place))}"],
    }[command]
    if command == "validate" and kind == "too long":
        # a run name too long for the file system, which run refuses: validate says so first
        argv = ["validate", str(spec), "--set", f"run.output_dir={json.dumps(str(place.parent))}", "--set", f"run.name={place.name}"]
    if command == "validate" and kind == "exists as a file":
        message = "is a file, not a directory"  # run.output_dir is a file: the run directory would be under it
    before = sorted(str(path) for path in tmp_path.rglob("*"))
    line = one_error_line(*cli(argv))
    assert message in line, line
    if command == "validate":
        assert "run.output_dir/run.name:" in line
    assert sorted(str(path) for path in tmp_path.rglob("*")) == before


def test_a_checkpoint_written_to_a_disk_that_fills_is_one_line_and_leaves_no_temporary_file(mounts):
    run_dir = mounts["full"].parent / "checkpoint-run"
    run_dir.mkdir()
    disk = run_dir / "disk"
    disk.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(disk)], capture_output=True)
    if result.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: needs root")
    try:
        checkpoint = Checkpoint(
            next_task=1,
            records=[],
            global_step=0,
            samples_seen=0,
            spec_fingerprint="x",
            model={"weight": torch.zeros(1 << 20)},  # 4 MiB: the zip writer fails midway, not at open
            method={},
            merger={},
            optimizer=None,
        )
        with pytest.raises(FomoError) as caught:
            checkpoint.save(disk)
        text = str(caught.value)
        assert "\n" not in text and "cannot write checkpoint" in text and "no space left" in text.lower(), text
        assert not [path.name for path in disk.rglob("*") if ".tmp-" in path.name]
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def test_an_export_to_a_disk_that_fills_is_one_line_and_leaves_no_temporary_file(finished, mounts):
    _, run_dir = finished
    disk = mounts["full"].parent / "export-disk"
    disk.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1100k", "tmpfs", str(disk)], capture_output=True)
    if result.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: needs root")
    try:
        size = (run_dir / "weights" / "base.safetensors").stat().st_size
        assert size > 1100 * 1024, "the model must be larger than the disk for this test"
        line = one_error_line(*cli(["export", str(run_dir), "--out", str(disk / "model.safetensors")]))
        assert "no space left" in line.lower(), line
        assert list(disk.iterdir()) == []
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


# ----------------------------------------------------------------------------- files for people


def test_exported_weights_and_reports_take_the_users_umask(finished, tmp_path):
    _, run_dir = finished
    previous = os.umask(0o022)
    try:
        status, out, err = cli(["export", str(run_dir), "--out", str(tmp_path / "folder")])
        assert status == 0, err
        status, out, err = cli(["export", str(run_dir), "--out", str(tmp_path / "model.safetensors")])
        assert status == 0, err
        # tiny-clip is no built-in open_clip architecture: no "load it with" line that is not one
        assert "load it with" not in out and "note: tiny-clip is no built-in open_clip architecture" in out, out
    finally:
        os.umask(previous)
    for path in (
        tmp_path / "folder" / "open_clip_model.safetensors",
        tmp_path / "folder" / "open_clip_config.json",
        tmp_path / "model.safetensors",
    ):
        assert path.stat().st_mode & 0o777 == 0o644, (path, oct(path.stat().st_mode))
    assert (run_dir / "weights" / "base.safetensors").stat().st_mode & 0o777 == 0o644
