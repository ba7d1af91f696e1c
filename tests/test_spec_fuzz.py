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
import json
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


# ----------------------------------------------------------------------------- study files, study indexes, output paths

STUDY_TEMPLATE = {
    "name": "fuzz",
    "seeds": [0],
    "set": {"evaluation.batch_size": 64},
    "grid": {"optimizer.lr": [1e-3, 3e-4]},
    "variants": [{"label": "plain"}],
    "launcher": {"name": "local", "params": {"max_parallel": 1}},
}
STUDY_MUTANTS = 90
INDEX_MUTANTS = 60


class ReachedSweep(Exception):
    """The mutated study (or index) passed every check sweep makes before it launches a run."""


def study_mutants(base: Path) -> list[tuple[str, bytes]]:
    """(label, content) of mutated study files: keys deleted, misspelt and added, bad values at every leaf, TOML cut."""
    tables = {"base": str(base), **STUDY_TEMPLATE}
    paths = [path for path in leaves(tables) if isinstance(path[-1], str)]
    cases: list[tuple[str, bytes]] = []
    for path in paths:
        dotted = ".".join(str(part) for part in path)
        cases.append((f"study: delete {dotted}", toml_bytes(delete_at(tables, path))))
        cases.append((f"study: misspell {dotted}", toml_bytes(rename_at(tables, path, str(path[-1]) + "x"))))
        for value in BAD_VALUES:
            cases.append((f"study: {dotted} = {value!r}", toml_bytes(set_at(tables, path, value))))
    for key in ("optimizer . lr", "optimizer", "run.seed", "run.output_dir", "run", "nothing.here", "method.name"):
        grid = {**tables["grid"], key: [1e-3, 3e-4] if "lr" in key else [{"lr": 1e-3}]}
        cases.append((f"study: grid key {key!r}", toml_bytes(set_at(tables, ("grid",), grid))))
    cases.append(
        ("study: a variant the same as the plain point", toml_bytes(set_at(tables, ("variants",), [{"label": "a"}, {"label": "b"}])))
    )
    cases.append(("study: launcher a string", toml_bytes(set_at(tables, ("launcher",), "local"))))
    text = toml_bytes(tables).decode()
    rng = random.Random(SEED + 1)
    for _ in range(20):
        cut = rng.randrange(1, len(text))
        cases.append((f"study: cut at {cut}", text[:cut].encode()))
    head = cases[: len(paths)]
    rest = cases[len(paths) :]
    rng.shuffle(rest)
    return (head + rest)[:STUDY_MUTANTS]


def index_mutants(index: dict[str, Any]) -> list[tuple[str, bytes]]:
    """(label, content) of mutated study indexes: keys deleted, bad values at every leaf, the text cut, other JSON."""
    paths = list(leaves(index))
    cases: list[tuple[str, bytes]] = []
    for path in paths:
        dotted = ".".join(str(part) for part in path)
        cases.append((f"index: delete {dotted}", json.dumps(delete_at(index, path)).encode()))
        for value in (None, -1, "x", [], {}, True, 1.5):
            cases.append((f"index: {dotted} = {value!r}", json.dumps(set_at(index, path, value)).encode()))
    text = json.dumps(index)
    rng = random.Random(SEED + 2)
    for _ in range(10):
        cut = rng.randrange(1, len(text))
        cases.append((f"index: cut at {cut}", text[:cut].encode()))
    cases += [(f"index: {value!r}", json.dumps(value).encode()) for value in (None, [], 1, "study", [index])]
    rng.shuffle(cases)
    return cases[:INDEX_MUTANTS]


def assert_one_line(label: str, status: int | str, stdout: str, stderr: str, failures: list[str], quiet_stdout: bool = True) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    if status != 2 or len(lines) != 1 or not lines[0].startswith("error: ") or (quiet_stdout and stdout) or "Traceback" in stderr:
        failures.append(f"{label}: status {status}, stderr {stderr[-400:]!r}")


def snapshot(folder: Path) -> list[tuple[str, int]]:
    return sorted((str(path), path.stat().st_size if path.is_file() else -1) for path in folder.rglob("*"))


