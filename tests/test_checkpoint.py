"""Checkpoints: checksummed, two kept, a damaged or unfinished one falls back to the previous, a failed write says so."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
import torch

from fomo_host.engine import checkpoint as checkpoint_module
from fomo_host.engine.checkpoint import BASE_WEIGHTS, CHECKPOINT_DIR, Checkpoint
from fomo_host.errors import FomoError
from fomo_host.integrity import IntegrityError
from fomo_host.results import RESULTS_FILE, append_record, read_records, restore_records
from fomo_host.run_directory import has_checkpoint
from fomo_host.weights import WeightStore, load_weights, save_weights


def record(task: int) -> dict:
    # NaN (no zero-shot sets) must survive the comparison with the file, where NaN != NaN
    scores = {"scores": {"a": 0.5}, "A_KA": 0.5, "A_ZS": float("nan"), "GM": 0.0}
    return {"task": task, "step": 2 * (task + 1), "samples_seen": 64 * (task + 1), **scores}


def make(next_task: int, value: float) -> Checkpoint:
    return Checkpoint(
        next_task=next_task,
        records=[record(task) for task in range(-1, next_task)],
        global_step=2 * next_task,
        samples_seen=64 * next_task,
        spec_fingerprint="f",
        model={"w": torch.full((4, 4), value)},
        method={"importance": torch.ones(3) * value},
        merger={"running": None},
        optimizer=None,
    )


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    save_weights({"w": torch.zeros(4, 4)}, tmp_path / BASE_WEIGHTS)
    return tmp_path


def committed(run_dir: Path) -> list[str]:
    return sorted(path.name for path in (run_dir / CHECKPOINT_DIR).iterdir())


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_the_newest_two_checkpoints_are_kept_with_manifests(run_dir):
    assert not has_checkpoint(run_dir) and Checkpoint.load(run_dir) is None
    for task in range(4):
        make(task, float(task)).save(run_dir)
    assert committed(run_dir) == ["00003.json", "00003.pt", "00004.json", "00004.pt"]
    manifest = json.loads((run_dir / CHECKPOINT_DIR / "00004.json").read_text())
    assert set(manifest["files"]) == {f"{CHECKPOINT_DIR}/00004.pt", BASE_WEIGHTS}
    loaded = Checkpoint.load(run_dir)
    assert loaded is not None and loaded.next_task == 3 and torch.equal(loaded.model["w"], torch.full((4, 4), 3.0))
    assert [r["task"] for r in loaded.records] == [-1, 0, 1, 2]


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_and_says_so(run_dir):
    make(1, 1.0).save(run_dir)
    make(2, 2.0).save(run_dir)
    flip_a_byte(run_dir / CHECKPOINT_DIR / "00002.pt")
    warnings: list[str] = []
    loaded = Checkpoint.load(run_dir, warn=warnings.append)
    assert loaded is not None and loaded.next_task == 1
    assert len(warnings) == 1 and "00002.pt is damaged" in warnings[0] and "after task 1" in warnings[0]
    # set aside: the next checkpoint takes its number, and the earlier intact one stays until then
    make(2, 2.0).save(run_dir)
    assert "00002.pt" in committed(run_dir) and Checkpoint.load(run_dir).next_task == 2  # type: ignore[union-attr]


def test_damage_in_every_checkpoint_is_one_line_naming_the_file(run_dir):
    make(1, 1.0).save(run_dir)
    make(2, 2.0).save(run_dir)
    flip_a_byte(run_dir / CHECKPOINT_DIR / "00001.pt")
    (run_dir / CHECKPOINT_DIR / "00002.pt").write_bytes(b"short")
    with pytest.raises(IntegrityError, match=r"00002\.pt is damaged: 5 bytes.*no earlier checkpoint is intact"):
        Checkpoint.load(run_dir)


def test_a_stored_weight_file_that_changed_after_the_checkpoint_refuses_the_resume(run_dir):
    store = WeightStore(run_dir / "weights")
    store.save("running", {"w": torch.ones(2)})
    make(1, 1.0).save(run_dir)
    store.save("running", {"w": torch.full((2,), 7.0)})  # a merger that rewrites a key after the checkpoint
    with pytest.raises(IntegrityError, match=r"running\.safetensors is damaged"):
        Checkpoint.load(run_dir)
    store.delete("running")  # deleted history is allowed: a merger prunes what it no longer needs
    assert Checkpoint.load(run_dir) is not None


def test_missing_base_weights_are_named(run_dir):
    make(1, 1.0).save(run_dir)
    (run_dir / BASE_WEIGHTS).unlink()
    with pytest.raises(IntegrityError, match=r"base\.safetensors is missing"):
        Checkpoint.load(run_dir)


def test_an_unfinished_checkpoint_write_is_ignored_and_cleaned_up(run_dir):
    make(1, 1.0).save(run_dir)
    # a kill after the state was renamed but before the manifest (the commit) was written
    (run_dir / CHECKPOINT_DIR / "00002.pt").write_bytes(b"partial")
    (run_dir / CHECKPOINT_DIR / "00002.json.tmp-1-ab").write_bytes(b"{")
    assert Checkpoint.load(run_dir).next_task == 1  # type: ignore[union-attr]
    make(2, 2.0).save(run_dir)
    assert committed(run_dir) == ["00001.json", "00001.pt", "00002.json", "00002.pt"]


def test_a_failed_write_leaves_the_previous_checkpoint_and_says_so(run_dir, monkeypatch):
    make(1, 1.0).save(run_dir)

    def disk_full(content, handle):
        handle.write(b"x" * 100)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_module.torch, "save", disk_full)
    with pytest.raises(FomoError) as caught:
        make(2, 2.0).save(run_dir)
    message = str(caught.value)
    assert "No space left on device" in message and "previous checkpoint (after task 1) is intact" in message
    assert f"--resume {run_dir}" in message and "\n" not in message
    monkeypatch.undo()
    assert committed(run_dir) == ["00001.json", "00001.pt"]  # no partial files left
    assert Checkpoint.load(run_dir).next_task == 1  # type: ignore[union-attr]


def test_damaged_weights_are_one_line_not_a_parse_traceback(tmp_path):
    path = tmp_path / "w.safetensors"
    save_weights({"w": torch.ones(3)}, path)
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(IntegrityError, match="w.safetensors is damaged"):
        load_weights(path)


def test_two_processes_saving_one_key_use_their_own_temporary_files(tmp_path, monkeypatch):
    from fomo_host import integrity

    names = {integrity.unique_temporary(tmp_path / "x.safetensors").name for _ in range(50)}
    assert len(names) == 50 and all(".tmp-" in name for name in names)
    # a write that fails half-way leaves no temporary file behind
    monkeypatch.setattr("fomo_host.weights.save_file", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    with pytest.raises(OSError):
        save_weights({"w": torch.ones(2)}, tmp_path / "x.safetensors")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("damage", ["deleted", "truncated", "cut mid-line", "edited"])
def test_results_are_rebuilt_from_the_checkpoint(tmp_path, damage):
    records = [record(task) for task in range(-1, 3)]
    for item in records:
        append_record(tmp_path, item)
    path = tmp_path / RESULTS_FILE
    lines = path.read_text().splitlines(keepends=True)
    if damage == "deleted":
        path.unlink()
    elif damage == "truncated":
        path.write_text("".join(lines[:2]))
    elif damage == "cut mid-line":
        path.write_text("".join(lines[:2]) + lines[2][:30])
    else:
        path.write_text("".join(lines).replace('"A_KA": 0.5', '"A_KA": 0.9', 1))
    note = restore_records(tmp_path, records)
    assert note is not None and "rewrote" in note
    assert [json.dumps(r, sort_keys=True) for r in read_records(tmp_path)] == [json.dumps(r, sort_keys=True) for r in records]


def test_records_newer_than_the_checkpoint_are_dropped_without_a_note(tmp_path):
    records = [record(task) for task in range(-1, 3)]
    for item in records:
        append_record(tmp_path, item)
    assert restore_records(tmp_path, records[:2]) is None
    assert len(read_records(tmp_path)) == 2


def test_a_damaged_results_file_is_one_line(tmp_path):
    (tmp_path / RESULTS_FILE).write_text('{"task": -1}\n{"task": 0, "st')
    with pytest.raises(FomoError, match=r"line 1 is not an evaluation record \(no 'step'\)"):
        read_records(tmp_path)
    (tmp_path / RESULTS_FILE).write_bytes(b"\xff\xfe")
    with pytest.raises(FomoError, match="not UTF-8"):
        read_records(tmp_path)
