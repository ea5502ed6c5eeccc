"""Write-up 004's data: Poisson-Gaussian noise, trajectory motion blur, SIDD arrays/folders, GoPro folders."""

from __future__ import annotations

import numpy as np
import pytest

from labkit import io as lio
from labkit.data import gopro, noise_blur, pairing, sidd, splitting


def photo(h=48, w=64):
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx / w, yy / h, 0.5 + 0.4 * np.sin(xx / 5.0)], -1).astype(np.float32)


def test_poisson_gaussian_noise_is_seeded_in_range_and_signal_dependent():
    img = photo()
    a = noise_blur.poisson_gaussian_noise(img, shot_noise=0.02, read_noise=0.01, seed=3)
    b = noise_blur.poisson_gaussian_noise(img, shot_noise=0.02, read_noise=0.01, seed=3)
    c = noise_blur.poisson_gaussian_noise(img, shot_noise=0.02, read_noise=0.01, seed=4)
    assert a.dtype == np.float32 and a.shape == img.shape
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.min() >= 0 and a.max() <= 1
    # shot noise: variance grows with the signal (a * x); dark vs bright flat patches
    dark, bright = np.full((200, 200), 0.1, np.float32), np.full((200, 200), 0.8, np.float32)
    vd = noise_blur.poisson_gaussian_noise(dark, shot_noise=0.02, read_noise=0.0, seed=0).var()
    vb = noise_blur.poisson_gaussian_noise(bright, shot_noise=0.02, read_noise=0.0, seed=0).var()
    assert vb > 4 * vd
    assert abs(vb - 0.02 * 0.8) < 0.2 * 0.02 * 0.8
    # read noise alone: signal-independent, its variance b^2
    vr = noise_blur.poisson_gaussian_noise(np.full((200, 200), 0.5, np.float32), shot_noise=0, read_noise=0.05, seed=0).var()
    assert abs(vr - 0.05 ** 2) < 0.1 * 0.05 ** 2
    u8 = noise_blur.poisson_gaussian_noise((img * 255).astype(np.uint8), seed=1)
    assert u8.dtype == np.float32 and u8.max() <= 1
    with pytest.raises(ValueError, match="shot_noise"):
        noise_blur.poisson_gaussian_noise(img, shot_noise=-1)
    with pytest.raises(TypeError, match="dtype"):
        noise_blur.poisson_gaussian_noise(img.astype(np.int32))


def test_trajectory_kernel_is_seeded_normalised_and_not_a_point():
    k = noise_blur.trajectory_kernel(21, seed=5)
    np.testing.assert_array_equal(k, noise_blur.trajectory_kernel(21, seed=5))
    assert not np.array_equal(k, noise_blur.trajectory_kernel(21, seed=6))
    assert k.shape == (21, 21) and k.dtype == np.float32
    assert k.min() >= 0 and abs(k.sum() - 1) < 1e-5
    assert (k > 1e-4).sum() >= 5  # a path, not a delta
    long = noise_blur.trajectory_kernel(31, length=25.0, seed=0)
    ys, xs = np.nonzero(long > 1e-4)
    assert max(np.ptp(ys), np.ptp(xs)) >= 8  # spans a good part of the kernel
    with pytest.raises(ValueError, match="odd"):
        noise_blur.trajectory_kernel(20)
    with pytest.raises(ValueError, match="length"):
        noise_blur.trajectory_kernel(9, length=12.0)


def test_motion_blur_keeps_range_mean_and_blurs():
    img = photo()
    k = noise_blur.trajectory_kernel(15, length=10.0, seed=2)
    out = noise_blur.motion_blur(img, k)
    assert out.shape == img.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    assert abs(out.mean() - img.mean()) < 0.01
    grad = lambda a: np.abs(np.diff(a, axis=1)).mean() + np.abs(np.diff(a, axis=0)).mean()
    assert grad(out) < grad(img)
    delta = np.zeros((3, 3), np.float32)
    delta[1, 1] = 1
    np.testing.assert_allclose(noise_blur.motion_blur(img, delta), img, atol=1e-6)
    with pytest.raises(ValueError, match="kernel"):
        noise_blur.motion_blur(img, np.ones((4, 4)))


def write_sidd(folder, n=10, size=32, noisy=None, gt=None):
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8) if gt is None else gt
    noisy = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8) if noisy is None else noisy
    np.save(folder / f"gt_images_{size}.npy", gt)
    np.save(folder / f"noisy_images_{size}.npy", noisy)
    return noisy, gt


