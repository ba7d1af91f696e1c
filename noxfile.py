"""Test matrix: each plugin alone with the host, everything together, lint, and the measured comparisons.

nox -s lint
nox -s "plugin(fomo-metrics)"        # host + that plugin + the plugins its tests declare
nox -s "conformance(fomo-tuning)"    # a fresh venv with fomo-host[testing] and that plugin alone: its conformance suites
nox -s "scaffold(method)"            # fomo-host new-plugin's package of a kind, alone with fomo-host[testing]: its suite, its lint
nox -s all                           # host and every plugin, every test (one two-process run per kind)
nox -s multiprocess                  # every test that starts several processes (all the two-process runs)
nox -s docs                          # the docs site: reference pages current, mkdocs build --strict
"""

from __future__ import annotations

import tempfile
import tomllib
from pathlib import Path

import nox

ROOT = Path(__file__).parent
PLUGINS = {path.parent.name: path.parent for path in sorted((ROOT / "plugins").glob("*/pyproject.toml"))}

nox.options.sessions = ["lint", "all"]
nox.options.reuse_existing_virtualenvs = True


def test_plugins_of(plugin: str) -> list[str]:
    """The other first-party plugins a plugin's tests need (``[tool.fomo-host] test-plugins``)."""
    config = tomllib.loads((PLUGINS[plugin] / "pyproject.toml").read_text(encoding="utf-8"))
    return list(config.get("tool", {}).get("fomo-host", {}).get("test-plugins", []))


def installable(plugin: str) -> str:
    """A plugin's folder with all its extras (optional trackers), so its tests of them run."""
    config = tomllib.loads((PLUGINS[plugin] / "pyproject.toml").read_text(encoding="utf-8"))
    extras = sorted(config.get("project", {}).get("optional-dependencies", {}))
    return f"{PLUGINS[plugin]}[{','.join(extras)}]" if extras else str(PLUGINS[plugin])


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (rules and formatting) over everything; mypy over the host and over the plugins' registrations."""
    session.install("ruff>=0.5", "mypy>=1.10", "-r", "requirements.txt")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")  # the host, as [tool.mypy] in pyproject.toml configures it
    # each register(...) call against its kind's Register protocol; the plugins' other modules are theirs to check
    session.run("mypy", "--follow-imports=silent", *[str(path) for path in sorted(ROOT.glob("plugins/*/fomo_*/plugin.py"))])


@nox.session
def docs(session: nox.Session) -> None:
    """The docs site: the generated reference pages current (every first-party plugin installed), then the strict build."""
    session.install("-r", "requirements-dev.txt")
    session.run("python", "-m", "fomo_host.docs", "--check")
    session.run("mkdocs", "build", "--strict")


@nox.session
@nox.parametrize("plugin", list(PLUGINS), ids=list(PLUGINS))
def plugin(session: nox.Session, plugin: str) -> None:
    """One plugin's tests with only the host, that plugin and what its tests declare installed."""
    needed = [plugin, *test_plugins_of(plugin)]
    runner = ["pytest>=8,<9.2", "pytest-timeout>=2.3", "pytest-xdist>=3.5"]  # the repository's addopts run two xdist workers
    session.install(*runner, "-e", ".", *[arg for name in needed for arg in ("-e", installable(name))])
    session.run("pytest", str(PLUGINS[plugin] / "tests"), *session.posargs, env={"FOMO_LOAD_PLUGINS": ",".join(needed)})


def conformance_files(plugin: str) -> list[str]:
    """The plugin's test modules that subclass a conformance suite."""
    modules = sorted((PLUGINS[plugin] / "tests").glob("test_*.py"))
    return [str(path) for path in modules if "Conformance)" in path.read_text(encoding="utf-8")]


@nox.session(reuse_venv=False)
@nox.parametrize("plugin", list(PLUGINS), ids=list(PLUGINS))
def conformance(session: nox.Session, plugin: str) -> None:
    """A third party's CI: a fresh venv with only ``fomo-host[testing]`` and the plugin (no other first-party plugin, no
    repository config), and the plugin's conformance suites, their multi-process tests included."""
    session.install(f"{ROOT}[testing]", installable(plugin))
    cache = session.create_tmp()
    session.run(
        "pytest", "-c", str(PLUGINS[plugin] / "pyproject.toml"), "--rootdir", str(PLUGINS[plugin]), "-p", "no:cacheprovider",
        "-m", "fomo_conformance", *conformance_files(plugin), *session.posargs,
        env={"FOMO_CACHE_DIR": str(Path(cache) / "fomo-cache"), "OMP_NUM_THREADS": "1"},
    )  # fmt: skip


SCAFFOLD_KINDS = [
    "model", "dataset", "ordering", "method", "optimizer", "scheduler", "merger", "merge_operator", "metric", "launcher", "logger",
]  # fmt: skip
"""The kinds ``fomo-host new-plugin`` writes a package for (every registered kind; a test holds the list to it)."""


@nox.session(reuse_venv=False)
@nox.parametrize("kind", SCAFFOLD_KINDS, ids=SCAFFOLD_KINDS)
def scaffold(session: nox.Session, kind: str) -> None:
    """A plugin author's first minutes: ``fomo-host new-plugin`` writes a package of the kind; a fresh venv with only
    ``fomo-host[testing]`` and that package (pip-installed, its own dependencies resolved) runs its whole conformance
    suite, the slow tests included, and the lint its CI runs."""
    session.install(f"{ROOT}[testing]", "ruff>=0.5")
    name = f"my-{kind.replace('_', '-')}"
    # outside .nox, as an author's package would be: ruff skips folders named .nox
    with tempfile.TemporaryDirectory(prefix="fomo-scaffold-") as folder:
        work = Path(folder)
        session.run("fomo-host", "new-plugin", name, "--kind", kind, "--dir", str(work))
        session.install(f"{work / name}[testing]")
        session.chdir(work / name)
        session.run("ruff", "check", ".")
        session.run("ruff", "format", "--check", ".")
        session.run(
            "pytest", "-p", "no:cacheprovider", *session.posargs,
            env={"FOMO_CACHE_DIR": str(work / "fomo-cache"), "FOMO_STRICT_PLUGINS": "1", "OMP_NUM_THREADS": "1"},
        )  # fmt: skip
        session.chdir(ROOT)


@nox.session
def multiprocess(session: nox.Session) -> None:
    """Every test that starts several processes: the two-process run of each method conformance class, the sharded runs."""
    session.install("-r", "requirements-dev.txt")
    session.run("pytest", "-m", "multiprocess", *session.posargs)


@nox.session
def all(session: nox.Session) -> None:  # noqa: A001 - the session's name on the command line
    """The host and every plugin together: every test, end-to-end runs included."""
    session.install("-r", "requirements-dev.txt")
    session.run("pytest", *session.posargs)
