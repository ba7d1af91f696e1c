"""The suite's pytest-xdist groups: tests that share a computed fixture, or a cache in the test process, share a worker."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from fomo_host import pytest_plugin
from fomo_host.testing import LauncherConformance, MethodConformance

ROOT = Path(__file__).resolve().parents[1]


class FakeItem:
    """What the grouping hooks read of a collected test: its node id, class, markers and fixtures' scopes."""

    def __init__(self, nodeid: str, cls: type | None = None, marks: tuple[str, ...] = (), scopes: tuple[str, ...] = ()) -> None:
        self.nodeid = nodeid
        self.cls = cls
        self.marks: dict[str, Any] = {name: getattr(pytest.mark, name) for name in marks}
        self._fixtureinfo = SimpleNamespace(
            name2fixturedefs={f"fixture{index}": [SimpleNamespace(scope=scope)] for index, scope in enumerate(scopes)}
        )

    def get_closest_marker(self, name: str) -> Any:
        return self.marks.get(name)

    def add_marker(self, mark: Any) -> None:
        self.marks[mark.name] = mark

    def group(self) -> str | None:
        mark = self.marks.get("xdist_group")
        return None if mark is None else mark.args[0]


def with_xdist() -> Any:
    return SimpleNamespace(pluginmanager=SimpleNamespace(hasplugin=lambda name: name == "xdist"))


class TestMyLauncher(LauncherConformance):
    __test__ = False
    launcher_name = "mine"


class TestOtherLauncher(LauncherConformance):
    __test__ = False
    launcher_name = "other"


class TestMyMethod(MethodConformance):
    __test__ = False
    method_name = "mine"


def test_each_conformance_class_is_one_group_and_the_launcher_classes_share_one():
    method = FakeItem("t.py::TestMyMethod::test_run_finishes", TestMyMethod, marks=("fomo_conformance",))
    launchers = [FakeItem(f"t.py::{cls.__name__}::test_x", cls, marks=("fomo_conformance",)) for cls in (TestMyLauncher, TestOtherLauncher)]
    plain = FakeItem("t.py::test_plain")
    pinned = FakeItem("t.py::TestMyMethod::test_y", TestMyMethod, marks=("fomo_conformance",))
    pinned.add_marker(pytest.mark.xdist_group("chosen"))
    pytest_plugin.pytest_collection_modifyitems(with_xdist(), [method, *launchers, plain, pinned])
    assert method.group() == f"{__name__}.TestMyMethod"
    assert {item.group() for item in launchers} == {"fomo-launcher-conformance"}
    assert plain.group() is None and pinned.group() == "chosen"


def test_tests_sharing_a_module_or_class_fixture_are_one_group():
    spec = importlib.util.spec_from_file_location("repository_conftest", ROOT / "conftest.py")
    assert spec is not None and spec.loader is not None
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)

    class TestShared:
        pass

    module = FakeItem("tests/test_a.py::test_one", scopes=("function", "module", "session"))
    in_class = FakeItem("tests/test_a.py::TestShared::test_two", TestShared, scopes=("class",))
    alone = FakeItem("tests/test_a.py::test_three", scopes=("function", "session"))
    conformance = FakeItem("tests/test_a.py::TestMyMethod::test_run_finishes", TestMyMethod, ("fomo_conformance",), ("class",))
    conftest.pytest_collection_modifyitems(with_xdist(), [module, in_class, alone, conformance])
    assert module.group() == "tests/test_a.py"
    assert in_class.group() == "tests/test_a.py::TestShared"
    assert alone.group() is None  # spread over the workers
    assert conformance.group() is None  # left to the host's pytest plugin


@pytest.fixture(scope="module")
def module_wide() -> int:
    return 1


def test_the_running_xdist_puts_a_grouped_test_in_its_group(module_wide, request):
    # pytest-xdist carries a test's group in its node id (test@group); a pytest whose node ids ignore that (9.2 with
    # xdist 3.8) spreads every group over both workers, and the shared fixtures are computed on each, silently
    config = request.config
    if not os.environ.get("PYTEST_XDIST_WORKER") or not config.getvalue("loadgroup"):
        pytest.skip("runs under pytest-xdist with --dist loadgroup (the suite's default)")
    assert request.node.nodeid.endswith("@tests/test_xdist_groups.py"), (
        f"{request.node.nodeid}: the xdist group is lost; this pytest and pytest-xdist do not work together (requirements-dev.txt)"
    )