def test_sidd_npy_loader_and_the_128_16_16_split(tmp_path):
    noisy, gt = write_sidd(tmp_path, n=10, size=32)
    n2, g2 = sidd.load_sidd_npy(tmp_path, size=32)
    np.testing.assert_array_equal(n2, noisy)
    splits = sidd.sidd_npy_splits(tmp_path, counts=(6, 2, 2), size=32)
    np.testing.assert_array_equal(splits["train"][1], gt[:6])
    np.testing.assert_array_equal(splits["val"][0], noisy[6:8])
    np.testing.assert_array_equal(splits["test"][1], gt[8:])
    shuffled = sidd.sidd_npy_splits(tmp_path, counts=(6, 2, 2), size=32, seed=1)
    together = np.concatenate([shuffled[s][1] for s in ("train", "val", "test")])
    assert sorted(map(bytes, together)) == sorted(map(bytes, gt))  # a permutation, nothing lost
    ds = pairing.ArrayPairDataset(*splits["train"])
    assert ds[0]["lq"].shape == (3, 32, 32)
    with pytest.raises(ValueError, match="need 20 images"):
        sidd.sidd_npy_splits(tmp_path, counts=(16, 2, 2), size=32)
    assert sidd.SIDD_NPY_FILES == ("noisy_images_256.npy", "gt_images_256.npy")


def test_sidd_npy_loader_rejects_wrong_files_naming_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="noisy_images_256.npy"):
        sidd.load_sidd_npy(tmp_path)
    write_sidd(tmp_path, n=4, size=32, gt=np.zeros((4, 32, 32, 3), np.float32))
    with pytest.raises(ValueError, match=r"gt_images_32\.npy.*uint8.*float32"):
        sidd.load_sidd_npy(tmp_path, size=32)
    write_sidd(tmp_path, n=4, size=32, noisy=np.zeros((4, 32, 32), np.uint8))
    with pytest.raises(ValueError, match=r"noisy_images_32\.npy.*\(N, 32, 32, 3\).*\(4, 32, 32\)"):
        sidd.load_sidd_npy(tmp_path, size=32)
    write_sidd(tmp_path, n=4, size=32, noisy=np.zeros((4, 32, 32, 3), np.uint8), gt=np.zeros((4, 32, 32, 3), np.uint8))
    np.save(tmp_path / "gt_images_32.npy", np.zeros((3, 32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="4 images.*3"):
        sidd.load_sidd_npy(tmp_path, size=32)
    np.save(tmp_path / "gt_images_256.npy", np.zeros((2, 128, 128, 3), np.uint8))
    np.save(tmp_path / "noisy_images_256.npy", np.zeros((2, 128, 128, 3), np.uint8))
    with pytest.raises(ValueError, match="256, 256, 3"):
        sidd.load_sidd_npy(tmp_path)


def test_sidd_medium_layouts(tmp_path):
    img = photo(16, 16)
    for scene in ("0001_001_S6_00100_00060_3200_L", "0002_001_S6_00100_00020_3200_N"):
        (tmp_path / "Data" / scene).mkdir(parents=True)
        lio.write_image(tmp_path / "Data" / scene / "GT_SRGB_010.PNG", img)
        lio.write_image(tmp_path / "Data" / scene / "NOISY_SRGB_010.PNG", img[::-1])
    pairs = sidd.sidd_medium_pairs(tmp_path)
    assert len(pairs) == 2 and all(g.name == "GT_SRGB_010.PNG" and g.parent == n.parent for n, g in pairs)
    ds = pairing.PairListDataset(pairs, gt_size=8)
    item = ds[1]
    assert item["lq"].shape == (3, 8, 8) and item["name"].startswith("0002")
    flat = tmp_path / "flat"
    (flat / "GT").mkdir(parents=True)
    (flat / "NOISY").mkdir()
    lio.write_image(flat / "GT" / "a.png", img)
    lio.write_image(flat / "NOISY" / "a.png", img)
    assert [n.name for n, _ in sidd.sidd_medium_pairs(flat)] == ["a.png"]
    lio.write_image(flat / "NOISY" / "b.png", img)
    with pytest.raises(ValueError, match="b.png"):
        sidd.sidd_medium_pairs(flat)
    with pytest.raises(FileNotFoundError, match="NOISY_SRGB"):
        sidd.sidd_medium_pairs(tmp_path / "flat" / "GT")


def test_gopro_layout_and_half_split(tmp_path):
    root = tmp_path / "DBlur" / "Gopro"
    img = photo(16, 16)
    for split, n in (("train", 3), ("test", 5)):
        for kind in ("blur", "sharp"):
            (root / split / kind).mkdir(parents=True)
            for i in range(n):
                lio.write_image(root / split / kind / f"{i:04d}.png", img)
    blur, sharp = gopro.gopro_paths(tmp_path / "DBlur", "test")
    assert blur == root / "test" / "blur" and sharp == root / "test" / "sharp"
    sets = gopro.gopro_splits(root, gt_size=8)
    assert (len(sets["train"]), len(sets["val"]), len(sets["test"])) == (3, 3, 2)
    assert sets["train"][0]["gt"].shape == (3, 8, 8) and sets["test"][0]["gt"].shape == (3, 16, 16)
    val, test = splitting.half_split(1111)
    assert (len(val), len(test)) == (556, 555) and val[-1] + 1 == test[0]
    with pytest.raises(FileNotFoundError, match="train/blur"):
        gopro.gopro_paths(tmp_path, "train")
    with pytest.raises(ValueError, match="split"):
        gopro.gopro_paths(root, "val")
