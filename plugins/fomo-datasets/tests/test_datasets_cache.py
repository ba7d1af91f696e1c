"""Decoding, the content-keyed memory-mapped cache and the sample set it backs."""

from __future__ import annotations

import os
import struct
import time
import zlib

import numpy as np
import pytest
import torch
from fomo_datasets import cache as cache_module
from fomo_datasets.cache import ImageCache, MemmapSampleSet, content_key, file_jobs, file_signature
from fomo_datasets.decoding import UnreadableImage, check_image, decode_image, ordered_map
from fomo_datasets.testing import corrupt, save_picture
from PIL import Image


def test_decode_crops_the_centre_square_and_resizes(tmp_path):
    # a wide image: left third red, middle third green, right third blue -> the centre square is green
    pixels = np.zeros((30, 90, 3), dtype=np.uint8)
    pixels[:, :30] = (255, 0, 0)
    pixels[:, 30:60] = (0, 255, 0)
    pixels[:, 60:] = (0, 0, 255)
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    decoded = decode_image(tmp_path / "wide.png", 8)
    assert decoded.shape == (3, 8, 8) and decoded.dtype == np.uint8
    inner = decoded[:, :, 1:-1]  # bicubic weights reach a pixel beyond the crop at the borders
    assert (inner[1] == 255).all() and (inner[0] == 0).all() and (inner[2] == 0).all()
    # grey and palette images become RGB; bytes decode like files
    Image.fromarray(np.full((10, 10), 128, dtype=np.uint8)).save(tmp_path / "grey.png")
    assert decode_image(tmp_path / "grey.png", 4).shape == (3, 4, 4)
    assert (decode_image((tmp_path / "wide.png").read_bytes(), 8) == decoded).all()


def test_unreadable_images_say_why(tmp_path):
    save_picture(tmp_path / "cut.jpg", (10, 20, 30), 0)
    corrupt(tmp_path / "cut.jpg", "truncate")
    (tmp_path / "text.jpg").write_text("not an image")
    cases = [(tmp_path / "cut.jpg", "(?i)truncated"), (tmp_path / "text.jpg", "cannot identify"), (tmp_path / "none.jpg", "missing")]
    for path, reason in cases:
        with pytest.raises(UnreadableImage, match=reason):
            decode_image(path, 8)


def test_ordered_map_keeps_input_order_with_many_threads():
    delays = [0.002 * (i % 5) for i in range(50)]

    def slow_square(i: int) -> int:
        time.sleep(delays[i])
        return i * i

    assert list(ordered_map(slow_square, range(50), workers=4, window=2)) == [i * i for i in range(50)]