def test_study_files_indexes_and_output_paths_are_valid_or_one_line(tmp_path, monkeypatch):
    """Every mutated study file (sweep), study index (compare, report, sweep --resume) and unwritable output place
    (run, sweep, report, export, validate): valid, or one line, exit status 2, nothing written."""
    from fomo_host.study.index import INDEX_FILE

    def reached(*args: Any, **kwargs: Any) -> int:
        raise ReachedSweep

    monkeypatch.setattr("fomo_host.commands.sweep.sweep_grid", reached)
    failures: list[str] = []
    outcomes = {"valid": 0, "refused": 0}
    cases = 0

    def check(label: str, argv: list[str], watched: Path, quiet_stdout: bool = True) -> None:
        nonlocal cases
        cases += 1
        before = snapshot(watched)
        try:
            with training_stubbed(monkeypatch):
                status, stdout, stderr = run_in_process(argv)
        except ReachedSweep:
            outcomes["valid"] += 1
            return
        except Exception as exc:
            failures.append(f"{label}: {type(exc).__name__}: {exc}")
            return
        if status in ("valid", 0):
            outcomes["valid"] += 1
            return
        outcomes["refused"] += 1
        assert_one_line(label, status, stdout, stderr, failures, quiet_stdout)
        if snapshot(watched) != before:
            failures.append(f"{label}: refused, but wrote into {watched}")

    # study files
    base = tmp_path / "base.toml"
    base.write_text(QUICKSTART.read_text(encoding="utf-8"), encoding="utf-8")
    studies, sweeps = tmp_path / "studies", tmp_path / "sweeps"
    studies.mkdir()
    sweeps.mkdir()
    for number, (label, content) in enumerate(study_mutants(base)):
        study = studies / f"study-{number}.toml"
        study.write_bytes(content)
        check(label, ["sweep", str(study), "--output", str(sweeps / f"out-{number}")], sweeps)

    # study indexes: a real one, mutated
    valid = studies / "valid.toml"
    valid.write_bytes(toml_bytes({"base": str(base), **STUDY_TEMPLATE}))
    study_dir = tmp_path / "study"
    with pytest.raises(ReachedSweep):
        run_in_process(["sweep", str(valid), "--output", str(study_dir)])
    index = json.loads((study_dir / INDEX_FILE).read_text())
    for number, (label, content) in enumerate(index_mutants(index)):
        (study_dir / INDEX_FILE).write_bytes(content)
        report = tmp_path / "reports" / f"r-{number}"
        check(f"{label} (compare)", ["compare", str(study_dir)], study_dir)
        check(f"{label} (report)", ["report", str(study_dir), "--out", str(report)], study_dir)
        if report.exists():
            failures.append(f"{label}: report refused, but wrote {report}")
    (study_dir / INDEX_FILE).write_text(json.dumps(index))

    # output places of every writing command
    places = tmp_path / "places"
    places.mkdir()
    a_file = places / "a-file"
    a_file.write_text("x")
    full = places / "non-empty"
    full.mkdir()
    (full / "something").write_text("x")
    bad_places = {
        "a file": a_file,
        "under a file": a_file / "out",
        "deep under a file": a_file / "a" / "b" / "c",
        "a name too long": places / ("n" * 256),
        "a name far too long": places / ("é" * 200),
        "too long deeper": places / "ok" / ("n" * 300) / "x",
        "a path too long": places / "/".join(["d" * 200] * 25),
        "a NUL": Path(str(places / "nul") + "\0x"),
        "not empty": full,
    }
    commands = {
        "run": lambda place: ["run", str(QUICKSTART), "--output", str(place), "--quiet"],
        "sweep": lambda place: ["sweep", str(valid), "--output", str(place)],
        "report": lambda place: ["report", str(QUICKSTART.parent), "--out", str(place)],
        "export": lambda place: ["export", str(study_dir), "--out", f"{place}.safetensors"],
        "export folder": lambda place: ["export", str(study_dir), "--out", str(place)],
        "validate": lambda place: ["validate", str(QUICKSTART), "--schema-only", "--set", f"run.output_dir={json.dumps(str(place))}"],
        "validate name": lambda place: ["validate", str(QUICKSTART), "--schema-only", "--set", f"run.name={json.dumps(place.name)}"],
    }
    for command, argv in commands.items():
        for kind, place in bad_places.items():
            if command == "report" and kind == "not empty":
                continue  # a report may go into a folder that holds files (it writes its own names)
            check(f"{command} into {kind}", argv(place), places)

    assert not failures, f"{len(failures)} of {cases} cases broke the rule:\n" + "\n".join(failures[:40])
    assert cases >= 150 and outcomes["refused"] > cases // 2 and outcomes["valid"] > 0, (cases, outcomes)
