"""Run directories: claimed and locked before anything is written; path problems are one line; a failed start leaves nothing."""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest

from fomo_host.cli import main
from fomo_host.errors import FomoError
from fomo_host.locking import LOCK_FILE, RunDirectoryLock, RunInUseError
from fomo_host.run_directory import RunDirectory, environment_errors_as_one_line


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip() and not line.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err
    return lines[0]


def test_a_held_lock_refuses_a_second_holder_naming_the_first(tmp_path):
    with RunDirectoryLock(tmp_path):
        second = RunDirectoryLock(tmp_path)
        with pytest.raises(RunInUseError, match=rf"{tmp_path} is in use by another fomo-host run \(pid \d+ on "):
            second.acquire()
    RunDirectoryLock(tmp_path).acquire()  # released with the first holder


def test_the_kernel_releases_the_lock_of_a_killed_process(tmp_path):
    script = (
        "import pathlib, sys, time\n"
        "from fomo_host.locking import RunDirectoryLock\n"
        "RunDirectoryLock(pathlib.Path(sys.argv[1])).acquire()\n"
        "print('held', flush=True)\n"
        "time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(RunInUseError, match=f"pid {holder.pid}"):
            RunDirectoryLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()
    RunDirectoryLock(tmp_path).acquire()


def test_a_new_run_claims_and_a_failed_start_removes_what_it_created(tmp_path):
    target = tmp_path / "a" / "b"
    claimed = RunDirectory.claim(target, resume=False, option="--output")
    assert target.is_dir() and (target / LOCK_FILE).is_file() and claimed.lock is not None and claimed.lock.held
    claimed.release(failed=True)
    assert not target.exists()
    # a directory that existed (empty) is kept; one with a file in it is refused
    target.mkdir()
    RunDirectory.claim(target, resume=False, option="--output").release(failed=True)
    assert target.is_dir()
    (target / "x").write_text("")
    with pytest.raises(FomoError, match="exists and is not empty; continue it with: fomo-host run --resume"):
        RunDirectory.claim(target, resume=False, option="--output")


def test_a_directory_left_with_only_a_lock_file_can_be_reused(tmp_path):
    (tmp_path / LOCK_FILE).write_text("{}")  # a start killed while it built the model
    RunDirectory.claim(tmp_path, resume=False, option="--output").release(failed=False)


def a_file(root: Path, *below: str) -> Path:
    (root / "f").write_text("")
    return root.joinpath("f", *below)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: a_file(root), "exists and is not a directory"),
        (lambda root: a_file(root, "run"), "/f is a file, not a directory"),
        (lambda root: a_file(root, "deeper", "run"), "/f is a file, not a directory"),
        (lambda root: root / ("x" * 300), "too long for the file system (300 characters)"),
    ],
    ids=["a file", "under a file", "deep under a file", "name too long"],
)
def test_output_paths_that_cannot_be_a_run_directory_are_one_line(tmp_path, make, message):
    with pytest.raises(FomoError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RunDirectory.claim(make(tmp_path), resume=False, option="--output")


@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC, errno.EACCES])
def test_read_only_full_or_denied_file_systems_are_one_line(tmp_path, monkeypatch, code):
    def refuse(self, *args, **kwargs):
        raise OSError(code, __import__("os").strerror(code), str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(FomoError) as caught:
        RunDirectory.claim(tmp_path / "run", resume=False, option="--output")
    assert str(caught.value).startswith(f"--output {tmp_path / 'run'}: {__import__('os').strerror(code)}")


def test_writes_failing_mid_run_are_one_line_with_the_resume_command(tmp_path):
    with pytest.raises(FomoError) as caught, environment_errors_as_one_line(tmp_path, resumable=lambda: True):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "results.jsonl"))
    assert str(caught.value) == (
        f"cannot write {tmp_path / 'results.jsonl'}: No space left on device; free some space; "
        f"the last checkpoint is intact: once fixed, continue with: fomo-host run --resume {tmp_path}"
    )
    with pytest.raises(KeyError), environment_errors_as_one_line(tmp_path, resumable=lambda: True):
        raise KeyError("a bug stays a bug")


def test_run_refuses_a_directory_another_run_holds(small_spec, tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with RunDirectoryLock(run_dir):
        assert main(["run", str(small_spec()), "--output", str(run_dir)]) == 2
        assert "is in use by another fomo-host run" in one_error_line(capsys)
        (run_dir / "spec.toml").write_text((small_spec()).read_text())
        assert main(["run", "--resume", str(run_dir)]) == 2
        assert "is in use by another fomo-host run" in one_error_line(capsys)


def test_resume_needs_a_run_directory_with_a_spec(tmp_path, capsys):
    assert main(["run", "--resume", str(tmp_path / "nope")]) == 2
    assert "no such run directory" in one_error_line(capsys)
    assert main(["run", "--resume", str(tmp_path)]) == 2
    expected = "nothing to resume (no spec.toml: the run stopped before it started); "
    expected += f"start it again with: fomo-host run SPEC --output {tmp_path}"
    assert expected in one_error_line(capsys)
    assert main(["run"]) == 2
    assert "give a spec file to start a run, or --resume RUN_DIR" in one_error_line(capsys)


def test_a_rejected_start_writes_nothing(small_spec, tmp_path, capsys):
    run_dir = tmp_path / "never"
    assert main(["run", str(small_spec()), "--output", str(run_dir), "--set", "data.num_tasks=500"]) == 2
    assert "data.num_tasks is 500" in one_error_line(capsys)
    assert not run_dir.exists()


def test_a_run_name_too_long_for_the_file_system_is_one_line(small_spec, tmp_path, capsys):
    argv = ["run", str(small_spec()), "--set", "run.name=" + "x" * 300, "--set", f"run.output_dir='{tmp_path}'"]
    assert main(argv) == 2
    assert "a name in the path is too long for the file system" in one_error_line(capsys)
    assert list(tmp_path.iterdir()) == [tmp_path / "spec.toml"]


def test_ctrl_c_prints_a_resume_command_that_needs_no_spec(small_spec, tmp_path, capsys, monkeypatch):
    run_dir = tmp_path / "run"

    def interrupted_after_the_spec(self, resume):
        (self.run_dir / "spec.toml").write_text(self.spec.to_toml())
        raise KeyboardInterrupt

    monkeypatch.setattr("fomo_host.engine.run.ContinualRun.execute", interrupted_after_the_spec)
    assert main(["run", str(small_spec()), "--output", str(run_dir), "--quiet", "--set", "optimizer.lr=1e-3"]) == 130
    assert f"interrupted; continue with: fomo-host run --resume {run_dir}" in capsys.readouterr().err
    # the command the hint gives resolves the run's own spec, overrides included, and gets as far as the loop again
    assert main(["run", "--resume", str(run_dir), "--quiet"]) == 130

    def interrupted_at_once(self, resume):
        raise KeyboardInterrupt

    monkeypatch.setattr("fomo_host.engine.run.ContinualRun.execute", interrupted_at_once)
    fresh = tmp_path / "fresh"
    assert main(["run", str(small_spec()), "--output", str(fresh), "--quiet"]) == 130
    assert "interrupted before the run started; nothing was written" in capsys.readouterr().err
    assert not fresh.exists()
