"""The host without the first-party plugins: it names no component of theirs, defaults come from what plugins declare,
collisions are explained claimant by claimant, and outside plugins hear about private imports."""

from __future__ import annotations

import ast
import sys
import types
import warnings
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from fomo_host import hookimpl
from fomo_host.cli import main
from fomo_host.components import Logger
from fomo_host.engine.budget.budgets import reference_method
from fomo_host.errors import SpecError
from fomo_host.params import LoggerParams, MergeOperatorParams
from fomo_host.plugins import PluginRecord, PrivateHostImportWarning, load_plugins, private_host_imports, warn_about_private_imports
from fomo_host.registry import BUDGET_REFERENCE
from fomo_host.spec_loading import build_spec

ROOT = Path(__file__).resolve().parents[1]
KINDS_NAMED_BY_A_SPEC = ("model", "dataset", "ordering", "method", "optimizer", "scheduler", "merger", "merge_operator", "metric", "logger")


class NoteParams(LoggerParams):
    folder: str = "notes"


class NoteLogger(Logger):
    def __init__(self, params: NoteParams, context: Any) -> None:
        self.path = context.run_dir / params.folder / "evaluations.txt"
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def evaluation(self, record: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(f"{record['task']}\n")


class OperatorParams(MergeOperatorParams):
    pass


class MergerParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    weight: float = 0.5


def minimal_plugin(prefix: str = "toy", defaults: bool = False, **extra_methods: dict[str, Any]) -> types.ModuleType:
    """One component of every kind a spec names, called ``{prefix}-{kind}``; ``defaults`` declares each the default."""
    module = types.ModuleType(f"{prefix}_plugin")

    def factory(params: Any, context: Any = None) -> Any:
        return lambda *args: 1.0

    def registering(kind: str, **options: Any) -> Any:
        def register_hook(register: Any) -> None:
            default = {"default": True} if defaults and kind in ("ordering", "method", "optimizer", "scheduler", "merger", "metric") else {}
            register(name=f"{prefix}-{kind.replace('_', '-')}", factory=factory, description=f"a toy {kind}", **default, **options)
            for name, arguments in extra_methods.items() if kind == "method" else ():
                register(name=name, factory=factory, description="another toy method", **arguments)

        return hookimpl(register_hook)

    for kind in KINDS_NAMED_BY_A_SPEC:
        options: dict[str, Any] = {}
        if kind == "logger":
            options = {"factory": NoteLogger, "params": NoteParams}
        elif kind == "merge_operator":
            options = {"params": OperatorParams}
        elif kind == "merger":
            options = {"params": MergerParams}
        hook = registering(kind, **options) if "factory" not in options else _with_factory(prefix, kind, options, defaults)
        setattr(module, {"merge_operator": "register_merge_operators"}.get(kind, f"register_{kind}s"), hook)
    return module


def _with_factory(prefix: str, kind: str, options: dict[str, Any], defaults: bool) -> Any:
    def register_hook(register: Any) -> None:
        register(name=f"{prefix}-{kind}", description=f"a toy {kind}", **options)

    return hookimpl(register_hook)


def every_component_spec(prefix: str = "toy") -> dict[str, Any]:
    return {
        "run": {"loggers": [{"name": f"{prefix}-logger", "params": {"folder": "n"}}]},
        "model": {"name": f"{prefix}-model"},
        "data": {"sources": [{"name": f"{prefix}-dataset"}], "ordering": {"name": f"{prefix}-ordering"}},
        "budget": {"steps_per_task": 3},
        "method": {"name": f"{prefix}-method"},
        "optimizer": {"name": f"{prefix}-optimizer", "lr": 1e-3},
        "scheduler": {"name": f"{prefix}-scheduler"},
        "merger": {"name": f"{prefix}-merger", "params": {"weight": 0.25}},
        "evaluation": {"metrics": [{"name": f"{prefix}-metric"}]},
    }


def host_alone(*plugins: tuple[str, types.ModuleType]) -> Any:
    return load_plugins(extra=list(plugins), use_entry_points=False)


def test_the_host_names_no_first_party_component():
    first_party = {"random", "finetune", "adamw", "cosine", "none", "zero-shot-accuracy", "retrieval-recall", "tiny-clip", "synthetic"}
    for path in [
        ROOT / "fomo_host" / "spec.py",
        ROOT / "fomo_host" / "spec_loading.py",
        ROOT / "fomo_host" / "engine" / "budget" / "budgets.py",
    ]:
        strings = {node.value for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))) if isinstance(node, ast.Constant)}
        assert strings & first_party == set(), path.name


def test_the_host_alone_validates_a_spec_that_names_every_component(tmp_path, monkeypatch, capsys):
    host = host_alone(("toys", minimal_plugin()))
    assert host.problems == []
    spec = build_spec(every_component_spec(), registry=host.registry)
    assert (spec.method.name, spec.data.ordering.name, spec.merger.name) == ("toy-method", "toy-ordering", "toy-merger")
    path = tmp_path / "spec.toml"
    path.write_text(spec.to_toml(), encoding="utf-8")
    monkeypatch.setattr("fomo_host.commands.common.load_plugins", lambda: host)
    assert main(["validate", "--schema-only", str(path)]) == 0, capsys.readouterr().err
    assert "toy-logger" not in capsys.readouterr().err


def test_the_host_alone_with_no_declared_default_asks_for_the_component_in_one_line():
    host = host_alone(("toys", minimal_plugin()))
    table = every_component_spec()
    del table["method"]
    with pytest.raises(SpecError) as error:
        build_spec(table, registry=host.registry, source="s.toml")
    assert str(error.value) == (
        "s.toml: method: not given, and no installed plugin declares a default method; "
        "name one (`fomo-host plugins --kind method` lists them)"
    )


