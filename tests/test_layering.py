"""The host's layering: no import cycle among its modules or its packages, and the layer rules of docs/development.md.

The import graph is read from the source with ``ast`` (nothing is imported), counting every import: at module level,
inside functions, and under ``if TYPE_CHECKING:``. An import hidden inside a function is still a dependency, so a
circle closed through one fails here as any other would.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

HOST = Path(__file__).resolve().parents[1] / "fomo_host"


@dataclass(frozen=True)
class Import:
    target: str
    """The host module imported (the deepest one the statement names)."""
    kind: str
    """``module`` (runs on import), ``function`` (inside a function body) or ``typing`` (under ``if TYPE_CHECKING:``)."""
    line: int


def module_names(root: Path) -> dict[str, Path]:
    """Every module of the package at ``root``, by dotted name (a package by its own name, for its ``__init__``)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imports_of(name: str, path: Path, modules: Mapping[str, Path]) -> list[Import]:
    """The imports of one module that land in the package: ``from . import x`` names module ``x`` where it is one."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    top = next(iter(modules)).split(".")[0]
    found: list[Import] = []

    def deepest(dotted: str) -> str | None:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    def visit(node: ast.AST, kind: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = kind
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) and kind == "module":
                inner = "function"
            elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                inner = "typing"
            targets: list[str] = []
            if isinstance(child, ast.Import):
                targets = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    source = ".".join([*base, *([child.module] if child.module else [])])
                else:
                    source = child.module or ""
                targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source for alias in child.names]
            for target in targets:
                resolved = deepest(target) if target.split(".")[0] == top else None
                if resolved is not None and resolved != name:
                    found.append(Import(resolved, inner, child.lineno))
            visit(child, inner)

    visit(ast.parse(path.read_text(encoding="utf-8")), "module")
    return found


def import_graph(root: Path) -> dict[str, list[Import]]:
    modules = module_names(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Circles as ``[a, b, ..., a]``: in each strongly connected group of nodes (Tarjan), the shortest circle through
    each member not yet on a circle found, so every module caught in a knot is named; sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph.get(node, ()):
                groups.append(group)

    def shortest_circle(start: str, group: set[str]) -> list[str]:
        paths = {start: [start]}
        queue = [start]
        while queue:
            node = queue.pop(0)
            for nxt in sorted(graph.get(node, ())):
                if nxt == start:
                    return [*paths[node], start]
                if nxt in group and nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    queue.append(nxt)
        return [start, start]

    for node in sorted(graph):
        if node not in index:
            connect(node)
    found = []
    for group in groups:
        covered: set[str] = set()
        for member in sorted(group):
            if member not in covered:
                circle = shortest_circle(member, group)
                covered.update(circle)
                found.append(circle)
    return sorted(found)


def chain(circle: list[str], graph: Mapping[str, list[Import]] | None = None) -> str:
    """``a -> b -> a``, each step with where it is imported (``a:12 (function)``) when the graph is given."""
    if graph is None:
        return " -> ".join(circle)
    steps = []
    for here, there in zip(circle, circle[1:], strict=False):
        where = next((item for item in graph[here] if item.target == there), None)
        steps.append(f"{here}" + (f" (line {where.line}, {where.kind})" if where else ""))
    return " -> ".join([*steps, circle[-1]])


def package_of(name: str, top: str = "fomo_host") -> str:
    """The first level under the package: a subpackage (``fomo_host.engine``) or a top-level module (``fomo_host.spec``)."""
    return ".".join(name.split(".")[:2]) if name != top else top


def package_graph(graph: Mapping[str, list[Import]], ignored: set[tuple[str, str]] = frozenset()) -> dict[str, set[str]]:
    collapsed: dict[str, set[str]] = {}
    for name, found in graph.items():
        for item in found:
            if (name, item.target) in ignored:
                continue
            here, there = package_of(name), package_of(item.target)
            if here != there:
                collapsed.setdefault(here, set()).add(there)
    return collapsed


def importers(graph: Mapping[str, list[Import]], target: str) -> dict[str, list[str]]:
    """Who imports ``target`` or anything under it: importer -> the modules it imports there, with the line."""
    found: dict[str, list[str]] = {}
    for name, items in graph.items():
        for item in items:
            if item.target == target or item.target.startswith(target + "."):
                found.setdefault(name, []).append(f"{item.target} (line {item.line})")
    return found


def within(name: str, *packages: str) -> bool:
    return any(name == package or name.startswith(package + ".") for package in packages)


@pytest.fixture(scope="module")
def graph() -> dict[str, list[Import]]:
    return import_graph(HOST)


# ----------------------------------------------------------------------------- the checker itself


def test_the_checker_sees_a_circle_closed_inside_a_function_or_for_type_checking_alone(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from .b import thing\n")
    (package / "b.py").write_text("def f():\n    from . import c\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import x\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "d.py").write_text("from ..a import thing\n")
    (package / "e.py").write_text("from .sub import d\n")
    found = import_graph(package)
    assert [(item.target, item.kind) for item in found["pkg.b"]] == [("pkg.c", "function")]
    assert [(item.target, item.kind) for item in found["pkg.c"]] == [("pkg.a", "typing")]
    assert [item.target for item in found["pkg.e"]] == ["pkg.sub.d"]
    graph = {name: [item.target for item in items] for name, items in found.items()}
    assert [chain(circle) for circle in cycles(graph)] == ["pkg.a -> pkg.b -> pkg.c -> pkg.a"]
    assert chain(cycles(graph)[0], found) == "pkg.a (line 1, module) -> pkg.b (line 2, function) -> pkg.c (line 3, typing) -> pkg.a"


# ----------------------------------------------------------------------------- no circles


def test_no_import_cycle_among_the_host_modules(graph):
    """Every import counts, including those inside functions and those for type checking only."""
    found = cycles({name: [item.target for item in items] for name, items in graph.items()})
    assert found == [], "import cycles among fomo_host modules:\n" + "\n".join(chain(circle, graph) for circle in found)


KNOWN_PACKAGE_CYCLE = {("fomo_host.run_records", "fomo_host.engine.checkpoint")}
"""The one import that closes a circle between packages: a run's records are rebuilt from its checkpoint, whose format
lives in the engine, while the engine, finishing an update, makes a release (releases -> export -> run_records). The
root fix moves the checkpoint format out of the engine; it waits for the engine's own split to land."""


