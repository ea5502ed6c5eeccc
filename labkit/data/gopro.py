"""GoPro deblurring data (write-up 004, notebook 05), in either on-disk layout.

- flat (the Kaggle "DBlur" copy write-up 004 used): ``train/blur``, ``train/sharp``, ``test/blur``,
  ``test/sharp`` (same file names; ``root`` may also be the folder holding ``Gopro/``);
- official GoPro_Large: ``train/GOPR0372_07_00/blur/000047.png`` + ``.../sharp/000047.png``.

See data/README.md, section "GoPro" (``#gopro``). :func:`gopro_pairs` lists the pairs,
:func:`gopro_splits` makes write-up 004's train / val / test datasets
(:class:`labkit.data.pairing.PairListDataset`, the test set halved by :func:`labkit.data.splitting.half_split`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from torch.utils.data import Dataset, Subset

from labkit.data.pairing import Augment, PairListDataset, PathLike, see
from labkit.data.splitting import half_split
from labkit.io import list_images

__all__ = ["gopro_paths", "gopro_pairs", "gopro_splits"]


def _gopro_root(root: PathLike, split: str) -> Path:
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = Path(root)
    if not (root / split).is_dir() and (root / "Gopro").is_dir():
        root = root / "Gopro"
    return root


def _gopro_sequences(split_dir: Path) -> list[Path]:
    """The per-sequence folders (``GOPR0372_07_00/`` holding ``blur/`` and ``sharp/``) of the official layout."""
    if not split_dir.is_dir() or (split_dir / "blur").is_dir():
        return []
    return sorted(d for d in split_dir.iterdir() if (d / "blur").is_dir() or (d / "sharp").is_dir())


def gopro_paths(root: PathLike, split: str = "train") -> tuple[Path, Path]:
    """``(blur_dir, sharp_dir)`` of GoPro's ``split`` in write-up 004's flat layout.

    Layout under ``root`` (the Kaggle "DBlur" copy the write-up used): ``train/blur``, ``train/sharp``,
    ``test/blur``, ``test/sharp`` (2103 train pairs, 1111 test pairs); ``root`` may also be the
    ``DBlur`` folder holding ``Gopro/``. The official GoPro_Large per-sequence layout
    (``train/GOPR0372_07_00/blur``) has no single folder pair: use :func:`gopro_pairs`.

    Raises:
        ValueError: unknown split. FileNotFoundError: a missing folder (named), also for the
        per-sequence layout (which the message points to :func:`gopro_pairs` for).
    """
    root = _gopro_root(root, split)
    blur, sharp = root / split / "blur", root / split / "sharp"
    for d in (blur, sharp):
        if not d.is_dir():
            seqs = _gopro_sequences(root / split)
            hint = (f"; '{root / split}' holds the official per-sequence layout ({seqs[0].name}/blur ...): use "
                    f"gopro_pairs / gopro_splits" if seqs else "")
            raise FileNotFoundError(f"GoPro folder not found: {d} (expected {split}/blur and {split}/sharp under "
                                    f"'{root}'{hint}; {see('gopro')})")
    return blur, sharp


def gopro_pairs(root: PathLike, split: str = "train") -> list[tuple[str, Path, Path]]:
    """GoPro's ``(name, blur_path, sharp_path)`` pairs of ``split``, in either layout.

    - flat (write-up 004's "DBlur" copy): ``{split}/blur/*.png`` + ``{split}/sharp/*.png`` with the
      same names; ``name`` = the file stem;
    - official GoPro_Large (Nah et al., CVPR 2017): ``{split}/<sequence>/blur/000047.png`` +
      ``{split}/<sequence>/sharp/000047.png``; ``name`` = ``'<sequence>_000047'`` (``blur_gamma/`` is
      not used, as in most deblurring papers).

    ``root`` may also be the folder holding ``Gopro/``. Sorted by sequence, then file name.

    Raises:
        ValueError: unknown split; a blur frame without its sharp partner (both paths named), or
            the reverse. FileNotFoundError: neither layout under ``root`` (what was looked for).
    """
    base = _gopro_root(root, split)
    split_dir = base / split
    seqs = _gopro_sequences(split_dir)
    if not seqs:
        blur, sharp = gopro_paths(root, split)
        groups = [("", blur, sharp)]
    else:
        groups = [(seq.name + "_", seq / "blur", seq / "sharp") for seq in seqs]
    out = []
    for prefix, blur, sharp in groups:
        b_files = {p.name: p for p in list_images(blur)} if blur.is_dir() else {}
        s_files = {p.name: p for p in list_images(sharp)} if sharp.is_dir() else {}
        for have, other in ((b_files, sharp), (s_files, blur)):
            orphans = sorted(set(have) - set(s_files if have is b_files else b_files))
            if orphans:
                raise ValueError(f"GoPro frame {have[orphans[0]]} has no partner: expected {other / orphans[0]} "
                                 f"({len(orphans)} unpaired in '{have[orphans[0]].parent}'; {see('gopro')})")
        out += [(prefix + Path(n).stem, b_files[n], s_files[n]) for n in sorted(b_files)]
    return out


def gopro_splits(root: PathLike, *, gt_size: Optional[int] = 256, augment: Optional[Augment] = None,
                 repeat: int = 1) -> dict[str, Dataset]:
    """GoPro as write-up 004: ``train`` (random ``gt_size`` crops, ``augment``), and the test set split
    half/half into ``val`` and ``test`` (whole frames, no augmentation), via :func:`half_split`.

    Either layout of :func:`gopro_pairs` (flat or the official per-sequence one).

    Returns: ``{'train': PairListDataset, 'val': Subset, 'test': Subset}``; each dataset's ``pairs``
    are ``(blur_path, sharp_path)``.
    """
    def dataset(split: str, **kw) -> PairListDataset:
        pairs = gopro_pairs(root, split)
        return PairListDataset([(b, s) for _, b, s in pairs], names=[n for n, _, _ in pairs], **kw)

    test = dataset("test")
    val_idx, test_idx = half_split(len(test))
    return {"train": dataset("train", gt_size=gt_size, augment=augment, repeat=repeat),
            "val": Subset(test, val_idx), "test": Subset(test, test_idx)}
