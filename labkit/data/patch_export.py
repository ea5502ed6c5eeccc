"""Patch export to disk: training patches cut once and written as PNG pairs (or returned as arrays).

- :func:`export_grid_patches`: 000's 4 x 4 grid of every (lq, gt) pair, written as
  ``out_root/lq/<name>_<r><c>.png`` and ``out_root/gt/<name>_<r><c>.png`` (read back with
  :class:`labkit.data.pairing.PairedFolderDataset`; data/README.md, section "Paired folders",
  ``#paired-folders``);
- :func:`make_patch_pairs`: 001's ``make_patch.py`` (padded windows kept by HSV Value + larger
  patches resized down), in parallel processes, written as ``save_dir/input/<name>_<size>_<y>_<x>.png``
  and ``save_dir/label/...`` or returned in memory; the inputs usually come from
  :func:`labkit.data.flare.flare_pairs` (section "LG flare contest", ``#lg-flare-contest``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from labkit.data.patch_select import V_MIN_001, hsv_value_select, multi_scale_patches, patches_from_boxes
from labkit.data.tiling import grid_split, padded_patches
from labkit.io import read_image, write_image

__all__ = ["export_grid_patches", "export_random_patches", "make_patch_pairs"]


def export_grid_patches(
    pairs: Sequence[tuple[str, np.ndarray, np.ndarray]] | Sequence[tuple[str, str, str]],
    out_root: str | os.PathLike,
    *,
    rows: int = 4,
    cols: int = 4,
    scale: int = 4,
) -> tuple[Path, Path]:
    """Cut every (lq, gt) pair into ``rows x cols`` aligned tiles and write them as PNG files.

    000's training set: 1640 pairs of 512 px LR / 2048 px HR -> 26,240 patch pairs of 128 / 512
    px, written once so that an epoch reads small files instead of decoding 2048 px images. The
    tiles of one pair are ``<name>_<r><c>.png`` (row, column) in ``out_root/lq`` and
    ``out_root/gt``; load them with ``labkit.data.pairing.PairedFolderDataset(lq, gt, scale)``.
    Existing files are overwritten (each is written atomically by :func:`labkit.io.write_image`).

    Args:
        pairs: ``(name, lq, gt)`` with HWC arrays (float [0, 1] or uint8), or with image paths
            (read one pair at a time, so memory stays at one pair).
        out_root: folder to create.
        rows, cols: the grid (4 x 4 in 000).
        scale: gt size / lq size; the LR image is cropped bottom/right to a multiple of the grid
            and the GT to the same region.

    Returns:
        ``(out_root/lq, out_root/gt)``.

    Raises:
        ValueError: a pair whose GT is not ``scale`` times its LR (named), or an LR smaller than
            the grid.
    """
    lq_dir, gt_dir = _patch_folders(out_root)
    for name, lq, gt in pairs:
        lq, gt, th, tw = _grid_pair(name, lq, gt, rows, cols, scale)
        lq = lq[:th * rows, :tw * cols]
        gt = gt[:th * rows * scale, :tw * cols * scale]
        for i, (a, b) in enumerate(zip(grid_split(lq, rows, cols), grid_split(gt, rows, cols))):
            r, c = divmod(i, cols)
            write_image(lq_dir / f"{name}_{r}{c}.png", a)
            write_image(gt_dir / f"{name}_{r}{c}.png", b)
    return lq_dir, gt_dir



def export_random_patches(
    pairs: Sequence[tuple[str, np.ndarray, np.ndarray]] | Sequence[tuple[str, str, str]],
    out_root: str | os.PathLike,
    *,
    count: int,
    rows: int = 4,
    cols: int = 4,
    scale: int = 4,
    seed: int = 42,
) -> tuple[Path, Path]:
    """The control of :func:`export_grid_patches`: ``count`` aligned patches per pair at random positions.

    Each patch is the size of one cell of the ``rows x cols`` grid (LR ``h // rows`` x ``w // cols``, GT
    ``scale`` times that); positions are uniform over the LR image, drawn once per pair with
    ``numpy.random.default_rng([seed, index of the pair])``, so patches may overlap and miss parts of the
    image (what 000's non-overlapping grid avoids). Files: ``<name>_r<k>.png`` in ``out_root/lq`` and
    ``out_root/gt``, written atomically.

    Args:
        pairs, out_root, scale: as :func:`export_grid_patches`.
        count: patches per pair (``rows * cols`` for as many as the grid).
        rows, cols: the grid whose cell sets the patch size.
        seed: the draws' seed.

    Returns:
        ``(out_root/lq, out_root/gt)``.

    Raises:
        ValueError: a pair whose GT is not ``scale`` times its LR (named), or an LR smaller than the grid.
    """
    lq_dir, gt_dir = _patch_folders(out_root)
    for i, (name, lq, gt) in enumerate(pairs):
        lq, gt, th, tw = _grid_pair(name, lq, gt, rows, cols, scale)
        (lh, lw) = lq.shape[:2]
        rng = np.random.default_rng([seed, i])
        for k in range(count):
            y, x = int(rng.integers(0, lh - th + 1)), int(rng.integers(0, lw - tw + 1))
            write_image(lq_dir / f"{name}_r{k:02d}.png", lq[y:y + th, x:x + tw])
            write_image(gt_dir / f"{name}_r{k:02d}.png", gt[y * scale:(y + th) * scale, x * scale:(x + tw) * scale])
    return lq_dir, gt_dir


def _patch_folders(out_root: str | os.PathLike) -> tuple[Path, Path]:
    """``out_root/lq`` and ``out_root/gt``, created."""
    lq_dir, gt_dir = Path(out_root) / "lq", Path(out_root) / "gt"
    lq_dir.mkdir(parents=True, exist_ok=True)
    gt_dir.mkdir(parents=True, exist_ok=True)
    return lq_dir, gt_dir


def _grid_pair(name: str, lq, gt, rows: int, cols: int, scale: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """``(lq, gt, cell height, cell width)`` of one pair (read when given as paths), checked: GT = ``scale`` x LR,
    and the LR holds at least one ``rows x cols`` grid (ValueError naming the pair otherwise)."""
    if isinstance(lq, (str, os.PathLike)):
        lq, gt = read_image(lq), read_image(gt)
    (lh, lw), (gh, gw) = lq.shape[:2], gt.shape[:2]
    if (gh, gw) != (lh * scale, lw * scale):
        raise ValueError(f"pair {name!r}: GT {gh}x{gw} is not {scale} x LR {lh}x{lw}")
    th, tw = lh // rows, lw // cols
    if th == 0 or tw == 0:
        raise ValueError(f"pair {name!r}: LR {lh}x{lw} is smaller than a {rows}x{cols} grid")
    return lq, gt, th, tw

def _load_pair_item(item: Sequence, index: int) -> tuple[str, np.ndarray, np.ndarray]:
    if not (isinstance(item, (tuple, list)) and len(item) == 3):
        raise TypeError(f"pairs[{index}]: expected (name, input, target), got {type(item).__name__}")
    name, lq, gt = item
    if not isinstance(lq, np.ndarray) or not isinstance(gt, np.ndarray):
        lq = lq if isinstance(lq, np.ndarray) else read_image(lq)
        gt = gt if isinstance(gt, np.ndarray) else read_image(gt)
    if lq.shape != gt.shape:
        raise ValueError(f"pair {name!r}: input {lq.shape} and target {gt.shape} differ in shape")
    return str(name), lq, gt


def _patch_pair(index: int, item: Sequence, img_size: int, stride: int, v_threshold: int | None, v_min: float,
                larger: tuple[int, ...], max_larger: int | None, seed: int, save_dir: str | None) -> dict:
    """One pair of :func:`make_patch_pairs`; the patches come back stacked (one array per side)."""
    name, lq, gt = _load_pair_item(item, index)
    lq_p, positions, _ = padded_patches(lq, img_size, stride)
    gt_p, _, _ = padded_patches(gt, img_size, stride)
    if v_threshold is None:
        keep = np.ones(len(lq_p), dtype=bool)
        scores = np.zeros(len(lq_p), dtype=np.int64)
    else:
        keep, scores = hsv_value_select(lq_p, threshold=v_threshold, v_min=v_min)
    boxes = [(y, x, img_size) for (y, x), k in zip(positions, keep) if k]
    lq_out, gt_out = list(lq_p[keep]), list(gt_p[keep])
    big = [s for s in larger if s <= min(lq.shape[:2])]
    if big:
        lq_big, big_boxes = multi_scale_patches(lq, big, img_size, 0.5, rng=np.random.default_rng([seed, index]),
                                                max_per_size=max_larger, return_boxes=True)
        lq_out += list(lq_big)  # already resized (resizing the input's boxes again cost a third of the job)
        gt_out += list(patches_from_boxes(gt, big_boxes, img_size))
        boxes += big_boxes
    result = {"name": name, "boxes": boxes, "scores": scores, "n_base": len(positions)}
    if save_dir is None:  # one array per side: a single buffer to send back, not hundreds of small ones
        result["lq"] = np.stack(lq_out) if lq_out else lq_p[:0].copy()
        result["gt"] = np.stack(gt_out) if gt_out else gt_p[:0].copy()
    else:
        files = []
        for (y, x, s), a, b in zip(boxes, lq_out, gt_out):
            stem = f"{name}_{s}_{y}_{x}"
            write_image(Path(save_dir) / "input" / f"{stem}.png", a)
            write_image(Path(save_dir) / "label" / f"{stem}.png", b)
            files.append(stem)
        result["files"] = files
    return result


# what every worker process of make_patch_pairs holds: (pairs, settings), set once by the pool's
# initializer (inherited without copying under the 'fork' start method) instead of being pickled into
# every task; a task is then just an index
_WORKER_STATE: tuple = ((), ())


def _init_patch_worker(pairs: Sequence, settings: tuple) -> None:
    global _WORKER_STATE
    _WORKER_STATE = (pairs, settings)


def _patch_pair_in_worker(index: int, spool: str) -> dict:
    """A worker's pair: the patch arrays go to ``.npy`` files in ``spool`` (memory-backed where
    ``/dev/shm`` exists), which the parent maps, instead of through the result pipe (pickled, copied
    twice more)."""
    pairs, settings = _WORKER_STATE
    result = _patch_pair(index, pairs[index], *settings)
    for side in ("lq", "gt"):
        if side in result:
            path = os.path.join(spool, f"{index}_{side}.npy")
            np.save(path, result[side])
            result[side] = path
    return result


def make_patch_pairs(
    pairs: Sequence[tuple[str, object, object]],
    *,
    img_size: int = 256,
    stride: int = 128,
    v_threshold: int | None = 1000,
    v_min: float = V_MIN_001,
    larger_sizes: Sequence[int] = (),
    max_larger_per_image: int | None = None,
    process_num: int = 1,
    seed: int = 0,
    save_dir: str | None = None,
) -> dict:
    """001's ``make_patch.py``: training patches of (input, target) pairs, in ``process_num`` processes.

    For every pair: zero-padded ``img_size`` windows every ``stride`` pixels
    (:func:`padded_patches`, as the official code), kept when the *input* patch has at least
    ``v_threshold`` pixels with HSV Value above ``v_min`` (:func:`hsv_value_select`; None keeps
    all); then, for each size in ``larger_sizes`` (001: 512 / 768 / 1024), windows of that size
    with stride ``size / 2`` resized down to ``img_size`` (:func:`multi_scale_patches`, not
    filtered, as the official code), at most ``max_larger_per_image`` per size. Input and target
    are cut at the same places.

    Args:
        pairs: ``[(name, input, target), ...]``: HWC arrays (float [0, 1] or uint8) or image
            paths (read in the worker with :func:`labkit.io.read_image`, so only names travel
            between processes).
        img_size, stride: base patch size and stride in pixels (001: 256 / 128).
        v_threshold, v_min: the selection (see :func:`hsv_value_select`).
        larger_sizes: sizes (>= img_size) resized down to ``img_size``.
        max_larger_per_image: cap per size and image (drawn with ``seed``), or None.
        process_num: worker processes (``concurrent.futures.ProcessPoolExecutor``); 1 runs in
            this process. Results are in ``pairs`` order and identical whatever the number. The
            pairs reach the workers once, through the pool's initializer (no copy with the 'fork'
            start method); each image's patches come back as one ``.npy`` file per side in a
            temporary folder (under ``/dev/shm`` where it exists, removed afterwards), not through
            the result pipe: 2 workers then cost ~1.15x the serial CPU time instead of ~1.6x.
        seed: seeds the subsampling of larger patches (per image: ``[seed, index]``).
        save_dir: None returns the patches in memory; a folder writes them as PNG files to
            ``save_dir/input/`` and ``save_dir/label/`` (names ``{name}_{size}_{y}_{x}.png``,
            pairable by :class:`labkit.data.pairing.PairedFolderDataset`) and returns stems.

    Returns:
        dict with ``lq`` and ``gt`` (arrays ``(N, img_size, img_size, C)``; absent with
        ``save_dir``) or ``files`` (stems), ``boxes`` (``(name, y, x, size)`` of every patch,
        in order), ``scores`` (the HSV bright-pixel count of every base window, all images
        concatenated, for histograms), ``n_base`` (base windows before selection) and
        ``n_selected`` (base windows kept).

    Raises:
        ValueError: ``process_num < 1``, bad sizes, input/target of different shapes (named).
        TypeError: a malformed pair.
    """
    if int(process_num) < 1:
        raise ValueError(f"process_num must be >= 1, got {process_num}")
    if any(int(s) < img_size for s in larger_sizes):
        raise ValueError(f"larger_sizes {tuple(larger_sizes)} must all be >= img_size {img_size}")
    if stride < 1 or stride > img_size:
        raise ValueError(f"need 1 <= stride <= img_size, got stride={stride}, img_size={img_size}")
    settings = (int(img_size), int(stride), v_threshold, float(v_min), tuple(int(s) for s in larger_sizes),
                max_larger_per_image, int(seed), None if save_dir is None else str(save_dir))
    pairs = list(pairs)
    if not pairs:
        raise ValueError("make_patch_pairs: no pairs given")
    workers = min(int(process_num), len(pairs))
    if workers == 1:
        results = [_patch_pair(i, item, *settings) for i, item in enumerate(pairs)]
    else:
        shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
        with tempfile.TemporaryDirectory(prefix="labkit_patches_", dir=shm) as spool, \
                ProcessPoolExecutor(max_workers=workers, initializer=_init_patch_worker,
                                    initargs=(pairs, settings)) as pool:
            results = list(pool.map(_patch_pair_in_worker, range(len(pairs)), [spool] * len(pairs)))
            for r in results:
                for side in ("lq", "gt"):
                    if side in r:
                        r[side] = np.load(r[side], mmap_mode="r")
            out = _merge_patch_results(results, img_size, save_dir)
        return out
    return _merge_patch_results(results, img_size, save_dir)


def _merge_patch_results(results: list[dict], img_size: int, save_dir: str | None) -> dict:
    out: dict = {
        "boxes": [(r["name"], y, x, s) for r in results for (y, x, s) in r["boxes"]],
        "scores": np.concatenate([r["scores"] for r in results]),
        "n_base": int(sum(r["n_base"] for r in results)),
        "n_selected": int(sum(sum(1 for b in r["boxes"] if b[2] == img_size) for r in results)),
    }
    if save_dir is None:
        if not any(len(r["lq"]) for r in results):
            raise ValueError("make_patch_pairs: no patch passed the selection; lower v_threshold")
        out["lq"] = np.concatenate([r["lq"] for r in results if len(r["lq"])])
        out["gt"] = np.concatenate([r["gt"] for r in results if len(r["gt"])])
    else:
        out["files"] = [f for r in results for f in r["files"]]
    return out
