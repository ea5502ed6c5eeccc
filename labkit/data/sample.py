"""The embedded default dataset: real photographs shipped inside installed packages (no network).

Nine RGB photographs travel with the wheels of scikit-image (``skimage/data/``) and matplotlib
(``mpl-data/sample_data/``). They are located through the installed packages' folders, never
through scikit-image's pooch download fetchers, so they work offline (CI, air-gapped machines).

The split is FIXED (not random) so that every notebook, test and run evaluates on the same
pictures: ``HELDOUT = ('chelsea', 'coffee', 'grace_hopper')`` (a cat, a still life, a portrait:
three different kinds of content) and ``TRAIN`` = the other six. ``motorcycle_right`` is left out on
purpose: it is the stereo partner of ``motorcycle_left`` and, being a near-duplicate, would leak
across any split.

Public API: :data:`SAMPLE_PHOTOS`, :data:`TRAIN`, :data:`HELDOUT`, :func:`sample_names`,
:func:`sample_path`, :func:`load_sample`, :func:`sample_images`, :func:`export_samples`.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from labkit.io import read_image, write_image

__all__ = [
    "SamplePhoto",
    "SAMPLE_PHOTOS",
    "TRAIN",
    "HELDOUT",
    "SPLITS",
    "sample_names",
    "sample_path",
    "load_sample",
    "sample_images",
    "export_samples",
]


@dataclass(frozen=True)
class SamplePhoto:
    """One bundled photograph.

    Attributes:
        name: short id (the file stem), e.g. ``'astronaut'``.
        package: the import name of the package that ships the file (``'skimage'``, ``'matplotlib'``).
        relative: the file's path inside that package's folder, POSIX style.
        pip_name: what to ``pip install`` if the package or file is missing.
        description: what the picture shows and where it comes from (credit and licence).
    """

    name: str
    package: str
    relative: str
    pip_name: str
    description: str


def _sk(name: str, filename: str, description: str) -> SamplePhoto:
    return SamplePhoto(name, "skimage", f"data/{filename}", "scikit-image", description)


#: name -> :class:`SamplePhoto`, in a fixed order. Credits are from scikit-image's ``skimage.data``
#: docstrings and matplotlib's sample data.
SAMPLE_PHOTOS: dict[str, SamplePhoto] = {
    p.name: p
    for p in (
        _sk("astronaut", "astronaut.png",
            "Astronaut Eileen Collins, 512x512; NASA Great Images database, public domain."),
        _sk("chelsea", "chelsea.png",
            "Chelsea the cat, 451x300; photo Stefan van der Walt, CC0."),
        _sk("coffee", "coffee.png",
            "Coffee cup on wood, 600x400; photo Rachel Michetti, courtesy Pikolo Espresso Bar, CC0."),
        _sk("rocket", "rocket.jpg",
            "Falcon 9 launching DSCOVR, 640x427; SpaceX, public domain."),
        _sk("motorcycle_left", "motorcycle_left.png",
            "Motorcycle (left view), 741x500; Middlebury 2014 stereo benchmark (Scharstein et al.)."),
        _sk("hubble_deep_field", "hubble_deep_field.jpg",
            "Hubble eXtreme Deep Field, 1000x872; NASA/HubbleSite, public domain."),
        _sk("ihc", "ihc.png",
            "Immunohistochemistry (IHC) stained colonic glands, 512x512; CMMI, no known copyright."),
        _sk("retina", "retina.jpg",
            "Fundus photograph of a human retina, 1411x1411; Mikael Haggstrom via Wikimedia, CC0."),
        SamplePhoto(
            "grace_hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "matplotlib",
            "Rear Admiral Grace Hopper, 512x600; U.S. Navy photograph, public domain.",
        ),
    )
}

#: The held-out photos (evaluation only); fixed, never shuffled.
HELDOUT: tuple[str, ...] = ("chelsea", "coffee", "grace_hopper")
#: The training photos: every other sample photo, in :data:`SAMPLE_PHOTOS` order.
TRAIN: tuple[str, ...] = tuple(n for n in SAMPLE_PHOTOS if n not in HELDOUT)
#: split name -> names.
SPLITS: dict[str, tuple[str, ...]] = {"train": TRAIN, "heldout": HELDOUT, "all": tuple(SAMPLE_PHOTOS)}


def sample_names(split: str = "train") -> tuple[str, ...]:
    """Names of the sample photos in ``split``: ``'train'`` (6), ``'heldout'`` (3) or ``'all'`` (9).

    Raises:
        ValueError: unknown split (the message lists the valid ones).
    """
    try:
        return SPLITS[split]
    except (KeyError, TypeError):
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}") from None


def _photo(name: str) -> SamplePhoto:
    try:
        return SAMPLE_PHOTOS[name]
    except (KeyError, TypeError):
        raise KeyError(f"unknown sample photo {name!r}; valid names: {', '.join(SAMPLE_PHOTOS)}") from None


def _package_dir(photo: SamplePhoto) -> Path:
    """The installed package's folder, found without downloading anything."""
    if importlib.util.find_spec(photo.package) is None:
        raise ModuleNotFoundError(
            f"sample photo {photo.name!r} ships with the package '{photo.package}', which is not "
            f"installed; install it with: pip install {photo.pip_name}"
        )
    root = importlib.resources.files(photo.package)
    if not isinstance(root, os.PathLike):  # e.g. a zipped install
        raise FileNotFoundError(
            f"sample photo {photo.name!r}: the package '{photo.package}' is not installed as a plain "
            f"folder ({root!r}); reinstall it with: pip install --force-reinstall {photo.pip_name}"
        )
    return Path(os.fspath(root))


