"""``fomo-host new-plugin``: the package it writes is found through its entry point and passes its conformance suite."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from fomo_host.cli import main
from fomo_host.scaffold import TEMPLATES


def install_by_entry_point(package: Path, site: Path) -> None:
    """What ``pip install -e`` leaves for the entry point, without pip: a dist-info folder on the path naming it."""
    project = tomllib.loads((package / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n", encoding="utf-8")
    lines = [f"{key} = {value}" for key, value in project["entry-points"]["fomo_host"].items()]
    (info / "entry_points.txt").write_text("[fomo_host]\n" + "\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize("kind", sorted(TEMPLATES))
def test_a_new_plugin_of_each_kind_passes_its_conformance_suite_with_the_host_alone(kind, tmp_path, capsys):
    name = f"my-{kind}"
    assert main(["new-plugin", name, "--kind", kind, "--dir", str(tmp_path)]) == 0
    package = tmp_path / name
    assert capsys.readouterr().out.startswith(f"wrote {package}")
    written = sorted(str(path.relative_to(package)) for path in package.rglob("*") if path.is_file())
    module = name.replace("-", "_")
    assert written == sorted(
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
    )
    install_by_entry_point(package, tmp_path / "site")
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(package), str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")]),
        "FOMO_LOAD_PLUGINS": name,  # the host and this plugin alone
        "FOMO_STRICT_PLUGINS": "1",
    }
    listing = subprocess.run(
        [sys.executable, "-m", "fomo_host", "plugins", name, "--json"], capture_output=True, text=True, env=environment, timeout=120
    )
    assert listing.returncode == 0, listing.stderr
    assert f'"distribution": "{name}"' in listing.stdout and f'"kind": "{kind}"' in listing.stdout
    suite = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=package,
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )
    assert suite.returncode == 0, suite.stdout[-3000:] + suite.stderr[-2000:]
    assert " passed" in suite.stdout and "skipped" not in suite.stdout and "failed" not in suite.stdout


def test_new_plugin_refuses_a_bad_name_and_an_existing_folder_in_one_line(tmp_path, capsys):
    assert main(["new-plugin", "My_Plugin", "--kind", "scheduler", "--dir", str(tmp_path)]) == 2
    assert "use lower-case letters, digits and single dashes" in capsys.readouterr().err
    (tmp_path / "taken").mkdir()
    assert main(["new-plugin", "taken", "--kind", "logger", "--dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"error: new-plugin: {tmp_path / 'taken'} exists; choose another name or folder"
    assert [path.name for path in tmp_path.iterdir()] == ["taken"]
