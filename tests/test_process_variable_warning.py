"""An outside plugin that reads RANK, LOCAL_RANK or WORLD_SIZE from the environment is warned once, by name, when it loads."""

from __future__ import annotations

import sys
import warnings

import pytest

from fomo_host.plugins import ProcessVariableWarning, load_plugins, process_variable_reads

SOURCE = """
import os
from os import environ, getenv

rank = int(os.environ["RANK"])
local = os.environ.get("LOCAL_RANK", "0")
world = os.getenv("WORLD_SIZE")
again = getenv("RANK")
launched = "WORLD_SIZE" in environ
os.environ["RANK"] = "0"  # setting it (a plugin that starts processes) is no read
other = os.environ.get("MASTER_ADDR")
text = "os.environ['RANK']"
"""


def test_every_form_of_reading_a_process_variable_is_found():
    assert process_variable_reads(SOURCE) == [(5, "RANK"), (6, "LOCAL_RANK"), (7, "WORLD_SIZE"), (8, "RANK"), (9, "WORLD_SIZE")]
    assert process_variable_reads("def broken(:\n") == []


PLUGIN = """
from fomo_host.api import NoParams, SchedulerRegister, hookimpl


@hookimpl
def register_schedulers(register: SchedulerRegister) -> None:
    register(name="rank-aware", factory="rank_reading_plugin.schedule:build", params=NoParams, description="reads RANK")
"""

LAZY_MODULE = """
import os


def build(params):
    main = os.environ.get("RANK", "0") == "0"
    return lambda step, steps_per_task, task, num_tasks: 1.0 if main else 0.5
"""


@pytest.fixture
def outside_plugin(tmp_path, monkeypatch):
    """A distribution ``rank-reading-plugin`` found through its entry point, whose lazily loaded module reads RANK."""
    package = tmp_path / "rank_reading_plugin"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "plugin.py").write_text(PLUGIN, encoding="utf-8")
    (package / "schedule.py").write_text(LAZY_MODULE, encoding="utf-8")
    info = tmp_path / "rank_reading_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rank-reading-plugin\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[fomo_host]\nrank_reading = rank_reading_plugin.plugin\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("FOMO_LOAD_PLUGINS", "rank-reading-plugin")
    yield
    for name in [name for name in sys.modules if name.startswith("rank_reading_plugin")]:
        del sys.modules[name]


def test_an_outside_plugin_reading_rank_is_warned_once_naming_it_and_still_loads(outside_plugin):
    with pytest.warns(ProcessVariableWarning) as caught:
        host = load_plugins()
    (warning,) = [entry for entry in caught if entry.category is ProcessVariableWarning]
    assert str(warning.message) == (
        "plugin 'rank_reading' from rank-reading-plugin 1.0 reads RANK from the environment (schedule.py:6); use the process "
        "information the host hands over instead: a hook's or a component's `process` (fomo_host.api.ProcessInfo: rank, "
        "world_size, is_main) and the build context's device"
    )
    assert host.errors == [] and host.registry.get("scheduler", "rank-aware").provider.distribution == "rank-reading-plugin"
    with warnings.catch_warnings():
        warnings.simplefilter("error", ProcessVariableWarning)
        load_plugins()  # once per process


def test_the_first_party_plugins_read_no_process_variable():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ProcessVariableWarning)
        host = load_plugins()
    assert host.errors == []
