"""Numbered releases of a run that is kept current: the weights each update deployed, with what they scored and saw.

Release 1 is the run's own end; update N makes release N+1. Each is a folder::

    releases/vN/open_clip_model.safetensors   the deployed weights in open_clip's layout (what ``fomo-host export`` writes;
    releases/vN/open_clip_config.json         a model without an open_clip config gets releases/vN/model.safetensors)
    releases/vN/release.json                  this release's line of releases.jsonl

and a line of ``releases.jsonl``: the scores it was released with (A_KA, A_ZS, GM, every
dataset's), the evaluation sets, the tasks and the data it has seen, the weights' SHA-256,
and whether it is published. ``[release] min_A_ZS_change`` holds a release back
(``published = false``, with the reason) when its A_ZS fell from the last published
release's by more than allowed; training goes on from it all the same.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

from .deployed import OPEN_CLIP_ARCHITECTURE, OPEN_CLIP_CONFIG, deployed_path
from .errors import FomoError
from .export import EXPORT_CONFIG_FILE, EXPORT_WEIGHTS_FILE, Export, export_run, open_clip_knows, refuse_to_overwrite
from .integrity import unique_temporary
from .output_path import check_output_path
from .results import read_json_lines, write_text_atomic
from .spec import RunSpec
from .weights import load_weights, read_metadata, save_weights

RELEASES_DIR = "releases"
RELEASES_FILE = "releases.jsonl"
RELEASE_FILE = "release.json"
PLAIN_WEIGHTS_FILE = "model.safetensors"


def read_releases(run_dir: Path) -> list[dict[str, Any]]:
    """The run's releases, oldest first."""
    return read_json_lines(run_dir / RELEASES_FILE, ("release",), "a release record")


def release_folder(run_dir: Path, number: int) -> Path:
    return run_dir / RELEASES_DIR / f"v{number}"


def seen_data(records: list[dict[str, Any]]) -> dict[str, int]:
    """Concepts trained so far, by dataset (from the records' ``task_datasets``)."""
    seen: Counter[str] = Counter()
    for record in records:
        if record["task"] >= 0:
            seen.update(record.get("task_datasets", {}))
    return dict(sorted(seen.items()))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def gate(spec: RunSpec, releases: list[dict[str, Any]], number: int, a_zs: float, scores: dict[str, float] | None = None) -> str | None:
    """Why a release is held back (one line), or None to publish it.

    With ``scores``, A_ZS is taken over the zero-shot sets of the last published release, so that a set joining with
    an update does not count as a change in retention.
    """
    allowed = spec.release.min_A_ZS_change if spec.release is not None else None
    published = [entry for entry in releases if entry["published"] and entry["release"] < number]
    if allowed is None or not published:
        return None
    previous = published[-1]
    shared = [name for name in (previous.get("evaluation_sets") or {}).get("zero_shot", []) if scores is not None and name in scores]
    if scores is not None and shared:
        a_zs = sum(scores[name] for name in shared) / len(shared)
    change = a_zs - previous["A_ZS"]
    if change >= allowed:
        return None
    return (
        f"release v{number} held back: A_ZS fell by {-change:.4f} from v{previous['release']} ({previous['A_ZS']:.4f} -> {a_zs:.4f}), "
        f"more than release.min_A_ZS_change = {allowed:g} allows"
    )