def test_plugin_declared_defaults_fill_what_a_spec_leaves_out():
    host = host_alone(("toys", minimal_plugin(defaults=True)))
    table = {
        key: value
        for key, value in every_component_spec().items()
        if key not in ("method", "optimizer", "scheduler", "merger", "evaluation")
    }
    del table["data"]["ordering"]
    spec = build_spec(table, registry=host.registry)
    assert (spec.method.name, spec.scheduler.name, spec.merger.name, spec.data.ordering.name) == (
        "toy-method",
        "toy-scheduler",
        "toy-merger",
        "toy-ordering",
    )
    assert spec.optimizer.name == "toy-optimizer" and spec.optimizer.lr == 1e-5
    assert [metric.name for metric in spec.evaluation.metrics] == ["toy-metric"]


def test_two_plugins_declaring_one_default_is_a_one_line_error_offering_each():
    host = host_alone(("toys", minimal_plugin(defaults=True)), ("others", minimal_plugin("other", defaults=True)))
    table = every_component_spec()
    del table["method"]
    with pytest.raises(SpecError) as error:
        build_spec(table, registry=host.registry)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(
        "the default method is declared by others local (other-method) and by toys local (toy-method); disable all but one: "
    )
    assert "FOMO_DISABLE_PLUGINS=others (also removes model other-model, dataset other-dataset, ordering other-ordering" in message
    assert "FOMO_DISABLE_PLUGINS=toys (also removes model toy-model" in message
    assert any(line.startswith("the default method is declared by") for line in host.problems)


def test_a_plugin_declares_one_default_per_kind_and_methods_alone_the_budget_reference():
    host = host_alone(("toys", minimal_plugin(defaults=True, second={"default": True})))
    assert host.errors == [
        "plugin 'toys' from toys local: register_methods failed: method 'second': the plugin already declares 'toy-method' "
        "the default method; a plugin declares one"
    ]
    assert reference_method(host_alone(("toys", minimal_plugin(full={"budget_reference": True}))).registry).name == "full"
    with pytest.raises(SpecError, match="no installed plugin declares one"):
        reference_method(host_alone(("toys", minimal_plugin())).registry)
    assert host_alone(("toys", minimal_plugin())).registry.declared(BUDGET_REFERENCE) == []


def test_a_name_two_plugins_claim_is_explained_with_what_each_choice_removes():
    first, second = types.ModuleType("first"), types.ModuleType("second")

    def factory(params: Any) -> Any:
        return None

    @hookimpl
    def first_methods(register: Any) -> None:
        register(name="same", factory=factory, description="x")
        register(name="extra", factory=factory, description="x")

    @hookimpl
    def second_methods(register: Any) -> None:
        register(name="same", factory=factory, description="x")

    first.register_methods, second.register_methods = first_methods, second_methods  # type: ignore[attr-defined]
    host = host_alone(("first", first), ("second", second))
    (message,) = host.registry.conflict_messages()
    assert message == (
        "method 'same' is registered by first local and by second local; neither is usable until one is chosen: disable all but one: "
        "FOMO_DISABLE_PLUGINS=first (also removes method extra) or FOMO_DISABLE_PLUGINS=second (removes nothing else) "
        "(or uninstall one)"
    )


def test_the_provider_of_a_component_is_public():
    from fomo_host import api

    provider = api.component_provider("method", "finetune")
    assert isinstance(provider, api.Provider) and provider.distribution == "fomo-tuning" and provider.version
    with pytest.raises(api.SpecError, match="unknown method 'no-such-method'"):
        api.component_provider("method", "no-such-method")


def test_a_plugin_still_implementing_the_old_logger_hooks_is_told_what_replaced_them():
    old = types.ModuleType("old_logger")

    @hookimpl
    def logger_names() -> list[str]:
        return ["old"]

    old.logger_names = logger_names  # type: ignore[attr-defined]
    (error,) = host_alone(("old", old)).errors
    assert "hook 'logger_names' no longer exists: loggers are registered components now: register each with register_loggers" in error


PRIVATE_IMPORTS = """
from fomo_host.api import hookimpl
from fomo_host import hookimpl, api
import fomo_host.engine.run as engine_run
from fomo_host.registry import Registry
from fomo_host import (
    testing,
    spec,
)
from fomo_host.testing import make_spec
"""


def test_private_host_imports_are_found_in_every_form():
    assert private_host_imports(PRIVATE_IMPORTS) == [(4, "fomo_host.engine.run"), (5, "fomo_host.registry"), (6, "fomo_host.spec")]


def test_an_outside_plugin_importing_a_private_module_is_warned_once_naming_it(tmp_path, monkeypatch):
    package = tmp_path / "outside_plugin_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "plugin.py").write_text("from fomo_host.api import hookimpl\n", encoding="utf-8")
    (package / "lazy.py").write_text("import os\nfrom fomo_host.engine.training import OptimizerFactory\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    record = PluginRecord("outside", "outside-plugin", "1.0", "outside_plugin_pkg.plugin")
    with pytest.warns(PrivateHostImportWarning) as caught:
        warn_about_private_imports(record)
    (warning,) = caught
    assert str(warning.message) == (
        "plugin 'outside' from outside-plugin 1.0 imports fomo_host.engine.training (lazy.py:2), a private module of fomo-host "
        "that may change in any release; import from fomo_host.api instead"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_about_private_imports(record)  # once per process


def test_the_first_party_plugins_load_without_a_private_import_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrivateHostImportWarning)
        host = load_plugins()
    assert host.errors == []
    assert "fomo_host.plugins" in sys.modules
