"""The docs page "Writing a plugin" is a package that works: built from the page's own blocks, installed, listed, tested."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "my-methods"
SHOWN_COLUMNS = "100"
"""The terminal width the page's shown output was printed at."""


PAGE = ROOT / "docs" / "plugin-authoring.md"


def page_text() -> str:
    """The whole page: it is the plugin's walk-through from its first block to its last."""
    return PAGE.read_text(encoding="utf-8")


def package_files() -> dict[str, str]:
    """Every code block of the section whose first line names a file of the package: ``# my-methods/path``."""
    files = {}
    for block in re.findall(r"```[a-z]*\n(.*?)```", page_text(), re.S):
        first, _, body = block.partition("\n")
        if first.startswith(f"# {PACKAGE}/"):
            files[first.removeprefix("# ")] = body
    return files


def shown_output(command: str) -> str:
    """What the section shows ``$ command`` printing."""
    block = re.search(rf"```\n\$ {re.escape(command)}\n(.*?)```", page_text(), re.S)
    assert block, f"{PAGE.name} shows no output of {command!r}"
    return block.group(1)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The package written from the page and installed into a folder of its own; the environment that sees it."""
    root = tmp_path_factory.mktemp("docs-plugin")
    for name, content in package_files().items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    site = root / "site"
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target", str(site)]
    subprocess.run([*install, str(root / PACKAGE)], check=True, capture_output=True, text=True, timeout=300)
    pythonpath = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": pythonpath, "COLUMNS": SHOWN_COLUMNS, "OMP_NUM_THREADS": "1", "root": str(root)}


def fomo(environment: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fomo_host", *arguments], capture_output=True, text=True, env=environment, timeout=120, check=True
    )


def test_the_page_holds_a_whole_package():
    assert set(package_files()) == {
        f"{PACKAGE}/pyproject.toml",
        f"{PACKAGE}/my_methods/params.py",
        f"{PACKAGE}/my_methods/top_layers.py",
        f"{PACKAGE}/my_methods/plugin.py",
        f"{PACKAGE}/tests/test_top_layers.py",
    }


@pytest.mark.slow
def test_the_installed_package_is_listed_and_described_as_the_page_shows(installed):
    rows = json.loads(fomo(installed, "plugins", "--json").stdout)
    (row,) = [row for row in rows if row["distribution"] == PACKAGE]
    assert row["components"] == {"method": ["top-layers"]} and row["errors"] == []
    assert fomo(installed, "plugins", "top-layers").stdout == shown_output("fomo-host plugins top-layers")


@pytest.mark.slow
def test_the_packages_conformance_tests_pass(installed):
    tests = Path(installed["root"]) / PACKAGE / "tests"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow", str(tests)],
        capture_output=True,
        text=True,
        env=installed,
        cwd=tests.parent,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert re.search(r"\b4 passed\b", result.stdout), result.stdout[-2000:]
