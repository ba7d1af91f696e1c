"""``fomo-host new-plugin``: a package of every kind, installed into a venv of its own, is found through its entry point
and passes its conformance suite as generated; its code passes ruff.

The venv is cheap (``python -m venv --without-pip``, this environment's site-packages reached through a ``.pth``, so
torch is not installed again) and the packages are installed as a wheel would install them (the package folder and a
``dist-info`` with the entry points, read from the generated pyproject). ``nox -s scaffold`` does the slow, honest
version: a fresh venv per kind, ``pip install`` of ``fomo-host[testing]`` and the generated package, its whole suite.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import pytest

from fomo_host.cli import main
from fomo_host.hookspecs import REGISTRATION_HOOKS
from fomo_host.scaffold import TEMPLATES


def package_name(kind: str) -> str:
    return f"my-{kind.replace('_', '-')}"


def cheap_venv(root: Path) -> Path:
    """A venv without pip whose ``site-packages`` also reaches this environment's (torch, fomo-host); its python."""
    venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt").create(root)
    python = root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = Path(subprocess.check_output([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    outer = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    # addsitedir (not a bare path line) also runs the outer .pth files: the editable installs of the host and its plugins
    (site / "outer-environment.pth").write_text("".join(f"import site; site.addsitedir({path!r})\n" for path in outer), encoding="utf-8")
    return python


def install_as_a_wheel_would(package: Path, python: Path) -> None:
    """The package's modules and a dist-info naming its entry points, in the venv's site-packages (what ``pip install`` leaves)."""
    config = tomllib.loads((package / "pyproject.toml").read_text(encoding="utf-8"))
    project = config["project"]
    site = Path(subprocess.check_output([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    for module in config["tool"]["setuptools"]["packages"]:
        shutil.copytree(package / module, site / module)
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir()
    requirements = "".join(f"Requires-Dist: {requirement}\n" for requirement in project["dependencies"])
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n{requirements}", encoding="utf-8"
    )
    lines = [f"{key} = {value}" for key, value in project["entry-points"]["fomo_host"].items()]
    (info / "entry_points.txt").write_text("[fomo_host]\n" + "\n".join(lines) + "\n", encoding="utf-8")


def outcomes_of(report: Path) -> dict[str, dict[str, str]]:
    """Package folder -> test name -> passed, failed, error or skipped, from a JUnit XML report."""
    outcomes: dict[str, dict[str, str]] = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        parts = case.get("classname", "").split(".")  # packages.my-method.tests.test_conformance.TestMyMethod
        package = parts[parts.index("tests") - 1] if "tests" in parts else ""
        found = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes.setdefault(package, {})[case.get("name", "")] = found[0] if found else "passed"
    return outcomes


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every kind's package, written by the command: kind -> its folder."""
    root = tmp_path_factory.mktemp("scaffolds") / "packages"
    for kind in TEMPLATES:
        assert main(["new-plugin", package_name(kind), "--kind", kind, "--dir", str(root)]) == 0
    return {kind: root / package_name(kind) for kind in TEMPLATES}


@pytest.fixture(scope="module")
def installed(written: dict[str, Path]) -> dict[str, Any]:
    """The packages installed into one cheap venv; one listing and one run of their suites (slow ones deselected)."""
    root = next(iter(written.values())).parent.parent
    python = cheap_venv(root / "venv")
    for package in written.values():
        install_as_a_wheel_would(package, python)
    environment = {
        **os.environ,
        # the scaffolded plugins alone: the first-party ones, installed in this environment, stay out
        "FOMO_LOAD_PLUGINS": ",".join(package_name(kind) for kind in TEMPLATES),
        "FOMO_STRICT_PLUGINS": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",  # the packages stay as written (another test lists their files)
    }
    listing = subprocess.run(
        [python, "-m", "fomo_host", "plugins", "--json"], capture_output=True, text=True, env=environment, timeout=300, cwd=root
    )
    assert listing.returncode == 0, listing.stderr[-3000:]
    report = root / "suites.xml"
    # one pytest for every package (starting torch once, not eleven times); each imports its installed copy
    (root / "pytest.ini").write_text("[pytest]\naddopts = --import-mode=importlib\n", encoding="utf-8")
    suites = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow", f"--junitxml={report}", "-c", str(root / "pytest.ini")]
        + [str(package / "tests") for package in written.values()],
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
        cwd=root,
    )
    return {"listing": json.loads(listing.stdout), "suites": suites, "outcomes": outcomes_of(report)}


def test_each_kind_gets_the_files_of_a_package(written: dict[str, Path]) -> None:
    for kind, package in written.items():
        module = package_name(kind).replace("-", "_")
        found = sorted(str(path.relative_to(package)) for path in package.rglob("*") if path.is_file())
        assert found == sorted(
            [
                ".github/workflows/tests.yml",
                "README.md",
                "noxfile.py",
                "pyproject.toml",
                f"{module}/__init__.py",
                f"{module}/component.py",
                f"{module}/params.py",
                f"{module}/plugin.py",
                "tests/test_conformance.py",
            ]
        ), kind
        project = tomllib.loads((package / "pyproject.toml").read_text(encoding="utf-8"))["project"]
        assert project["entry-points"]["fomo_host"] == {module: f"{module}.plugin"}


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(TEMPLATES))
def test_a_new_plugin_of_each_kind_installs_and_passes_its_conformance_suite(kind: str, installed: dict[str, Any]) -> None:
    name = package_name(kind)
    (listed,) = [entry for entry in installed["listing"] if entry["distribution"] == name]
    assert listed["version"] == "0.1.0" and listed["components"] == {kind: [name]} and not listed["errors"]
    outcomes, suites = installed["outcomes"].get(name), installed["suites"]
    assert outcomes, f"no test of {name} ran:\n{suites.stdout[-3000:]}{suites.stderr[-2000:]}"
    failed = {test: outcome for test, outcome in outcomes.items() if outcome != "passed"}
    assert not failed, f"{name}: {failed}\n{suites.stdout[-4000:]}"


def test_the_generated_code_passes_ruff(written: dict[str, Path]) -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -r requirements-dev.txt)")
    for package in written.values():
        for command in ([ruff, "check", "--no-cache", "."], [ruff, "format", "--check", "--no-cache", "."]):
            result = subprocess.run(command, capture_output=True, text=True, cwd=package, timeout=60)
            assert result.returncode == 0, f"{package.name}: {' '.join(command[1:])}\n{result.stdout}{result.stderr}"


def test_new_plugin_refuses_a_bad_name_and_an_existing_folder_in_one_line(tmp_path, capsys):
    assert main(["new-plugin", "My_Plugin", "--kind", "scheduler", "--dir", str(tmp_path)]) == 2
    assert "use lower-case letters, digits and single dashes" in capsys.readouterr().err
    (tmp_path / "taken").mkdir()
    assert main(["new-plugin", "taken", "--kind", "logger", "--dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"error: new-plugin: {tmp_path / 'taken'} exists; choose another name or folder"
    assert [path.name for path in tmp_path.iterdir()] == ["taken"]


def test_new_plugin_offers_every_registered_kind_and_nox_checks_each():
    assert set(TEMPLATES) == set(REGISTRATION_HOOKS)
    for kind, template in TEMPLATES.items():
        assert template.kind == kind and template.hook == REGISTRATION_HOOKS[kind]
    noxfile = ast.parse((Path(__file__).parents[1] / "noxfile.py").read_text(encoding="utf-8"))
    (kinds,) = [
        ast.literal_eval(node.value)
        for node in noxfile.body
        if isinstance(node, ast.Assign) and [getattr(target, "id", None) for target in node.targets] == ["SCAFFOLD_KINDS"]
    ]
    assert sorted(kinds) == sorted(TEMPLATES), "nox -s scaffold must run every kind new-plugin writes"


def test_the_docs_show_the_method_package_as_written(written: dict[str, Path]) -> None:
    """The code docs/plugin-scaffold.md shows is the generated method package's, line for line."""
    page = (Path(__file__).parents[1] / "docs" / "plugin-scaffold.md").read_text(encoding="utf-8")
    package = written["method"]
    generated = set((package / "my_method" / "component.py").read_text(encoding="utf-8").splitlines())
    generated |= set((package / "tests" / "test_conformance.py").read_text(encoding="utf-8").splitlines())
    shown = [line for block in re.findall(r"```python\n(.*?)```", page, re.S) for line in block.splitlines() if line.strip()]
    assert shown and not [line for line in shown if line not in generated]
    listing = re.search(r"\$ find my-method -type f \| sort\n(.*?)```", page, re.S)
    assert listing is not None
    assert listing.group(1).split() == sorted(f"my-method/{path.relative_to(package)}" for path in package.rglob("*") if path.is_file())
