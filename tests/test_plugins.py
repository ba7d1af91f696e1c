"""Plugin loading: entry points one at a time, broken plugins isolated, allow/deny lists, duplicates."""

from __future__ import annotations

import importlib
import sys
import types

import pytest
from pydantic import BaseModel, ConfigDict

from fomo_host import hookimpl
from fomo_host.errors import PluginError, SpecError
from fomo_host.plugins import load_plugins


class ToyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size: int = 1


def make_plugin(name: str, method_name: str = "toy") -> types.ModuleType:
    module = types.ModuleType(name)

    @hookimpl
    def register_methods(register):
        register(name=method_name, factory=lambda params: None, params=ToyParams, description="A toy method.")

    module.register_methods = register_methods
    return module


class FakeDistribution:
    def __init__(self, name: str, version: str = "9.9") -> None:
        self.name, self.version = name, version


class FakeEntryPoint:
    """What the loader reads of an entry point: name, value, dist and load()."""

    def __init__(self, name: str, module: str, distribution: str) -> None:
        self.name, self.value, self.dist = name, module, FakeDistribution(distribution)

    def load(self) -> types.ModuleType:
        return importlib.import_module(self.value)


@pytest.fixture
def fake_entry_points(monkeypatch):
    """Replace the installed entry points with fakes: (entry name, module name, distribution, module or exception)."""

    def install(specs):
        points = []
        for entry_name, module_name, distribution, module in specs:
            if module is not None:
                monkeypatch.setitem(sys.modules, module_name, module)
            points.append(FakeEntryPoint(entry_name, module_name, distribution))
        monkeypatch.setattr("fomo_host.plugins._entry_points", lambda: points)

    return install


def test_runtime_plugin_registers_components_with_its_provider():
    host = load_plugins(extra=[("toy-plugin", make_plugin("toy_plugin_a"))], use_entry_points=False)
    component = host.registry.get("method", "toy")
    assert component.provider.distribution == "toy-plugin"
    assert component.params is ToyParams
    assert component.description == "A toy method."
    assert host.errors == []


def test_broken_plugin_is_one_error_line_and_others_still_load(fake_entry_points):
    fake_entry_points(
        [
            ("good", "good_plugin_mod", "good-dist", make_plugin("good_plugin_mod", "good")),
            ("bad", "fomo_host_tests_no_such_module", "bad-dist", None),
        ]
    )
    host = load_plugins()
    assert host.registry.names("method") == ["good"]
    assert len(host.errors) == 1
    message = host.errors[0]
    assert "bad-dist 9.9" in message and "fomo_host_tests_no_such_module" in message
    assert "\n" not in message


