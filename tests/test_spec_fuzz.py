"""Fuzzing the quickstart spec: every mutation is either a valid spec or one line, exit status 2, no traceback, no file.

The mutations change keys (deleted, misspelt, added), types (a table for a value, a value for
a table, strings, lists, booleans), ranges (negative, zero, fractional, infinite, NaN), the
TOML syntax (cut short, stray characters, repeated keys and tables), the encoding (latin-1,
UTF-16, UTF-32, random bytes, NUL bytes, a byte order mark) and the ``--set`` overrides. Each
goes through the in-process ``fomo-host run`` as far as training: a spec still valid after its
mutation reaches the (stubbed) training loop, every other one must be refused as the project's
rule says. A few go through a real subprocess too, so that import-time output counts.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import os
import random
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from fomo_host.cli import main

pytestmark = pytest.mark.slow

QUICKSTART = Path(__file__).resolve().parents[1] / "specs" / "quickstart.toml"
SEED = 20240611
MUTANTS = 320
"""How many mutations run in process: the hand-written ones and the first of each generated family always, the rest drawn with SEED."""

BAD_VALUES: list[Any] = [
    -1,
    0,
    1.5,
    -2.5,
    "",
    "nope",
    [],
    [1, "a"],
    {},
    {"a": 1},
    True,
    math.inf,
    -math.inf,
    math.nan,
    "inf",
    "\u0000",
    "é" * 3,
]
"""Values put where the spec has one; none makes a valid spec expensive to build (no huge sizes)."""


class ReachedTraining(Exception):
    """The mutated spec passed every check run makes: it is valid."""


@contextlib.contextmanager
def training_stubbed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No warm start and no training: a valid mutant stops where the loop would begin."""

    def reached(*args: Any, **kwargs: Any) -> None:
        raise ReachedTraining

    monkeypatch.setattr("fomo_host.engine.setup.warm_start_base_model", lambda *args, **kwargs: None)
    monkeypatch.setattr("fomo_host.engine.run.ContinualRun.execute", reached)
    yield


