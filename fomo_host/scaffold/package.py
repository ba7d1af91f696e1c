"""The files of a new plugin package, common to every kind, and writing them (what ``fomo-host new-plugin`` does)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import FomoError

PACKAGE_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


@dataclass(frozen=True)
class KindTemplate:
    """What a kind's package holds besides the common files.

    The texts name the package through placeholders: ``__NAME__`` (the distribution and component name),
    ``__MODULE__`` (the import name) and ``__CLASS__`` (the test class's name, in CamelCase).
    """

    kind: str
    hook: str
    register_type: str
    summary: str
    """One sentence: what the generated component does (its registered description and the README's first line)."""
    params: str
    """The body of params.py after its docstring and ``from __future__ import annotations``: a class named ``Params``."""
    component: str
    """The body of component.py after its docstring and future import: the component and ``build``, its factory."""
    test: str
    """The body of tests/test_conformance.py after its docstring: the kind's conformance suite subclassed."""
    spec_usage: str
    """How a spec (or a study, for a launcher) names the component, for the README."""
    dependencies: tuple[str, ...] = ()
    """What the component needs besides fomo-host."""


def render(text: str, name: str) -> str:
    """``text`` with the placeholders filled in for the package ``name``."""
    module = name.replace("-", "_")
    test_class = "".join(part.title() for part in module.split("_"))
    return text.replace("__NAME__", name).replace("__MODULE__", module).replace("__CLASS__", test_class)


def files_of(name: str, template: KindTemplate) -> dict[str, str]:
    """Every file of the package ``name`` for a component of ``template.kind``, by path relative to the package folder."""
    module = name.replace("-", "_")
    kind = template.kind.replace("_", " ")
    dependencies = ", ".join(f'"{dependency}"' for dependency in ("fomo-host", *template.dependencies))
    files = {
        "pyproject.toml": f"""[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{name}"
version = "0.1.0"
description = "A fomo-host {kind}: {template.summary}"
readme = "README.md"
requires-python = ">=3.11"
dependencies = [{dependencies}]

[project.optional-dependencies]
testing = ["fomo-host[testing]", "pytest>=8"]

# how fomo-host finds the plugin: the module whose hooks register its components
[project.entry-points.fomo_host]
{module} = "{module}.plugin"

[tool.setuptools]
packages = ["{module}"]

[tool.pytest.ini_options]
# the conformance suite's slow tests (several processes, whole studies) run too; deselect them with -m "not slow"
addopts = "-ra --import-mode=importlib"

[tool.ruff]
line-length = 140
target-version = "py311"

[tool.ruff.lint]
select = ["E", "F", "W", "I", "UP", "B", "SIM"]

[tool.ruff.lint.isort]
# the host's public modules in a block of their own, between other libraries and this package
section-order = ["future", "standard-library", "third-party", "fomo-host", "first-party", "local-folder"]
known-first-party = ["{module}"]

[tool.ruff.lint.isort.sections]
fomo-host = ["fomo_host"]
""",
        f"{module}/__init__.py": f'"""A fomo-host plugin: the {kind} {name!r}."""\n',
        f"{module}/params.py": f'"""The settings of the {kind} {name!r}.\n\nImports nothing heavy: validating a spec stays cheap.\n"""\n\n'
        "from __future__ import annotations\n\n" + render(template.params, name),
        f"{module}/component.py": f'"""The {kind} {name!r}; imported only when a run builds it."""\n\n'
        "from __future__ import annotations\n\n" + render(template.component, name),
        f"{module}/plugin.py": f'''"""Registers the {kind} {name!r}.

The entry point in group ``fomo_host`` names this module.
"""

from __future__ import annotations

from fomo_host.api import {template.register_type}, hookimpl

from .params import Params


@hookimpl
def {template.hook}(register: {template.register_type}) -> None:
    # a reference "module:attribute": the component's module loads only when a run builds it
    register(
        name="{name}",
        factory="{module}.component:build",
        params=Params,
        description="{template.summary}",
    )
''',
        "tests/test_conformance.py": f'"""The conformance suite of fomo-host\'s {kind} kind, run against {name!r}."""\n\n'
        + render(template.test, name),
        "README.md": f"""# {name}

A fomo-host plugin providing the {kind} `{name}`: {template.summary[0].lower() + template.summary[1:]}

```bash
# fomo-host finds the plugin through its entry point
pip install -e '.[testing]'
# its description and params, as the host sees them
fomo-host plugins {name} --params
# its conformance suite (pytest -m "not slow": the quick part), and what CI runs (.github/workflows/tests.yml)
pytest
nox -s lint tests
```

In a spec:

{render(template.spec_usage, name)}
`{module}/params.py` holds its settings (a pydantic model: unknown keys and bad values are refused
when a spec is validated), `{module}/component.py` the {kind} itself, `{module}/plugin.py`
registers it. Import from `fomo_host.api` (and, in tests, `fomo_host.testing`) only: the host's
other modules may change in any release. The host warns, once, about a plugin that imports one of
them or reads `RANK`, `LOCAL_RANK` or `WORLD_SIZE` from the environment (hooks and components are
handed their process, `fomo_host.api.ProcessInfo`).
""",
        "noxfile.py": '''"""The conformance suite against the installed fomo-host, and the lint."""

import nox


@nox.session
def tests(session: nox.Session) -> None:
    session.install("-e", ".[testing]")
    session.run("pytest", "-q", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.5")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
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
      - run: nox -s lint tests
""",
    }
    return files


def write_plugin(name: str, template: KindTemplate, directory: Path) -> Path:
    """Write the package ``name`` into ``directory/name``; refuses a bad name or an existing folder, writing nothing."""
    if not PACKAGE_NAME.match(name):
        raise FomoError(f"new-plugin {name!r}: use lower-case letters, digits and single dashes, starting with a letter (e.g. my-schedule)")
    target = directory / name
    if target.exists():
        raise FomoError(f"new-plugin: {target} exists; choose another name or folder")
    for relative, text in files_of(name, template).items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return target
