"""The spec schema: strict keys, component params, overrides, one-line errors."""

from __future__ import annotations

import types

import pytest
from pydantic import BaseModel, ConfigDict, Field

from fomo_host import hookimpl
from fomo_host.errors import SpecError
from fomo_host.plugins import load_plugins
from fomo_host.resolve import resolve_components
from fomo_host.spec import apply_override, parse_override
from fomo_host.spec_loading import build_spec, load_spec


class RankParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rank: int = Field(default=4, ge=1)


def toy_registry():
    module = types.ModuleType("spec_toys")

    def factory(params, context=None):
        return None

    @hookimpl
    def register_methods(register):
        register(name="finetune", factory=factory, default=True)
        register(name="lora", factory=factory, params=RankParams)

    @hookimpl
    def register_models(register):
        register(name="tiny", factory=factory)

    @hookimpl
    def register_datasets(register):
        register(name="data", factory=factory)

    @hookimpl
    def register_orderings(register):
        register(name="random", factory=factory, default=True)

    @hookimpl
    def register_optimizers(register):
        register(name="adamw", factory=factory, default=True)

    @hookimpl
    def register_schedulers(register):
        register(name="cosine", factory=factory, default=True)
        register(name="warm", factory=factory, params=WarmupParams)

    @hookimpl
    def register_mergers(register):
        register(name="none", factory=factory, default=True)

    @hookimpl
    def register_metrics(register):
        register(name="zero-shot-accuracy", factory=factory, default=True)
        register(name="retrieval-recall", factory=factory, default=True)

    for name, value in list(locals().items()):
        if name.startswith("register_"):
            setattr(module, name, value)
    return load_plugins(extra=[("toys", module)], use_entry_points=False).registry


MINIMAL = {
    "model": {"name": "tiny"},
    "data": {"sources": [{"name": "data"}]},
    "budget": {"steps_per_task": 3},
}


def test_minimal_spec_fills_the_paper_defaults():
    spec = build_spec(MINIMAL, registry=toy_registry())
    assert spec.optimizer.lr == 1e-5 and spec.optimizer.weight_decay == 0.2 and spec.optimizer.grad_clip == 1.0
    assert (spec.data.mixture.pretraining, spec.data.mixture.update, spec.data.mixture.buffer) == (0.33, 0.34, 0.33)
    assert spec.method.name == "finetune" and spec.merger.name == "none"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"optimzer": {"lr": 1}}, r"optimzer: unknown key"),
        ({"model": {"name": "tiny", "pretrianed": "x"}}, r"model.pretrianed: unknown key"),
        ({"optimizer": {"lr": -1}}, r"optimizer.lr: Input should be greater than 0"),
        ({"data": {"sources": [{"name": "data"}], "mixture": {"pretraining": 0.5, "update": 0.6, "buffer": 0}}}, "sum to 1"),
        ({"budget": {"steps_per_task": 3, "samples_per_task": 10}}, "exactly one"),
        ({"method": {"name": "lora2"}}, r"unknown method 'lora2' at spec: method.name; available: finetune, lora"),
        ({"method": {"name": "lora", "params": {"rank": 0}}}, r"method.params.rank: Input should be greater than or equal to 1"),
        ({"method": {"name": "lora", "params": {"rnak": 2}}}, r"method.params.rnak: unknown key"),
        ({"run": {"precision": "fp8"}}, r"run.precision: Input should be 'auto', 'no', 'bf16' or 'fp16'"),
    ],
)
def test_bad_specs_name_the_key_path(change, message):
    with pytest.raises(SpecError, match=message):
        build_spec({**MINIMAL, **change}, registry=toy_registry())


def test_overrides_are_parsed_as_toml_and_validated():
    registry = toy_registry()
    spec = build_spec(MINIMAL, ["optimizer.lr=1e-3", "method.name=lora", "method.params.rank=8", "run.name=abc"], registry)
    assert spec.optimizer.lr == 1e-3 and spec.method.params == {"rank": 8} and spec.run.name == "abc"
    spec = build_spec(MINIMAL, ["data.sources.0.params.size=64"], None)
    assert spec.data.sources[0].params == {"size": 64}
    with pytest.raises(SpecError, match=r"method.params.rank: Input should be greater than or equal to 1"):
        build_spec(MINIMAL, ["method.name=lora", "method.params.rank=-2"], registry)
    with pytest.raises(SpecError, match="expected KEY.PATH=VALUE"):
        build_spec(MINIMAL, ["optimizer.lr"], registry)
    with pytest.raises(SpecError, match="not an index"):
        build_spec(MINIMAL, ["data.sources.3.name=x"], registry)
    with pytest.raises(SpecError, match="is a value, not a table"):
        build_spec(MINIMAL, ["optimizer.lr=1", "optimizer.lr.x=1"], registry)


