"""Templates of the kinds around runs: launcher (a study's runs) and logger (a run's progress)."""

from __future__ import annotations

from .package import KindTemplate

LAUNCHER = KindTemplate(
    kind="launcher",
    hook="register_launchers",
    register_type="LauncherRegister",
    summary="A study's runs one after another as subprocesses of the sweep, each resumed from its checkpoint when retried.",
    params='''from pydantic import BaseModel, ConfigDict, Field


class Params(BaseModel):
    """Settings of the launcher (a study's ``launcher.params``)."""

    model_config = ConfigDict(extra="forbid")

    threads: int = Field(default=1, ge=1, description="CPU threads of each run (OMP_NUM_THREADS and friends)")
    retries: int = Field(default=0, ge=0, description="how often a failed run starts again (from its last checkpoint)")
''',
    component='''from collections.abc import Sequence
from pathlib import Path

from fomo_host.api import Launcher, LaunchEvents, RunRequest, start_run, thread_variables

from .params import Params


class OneAtATime(Launcher):
    """Runs each request in turn, as ``fomo-host run`` in a subprocess (its own process group, its output in the run's
    log); a run that fails starts again up to ``retries`` times, resuming from its checkpoint if it wrote one."""

    def __init__(self, params: Params) -> None:
        self.params = params

    def describe(self) -> str:
        threads = self.params.threads
        return f"one run at a time, {threads} CPU thread{'s' if threads > 1 else ''}, {self.params.retries} retries each"

    def launch(self, requests: Sequence[RunRequest], events: LaunchEvents, work_dir: Path) -> None:
        for request in requests:
            self.run(request, events)

    def run(self, request: RunRequest, events: LaunchEvents) -> None:
        returncode: int | None = None
        for _ in range(self.params.retries + 1):
            try:
                process = start_run(request, env=thread_variables(self.params.threads))
            except OSError as exc:
                events.finished(request, None, f"cannot start the run: {exc}")
                return
            events.started(request, f"pid {process.pid}")
            try:
                returncode = process.wait()
            except BaseException:  # Ctrl-C or a cancelled sweep: stop the run (it keeps its checkpoint) and pass it on
                process.stop()
                raise
            if returncode == 0:
                break
        events.finished(request, returncode)


def build(params: Params) -> OneAtATime:
    return OneAtATime(params)
''',
    test="""from fomo_host.testing import LauncherConformance


class Test__CLASS__(LauncherConformance):
    launcher_name = "__NAME__"
    params = {"threads": 1, "retries": 0}
    invalid_params = {"threads": 0}
""",
    spec_usage="""A study file (`fomo-host sweep STUDY`) names it:

```toml
base = "base.toml"
seeds = [0, 1]
grid = { "optimizer.lr" = [1e-4, 3e-4] }
launcher = { name = "__NAME__", params = { threads = 4, retries = 1 } }
```
""",
)

LOGGER = KindTemplate(
    kind="logger",
    hook="register_loggers",
    register_type="LoggerRegister",
    summary="Every evaluation of a run as one JSON line in a file of the run directory.",
    params='''from pathlib import PurePosixPath

from pydantic import Field, field_validator

from fomo_host.api import LoggerParams


class Params(LoggerParams):
    """Settings of the logger (``run.loggers.N.params``)."""

    filename: str = Field(default="evaluations.jsonl", description="file in the run directory the evaluations go to")

    @field_validator("filename")
    @classmethod
    def _a_file_name(cls, value: str) -> str:
        if not value or len(PurePosixPath(value).parts) != 1 or value in (".", ".."):
            raise ValueError(f"{value!r}: give a file name, not a path")
        return value

    def problems(self) -> list[str]:
        """What would stop the logger on this machine (a missing package, a server it cannot reach); none here."""
        return []
''',
    component='''import json
from typing import Any

from fomo_host.api import Logger, LoggerContext

from .params import Params


class JsonLinesLogger(Logger):
    """Appends each evaluation record to the file; a resumed run first drops the lines of the tasks it trains again."""

    def __init__(self, params: Params, context: LoggerContext) -> None:
        self.path = context.run_dir / params.filename
        if context.resumed_from_task is None:
            self.path.unlink(missing_ok=True)
        else:  # keep the lines of the tasks done before the resumed one
            kept = [line for line in self.lines() if json.loads(line)["task"] < context.resumed_from_task]
            self.path.write_text("".join(kept), encoding="utf-8")

    def lines(self) -> list[str]:
        return self.path.read_text(encoding="utf-8").splitlines(keepends=True) if self.path.is_file() else []

    def evaluation(self, record: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\\n")


def build(params: Params, context: LoggerContext) -> JsonLinesLogger:
    return JsonLinesLogger(params, context)
''',
    test="""from fomo_host.testing import LoggerConformance


class Test__CLASS__(LoggerConformance):
    logger_name = "__NAME__"
    params = {"filename": "progress.jsonl"}
    invalid_params = {"filename": "../outside.jsonl"}
""",
    spec_usage="""```toml
[run]
loggers = [{ name = "__NAME__", params = { filename = "progress.jsonl" } }]
```
""",
)