def test_strict_mode_reports_every_broken_plugin_in_one_line(fake_entry_points, monkeypatch):
    fake_entry_points(
        [
            ("bad", "fomo_host_tests_no_such_module", "bad-dist", None),
            ("worse", "fomo_host_tests_no_such_module_either", "worse-dist", None),
            ("good", "good_strict_mod", "good-dist", make_plugin("good_strict_mod", "good")),
        ]
    )
    monkeypatch.setenv("FOMO_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError) as caught:
        load_plugins()
    message = str(caught.value)
    assert message.startswith("2 plugin problems (FOMO_STRICT_PLUGINS is set): ") and "\n" not in message
    assert "bad-dist" in message and "worse-dist" in message


@pytest.mark.parametrize("variable", ["FOMO_LOAD_PLUGINS", "FOMO_DISABLE_PLUGINS"])
def test_a_misspelt_distribution_in_an_allow_or_deny_list_is_an_error(fake_entry_points, monkeypatch, variable):
    fake_entry_points([("a", "mod_spell", "fomo-tuning", make_plugin("mod_spell", "alpha"))])
    monkeypatch.setenv(variable, "fomo-tunning")
    with pytest.raises(
        PluginError,
        match=rf"{variable}: no installed plugin distribution 'fomo-tunning'; did you mean 'fomo-tuning'\? installed: fomo-tuning",
    ):
        load_plugins()


def make_two_method_plugin(name: str, shared: str, own: str) -> types.ModuleType:
    module = types.ModuleType(name)

    @hookimpl
    def register_methods(register):
        register(name=shared, factory=lambda params: None, params=ToyParams, description="A toy method.")
        register(name=own, factory=lambda params: None, params=ToyParams, description="A toy method.")

    module.register_methods = register_methods
    return module


@pytest.mark.parametrize("order", ["first-dist loads first", "second-dist loads first"])
def test_a_name_two_plugins_claim_is_usable_by_neither_whatever_the_load_order(fake_entry_points, order):
    plugins = [
        ("first", "first_mod", "first-dist", make_two_method_plugin("first_mod", "same", "only-first")),
        ("second", "second_mod", "second-dist", make_two_method_plugin("second_mod", "same", "only-second")),
    ]
    fake_entry_points(plugins if order.startswith("first") else plugins[::-1])
    host = load_plugins()
    # each plugin's other components stay; the contested name is refused naming both
    assert host.registry.names("method") == ["only-first", "only-second"]
    assert host.errors == [] and len(host.problems) == 1
    assert "first-dist 9.9" in host.problems[0] and "second-dist 9.9" in host.problems[0]
    with pytest.raises(SpecError, match=r"method 'same' at spec: method.name is registered by .*first-dist.* and by .*second-dist"):
        host.registry.get("method", "same", where="spec: method.name")


def test_disabling_one_of_two_claimants_gives_the_name_to_the_other(fake_entry_points, monkeypatch):
    fake_entry_points(
        [
            ("first", "first_mod", "first-dist", make_two_method_plugin("first_mod", "same", "only-first")),
            ("second", "second_mod", "second-dist", make_two_method_plugin("second_mod", "same", "only-second")),
        ]
    )
    monkeypatch.setenv("FOMO_DISABLE_PLUGINS", "first-dist")
    host = load_plugins()
    assert host.registry.get("method", "same").provider.distribution == "second-dist" and host.problems == []


def test_a_claimant_that_fails_later_releases_the_name(fake_entry_points):
    broken = types.ModuleType("broken_mod")

    @hookimpl
    def register_methods(register):
        register(name="same", factory=lambda params: None, params=ToyParams, description="A toy method.")
        raise RuntimeError("half-way")

    broken.register_methods = register_methods
    fake_entry_points([("a", "broken_mod", "a-dist", broken), ("b", "good_mod", "b-dist", make_plugin("good_mod", "same"))])
    host = load_plugins()
    assert host.registry.get("method", "same").provider.distribution == "b-dist" and len(host.errors) == 1


def test_allow_and_deny_lists_select_distributions(fake_entry_points, monkeypatch):
    fake_entry_points(
        [
            ("a", "mod_a", "dist-a", make_plugin("mod_a", "alpha")),
            ("b", "mod_b", "dist_b", make_plugin("mod_b", "beta")),
        ]
    )
    monkeypatch.setenv("FOMO_LOAD_PLUGINS", "dist-a")
    assert load_plugins().registry.names("method") == ["alpha"]
    monkeypatch.delenv("FOMO_LOAD_PLUGINS")
    monkeypatch.setenv("FOMO_DISABLE_PLUGINS", "dist-b")  # names match across '-' and '_'
    assert load_plugins().registry.names("method") == ["alpha"]
    monkeypatch.delenv("FOMO_DISABLE_PLUGINS")
    assert load_plugins().registry.names("method") == ["alpha", "beta"]


def test_unknown_hook_name_is_rejected():
    module = types.ModuleType("typo_plugin")

    @hookimpl
    def register_method(register):  # missing "s": not a hook of ours
        register(name="x", factory=lambda p: None)

    module.register_method = register_method
    host = load_plugins(extra=[("typo", module)], use_entry_points=False)
    assert len(host.errors) == 1 and "unknown hook 'register_method' (did you mean 'register_methods'?)" in host.errors[0]
    assert host.registry.names("method") == []


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"name": "Bad Name", "factory": lambda p: None}, "invalid"),
        ({"name": "ok", "factory": 3}, "not callable"),
        ({"name": "ok", "factory": lambda p: None, "params": dict}, "pydantic"),
    ],
)
def test_invalid_registration_is_reported_and_the_plugin_dropped(kwargs, expected):
    module = types.ModuleType("invalid_plugin")

    @hookimpl
    def register_metrics(register):
        register(name="fine", factory=lambda p: None)
        register(**kwargs)

    module.register_metrics = register_metrics
    host = load_plugins(extra=[("invalid", module)], use_entry_points=False)
    assert len(host.errors) == 1 and expected in host.errors[0]
    assert host.registry.names("metric") == []  # nothing half-registered survives


