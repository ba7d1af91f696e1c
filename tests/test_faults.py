"""Fault injection: a run killed (SIGKILL) at any point, checkpoint writes included, resumes exactly or refuses in one line.

Each run is the real ``fomo-host run`` in a forked copy of the test process (no interpreter
start-up, imports or cache loads per run: about 3 s a run, a minute or two for the matrix), killed by the test hook
``FOMO_FAULT_AT`` (see :mod:`fomo_host.faults`) at the N-th time it reaches a point. The
resume runs in a fresh fork without the hook, and its ``results.jsonl`` must equal the
uninterrupted run's (on CPU every task is deterministic), or it must refuse with one
``error:`` line and exit status 2.

Everything here runs on one CPU thread, the uninterrupted run in this process included: a child forked
from a process whose OpenMP thread team has run (any earlier test's training did) hangs in its first
parallel region, since the team's threads do not exist in the child. With one thread torch never opens a
parallel region, so the forks are safe whatever ran before them in this process.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys
from pathlib import Path

import pytest
import torch

from fomo_host.cli import main
from fomo_host.faults import POINTS, VARIABLE

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not hasattr(os, "fork"), reason="forks the test process")]

KILLS = [(point, 1) for point in POINTS] + [
    ("training.step", 3),  # inside the second task
    ("evaluation.recorded", 2),  # after the first task's evaluation, before its checkpoint
    ("checkpoint.state", 2),  # writing the first task's checkpoint
    ("checkpoint.renamed", 3),  # the last checkpoint renamed, not committed
    ("weights.temporary", 2),  # the first merge's store file half-written
]
"""(point, occurrence): every point once, and the ones that recur again in a later task."""


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One CPU thread for this module's runs (see the module's docstring), restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def fork_run(argv: list[str], log: Path, fault: str | None = None) -> tuple[str, int]:
    """Run the CLI in a forked child; ("killed", signal) or ("exited", status)."""
    return wait_fork(start_fork(argv, log, fault))


def start_fork(argv: list[str], log: Path, fault: str | None = None, environment: dict[str, str] | None = None) -> int:
    """Start the CLI in a forked child, its output to ``log``; the child's pid."""
    assert torch.get_num_threads() == 1, "a forked run needs one thread (see the module's docstring)"
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        status = 70
        try:
            os.environ.update(environment or {})
            if fault is None:
                os.environ.pop(VARIABLE, None)
            else:
                os.environ[VARIABLE] = fault
            descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(descriptor, 1)
            os.dup2(descriptor, 2)
            sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 (the child exits without closing)
            sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
            status = main(argv)
        except BaseException as exc:  # noqa: BLE001 (reported through the log and the status)
            print(f"child raised {type(exc).__name__}: {exc}", file=sys.stderr)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
    return pid


def wait_fork(pid: int) -> tuple[str, int]:
    _, wait_status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(wait_status):
        return "killed", os.WTERMSIG(wait_status)
    return "exited", os.WEXITSTATUS(wait_status)


def comparable(run_dir: Path) -> list[str]:
    lines = (run_dir / "results.jsonl").read_text().splitlines()
    return [json.dumps({k: v for k, v in json.loads(line).items() if k != "eval_seconds"}, sort_keys=True) for line in lines]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, small_spec_text: str) -> tuple[Path, list[str]]:
    """The spec (2 tasks of 2 steps, EMA merge so the weight store is written) and its uninterrupted results."""
    root = tmp_path_factory.mktemp("faults")
    spec = root / "spec.toml"
    spec.write_text(small_spec_text.format(num_tasks=2, steps=2) + '\n[merger]\nname = "ema"\n', encoding="utf-8")
    run_dir = root / "uninterrupted"
    # in this process: the forks then inherit its imports and loaded caches, and each run costs seconds
    log = io.StringIO()
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        status = main(["run", str(spec), "--output", str(run_dir), "--quiet"])
    assert status == 0, log.getvalue()[-3000:]
    return spec, comparable(run_dir)


def test_a_kill_at_any_point_resumes_exactly_or_refuses_in_one_line(reference, tmp_path):
    spec, expected = reference
    outcomes: dict[str, str] = {}
    for point, occurrence in KILLS:
        label = f"{point}:{occurrence}"
        run_dir = tmp_path / label.replace(":", "-")
        killed = fork_run(["run", str(spec), "--output", str(run_dir), "--quiet"], tmp_path / f"{label}.kill.log", fault=label)
        assert killed == ("killed", signal.SIGKILL), f"{label}: the run was not killed ({killed}); the point is not reached"
        if not (run_dir / "spec.toml").is_file():
            # killed before the run wrote its spec: nothing to resume, and the directory can be started again
            outcomes[label] = "restarted"
            status = fork_run(["run", str(spec), "--output", str(run_dir), "--quiet"], tmp_path / f"{label}.resume.log")
        else:
            status = fork_run(["run", "--resume", str(run_dir), "--quiet"], tmp_path / f"{label}.resume.log")
        log = (tmp_path / f"{label}.resume.log").read_text()
        if status == ("exited", 0):
            assert comparable(run_dir) == expected, f"{label}: the resumed run differs from the uninterrupted one"
            assert not list(run_dir.rglob("*.tmp-*")), f"{label}: temporary files left behind"
            outcomes.setdefault(label, "exact")
        else:
            lines = [line for line in log.splitlines() if line.strip() and not line.startswith(("warning: ", "note: "))]
            assert status == ("exited", 2) and len(lines) == 1 and lines[0].startswith("error: "), f"{label}: {status}\n{log[-2000:]}"
            outcomes[label] = "refused"
    # with checksummed checkpoints and records rebuilt from them, no kill should need a refusal
    assert "refused" not in outcomes.values(), outcomes


def test_a_kill_during_a_resume_resumes_again(reference, tmp_path):
    spec, expected = reference
    run_dir = tmp_path / "twice"
    assert fork_run(["run", str(spec), "--output", str(run_dir)], tmp_path / "first.log", fault="training.step:3")[0] == "killed"
    # the resume rewrites results.jsonl from the checkpoint, then is killed writing the next checkpoint
    assert fork_run(["run", "--resume", str(run_dir)], tmp_path / "second.log", fault="checkpoint.state:1")[0] == "killed"
    assert fork_run(["run", "--resume", str(run_dir)], tmp_path / "third.log") == ("exited", 0), (tmp_path / "third.log").read_text()
    assert comparable(run_dir) == expected


def test_runs_that_start_together_on_a_cold_cache_pretrain_the_base_model_once(small_spec, tmp_path):
    """A study's first runs start at once and need the same base model: one pretrains it, the other waits and loads it."""
    spec = small_spec(num_tasks=1, steps=1)
    cold = {"FOMO_CACHE_DIR": str(tmp_path / "cold-cache")}
    children = [
        start_fork(["run", str(spec), "--output", str(tmp_path / f"run-{n}")], tmp_path / f"run-{n}.log", environment=cold)
        for n in range(2)
    ]
    assert [wait_fork(pid) for pid in children] == [("exited", 0)] * 2
    logs = [(tmp_path / f"run-{n}.log").read_text() for n in range(2)]
    pretrained = [log for log in logs if "(cached for later runs)" in log]
    assert len(pretrained) == 1, "\n\n".join(log[-1500:] for log in logs)
    assert sum("warm start: base model loaded from cache" in log for log in logs) == 1
    assert len(list((tmp_path / "cold-cache" / "base-models").glob("*.safetensors"))) == 1
