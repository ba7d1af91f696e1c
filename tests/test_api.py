"""The public surface: fomo_host.api holds what plugins use, loads torch only on demand, and plugins import nothing else."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import fomo_host.api as api

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_CODE_MAY_IMPORT = {"fomo_host.api"}
"""A plugin's own modules import the host through its public module only."""
PLUGIN_TESTS_MAY_IMPORT = {"fomo_host", "fomo_host.api", "fomo_host.testing"}
"""Its tests may also use the Python API (``fomo_host.run``, ``load_run``) and the conformance suites and helpers."""


def host_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of a ``fomo_host`` module in a source file, wherever it stands."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.split(".")[0] == "fomo_host"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.split(".")[0] == "fomo_host":
            if node.module == "fomo_host":  # "from fomo_host import api" names a module
                found += [(node.lineno, f"fomo_host.{alias.name}") for alias in node.names if alias.name in {"api", "testing"}]
                found += [(node.lineno, "fomo_host") for alias in node.names if alias.name not in {"api", "testing"}]
            else:
                found.append((node.lineno, node.module))
    return found


def plugin_sources() -> list[tuple[Path, bool]]:
    """Every Python file of the first-party plugins, and whether it is a test."""
    files = []
    for package in sorted((ROOT / "plugins").glob("*/pyproject.toml")):
        for path in sorted(package.parent.rglob("*.py")):
            if ".egg-info" in str(path) or "/build/" in str(path):
                continue
            files.append((path, "tests" in path.relative_to(package.parent).parts))
    return files


def test_plugins_import_only_the_public_modules_of_the_host():
    sources = plugin_sources()
    assert len(sources) > 50
    violations = []
    for path, is_test in sources:
        allowed = PLUGIN_TESTS_MAY_IMPORT if is_test else PLUGIN_CODE_MAY_IMPORT
        violations += [f"{path.relative_to(ROOT)}:{line}: {module}" for line, module in host_imports(path) if module not in allowed]
    assert violations == [], "plugins reach into host internals:\n" + "\n".join(violations)


def test_the_boundary_check_sees_every_form_of_import(tmp_path):
    source = tmp_path / "sample.py"
    source.write_text(
        "import fomo_host.engine.run\nfrom fomo_host.spec import RunSpec\nfrom fomo_host import api, hookimpl\n"
        "def f():\n    from fomo_host.plugins import load_plugins\n",
        encoding="utf-8",
    )
    assert [module for _, module in host_imports(source)] == [
        "fomo_host.engine.run",
        "fomo_host.spec",
        "fomo_host.api",
        "fomo_host",
        "fomo_host.plugins",
    ]


def test_every_public_name_resolves():
    missing = [name for name in api.__all__ if not hasattr(api, name)]
    assert missing == []
    assert sorted(dir(api)) == sorted(api.__all__)


def test_the_lazy_names_are_the_ones_the_type_checker_sees():
    """The names loaded on first access are listed twice (for mypy and at run time): the lists must agree."""
    tree = ast.parse(Path(api.__file__).read_text(encoding="utf-8"))
    type_checking = next(node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING")
    seen = {alias.asname or alias.name for node in type_checking.body if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert seen == set(api._LAZY)
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        api.NoSuchThing  # noqa: B018


def test_importing_the_api_loads_torch_only_when_a_component_class_is_used():
    code = (
        "import json, sys\nimport fomo_host.api as api\nbefore = 'torch' in sys.modules\n"
        "api.MethodRegister, api.NoParams, api.ProcessInfo, api.MergeOperatorParams\nlight = 'torch' in sys.modules\n"
        "api.UpdateMethod\nprint(json.dumps([before, light, 'torch' in sys.modules]))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(result.stdout) == [False, False, True]