def test_no_import_cycle_among_the_host_packages(graph):
    """Collapsed to the first level (``fomo_host.engine``, ``fomo_host.study``, ``fomo_host.spec``, ...), the graph has no
    circle either: a subpackage is one layer, not a set of modules that reach into each other's layers."""
    collapsed = package_graph(graph, ignored=KNOWN_PACKAGE_CYCLE)
    found = cycles({name: sorted(targets) for name, targets in collapsed.items()})
    assert found == [], "import cycles among fomo_host packages:\n" + "\n".join(chain(circle) for circle in found)


def test_the_known_package_cycle_is_still_there_and_still_the_only_exception(graph):
    """When the checkpoint format moves out of the engine, this fails: then drop KNOWN_PACKAGE_CYCLE."""
    present = {(name, item.target) for name, items in graph.items() for item in items}
    assert present >= KNOWN_PACKAGE_CYCLE
    assert cycles({name: sorted(targets) for name, targets in package_graph(graph).items()}) != []


# ----------------------------------------------------------------------------- layer rules


def test_only_the_command_line_imports_the_commands(graph):
    """Commands are the top layer: the Python API and everything below call what the commands call, never a command."""
    outside = {
        name: targets
        for name, targets in importers(graph, "fomo_host.commands").items()
        if not within(name, "fomo_host.commands", "fomo_host.cli")
    }
    assert outside == {}


def test_only_the_package_front_door_imports_the_python_api(graph):
    assert set(importers(graph, "fomo_host.python_api")) == {"fomo_host"}


def test_no_host_module_imports_the_plugins_surface(graph):
    """``fomo_host.api`` re-exports for plugins; the host imports the defining modules."""
    assert importers(graph, "fomo_host.api") == {}


@pytest.mark.parametrize(
    ("layer", "above"),
    [
        (
            "fomo_host.engine",
            (
                "fomo_host.study",
                "fomo_host.reporting",
                "fomo_host.commands",
                "fomo_host.cli",
                "fomo_host.running",
                "fomo_host.python_api",
                "fomo_host.testing",
            ),
        ),
        ("fomo_host.study", ("fomo_host.reporting", "fomo_host.commands", "fomo_host.cli", "fomo_host.running", "fomo_host.python_api")),
        ("fomo_host.reporting", ("fomo_host.commands", "fomo_host.cli", "fomo_host.running", "fomo_host.python_api")),
    ],
)
def test_a_layer_imports_nothing_above_it(graph, layer, above):
    upward = {
        name: [item.target for item in items if within(item.target, *above)]
        for name, items in graph.items()
        if within(name, layer) and any(within(item.target, *above) for item in items)
    }
    assert upward == {}, f"{layer} imports a layer above it"


CONTRACTS = (
    "fomo_host.errors",
    "fomo_host.concepts",
    "fomo_host.process",
    "fomo_host.params",
    "fomo_host.spec",
    "fomo_host.data",
    "fomo_host.components",
    "fomo_host.run_request",
    "fomo_host.registration",
    "fomo_host.hookspecs",
)
"""What a plugin's components and hooks are written against: the kinds' contracts, the spec's models, Params bases."""

PLUGIN_MACHINERY_AND_ABOVE = (
    "fomo_host.plugins",
    "fomo_host.registry",
    "fomo_host.resolve",
    "fomo_host.choices",
    "fomo_host.spec_loading",
    "fomo_host.run_loggers",
    "fomo_host.engine",
    "fomo_host.study",
    "fomo_host.reporting",
    "fomo_host.commands",
    "fomo_host.running",
    "fomo_host.python_api",
    "fomo_host.api",
    "fomo_host.cli",
)


def test_the_contracts_know_no_plugin_machinery(graph):
    """The contracts and the spec's models sit under the registry and the plugin manager, which check components
    against them; they import neither those nor anything that runs."""
    upward = {
        name: [f"{item.target} (line {item.line}, {item.kind})" for item in items if within(item.target, *PLUGIN_MACHINERY_AND_ABOVE)]
        for name, items in graph.items()
        if name in CONTRACTS and any(within(item.target, *PLUGIN_MACHINERY_AND_ABOVE) for item in items)
    }
    assert upward == {}


def test_every_kind_has_its_contract_in_the_components_module():
    """Launchers included: the base classes a plugin subclasses are all defined in fomo_host.components."""
    import fomo_host.api as api
    from fomo_host import components

    for name in ("Launcher", "LaunchEvents", "UpdateMethod", "Merger", "MergeOperator", "Metric", "Logger", "OptimizerBuilder"):
        assert getattr(api, name) is getattr(components, name)
        assert getattr(components, name).__module__ == "fomo_host.components", name