def test_hook_implementations_may_take_fewer_arguments():
    module = types.ModuleType("observer_plugin")
    seen = []

    @hookimpl
    def on_task_start(task):
        seen.append(task)

    module.on_task_start = on_task_start
    host = load_plugins(extra=[("observer", module)], use_entry_points=False)
    host.hook.on_task_start(run_dir=None, task=3, num_tasks=5, steps=10, concepts=[], loggers=[])
    assert seen == [3]


def test_unknown_component_lists_the_available_ones():
    host = load_plugins(extra=[("toy", make_plugin("toy_mod_c", "toy"))], use_entry_points=False)
    with pytest.raises(SpecError, match=r"unknown method 'lora2'.*available: toy"):
        host.registry.get("method", "lora2")


def test_every_hook_is_documented_in_the_readme_or_the_docs():
    from pathlib import Path

    from fomo_host import hookspecs

    root = Path(__file__).resolve().parents[1]
    text = "\n".join(path.read_text(encoding="utf-8") for path in [root / "README.md", *sorted((root / "docs").rglob("*.md"))])
    hooks = [name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "fomo_host_spec")]
    assert len(hooks) == 17
    missing = [name for name in hooks if f"`{name}" not in text]
    assert missing == [], f"hooks missing from README.md and docs/: {missing}"


# ----------------------------------------------------------------------------- lazy factories

HEAVY_MODULES = (
    "torch",
    "numpy",
    "PIL",
    "open_clip",
    "peft",
    "bitsandbytes",
    "torchvision",
    "galore_torch",
    "schedulefree",
    "webdataset",
    "tensorboard",
    "transformers",
    "accelerate",
    "safetensors",
    "matplotlib",
)
"""What listing plugins and checking a spec's schema must not import: each costs from a tenth of a second to seconds."""


def test_listing_plugins_and_checking_a_schema_import_no_heavy_library():
    """In a fresh interpreter, as the CLI starts: registration imports names and Params only."""
    import json
    import subprocess
    from pathlib import Path

    quickstart = Path(__file__).resolve().parents[1] / "specs" / "quickstart.toml"
    script = f"""
import contextlib, io, json, sys
from fomo_host.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    codes = [main(["plugins"]), main(["plugins", "--json"]), main(["validate", "--schema-only", {str(quickstart)!r}])]
print(json.dumps({{"codes": codes, "heavy": sorted({{name.split(".")[0] for name in sys.modules}} & set({list(HEAVY_MODULES)!r}))}}))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"codes": [0, 0, 0], "heavy": []}, result.stderr
    assert result.stderr == ""  # nothing imported that could warn (bitsandbytes does on import)


def test_every_installed_component_factory_resolves_and_is_described_as_its_docstring_says():
    """Lazy references of the installed plugins point at callables that import; the registered one-line
    description (shown without importing the factory) agrees with the factory's own docstring, so they cannot drift."""
    import inspect

    host = load_plugins()
    assert host.errors == []
    for component in host.registry:
        assert callable(component.factory), f"{component.kind} {component.name}"
        assert component.description, f"{component.kind} {component.name} has no description"
        docstring = inspect.getdoc(component.factory)
        if docstring:
            first_paragraph = docstring.strip().split("\n\n")[0].replace("\n", " ")
            assert component.description == first_paragraph, f"{component.kind} {component.name}"


