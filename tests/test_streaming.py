"""ChunkedSRDataset: every tile once per epoch, LR = crop of the whole-image bicubic LR, chunk-local
shuffling reproducible with torch.manual_seed, DataLoader workers, errors, and bounded memory."""

from __future__ import annotations

import gc
import tracemalloc
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from labkit.data.degrade import bicubic_downsample, crop_to_multiple
from labkit.data.streaming import ChunkedSRDataset
from labkit.io import read_image, write_image

SCALE, GT, CHUNK = 2, 32, 3


def write_images(folder: Path, n: int, size=(128, 128), seed: int = 0, sizes: dict | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        h, w = (sizes or {}).get(i, size)
        # smooth-ish content plus noise, uint8 (an 8-bit PNG round-trips exactly)
        yy, xx = np.mgrid[0:h, 0:w]
        base = (np.sin(yy / 7.0 + i)[..., None] * 60 + np.cos(xx / 5.0)[..., None] * 60 + 128)
        img = np.clip(base + rng.integers(-40, 40, (h, w, 3)), 0, 255).astype(np.uint8)
        write_image(folder / f"img_{i:03d}.png", img)
    return folder


@pytest.fixture(scope="module")
def folder12(tmp_path_factory) -> Path:
    # image 4 is 130x97: cropped to 130x96 -> 4x3 tiles; image 7 (20x40) is smaller than a tile.
    return write_images(tmp_path_factory.mktemp("hr12"), 12, sizes={4: (130, 97), 7: (20, 40)})


def expected_tiles(folder: Path) -> dict[str, tuple[int, int, int]]:
    """name -> (image index, y, x) from the documented tiling (grid from the top-left corner)."""
    out = {}
    for i, p in enumerate(sorted(folder.glob("*.png"))):
        h, w = read_image(p).shape[:2]
        h, w = h - h % SCALE, w - w % SCALE
        for r in range(h // GT):
            for c in range(w // GT):
                out[f"{p.stem}_y{r * GT}_x{c * GT}"] = (i, r * GT, c * GT)
    return out


def names_of(ds) -> list[str]:
    return [item["name"] for item in ds]


def test_every_tile_once_with_correct_shapes_and_pixels(folder12):
    ds = ChunkedSRDataset(folder12, SCALE, GT, CHUNK)
    exp = expected_tiles(folder12)
    assert len(exp) == 10 * 16 + 12 + 0 and len(ds) == len(exp)
    files = sorted(folder12.glob("*.png"))
    whole = {}
    seen = Counter()
    for item in ds:
        name = item["name"]
        seen[name] += 1
        i, y, x = exp[name]
        if i not in whole:
            gt_img = crop_to_multiple(read_image(files[i]), SCALE)
            whole[i] = (gt_img, np.clip(bicubic_downsample(gt_img, SCALE), 0, 1))
        gt_img, lq_img = whole[i]
        assert item["gt"].shape == (3, GT, GT) and item["lq"].shape == (3, GT // SCALE, GT // SCALE)
        assert item["gt"].dtype == torch.float32 and item["lq"].dtype == torch.float32
        np.testing.assert_array_equal(item["gt"].numpy().transpose(1, 2, 0), gt_img[y : y + GT, x : x + GT])
        ly, lx, ls = y // SCALE, x // SCALE, GT // SCALE
        np.testing.assert_allclose(item["lq"].numpy().transpose(1, 2, 0), lq_img[ly : ly + ls, lx : lx + ls], atol=1e-6)
    assert set(seen) == set(exp) and set(seen.values()) == {1}


def test_lr_tile_is_a_crop_of_the_whole_lr_not_a_resize_of_the_tile(folder12):
    item = next(iter(ChunkedSRDataset(folder12, SCALE, GT, CHUNK, shuffle=False)))
    assert item["name"] == "img_000_y0_x0"
    gt = item["gt"].numpy().transpose(1, 2, 0)
    own = np.clip(bicubic_downsample(gt, SCALE), 0, 1)
    lq = item["lq"].numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(lq[:-2, :-2], own[:-2, :-2], atol=1e-5)  # the interior agrees...
    assert np.abs(lq[-1] - own[-1]).max() > 1e-3  # ...the edge next to the neighbouring tile does not


def test_unshuffled_order_is_files_then_row_major(folder12):
    names = names_of(ChunkedSRDataset(folder12, SCALE, GT, CHUNK, shuffle=False))
    assert names == list(expected_tiles(folder12))


def chunk_of(name: str) -> int:
    return int(name.split("_")[1]) // CHUNK


def test_tiles_are_shuffled_within_chunks_and_chunks_stay_together(folder12):
    torch.manual_seed(0)
    names = names_of(ChunkedSRDataset(folder12, SCALE, GT, CHUNK))
    chunks = [chunk_of(n) for n in names]
    # each chunk's tiles form one contiguous run: the chunk is finished before the next is read
    runs = [c for j, c in enumerate(chunks) if j == 0 or c != chunks[j - 1]]
    assert sorted(runs) == [0, 1, 2, 3]
    assert runs != [0, 1, 2, 3] or names != list(expected_tiles(folder12))
    # within the first chunk, tiles of its images are interleaved (not image by image)
    first = [n.split("_y")[0] for n, c in zip(names, chunks) if c == chunks[0]]
    assert sum(a != b for a, b in zip(first, first[1:])) > len(set(first))


def test_order_is_reproducible_with_manual_seed_and_changes_per_epoch(folder12):
    ds = ChunkedSRDataset(folder12, SCALE, GT, CHUNK)
    torch.manual_seed(123)
    a1, a2 = names_of(ds), names_of(ds)
    torch.manual_seed(123)
    b1 = names_of(ds)
    torch.manual_seed(7)
    c1 = names_of(ds)
    assert a1 == b1 and a1 != a2 and a1 != c1
    assert sorted(a1) == sorted(a2) == sorted(c1)


def test_order_ignores_rng_use_between_items(folder12):
    ds = ChunkedSRDataset(folder12, SCALE, GT, CHUNK)
    torch.manual_seed(5)
    plain = names_of(ds)
    torch.manual_seed(5)
    busy = []
    for item in ds:
        torch.rand(3)  # e.g. dropout in the training step
        busy.append(item["name"])
    assert busy == plain


def test_shuffle_files_regroups_chunks(folder12):
    torch.manual_seed(0)
    ds = ChunkedSRDataset(folder12, SCALE, GT, CHUNK, shuffle_files=True)
    names = names_of(ds)
    assert sorted(names) == sorted(expected_tiles(folder12))
    stems = [n.split("_y")[0] for n in names]
    # consecutive runs still hold at most CHUNK distinct images each
    groups, current = [], []
    for s in stems:
        if s not in current and len(set(current)) == CHUNK:
            groups.append(set(current))
            current = []
        current.append(s)
    groups.append(set(current))
    assert len(set().union(*groups)) == 11  # img_007 gives no tile
    fixed = [{f"img_{i:03d}" for i in range(k, k + CHUNK)} - {"img_007"} for k in range(0, 12, CHUNK)]
    assert any(g not in fixed for g in groups)  # chunks mixed differently from the fixed folders


def test_dataloader_workers_split_files_without_duplicates(folder12):
    ds = ChunkedSRDataset(folder12, SCALE, GT, CHUNK)

    def run() -> list[str]:
        loader = DataLoader(ds, batch_size=8, num_workers=2)
        out = []
        for batch in loader:
            assert batch["gt"].shape[1:] == (3, GT, GT)
            out += batch["name"]
        return out

    torch.manual_seed(0)
    a = run()
    torch.manual_seed(0)
    b = run()
    assert sorted(a) == sorted(expected_tiles(folder12)) and a == b


def test_augment_is_applied_to_aligned_tiles(folder12):
    flip = lambda lq, gt: (lq[:, ::-1], gt[:, ::-1])  # noqa: E731
    plain = next(iter(ChunkedSRDataset(folder12, SCALE, GT, CHUNK, shuffle=False)))
    aug = next(iter(ChunkedSRDataset(folder12, SCALE, GT, CHUNK, shuffle=False, augment=flip)))
    assert torch.equal(aug["gt"], plain["gt"].flip(-1)) and torch.equal(aug["lq"], plain["lq"].flip(-1))


def test_errors(tmp_path, folder12):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        ChunkedSRDataset(tmp_path / "nowhere", SCALE, GT, CHUNK)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        ChunkedSRDataset(tmp_path / "empty", SCALE, GT, CHUNK)
    with pytest.raises(ValueError, match="chunk_size"):
        ChunkedSRDataset(folder12, SCALE, GT, 0)
    with pytest.raises(ValueError, match="multiple of scale"):
        ChunkedSRDataset(folder12, 2, 33, CHUNK)
    with pytest.raises(ValueError, match="scale"):
        ChunkedSRDataset(folder12, 0, GT, CHUNK)


# ------------------------------------------------------------------------------------------------
# memory: bounded by one chunk, whatever the folder size
# ------------------------------------------------------------------------------------------------


def traced_peak(fn) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_peak_memory_does_not_grow_with_the_folder_while_load_all_does(tmp_path):
    small = write_images(tmp_path / "n6", 6, size=(192, 192), seed=1)
    big = write_images(tmp_path / "n24", 24, size=(192, 192), seed=2)

    def stream(folder: Path) -> None:
        n = 0
        for item in ChunkedSRDataset(folder, SCALE, GT, CHUNK):
            n += item["gt"].shape[0]
        assert n > 0

    def load_all(folder: Path) -> None:  # the naive baseline: every image decoded up front
        images = [read_image(p) for p in sorted(folder.glob("*.png"))]
        assert images

    stream(small)  # warm-up (lazy imports, PIL plugins, caches)
    load_all(small)
    peak_stream_6, peak_stream_24 = traced_peak(lambda: stream(small)), traced_peak(lambda: stream(big))
    peak_all_6, peak_all_24 = traced_peak(lambda: load_all(small)), traced_peak(lambda: load_all(big))
    one_image = 192 * 192 * 3 * 4
    # the measurement can fail: loading everything grows ~4x with 4x the files
    assert peak_all_24 > 3.0 * peak_all_6 and peak_all_24 > 20 * one_image
    # streaming stays at about one chunk
    assert peak_stream_24 < 1.5 * peak_stream_6, (peak_stream_6, peak_stream_24)
    assert peak_stream_24 < peak_all_24 / 2