def test_override_parsing_keeps_strings_and_reads_toml_values():
    assert parse_override("a.b=hello world") == (["a", "b"], "hello world")
    assert parse_override("a=[1, 2]") == (["a"], [1, 2])
    assert parse_override('a="quoted"') == (["a"], "quoted")
    assert parse_override("a=true") == (["a"], True)
    raw: dict = {}
    apply_override(raw, ["x", "y"], 3)
    assert raw == {"x": {"y": 3}}


def test_resolved_spec_round_trips_through_toml_and_fingerprint_ignores_output_dir():
    import tomllib

    spec = build_spec(MINIMAL, ["run.output_dir=elsewhere"], toy_registry())
    again = build_spec(tomllib.loads(spec.to_toml()), registry=toy_registry())
    assert again == spec
    assert build_spec(MINIMAL).fingerprint() == spec.fingerprint()
    assert build_spec(MINIMAL, ["run.seed=1"]).fingerprint() != spec.fingerprint()


# ----------------------------------------------------------------------------- reading edge cases

QUICKSTART_TEXT = 'model = { name = "tiny" }\nbudget = { steps_per_task = 3 }\n[[data.sources]]\nname = "data"\n'


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x80\x81\xfe garbage", r"not UTF-8 text \(byte 0x80 at offset 0\)"),
        (QUICKSTART_TEXT.replace('"tiny"', '"tiny-caf\u00e9"').encode("latin-1"), r"not UTF-8 text \(byte 0xe9 at offset \d+\)"),
        (b"a = " + b"[" * 5000 + b"]" * 5000, "nested too deeply"),
        (b"a = " + b"[" * 40 + b"]" * 40, "nested deeper than 32 levels"),
        (b"x = { " * 40 + b"}" * 40, "nested deeper than 32 levels"),
    ],
    ids=["random bytes", "latin-1", "recursion limit", "deep arrays", "deep tables"],
)
def test_unreadable_spec_files_are_one_line(tmp_path, content, message):
    path = tmp_path / "spec.toml"
    path.write_bytes(content)
    with pytest.raises(SpecError, match=message):
        load_spec(path)


def test_a_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "spec.toml"
    path.write_bytes(b"\xef\xbb\xbf" + QUICKSTART_TEXT.encode())
    assert load_spec(path, registry=toy_registry()).model.name == "tiny"


def test_overrides_nested_too_deeply_or_not_utf8_are_one_line():
    with pytest.raises(SpecError, match="nests too deeply"):
        build_spec(MINIMAL, ["a=" + "[" * 5000 + "]" * 5000])
    with pytest.raises(SpecError, match="nested deeper than 32 levels"):
        build_spec(MINIMAL, ["a." * 40 + "b=1"])
    with pytest.raises(SpecError, match="not UTF-8"):
        build_spec(MINIMAL, ["run.name=\udce9"])


@pytest.mark.parametrize(
    ("override", "path"),
    [
        ("optimizer.lr=inf", "optimizer.lr = inf"),
        ("optimizer.lr=nan", "optimizer.lr = nan"),
        ('optimizer.lr="inf"', "optimizer.lr = inf"),
        ("budget.maf_per_task=inf", "budget.maf_per_task = inf"),
        ("optimizer.params.betas=[0.9, -inf]", "optimizer.params.betas.1 = -inf"),
        ("evaluation.subset_fraction=nan", "evaluation.subset_fraction = nan"),
        ("method.params.anything=inf", "method.params.anything = inf"),
        ("data.sources.0.params.scale=-inf", "data.sources.0.params.scale = -inf"),
    ],
)
def test_non_finite_numbers_are_refused_everywhere(override, path):
    with pytest.raises(SpecError, match=f"{path} is not a finite number"):
        build_spec(MINIMAL, ["budget.steps_per_task=3", override], toy_registry())


class WarmupParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    warmup: float = 0.1


def test_non_finite_numbers_are_refused_in_component_params_even_as_strings():
    spec = build_spec({**MINIMAL, "scheduler": {"name": "warm", "params": {"warmup": "inf"}}})
    with pytest.raises(SpecError, match="scheduler.params.warmup = inf is not a finite number"):
        resolve_components(spec, toy_registry())


@pytest.mark.parametrize(
    ("override", "path"),
    [
        ("data.num_tasks=true", "data.num_tasks"),
        ("run.seed=false", "run.seed"),
        ("optimizer.grad_clip=true", "optimizer.grad_clip"),
        ("model.warm_start={steps=true}", "model.warm_start.steps"),
        ("method.name='lora'", None),
        ("method.params.rank=true", "method.params.rank"),
    ],
)
def test_booleans_are_not_numbers(override, path):
    overrides = ["method.name=lora", override] if override.startswith("method.params") else [override]
    if path is None:
        build_spec(MINIMAL, overrides, toy_registry())
        return
    with pytest.raises(SpecError, match=rf"{path}: (true|false) is a boolean; give a number"):
        build_spec(MINIMAL, overrides, toy_registry())