def plugin_registering(**kwargs) -> types.ModuleType:
    module = types.ModuleType("lazy_plugin")

    @hookimpl
    def register_methods(register):
        register(**kwargs)

    module.register_methods = register_methods
    return module


def test_a_lazy_factory_is_imported_only_when_first_used(monkeypatch):
    target = types.ModuleType("fomo_host_tests_lazy_target")
    target.Method = lambda params: ("built", params)
    imported = []
    real_import = importlib.import_module
    monkeypatch.setattr(importlib, "import_module", lambda name: imported.append(name) or real_import(name))
    monkeypatch.setitem(sys.modules, "fomo_host_tests_lazy_target", target)
    plugin = plugin_registering(name="lazy", factory="fomo_host_tests_lazy_target:Method", params=ToyParams, description="A lazy one.")
    host = load_plugins(extra=[("lazy-plugin", plugin)], use_entry_points=False)
    component = host.registry.get("method", "lazy")
    assert imported == [] and component.description == "A lazy one."
    assert component.factory(ToyParams()) == ("built", ToyParams())
    assert imported == ["fomo_host_tests_lazy_target"]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"name": "lazy", "factory": "some_module:Thing"}, "needs description="),
        ({"name": "lazy", "factory": "not a reference", "description": "x"}, "neither callable nor a reference"),
        ({"name": "lazy", "factory": "some_module", "description": "x"}, "neither callable nor a reference"),
    ],
)
def test_an_invalid_lazy_factory_is_a_registration_error(kwargs, expected):
    host = load_plugins(extra=[("lazy-plugin", plugin_registering(**kwargs))], use_entry_points=False)
    assert len(host.errors) == 1 and expected in host.errors[0]


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("fomo_host_tests_missing_module:Thing", "cannot import fomo_host_tests_missing_module:Thing: ModuleNotFoundError"),
        ("fomo_host.errors:NoSuchThing", "fomo_host.errors:NoSuchThing does not exist"),
        ("fomo_host.hookspecs:PROJECT_NAME", "is not callable"),
    ],
)
def test_a_lazy_factory_that_does_not_resolve_is_one_line_naming_the_component(reference, expected):
    plugin = plugin_registering(name="lazy", factory=reference, description="A lazy one.")
    host = load_plugins(extra=[("lazy-plugin", plugin)], use_entry_points=False)
    with pytest.raises(PluginError, match="method 'lazy' of lazy-plugin") as caught:
        host.registry.get("method", "lazy").factory  # noqa: B018 - resolving is what is tested
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_the_plugins_command_exits_non_zero_on_a_broken_plugin_or_a_contested_name(fake_entry_points, capsys):
    import json

    from fomo_host.cli import main

    fake_entry_points([("good", "good_cmd_mod", "good-dist", make_plugin("good_cmd_mod", "good"))])
    assert main(["plugins", "--json"]) == 0
    capsys.readouterr()
    fake_entry_points(
        [
            ("bad", "fomo_host_tests_no_such_module", "bad-dist", None),
            ("first", "first_cmd_mod", "first-dist", make_two_method_plugin("first_cmd_mod", "same", "only-first")),
            ("second", "second_cmd_mod", "second-dist", make_two_method_plugin("second_cmd_mod", "same", "only-second")),
        ]
    )
    assert main(["plugins", "--json"]) == 1
    rows = {row["distribution"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["bad-dist"]["errors"] and rows["first-dist"]["components"] == {"method": ["only-first"]}
    assert rows["first-dist"]["errors"] == ["method 'same' is also registered by second-dist 9.9: usable by neither"]


# ----------------------------------------------------------------------------- describing components


def test_describe_params_gives_types_defaults_ranges_and_the_spec_names():
    from typing import Literal

    from pydantic import Field

    from fomo_host.choices import MergeOperatorChoice
    from fomo_host.describe import describe_params

    class Example(BaseModel):
        model_config = ConfigDict(extra="forbid", populate_by_name=True)
        rank: int = Field(default=8, ge=1, description="the rank")
        scaling: float = Field(default=1.0, alias="lambda", gt=0, le=2)
        targets: list[Literal["a", "b"]] = Field(default=["a"], min_length=1)
        path: str | None = None
        name: str = Field(description="required")
        operator: MergeOperatorChoice = Field(default="interpolation", validate_default=True)

    rows = {row.key: row for row in describe_params(Example)}
    assert list(rows) == ["rank", "lambda", "targets", "path", "name", "operator"]
    assert (rows["rank"].type, rows["rank"].default, rows["rank"].range, rows["rank"].description) == ("int", "8", ">= 1", "the rank")
    assert (rows["lambda"].type, rows["lambda"].range) == ("float", "> 0, <= 2")
    assert (rows["targets"].type, rows["targets"].default, rows["targets"].range) == ("list['a' | 'b']", "['a']", "length >= 1")
    assert (rows["path"].type, rows["path"].default) == ("str | none", "none")
    assert rows["name"].default == "required"
    assert (rows["operator"].type, rows["operator"].default) == ("merge operator: name or { name, params }", "'interpolation'")


def test_plugins_name_shows_a_components_description_and_params_without_importing_it(capsys, monkeypatch):
    import json

    from fomo_host.cli import main

    plugin = plugin_registering(name="toy-lazy", factory="fomo_host_tests_nowhere:Thing", params=ToyParams, description="A toy.")
    host = load_plugins(extra=[("toy-plugin", plugin)], use_entry_points=False)
    monkeypatch.setattr("fomo_host.commands.common.load_plugins", lambda: host)
    assert main(["plugins", "toy-lazy", "--json"]) == 0  # the factory's module does not exist: it is never imported
    (record,) = json.loads(capsys.readouterr().out)
    assert record["kind"] == "method" and record["description"] == "A toy." and record["distribution"] == "toy-plugin"
    assert record["params"] == [{"key": "size", "type": "int", "default": "1", "range": "", "description": ""}]
    assert main(["plugins", "toy-lazy"]) == 0
    shown = capsys.readouterr().out
    assert "method toy-lazy" in shown and "A toy." in shown and "params: method.params" in shown
    assert main(["plugins", "toy-lazzy"]) == 2
    assert capsys.readouterr().err.strip() == "error: no component 'toy-lazzy' is installed; did you mean toy-lazy?"


def test_python_dash_m_fomo_host_runs_the_cli():
    import subprocess

    result = subprocess.run([sys.executable, "-m", "fomo_host", "--help"], capture_output=True, text=True, timeout=60, check=True)
    assert "usage: fomo-host" in result.stdout and "plugins" in result.stdout


def test_every_first_party_plugin_readme_lists_its_components_and_params():
    """Each package's README names its components and every key of their Params (as `key`), so it cannot fall behind."""
    from pathlib import Path

    from fomo_host.describe import describe_params

    plugins_dir = Path(__file__).resolve().parents[1] / "plugins"
    missing = []
    for component in load_plugins().registry:
        readme = plugins_dir / component.provider.distribution / "README.md"
        if not readme.parent.is_dir():
            continue  # not a first-party plugin
        text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
        for word in [component.name, *(row.key for row in describe_params(component.params))]:
            if f"`{word}`" not in text:
                missing.append(f"{readme.parent.name}/README.md: {component.kind} {component.name}: `{word}`")
    assert missing == []