def leaves(table: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Key paths of every value and every table (array items by index)."""
    if isinstance(table, dict):
        for key, value in table.items():
            yield (*path, key)
            yield from leaves(value, (*path, key))
    elif isinstance(table, list):
        for index, value in enumerate(table):
            if isinstance(value, dict):
                yield from leaves(value, (*path, index))


def set_at(tables: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(tables)
    node: Any = changed
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return changed


def delete_at(tables: dict[str, Any], path: tuple[Any, ...]) -> dict[str, Any]:
    changed = copy.deepcopy(tables)
    node: Any = changed
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return changed


def rename_at(tables: dict[str, Any], path: tuple[Any, ...], new_key: str) -> dict[str, Any]:
    changed = copy.deepcopy(tables)
    node: Any = changed
    for part in path[:-1]:
        node = node[part]
    node[new_key] = node.pop(path[-1])
    return changed


def toml_bytes(tables: dict[str, Any]) -> bytes:
    """TOML for tables that may hold NaN and infinities (tomli_w writes them as nan, inf)."""
    return tomli_w.dumps(tables).encode("utf-8")


def mutants() -> list[tuple[str, bytes, list[str]]]:
    """(label, file content, --set overrides) of every mutation family, then a seeded draw of the rest."""
    text = QUICKSTART.read_text(encoding="utf-8")
    tables = tomllib.loads(text)
    paths = [path for path in leaves(tables) if isinstance(path[-1], str)]
    families: dict[str, list[tuple[str, bytes, list[str]]]] = {"keys": [], "types": [], "syntax": []}
    always: list[tuple[str, bytes, list[str]]] = []
    """Hand-written cases: every run includes them."""

    for path in paths:
        dotted = ".".join(str(part) for part in path)
        families["keys"].append((f"delete {dotted}", toml_bytes(delete_at(tables, path)), []))
        families["keys"].append((f"misspell {dotted}", toml_bytes(rename_at(tables, path, str(path[-1]) + "x")), []))
        families["keys"].append((f"unknown key beside {dotted}", toml_bytes(set_at(tables, (*path[:-1], "colour"), "red")), []))
        for value in BAD_VALUES:
            families["types"].append((f"{dotted} = {value!r}", toml_bytes(set_at(tables, path, value)), []))

    rng = random.Random(SEED)
    for _ in range(40):
        cut = rng.randrange(1, len(text))
        families["syntax"].append((f"cut at {cut}", text[:cut].encode(), []))
    for _ in range(40):
        at, stray = rng.randrange(len(text)), rng.choice(["[", "]", '"', "=", "{", "}", "\\", "\u0000", "[[", "'''", "\n[run]\n"])
        families["syntax"].append((f"{stray!r} at {at}", (text[:at] + stray + text[at:]).encode(), []))
    always += [
        ("repeated key", text.replace('name = "quickstart"', 'name = "quickstart"\nname = "again"').encode(), []),
        ("repeated table", (text + "\n[run]\nseed = 1\n").encode(), []),
        ("nested past the recursion limit", (text + "\ndeep = " + "[" * 3000 + "]" * 3000 + "\n").encode(), []),
        ("nested tables too deep", (text + "\n[evaluation.x]\n" + "y = " + "{ z = " * 60 + "1" + " }" * 60 + "\n").encode(), []),
        ("empty file", b"", []),
        ("only a comment", b"# nothing here\n", []),
        ("a binary blob", bytes(range(256)) * 4, []),
    ]

    accented = text.replace('name = "quickstart"', 'name = "quickstart"\n# caf\u00e9 r\u00e9sum\u00e9')
    always += [
        ("latin-1", accented.encode("latin-1"), []),
        ("utf-16", text.encode("utf-16"), []),
        ("utf-32", text.encode("utf-32"), []),
        ("byte order mark and garbage", b"\xef\xbb\xbf\x80\x81", []),
        ("NUL bytes", text.encode().replace(b"\n", b"\x00\n", 3), []),
        ("cp1252 quotes", text.replace('"finetune"', "\u201cfinetune\u201d").encode("cp1252"), []),
    ]
    for index in range(8):
        always.append((f"random bytes {index}", rng.randbytes(rng.randrange(1, 400)), []))

    for override in [
        "optimizer.lr=inf",
        "optimizer.lr=nan",
        "budget.maf_per_task=inf",
        "scheduler.params.warmup=inf",
        "scheduler.params.warmup=1e400",
        "run.seed=-1",
        "run=3",
        "data.sources=3",
        "data.sources.0=3",
        "data.sources.7.name=x",
        "a..b=1",
        "=1",
        "optimizer.lr",
        "optimizer.lr=[",
        "optimizer.lr.x=1",
        "x=" + "[" * 2000 + "]" * 2000,
        "." * 50 + "=1",
        "a." * 60 + "b=1",
        "run.name=\udce9",
        "run.name=" + "x" * 300,
        "scheduler.name=rsqrt",
        "scheduler.params={warmup=0.7, cooldown=0.5}",
        "run.loggers=['nope']",
        "run.precision=fp16",
        "data.num_tasks=100000",
        "evaluation.metrics=[]",
        "data.mixture.update=0",
        "method.name=lora2",
        "budget.samples_per_task=1e9",
    ]:
        always.append((f"--set {override[:60]}", text.encode(), [override]))

    chosen = list(always)
    rest: list[tuple[str, bytes, list[str]]] = []
    for members in families.values():
        chosen += members[:12]
        rest += members[12:]
    rng.shuffle(rest)
    return chosen + rest[: max(0, MUTANTS - len(chosen))]


def run_in_process(argv: list[str]) -> tuple[int | str, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status: int | str = main(argv)
        except ReachedTraining:
            status = "valid"
        except SystemExit as exc:
            status = int(exc.code or 0)
    return status, out.getvalue(), err.getvalue()


def test_every_mutation_of_the_quickstart_is_valid_or_one_line(tmp_path, monkeypatch):
    cases = mutants()
    assert len(cases) >= 300
    failures: list[str] = []
    outcomes = {"valid": 0, "refused": 0}
    with training_stubbed(monkeypatch):
        for number, (label, content, overrides) in enumerate(cases):
            spec = tmp_path / f"mutant-{number}.toml"
            spec.write_bytes(content)
            output = tmp_path / f"out-{number}"
            argv = ["run", str(spec), "--output", str(output), "--quiet", *[f"--set={override}" for override in overrides]]
            try:
                status, stdout, stderr = run_in_process(argv)
            except Exception as exc:  # a traceback: the rule is broken
                failures.append(f"{label}: {type(exc).__name__}: {exc}")
                continue
            if status == "valid":
                outcomes["valid"] += 1
                continue
            outcomes["refused"] += 1
            lines = [line for line in stderr.splitlines() if line.strip()]
            if status != 2 or len(lines) != 1 or not lines[0].startswith("error: ") or stdout or "Traceback" in stderr:
                failures.append(f"{label}: status {status}, stderr {stderr[-500:]!r}")
            if output.exists():
                failures.append(f"{label}: refused, but wrote {output}")
    assert not failures, f"{len(failures)} of {len(cases)} mutations broke the rule:\n" + "\n".join(failures[:40])
    # the fuzzing must exercise both outcomes, or it tests nothing
    assert outcomes["refused"] > len(cases) // 2 and outcomes["valid"] > 0, outcomes


@pytest.mark.parametrize(
    ("label", "content", "overrides"),
    [
        ("random bytes", bytes([0x80, 0xFF, 0x00, 0x41]) * 20, []),
        ("a cut table header", QUICKSTART.read_bytes()[:120] + b"[data", []),
        ("infinite learning rate", QUICKSTART.read_bytes(), ["optimizer.lr=inf"]),
        ("nesting past the recursion limit", QUICKSTART.read_bytes(), ["x=" + "[" * 3000 + "]" * 3000]),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_mutations_through_a_real_process_are_one_line_too(tmp_path, label, content, overrides):
    spec = tmp_path / "mutant.toml"
    spec.write_bytes(content)
    output = tmp_path / "out"
    command = [sys.executable, "-m", "fomo_host.cli", "run", str(spec), "--output", str(output), *[f"--set={o}" for o in overrides]]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=os.environ.copy())
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), f"{label}: {result.stderr}"
    assert result.stdout == "" and not output.exists()