def test_cache_decodes_once_and_keys_on_content(tmp_path, monkeypatch):
    paths = [save_picture(tmp_path / f"{i}.jpg", (40 * i, 10, 10), i) for i in range(5)]
    corrupt(paths[2])
    cache = ImageCache(tmp_path / "cache")
    key = content_key(files=[file_signature(p) for p in paths], size=8)
    built = cache.get_or_build(key, file_jobs(paths), 8, workers=2, label="test")
    assert built.images.shape == (4, 3, 8, 8) and built.kept.tolist() == [0, 1, 3, 4] and built.total == 5
    assert built.skipped[0][0] == str(paths[2]) and "cannot identify" in built.skipped[0][1]
    assert isinstance(built.images, np.memmap)

    # a second build with the same key reads the entry: nothing is decoded
    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(cache_module, "decode_image", no_decoding)
    again = cache.get_or_build(key, file_jobs(paths), 8, workers=2, label="test")
    assert (np.asarray(again.images) == np.asarray(built.images)).all() and again.skipped == built.skipped

    # an edited file changes the key; a damaged entry is rebuilt
    stat = paths[0].stat()
    os.utime(paths[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert content_key(files=[file_signature(p) for p in paths], size=8) != key
    monkeypatch.undo()
    (cache.root / key / "images.u8").write_bytes(b"short")
    assert cache.load(key, 8) is None
    assert cache.get_or_build(key, file_jobs(paths), 8, workers=1, label="test").images.shape == (4, 3, 8, 8)
    assert not [p for p in cache.root.iterdir() if p.name.endswith(".tmp")]


def test_an_entry_another_process_completes_meanwhile_is_kept_not_rebuilt(tmp_path, monkeypatch):
    """Two processes (two test workers) building the same entry at once: the one that finds the entry completed after
    its first look keeps it (it never removes a complete entry as damaged) and decodes nothing."""
    paths = [save_picture(tmp_path / f"{i}.jpg", (40 * i, 10, 10), i) for i in range(3)]
    key = content_key(files=[file_signature(p) for p in paths], size=8)
    other, mine = ImageCache(tmp_path / "cache"), ImageCache(tmp_path / "cache")
    first_look = mine.load

    def completed_by_the_other_process_meanwhile(*args, **kwargs):
        monkeypatch.setattr(mine, "load", first_look)
        other.get_or_build(key, file_jobs(paths), 8, workers=1, label="other")
        monkeypatch.setattr(cache_module, "decode_image", lambda *args, **kwargs: pytest.fail("decoded again"))
        return None  # this process looked just before the other one's rename

    monkeypatch.setattr(mine, "load", completed_by_the_other_process_meanwhile)
    kept = mine.get_or_build(key, file_jobs(paths), 8, workers=1, label="mine")
    assert kept.images.shape == (3, 3, 8, 8) and (np.asarray(kept.images) == np.asarray(other.load(key, 8).images)).all()
    assert [p.name for p in (tmp_path / "cache" / "fomo-datasets").iterdir()] == [key]


def test_memmap_sample_set_serves_images_captions_and_a_fingerprint(tmp_path):
    images = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.uint8, shape=(4, 3, 2, 2))
    images[:] = np.arange(4, dtype=np.uint8)[:, None, None, None]
    captions = [["a"], ["b", "c"], ["d"], ["e"]]
    samples = MemmapSampleSet(images, torch.tensor([0, 1, 1, -1]), captions, key="k")
    batch = samples.images(torch.tensor([3, 1]))
    assert batch.dtype == torch.uint8 and batch[:, 0, 0, 0].tolist() == [3, 1]
    generator = torch.Generator().manual_seed(0)
    drawn = {samples.captions(torch.tensor([1]), generator)[0] for _ in range(30)}
    assert drawn == {"b", "c"}
    other = MemmapSampleSet(images, torch.tensor([0, 1, 1, -1]), [["a"], ["b"], ["d"], ["e"]], key="k")
    assert samples.fingerprint() == MemmapSampleSet(images, samples.labels, captions, key="k").fingerprint()
    assert samples.fingerprint() != other.fingerprint()
    with pytest.raises(ValueError, match="at least one caption"):
        MemmapSampleSet(images, samples.labels, [["a"], [], ["d"], ["e"]], key="k")


def test_memmap_sample_set_pickles_as_its_file_not_its_pixels(tmp_path):
    import pickle

    paths = [save_picture(tmp_path / f"{n}.png", (10 * n, 50, 200), n) for n in range(6)]
    decoded = ImageCache(tmp_path / "cache").get_or_build("entry", file_jobs(paths), 32, 1, "pickled")
    samples = MemmapSampleSet(decoded.images, torch.zeros(6, dtype=torch.long), [["a"]] * 6, "entry")
    data = pickle.dumps(samples)
    assert len(data) < 6 * 3 * 32 * 32
    copy = pickle.loads(data)
    assert torch.equal(copy.images(torch.arange(6)), samples.images(torch.arange(6))) and copy.fingerprint() == samples.fingerprint()


def sixteen_bit_png(pixels: np.ndarray) -> bytes:
    """A 16-bit PNG (greyscale ``[H, W]`` or RGB ``[H, W, 3]``), written by hand: Pillow writes only the greyscale kind."""
    height, width = pixels.shape[:2]
    colour_type = 0 if pixels.ndim == 2 else 2
    rows = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def test_sixteen_bit_images_decode_to_their_pixels_and_deeper_ones_are_refused_by_name(tmp_path):
    ramp = (np.arange(16 * 16, dtype=np.uint32).reshape(16, 16) * 250).astype(np.uint16)  # 0 .. 63750
    expected = (ramp >> 8).astype(np.uint8)
    grey = decode_image(sixteen_bit_png(ramp), 16)
    assert (grey == expected).all()  # Pillow's own conversion clips everything above 255 to white
    colour = decode_image(sixteen_bit_png(np.stack([ramp, ramp // 2, 65535 - ramp], axis=-1)), 16)
    assert (colour[0] == expected).all() and (colour[1] == (ramp // 2 >> 8)).all() and (colour[2] == ((65535 - ramp) >> 8)).all()
    Image.fromarray(ramp).save(tmp_path / "grey16.png")  # Pillow's I;16 file decodes the same
    assert (decode_image(tmp_path / "grey16.png", 16) == grey).all()
    Image.fromarray(ramp.astype(np.float32)).save(tmp_path / "float.tiff")
    with pytest.raises(UnreadableImage, match=r"^32-bit float pixels \(mode F\) are not supported; convert the image to 8 or 16 bits$"):
        decode_image(tmp_path / "float.tiff", 16)
    with pytest.raises(UnreadableImage, match="32-bit float pixels"):
        check_image(tmp_path / "float.tiff")  # refused by the header check of a streamed set too
    check_image(tmp_path / "grey16.png")