def make_release(run_dir: Path, spec: RunSpec, records: list[dict[str, Any]], update: int, first_task: int) -> dict[str, Any]:
    """Release the weights deployed after the last recorded task as release ``update + 1``; returns its entry.

    ``first_task``: the first task (0-based) the run or update trained. Written again whole
    where an interrupted earlier attempt left a part.
    """
    number = update + 1
    final = records[-1]
    tasks_done = final["task"] + 1
    folder = release_folder(run_dir, number)
    staging = unique_temporary(folder)
    source = deployed_path(run_dir, tasks_done)
    try:
        if read_metadata(source).get(OPEN_CLIP_CONFIG):
            exported = export_run(run_dir, staging, tasks_done, force=True)
        else:
            staging.mkdir(parents=True)
            exported = export_run(run_dir, staging / PLAIN_WEIGHTS_FILE, tasks_done, force=True)
        releases = [entry for entry in read_releases(run_dir) if entry["release"] != number]
        held = gate(spec, releases, number, final["A_ZS"], final["scores"])
        entry: dict[str, Any] = {
            "release": number,
            "published": held is None,
            "held_because": held,
            "update": update,
            "tasks_done": tasks_done,
            "tasks": [first_task + 1, tasks_done],
            "A_KA": final["A_KA"],
            "A_ZS": final["A_ZS"],
            "GM": final["GM"],
            "scores": final["scores"],
            "subset_fraction": final.get("subset_fraction"),
            "evaluation_sets": final.get("groups"),
            "seen": seen_data(records),
            "sources": [source_ref.name for source_ref in spec.data.sources],
            "weights": f"{RELEASES_DIR}/v{number}/{exported.weights.name}",
            "config": f"{RELEASES_DIR}/v{number}/{EXPORT_CONFIG_FILE}" if exported.config is not None else None,
            "sha256": sha256_of(exported.weights),
            "spec_fingerprint": spec.fingerprint(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        write_text_atomic(staging / RELEASE_FILE, json.dumps(entry, indent=1, sort_keys=True) + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    finally:
        if staging.exists():
            with contextlib.suppress(OSError):
                shutil.rmtree(staging)
    write_text_atomic(run_dir / RELEASES_FILE, "".join(json.dumps(e, sort_keys=True) + "\n" for e in [*releases, entry]))
    return entry


def new_sets(entry: dict[str, Any], previous: dict[str, Any]) -> dict[str, list[str]]:
    """Per group (adaptation, zero_shot), the sets a release is scored on that the previous release was not: its A_KA
    or A_ZS then averages over other sets."""
    before, now = previous.get("evaluation_sets") or {}, entry.get("evaluation_sets") or {}
    return {group: [name for name in names if name not in before.get(group, [])] for group, names in now.items()}


def with_changes(releases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each release with ``change``: its A_KA, A_ZS and GM minus the previous release's (None for the first), and
    ``new_sets``: the evaluation sets it adds to the previous release's."""
    rows: list[dict[str, Any]] = []
    previous: dict[str, Any] | None = None
    for entry in releases:
        change: dict[str, float] | None = None
        if previous is not None:
            change = {key: entry[key] - previous[key] for key in ("A_KA", "A_ZS", "GM")}
        rows.append({**entry, "change": change, "new_sets": new_sets(entry, previous) if previous is not None else {}})
        previous = entry
    return rows


def find_release(run_dir: Path, number: int) -> dict[str, Any]:
    if not run_dir.is_dir():
        raise FomoError(f"{run_dir}: no such run directory")
    releases = read_releases(run_dir)
    entry = next((e for e in releases if e["release"] == number), None)
    if entry is None:
        shown = ", ".join(str(e["release"]) for e in releases) or "none (a run's first release is written when it is first updated)"
        raise FomoError(f"{run_dir}: no release {number}; releases: {shown}")
    return entry


def export_release(run_dir: Path, number: int, out: Path, force: bool = False) -> tuple[Export, dict[str, Any]]:
    """Copy release ``number`` to ``out`` (a FILE.safetensors or a folder in open_clip's layout); checks its SHA-256 first."""
    if out.suffix == ".safetensors":
        check_output_path(out, "--out", "file")
    else:
        check_output_path(out, "--out")
    entry = find_release(run_dir, number)
    weights = run_dir / entry["weights"]
    if not weights.is_file():
        raise FomoError(f"{weights}: the release's weights are missing")
    if sha256_of(weights) != entry["sha256"]:
        raise FomoError(f"{weights} is damaged: its SHA-256 does not match the one recorded when release {number} was made")
    metadata = read_metadata(weights)
    metadata["release"] = str(number)
    if out.suffix == ".safetensors":
        refuse_to_overwrite([out], force)
        save_weights(load_weights(weights), out, metadata)
        architecture = metadata.get(OPEN_CLIP_ARCHITECTURE)
        if architecture and open_clip_knows(architecture):
            return Export(out, None, metadata, f"open_clip.create_model({architecture!r}, pretrained={str(out)!r})"), entry
        note = f"{metadata.get('architecture', 'this model')} is no built-in open_clip architecture; export to a folder (--out DIR)"
        return Export(out, None, metadata, None, note), entry
    if entry["config"] is None:
        raise FomoError(f"release {number} has no open_clip config (the model plugin gave none); use --out FILE.safetensors")
    if out.exists() and not out.is_dir():
        raise FomoError(f"--out {out}: exists and is not a folder (a file export needs the .safetensors suffix)")
    targets = [out / EXPORT_WEIGHTS_FILE, out / EXPORT_CONFIG_FILE]
    refuse_to_overwrite(targets, force)
    out.mkdir(parents=True, exist_ok=True)
    save_weights(load_weights(weights), targets[0], metadata)
    write_text_atomic(targets[1], (run_dir / entry["config"]).read_text(encoding="utf-8"))
    return Export(targets[0], targets[1], metadata, f"open_clip.create_model_and_transforms('local-dir:{out}')"), entry


def print_release_export(run_dir: Path, number: int, out: Path, force: bool) -> int:
    """``fomo-host export RUN --release N``: copy the release and say what was written."""
    exported, entry = export_release(run_dir, number, out, force)
    if not entry["published"]:
        print(f"note: {entry['held_because']}")
    print(
        f"exported release v{number} of {run_dir} (tasks 1-{entry['tasks_done']}, A_KA {entry['A_KA']:.4f}, A_ZS {entry['A_ZS']:.4f}, "
        f"sha256 {entry['sha256'][:12]}) to {exported.weights}"
    )
    if exported.config is not None:
        print(f"open_clip config: {exported.config}")
    if exported.load_hint is not None:
        print(f"load it with: import open_clip; {exported.load_hint}")
    if exported.note is not None:
        print(f"note: {exported.note}")
    return 0
