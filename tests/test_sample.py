"""Tests for labkit.data.sample: the bundled photographs and their fixed split."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PIL import Image

from labkit.data import sample
from labkit.data.sample import (
    HELDOUT,
    SAMPLE_PHOTOS,
    TRAIN,
    export_samples,
    load_sample,
    sample_images,
    sample_names,
    sample_path,
)


@pytest.fixture(scope="module")
def all_images():
    return sample_images("all")


def test_at_least_eight_real_photos_load_as_rgb_float(all_images):
    assert len(all_images) >= 8
    assert [n for n, _ in all_images] == list(SAMPLE_PHOTOS)
    for name, img in all_images:
        assert img.dtype == np.float32, name
        assert img.ndim == 3 and img.shape[2] == 3, name
        assert min(img.shape[:2]) >= 256, name  # big enough for SR patches
        assert 0.0 <= img.min() and img.max() <= 1.0, name
        # a colour photograph: channels differ and there is plenty of tonal variation
        assert np.abs(img[..., 0] - img[..., 2]).mean() > 0.01, name
        assert img.std() > 0.05, name


def test_no_two_photos_identical(all_images):
    for (n1, a), (n2, b) in itertools.combinations(all_images, 2):
        assert a.shape != b.shape or not np.allclose(a, b, atol=2 / 255), (n1, n2)
    # the stereo partner of motorcycle_left must stay out (it would leak across the split)
    assert "motorcycle_right" not in SAMPLE_PHOTOS


def test_split_fixed_disjoint_and_covering():
    assert HELDOUT == ("chelsea", "coffee", "grace_hopper")
    assert sample_names("heldout") == HELDOUT
    assert sample_names("train") == TRAIN
    assert len(TRAIN) == 6
    assert set(TRAIN).isdisjoint(HELDOUT)
    assert set(TRAIN) | set(HELDOUT) == set(SAMPLE_PHOTOS) == set(sample_names("all"))
    assert sample_names("train") == sample_names("train")  # fixed, not re-drawn
    with pytest.raises(ValueError, match="heldout"):
        sample_names("test")


def test_files_come_from_installed_packages():
    for name, photo in SAMPLE_PHOTOS.items():
        p = sample_path(name)
        assert p.is_file()
        assert p.as_posix().endswith(photo.relative)
        assert photo.description
    assert "mpl-data" in str(sample_path("grace_hopper"))
    assert "skimage" in str(sample_path("astronaut"))


def test_unknown_name_lists_valid_ones():
    with pytest.raises(KeyError, match="astronaut"):
        load_sample("lena")


def test_missing_package_file_gives_install_hint(monkeypatch, tmp_path):
    photo = SAMPLE_PHOTOS["rocket"]
    monkeypatch.setitem(
        sample.SAMPLE_PHOTOS, "rocket",
        sample.SamplePhoto(photo.name, photo.package, "data/gone_rocket.jpg", photo.pip_name, photo.description),
    )
    with pytest.raises(FileNotFoundError, match="pip install .*scikit-image"):
        sample_path("rocket")
    monkeypatch.setitem(
        sample.SAMPLE_PHOTOS, "rocket",
        sample.SamplePhoto("rocket", "no_such_pkg_xyz", "a.jpg", "no-such-pkg", "x"),
    )
    with pytest.raises(ModuleNotFoundError, match="pip install no-such-pkg"):
        sample_path("rocket")


def test_export_samples_writes_readable_pngs(tmp_path):
    out = export_samples(tmp_path / "heldout_pngs", split="heldout")
    assert [p.name for p in out] == [f"{n}.png" for n in HELDOUT]
    for name, p in zip(HELDOUT, out):
        with Image.open(p) as im:
            assert im.format == "PNG" and im.mode == "RGB"
            arr = np.asarray(im)
        np.testing.assert_array_equal(arr, np.round(load_sample(name) * 255).astype(np.uint8))
