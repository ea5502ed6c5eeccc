"""Flare-removal pairs (write-up 001, notebook 04): the LG / DACON flare contest and Flare7K.

:func:`flare_pairs` recognises two layouts under a data root:

- the contest (DACON "camera image quality improvement", 2021): ``train.csv`` (``img_id, input_img,
  label_img``) naming files in ``train_input_img/`` and ``train_label_img/`` (data/README.md, section
  "LG flare contest", ``#lg-flare-contest``);
- Flare7K-style pairs: ``input/input_000000.png`` + ``gt/gt_000000.png`` (section "Flare7K", ``#flare7k``).

:class:`FlarePairDataset` reads the pairs (paths or arrays) as whole images. Synthetic flare for the
bundled photos is :func:`labkit.data.flare_synth.add_flare`; 001's k-fold split is
:func:`labkit.data.splitting.kfold_split`.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from torch.utils.data import Dataset

from labkit.data.pairing import Augment, PathLike, apply_augment, as_float_image, listing, see, to_item
from labkit.io import list_images, read_image

__all__ = ["flare_pairs", "FlarePairDataset"]


def _flare7k_keys(folder: Path, prefix: str) -> dict[str, Path]:
    """Pairing key -> file: the stem without a leading ``prefix`` (Flare7K's ``input_`` / ``gt_``)."""
    out: dict[str, Path] = {}
    for p in list_images(folder):
        key = p.stem[len(prefix):] if p.stem.startswith(prefix) else p.stem
        if key in out:
            raise ValueError(f"'{folder}' holds two images with the key {key!r}: {out[key].name}, {p.name}")
        out[key] = p
    return out


def flare_pairs(root: PathLike, csv_name: str = "train.csv") -> list[tuple[str, Path, Path]]:
    """The (input, target) image pairs of a flare-removal dataset folder.

    Two layouts are recognised:

    - the contest of write-up 001 (DACON "camera image quality improvement", 2021; 3264 x 2448
      photos): ``root/train.csv`` with columns ``img_id, input_img, label_img`` naming files in
      ``root/train_input_img/`` and ``root/train_label_img/``;
    - Flare7K-style pairs (e.g. Flare7K's ``test_data/real``): ``root/input/`` and ``root/gt/``
      paired by file stem, a leading ``input_`` / ``gt_`` dropped (Flare7K names them
      ``input/input_000000.png`` and ``gt/gt_000000.png``; the pair's name is then ``000000``).

    Args:
        root: the dataset folder.
        csv_name: the contest's CSV file name inside ``root``.

    Returns:
        ``[(name, input_path, target_path), ...]`` in CSV order (or by name), ready for
        :func:`labkit.data.patch_export.make_patch_pairs`.

    Raises:
        FileNotFoundError: ``root`` missing, neither layout found (says what was looked for), or a
            file named in the CSV missing (named, with its row).
        ValueError: a CSV without the needed columns, inputs and targets that do not pair (the
            first orphan and the partner expected for it named), or an empty dataset.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"flare dataset folder not found: {root} ({see('lg-flare-contest')})")
    csv_path = root / csv_name
    if csv_path.is_file():
        in_dir, gt_dir = root / "train_input_img", root / "train_label_img"
        pairs = []
        with csv_path.open(newline="") as f:
            reader = csv.DictReader(f)
            need = {"input_img", "label_img"}
            if not need <= set(reader.fieldnames or ()):
                raise ValueError(f"{csv_path}: needs columns img_id,input_img,label_img (img_id optional), has "
                                 f"{reader.fieldnames} ({see('lg-flare-contest')})")
            for row_no, row in enumerate(reader, start=2):
                lq, gt = in_dir / row["input_img"], gt_dir / row["label_img"]
                for p in (lq, gt):
                    if not p.is_file():
                        raise FileNotFoundError(
                            f"{csv_path} line {row_no}: file not found: {p} (input_img names a file in train_input_img/, "
                            f"label_img one in train_label_img/; {see('lg-flare-contest')})")
                name = row.get("img_id") or Path(row["input_img"]).stem
                pairs.append((str(name), lq, gt))
    elif (root / "input").is_dir() and (root / "gt").is_dir():
        lq_files = _flare7k_keys(root / "input", "input_")
        gt_files = _flare7k_keys(root / "gt", "gt_")
        for have, other, prefix in ((lq_files, root / "gt", "gt_"), (gt_files, root / "input", "input_")):
            orphans = sorted(k for k in have if k not in (gt_files if have is lq_files else lq_files))
            if orphans:
                k = orphans[0]
                raise ValueError(
                    f"{root}: input/ and gt/ do not pair by name: {have[k]} has no partner, expected "
                    f"{other / (prefix + k)}.png or {other / k}.png ({len(orphans)} unpaired: "
                    f"{listing(orphans)}; {see('flare7k')})")
        pairs = [(key, lq_files[key], gt_files[key]) for key in sorted(gt_files)]
    else:
        raise FileNotFoundError(
            f"{root}: no flare dataset layout found; expected {csv_name} with train_input_img/ and "
            f"train_label_img/ (the 001 contest, {see('lg-flare-contest')}) or input/ and gt/ (Flare7K style, "
            f"{see('flare7k')})")
    if not pairs:
        raise ValueError(f"{root}: the dataset is empty")
    return pairs


class FlarePairDataset(Dataset):
    """Whole-image flare pairs, from :func:`flare_pairs` (paths) or arrays, as ``{'lq', 'gt', 'name'}``.

    Args:
        pairs: ``[(name, input, target), ...]`` with paths or HWC arrays (float [0, 1] / uint8).
        augment: optional paired ``(lq, gt) -> (lq, gt)``.

    Raises:
        ValueError: empty ``pairs``; when an item is read, input and target of different shapes
            (both named).
    """

    def __init__(self, pairs: Sequence[tuple[str, object, object]], augment: Optional[Augment] = None) -> None:
        if len(pairs) == 0:
            raise ValueError("FlarePairDataset: no pairs given")
        self.pairs = list(pairs)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        name, lq, gt = self.pairs[index]
        lq_img = read_image(lq) if not isinstance(lq, np.ndarray) else as_float_image(lq, f"{name} input")
        gt_img = read_image(gt) if not isinstance(gt, np.ndarray) else as_float_image(gt, f"{name} target")
        if lq_img.shape != gt_img.shape:
            raise ValueError(f"pair {name!r}: input {lq} {lq_img.shape} and target {gt} {gt_img.shape} differ")
        lq_img, gt_img = apply_augment(self.augment, lq_img, gt_img, 1, str(name))
        return to_item(lq_img, gt_img, str(name))