def sample_path(name: str) -> Path:
    """Path of the bundled file for the sample photo ``name`` (inside the installed package).

    Raises:
        KeyError: unknown name (the message lists the valid names).
        ModuleNotFoundError: the package that ships it is not installed (says what to pip install).
        FileNotFoundError: the package is installed but lacks the file (says what to reinstall).
    """
    photo = _photo(name)
    path = _package_dir(photo) / photo.relative
    if not path.is_file():
        raise FileNotFoundError(
            f"sample photo {name!r} should be at '{path}' (shipped with {photo.pip_name}) but the file "
            f"is missing; reinstall it with: pip install --force-reinstall {photo.pip_name}"
        )
    return path


def load_sample(name: str) -> np.ndarray:
    """Load the sample photo ``name`` as float32 RGB, shape (H, W, 3), values in [0, 1].

    Decoded with :func:`labkit.io.read_image` from the installed package's file (a fresh array each
    call). Raises as :func:`sample_path`.
    """
    return read_image(sample_path(name))


def sample_images(split: str = "train") -> list[tuple[str, np.ndarray]]:
    """All photos of ``split`` as ``[(name, float32 HWC RGB [0,1] array), ...]`` in a fixed order.

    Raises:
        ValueError: unknown split; plus the errors of :func:`sample_path`.
    """
    return [(name, load_sample(name)) for name in sample_names(split)]


def export_samples(folder: Union[str, "os.PathLike[str]"], split: str = "all") -> list[Path]:
    """Write the photos of ``split`` as ``folder/<name>.png`` (8-bit, lossless re-encode of the files).

    Use it to try the folder-based datasets (``labkit.data.sr.SRFolderDataset(gt_root=...)``)
    without downloading anything. The folder is created if needed; existing files are replaced
    atomically.

    Returns:
        The written paths, in :func:`sample_names` order.

    Raises:
        ValueError: unknown split; plus the errors of :func:`sample_path`.
    """
    folder = Path(folder)
    names = sample_names(split)
    return [write_image(folder / f"{name}.png", load_sample(name)) for name in names]
