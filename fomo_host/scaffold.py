"""A new plugin package, written from templates: pyproject with the entry point, Params, a working component, a README,
its conformance test, a noxfile and a CI workflow (what ``fomo-host new-plugin`` writes).

The generated package imports ``fomo_host.api`` and ``fomo_host.testing`` only, installs with ``pip install -e .``
and passes its conformance suite as generated: a starting point that already conforms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import FomoError

PACKAGE_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


@dataclass(frozen=True)
class KindTemplate:
    """What a kind's package holds besides the common files."""

    hook: str
    register_type: str
    params: str
    """The body of params.py after its imports: a Params class named ``Params``."""
    component: str
    """component.py: the component, built by ``build``."""
    suite: str
    suite_attributes: str


SCHEDULER = KindTemplate(
    hook="register_schedulers",
    register_type="SchedulerRegister",
    params='''from pydantic import BaseModel, ConfigDict, Field


class Params(BaseModel):
    """Settings of the schedule (``scheduler.params``)."""

    model_config = ConfigDict(extra="forbid")

    warmup: float = Field(default=0.1, ge=0, lt=1, description="share of each task's steps spent warming up linearly")
''',
    component='''import math

from .params import Params


class Schedule:
    """Linear warmup over the first share of each task's steps, then the full learning rate (replace with yours)."""

    def __init__(self, params: Params) -> None:
        self.params = params

    def __call__(self, step: int, steps_per_task: int, task: int, num_tasks: int) -> float:
        warmup = math.ceil(self.params.warmup * steps_per_task)
        return (step + 1) / warmup if step < warmup else 1.0


def build(params: Params) -> Schedule:
    return Schedule(params)
''',
    suite="SchedulerConformance",
    suite_attributes="""    scheduler_name = "{name}"
    params = {{"warmup": 0.2}}
    invalid_params = {{"warmup": 1.5}}
""",
)

LOGGER = KindTemplate(
    hook="register_loggers",
    register_type="LoggerRegister",
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
    """Every evaluation of a run as one JSON line in the run directory (replace with yours)."""

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
    suite="LoggerConformance",
    suite_attributes="""    logger_name = "{name}"
    params = {{"filename": "progress.jsonl"}}
    invalid_params = {{"filename": "../outside.jsonl"}}
""",
)

TEMPLATES: dict[str, KindTemplate] = {"scheduler": SCHEDULER, "logger": LOGGER}
"""The kinds ``new-plugin`` scaffolds."""


def files_of(name: str, kind: str) -> dict[str, str]:
    """Every file of the package ``name`` for a component of ``kind``, by path relative to the package folder."""
    template = TEMPLATES[kind]
    module = name.replace("-", "_")
    description = f"{kind} {name!r}: replace with what it does"
    return {
        "pyproject.toml": f"""[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{name}"
version = "0.1.0"
description = "A fomo-host {kind}: {name}"
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["fomo-host"]

[project.optional-dependencies]
testing = ["fomo-host[testing]", "pytest>=8"]

# how fomo-host finds the plugin: the module whose hooks register its components
[project.entry-points.fomo_host]
{module} = "{module}.plugin"

[tool.setuptools]
packages = ["{module}"]
""",
        f"{module}/__init__.py": f'"""{name}: a fomo-host plugin providing the {kind} {name!r}."""\n',
        f"{module}/params.py": f'"""The settings of the {kind} {name!r}; imports nothing heavy (validating a spec stays cheap)."""\n\n'
        "from __future__ import annotations\n\n" + template.params,
        f"{module}/component.py": f'"""The {kind} {name!r}; imported only when a run builds it."""\n\n'
        "from __future__ import annotations\n\n" + template.component,
        f"{module}/plugin.py": f'''"""Registers the {kind} {name!r} (the entry point in group ``fomo_host`` names this module)."""

from __future__ import annotations

from fomo_host.api import {template.register_type}, hookimpl

from .params import Params


@hookimpl
def {template.hook}(register: {template.register_type}) -> None:
    # a reference "module:attribute": the component's module loads only when a run builds it
    register(name="{name}", factory="{module}.component:build", params=Params, description="{description}")
''',
        "tests/test_conformance.py": f'''"""The conformance suite of fomo-host's {kind} kind, run against {name!r}."""

from fomo_host.testing import {template.suite}


class Test{"".join(part.title() for part in module.split("_"))}({template.suite}):
{template.suite_attributes.format(name=name)}''',
        "README.md": f"""# {name}

A [fomo-host](https://github.com/) plugin providing the {kind} `{name}`.

```bash
pip install -e .                 # fomo-host finds it through its entry point
fomo-host plugins {name}         # its description and params
pip install -e '.[testing]' && pytest   # its conformance suite
```

`{module}/params.py` holds its settings, `{module}/component.py` the {kind} itself,
`{module}/plugin.py` registers it. Import from `fomo_host.api` only: the host's other
modules may change in any release.
""",
        "noxfile.py": '''"""Test sessions: the conformance suite against the installed fomo-host."""

import nox


@nox.session
def tests(session: nox.Session) -> None:
    session.install("-e", ".[testing]")
    session.run("pytest", "-q", *session.posargs)
''',
        ".github/workflows/tests.yml": """name: tests
on: [push, pull_request]
jobs:
  tests:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      - run: pip install nox
      - run: nox -s tests
""",
    }


def write_plugin(name: str, kind: str, directory: Path) -> Path:
    """Write the package ``name`` into ``directory/name``; refuses a bad name, an unknown kind or an existing folder."""
    if not PACKAGE_NAME.match(name):
        raise FomoError(f"new-plugin {name!r}: use lower-case letters, digits and single dashes, starting with a letter (e.g. my-schedule)")
    if kind not in TEMPLATES:
        raise FomoError(f"new-plugin --kind {kind!r}: kinds with a template: {', '.join(sorted(TEMPLATES))}")
    target = directory / name
    if target.exists():
        raise FomoError(f"new-plugin: {target} exists; choose another name or folder")
    for relative, text in files_of(name, kind).items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return target
