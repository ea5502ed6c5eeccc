"""Tiny but exact copies of the real datasets' folder layouts (data/README.md), made on the fly.

Every ``make_<dataset>(root, ...)`` writes, under ``root``, the folders, file names, CSV columns and
array shapes the real download has (data/README.md, one section per dataset), with a few small
pictures cut from the bundled photos (:mod:`labkit.data.sample`) and degraded with the real
degradations of :mod:`labkit.data.degrade` (MATLAB bicubic, synthetic flare, Poisson-Gaussian
noise, trajectory motion blur, inpainting masks), and returns the folder to pass as ``data_root``.
Nothing is committed: tests build them in ``tmp_path`` (``tests/conftest.py`` has one session fixture
per layout), and ``labkit gpu-check`` (:mod:`labkit.gpucheck`) builds full-profile-sized ones in a
temporary folder. Each builds in well under a second.

Images are 8-bit exact (``photo`` rounds to 1/255), so an LR file is exactly the bicubic
downsample of the HR *file*, as in the official releases.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

import numpy as np

from labkit.data.degrade import bicubic_downsample, crop_to_multiple
from labkit.data.flare_synth import add_flare
from labkit.data.masks import inpainting_input, random_mask
from labkit.data.noise_blur import motion_blur, poisson_gaussian_noise, trajectory_kernel
from labkit.data.sample import load_sample
from labkit.io import write_image

__all__ = ["photo", "make_div2k", "make_sr_benchmark", "make_dacon_sr", "make_lg_flare", "make_flare7k",
           "make_sidd_npy", "make_sidd_medium", "make_gopro", "make_dacon_inpainting", "SET5", "SET14"]

#: The bundled photos used, small ones first (the big ``retina`` / ``hubble`` are not needed).
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "ihc", "grace_hopper")
#: The benchmark sets' real file names (EDSR / BasicSR benchmark packs).
SET5 = ("baby", "bird", "butterfly", "head", "woman")
SET14 = ("baboon", "barbara", "bridge", "coastguard", "comic", "face", "flowers", "foreman", "lenna", "man",
         "monarch", "pepper", "ppt3", "zebra")


@lru_cache(maxsize=None)
def _source(name: str, factor: int) -> np.ndarray:
    img = load_sample(name)
    if factor > 1:
        img = bicubic_downsample(crop_to_multiple(img, factor), factor)
    return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.float32) / np.float32(255.0)


def photo(i: int, h: int, w: int) -> np.ndarray:
    """A real-photo crop, float32 (h, w, 3) in [0, 1] with 8-bit exact values; ``i`` picks photo and place.

    Cut from a bundled photo shrunk 4x (so a small crop still shows a whole scene), or 2x / 1x when
    the crop would not fit. Raises ValueError for a size no bundled photo holds.
    """
    for factor in (4, 2, 1):
        for k in range(len(PHOTOS)):
            src = _source(PHOTOS[(i + k) % len(PHOTOS)], factor)
            if src.shape[0] >= h and src.shape[1] >= w:
                top = (i * 7) % (src.shape[0] - h + 1)
                left = (i * 13) % (src.shape[1] - w + 1)
                return np.ascontiguousarray(src[top:top + h, left:left + w])
    raise ValueError(f"no bundled photo is {h}x{w} or larger")


def _lr(hr: np.ndarray, scale: int) -> np.ndarray:
    return np.clip(bicubic_downsample(hr, scale), 0.0, 1.0)


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


# ------------------------------------------------------------------------------------------ SR


def make_div2k(root: Path, *, scale: int = 4, n_train: int = 3, n_valid: int = 2, size: tuple[int, int] = (48, 64),
               short: bool = False) -> Path:
    """DIV2K (data/README.md#div2k): ``DIV2K_{train,valid}_HR/0001.png`` and
    ``DIV2K_{train,valid}_LR_bicubic/X{scale}/0001x{scale}.png`` (valid numbered from 0801, as the
    release). ``short=True``: one split's short form, ``HR/`` + ``LR_bicubic/X{scale}/``. Returns ``root``."""
    root = Path(root)
    splits = [("train", 1, n_train)] if short else [("train", 1, n_train), ("valid", 801, n_valid)]
    for split, first, n in splits:
        hr_dir = root / "HR" if short else root / f"DIV2K_{split}_HR"
        lr_dir = (root / "LR_bicubic" if short else root / f"DIV2K_{split}_LR_bicubic") / f"X{scale}"
        for i in range(n):
            hr = photo(first + i, *size)
            write_image(hr_dir / f"{first + i:04d}.png", hr)
            write_image(lr_dir / f"{first + i:04d}x{scale}.png", _lr(hr, scale))
    return root


def make_sr_benchmark(root: Path, name: str = "Set5", *, scale: int = 4, with_lr: bool = True,
                      sizes: tuple[tuple[int, int], ...] = ((48, 48), (51, 66), (44, 60))) -> Path:
    """An SR benchmark set as EDSR's benchmark pack (data/README.md#sr-benchmarks):
    ``<name>/HR/baby.png`` and, with ``with_lr``, ``<name>/LR_bicubic/X{scale}/babyx{scale}.png`` made
    from the HR mod-cropped to a multiple of ``scale`` (some HR sizes are not multiples, as in Set14).
    Set5 / Set14 get their real file names. Returns ``root/name``."""
    folder = Path(root) / name
    names = {"set5": SET5, "set14": SET14[:4]}.get(name.lower(), tuple(f"img_{i:03d}" for i in range(1, 4)))
    for i, stem in enumerate(names):
        hr = photo(20 + i, *sizes[i % len(sizes)])
        write_image(folder / "HR" / f"{stem}.png", hr)
        if with_lr:
            write_image(folder / "LR_bicubic" / f"X{scale}" / f"{stem}x{scale}.png", _lr(crop_to_multiple(hr, scale), scale))
    return folder


def make_dacon_sr(root: Path, *, scale: int = 4, n_train: int = 3, n_test: int = 2, lr_size: int = 16,
                  with_test_hr: bool = False) -> Path:
    """The DACON AI Yangjae Hub SR layout (data/README.md#dacon-sr; 512 -> 2048 there):
    ``train/lr/*.png``, ``train/hr/*.png`` (same names, ``scale`` x larger), ``test/lr/*.png``
    (``test/hr/`` only with ``with_test_hr``). Returns ``root``."""
    root = Path(root)
    hr_size = lr_size * scale
    for split, first, n in (("train", 0, n_train), ("test", 20000, n_test)):
        for i in range(n):
            hr = photo(40 + first // 1000 + i, hr_size, hr_size)
            write_image(root / split / "lr" / f"{first + i:04d}.png", _lr(hr, scale))
            if split == "train" or with_test_hr:
                write_image(root / split / "hr" / f"{first + i:04d}.png", hr)
    return root


# ------------------------------------------------------------------------------------------ flare


def make_lg_flare(root: Path, *, n_train: int = 3, n_test: int = 2, size: tuple[int, int] = (48, 64)) -> Path:
    """The LG / DACON light-scatter contest (data/README.md#lg-flare-contest): ``train.csv``
    (``img_id,input_img,label_img``), ``train_input_img/train_input_10000.png`` (flared by
    ``add_flare``), ``train_label_img/train_label_10000.png``, ``test_input_img/test_input_20000.png``.
    Returns ``root``."""
    root = Path(root)
    rows = []
    for i in range(n_train):
        gt = photo(60 + i, *size)
        lq = add_flare(gt, 60 + i)[0]
        iid = 10000 + i
        write_image(root / "train_input_img" / f"train_input_{iid}.png", lq)
        write_image(root / "train_label_img" / f"train_label_{iid}.png", gt)
        rows.append([iid, f"train_input_{iid}.png", f"train_label_{iid}.png"])
    _write_csv(root / "train.csv", ["img_id", "input_img", "label_img"], rows)
    for i in range(n_test):
        write_image(root / "test_input_img" / f"test_input_{20000 + i}.png", add_flare(photo(70 + i, *size), 70 + i)[0])
    return root


def make_flare7k(root: Path, *, n: int = 3, size: tuple[int, int] = (48, 64)) -> Path:
    """Flare7K's real test pairs (data/README.md#flare7k; ``test_data/real``): ``input/input_000000.png``,
    ``gt/gt_000000.png`` and ``mask/mask_000000.png`` (Flare7K++'s flare masks, unused by the loader).
    Returns ``root``."""
    root = Path(root)
    for i in range(n):
        gt = photo(80 + i, *size)
        lq, layer = add_flare(gt, 80 + i)
        write_image(root / "input" / f"input_{i:06d}.png", lq)
        write_image(root / "gt" / f"gt_{i:06d}.png", gt)
        write_image(root / "mask" / f"mask_{i:06d}.png", (layer.max(axis=2) > 0.05).astype(np.float32))
    return root


# ------------------------------------------------------------------------------------------ SIDD, GoPro


def _noisy(gt: np.ndarray, seed: int) -> np.ndarray:
    return poisson_gaussian_noise(gt, shot_noise=0.01, read_noise=0.02, seed=seed)


def make_sidd_npy(root: Path, *, n: int = 4, size: int = 256) -> Path:
    """Write-up 004's SIDD arrays (data/README.md#sidd-arrays): ``noisy_images_{size}.npy`` and
    ``gt_images_{size}.npy``, each uint8 (n, size, size, 3) RGB, pair i = row i (Poisson-Gaussian
    noise). Returns ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    gt = np.stack([photo(100 + i, size, size) for i in range(n)])
    noisy = np.stack([_noisy(g, 100 + i) for i, g in enumerate(gt)])
    to8 = lambda a: np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)  # noqa: E731
    np.save(root / f"noisy_images_{size}.npy", to8(noisy))
    np.save(root / f"gt_images_{size}.npy", to8(gt))
    return root


#: Real SIDD-Medium scene folder names (scene_instance_camera_ISO_shutter_temperature_brightness).
SIDD_SCENES = ("0001_001_S6_00100_00060_3200_L", "0002_001_S6_00100_00020_3200_N", "0003_001_S6_00100_00060_3200_H")


def make_sidd_medium(root: Path, *, scenes: int = 2, size: tuple[int, int] = (48, 64), flat: bool = False) -> Path:
    """SIDD-Medium sRGB (data/README.md#sidd-medium): the official
    ``SIDD_Medium_Srgb/Data/<scene>/0001_NOISY_SRGB_010.PNG`` + ``0001_GT_SRGB_010.PNG`` (and ``_011``),
    returning the ``SIDD_Medium_Srgb`` folder; or ``flat=True``: ``NOISY/`` + ``GT/`` with the same
    names, returning ``root``."""
    root = Path(root)
    base = root if flat else root / "SIDD_Medium_Srgb"
    for k, scene in enumerate(SIDD_SCENES[:scenes]):
        for shot in ("010", "011"):
            gt = photo(120 + 2 * k + int(shot[-1]), *size)
            noisy = _noisy(gt, 120 + 2 * k + int(shot[-1]))
            prefix = scene[:4]
            if flat:
                write_image(base / "NOISY" / f"{prefix}_{shot}.png", noisy)
                write_image(base / "GT" / f"{prefix}_{shot}.png", gt)
            else:
                write_image(base / "Data" / scene / f"{prefix}_NOISY_SRGB_{shot}.PNG", noisy)
                write_image(base / "Data" / scene / f"{prefix}_GT_SRGB_{shot}.PNG", gt)
    return base


GOPRO_SEQUENCES = {"train": ("GOPR0372_07_00", "GOPR0374_11_00"), "test": ("GOPR0384_11_00", "GOPR0410_11_00")}


def make_gopro(root: Path, *, official: bool = True, frames: int = 2, size: tuple[int, int] = (48, 64)) -> Path:
    """GoPro (data/README.md#gopro). ``official=True``: GoPro_Large,
    ``GOPRO_Large/{train,test}/<sequence>/{blur,sharp}/000047.png`` (returns ``GOPRO_Large``);
    ``official=False``: the flat Kaggle "DBlur" copy of write-up 004,
    ``DBlur/Gopro/{train,test}/{blur,sharp}/*.png`` (returns ``DBlur``). Blur: a seeded camera-shake
    trajectory kernel per frame (``motion_blur``)."""
    root = Path(root)
    base = root / ("GOPRO_Large" if official else "DBlur")
    k = 0
    for split, seqs in GOPRO_SEQUENCES.items():
        for seq in seqs:
            for f in range(frames):
                sharp = photo(140 + k, *size)
                blur = motion_blur(sharp, trajectory_kernel(9, seed=140 + k))
                k += 1
                frame = f"{47 + f:06d}.png"
                folder = base / split / seq if official else base / "Gopro" / split
                name = frame if official else f"{seq}_{frame}"
                write_image(folder / "blur" / name, blur)
                write_image(folder / "sharp" / name, sharp)
    return base


# ------------------------------------------------------------------------------------------ inpainting


def make_dacon_inpainting(root: Path, *, n_train: int = 5, n_test: int = 2, size: tuple[int, int] = (64, 64),
                          mask_fraction: float = 0.2) -> Path:
    """The DACON colorization + inpainting layout (data/README.md#dacon-inpainting): ``train.csv``
    (``ID,input_image_path,gt_image_path``, paths like ``./train_input/TRAIN_00000.png``),
    ``train_input/`` (grayscale, masked pixels black: ``inpainting_input`` with a ``random_mask``),
    ``train_gt/`` (colour), ``test.csv`` (``ID,input_image_path``), ``test_input/``. Returns ``root``."""
    root = Path(root)
    rows = []
    for i in range(n_train):
        gt = photo(160 + i, *size)
        mask = random_mask(size[0], size[1], mask_fraction, seed=160 + i)
        iid = f"TRAIN_{i:05d}"
        write_image(root / "train_input" / f"{iid}.png", inpainting_input(gt, mask, fill=0.0, with_mask=False))
        write_image(root / "train_gt" / f"{iid}.png", gt)
        rows.append([iid, f"./train_input/{iid}.png", f"./train_gt/{iid}.png"])
    _write_csv(root / "train.csv", ["ID", "input_image_path", "gt_image_path"], rows)
    rows = []
    for i in range(n_test):
        gt = photo(180 + i, *size)
        mask = random_mask(size[0], size[1], mask_fraction, seed=180 + i)
        iid = f"TEST_{i:03d}"
        write_image(root / "test_input" / f"{iid}.png", inpainting_input(gt, mask, with_mask=False))
        rows.append([iid, f"./test_input/{iid}.png"])
    _write_csv(root / "test.csv", ["ID", "input_image_path"], rows)
    return root
