"""The DACON AI Yangjae Hub SR competition's data (write-up 000, notebook 03): 512 px LR -> 2048 px HR.

Layout under the data root (data/README.md, section "DACON SR", ``#dacon-sr``)::

    train/lr/*.png    512 x 512 inputs
    train/hr/*.png    2048 x 2048 targets, same names
    test/lr/*.png     test inputs
    test/hr/*.png     optional (kept by the organisers; the miniature has it)

:func:`dacon_sr_paths` finds the folders; :func:`make_dacon_sr_miniature` writes a small copy of the
layout from the bundled photos (what notebook 03 and ``labkit train 03`` use without a ``data_root``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from labkit.data.degrade import bicubic_downsample
from labkit.data.pairing import PathLike, as_float_image, check_scale, see
from labkit.data.sr import sr_pairs
from labkit.io import write_image

__all__ = ["dacon_sr_paths", "make_dacon_sr_miniature"]


def dacon_sr_paths(root: PathLike) -> dict[str, Path]:
    """The folders of the DACON AI Yangjae Hub SR data (write-up 000) under ``root``.

    Layout (data/README.md): ``train/lr/*.png`` (512 x 512), ``train/hr/*.png`` (2048 x 2048, same
    names), ``test/lr/*.png``; ``test/hr/`` is optional (the organisers kept it; a local copy, such
    as the miniature the notebook builds from the bundled photos, enables scoring).

    Returns:
        ``{'train_lr', 'train_hr', 'test_lr'}`` and ``'test_hr'`` when present, as Paths.

    Raises:
        FileNotFoundError: ``root`` or a required folder is missing (the message names it and the
            expected layout).
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"DACON SR data root not found: '{root}' ({see('dacon-sr')})")
    out = {"train_lr": root / "train" / "lr", "train_hr": root / "train" / "hr", "test_lr": root / "test" / "lr"}
    missing = [str(p) for p in out.values() if not p.is_dir()]
    if missing:
        raise FileNotFoundError(
            f"DACON SR layout incomplete under '{root}': missing {', '.join(missing)} "
            f"(expected train/lr/*.png, train/hr/*.png with the same names, test/lr/*.png; {see('dacon-sr')})"
        )
    if (root / "test" / "hr").is_dir():
        out["test_hr"] = root / "test" / "hr"
    return out


def make_dacon_sr_miniature(
    root: PathLike,
    train: Sequence[tuple[str, np.ndarray]],
    test: Sequence[tuple[str, np.ndarray]],
    *,
    scale: int = 4,
    hr_size: int = 256,
    crops_per_side: int = 3,
) -> Path:
    """Write a miniature of the DACON SR layout (:func:`dacon_sr_paths`) from in-memory photos.

    Each training photo gives ``crops_per_side x crops_per_side`` evenly spaced HR crops of
    ``hr_size`` px (every photo weighs the same), written as ``train/hr/<name>_<i><j>.png`` with
    their MATLAB-bicubic LR in ``train/lr/``; each test photo is mod-cropped to ``scale`` and
    written to ``test/hr/`` with its LR in ``test/lr/`` (the organisers kept the test HR; the
    miniature keeps it so that the test set can be scored). Notebook 03 and ``labkit train 03``
    use it when no ``data_root`` is given.

    Args:
        root: folder to fill (created; existing files are replaced atomically).
        train, test: ``[(name, HWC RGB array, float [0, 1] or uint8), ...]``, e.g.
            ``labkit.data.sample.sample_images('train')``.
        scale: HR / LR factor. hr_size: HR crop side in px, a multiple of ``scale``.
        crops_per_side: crops along each axis of a training photo (>= 1).

    Returns:
        ``root`` as a Path.

    Raises:
        ValueError: ``hr_size`` not a positive multiple of ``scale``, ``crops_per_side < 1``, or a
            training photo smaller than ``hr_size`` (named).
    """
    scale = check_scale(scale)
    if int(hr_size) < scale or int(hr_size) % scale:
        raise ValueError(f"hr_size must be a positive multiple of scale={scale}, got {hr_size}")
    if int(crops_per_side) < 1:
        raise ValueError(f"crops_per_side must be >= 1, got {crops_per_side}")
    root, hr, k = Path(root), int(hr_size), int(crops_per_side)
    for name, img in train:
        img = as_float_image(img, f"training photo {name!r}")
        if img.shape[0] < hr or img.shape[1] < hr:
            raise ValueError(f"training photo {name!r} is {img.shape[1]}x{img.shape[0]}, smaller than hr_size={hr}")
        ys = np.linspace(0, img.shape[0] - hr, k).round().astype(int)
        xs = np.linspace(0, img.shape[1] - hr, k).round().astype(int)
        for i, y in enumerate(ys):
            for j, x in enumerate(xs):
                crop = img[y:y + hr, x:x + hr]
                write_image(root / "train" / "hr" / f"{name}_{i}{j}.png", crop)
                write_image(root / "train" / "lr" / f"{name}_{i}{j}.png", bicubic_downsample(crop, scale))
    for name, lq, gt in sr_pairs(test, scale):
        write_image(root / "test" / "lr" / f"{name}.png", lq)
        write_image(root / "test" / "hr" / f"{name}.png", gt)
    return root
