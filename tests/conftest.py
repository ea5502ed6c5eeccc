"""Session fixtures: one tiny copy of each real dataset layout (built by :mod:`labkit.layouts`).

Each fixture returns the folder to pass as ``data_root`` (read-only for tests: copy it with
``shutil.copytree`` before breaking it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from labkit import layouts


@pytest.fixture(scope="session")
def div2k_root(tmp_path_factory) -> Path:
    """DIV2K: DIV2K_{train,valid}_HR + DIV2K_{train,valid}_LR_bicubic/X4 (3 + 2 pairs, HR 48x64)."""
    return layouts.make_div2k(tmp_path_factory.mktemp("DIV2K"))


@pytest.fixture(scope="session")
def set5_root(tmp_path_factory) -> Path:
    """Set5 as EDSR's benchmark pack: Set5/HR/baby.png ... + Set5/LR_bicubic/X4/babyx4.png."""
    return layouts.make_sr_benchmark(tmp_path_factory.mktemp("benchmark"), "Set5")


@pytest.fixture(scope="session")
def set5_hr_only(tmp_path_factory) -> Path:
    """Set5 with HR/ only (LR made on the fly by the evaluator)."""
    return layouts.make_sr_benchmark(tmp_path_factory.mktemp("benchmark_hr"), "Set5", with_lr=False)


@pytest.fixture(scope="session")
def dacon_sr_root(tmp_path_factory) -> Path:
    """DACON SR: train/lr, train/hr, test/lr (x4, LR 16 px)."""
    return layouts.make_dacon_sr(tmp_path_factory.mktemp("dacon_sr"))


@pytest.fixture(scope="session")
def lg_flare_root(tmp_path_factory) -> Path:
    """The LG light-scatter contest: train.csv, train_input_img/, train_label_img/, test_input_img/."""
    return layouts.make_lg_flare(tmp_path_factory.mktemp("dacon_lg"))


@pytest.fixture(scope="session")
def flare7k_root(tmp_path_factory) -> Path:
    """Flare7K test_data/real: input/input_000000.png, gt/gt_000000.png, mask/."""
    return layouts.make_flare7k(tmp_path_factory.mktemp("flare7k_real"))


@pytest.fixture(scope="session")
def sidd_npy_root(tmp_path_factory) -> Path:
    """SIDD arrays: noisy_images_256.npy + gt_images_256.npy, uint8 (4, 256, 256, 3)."""
    return layouts.make_sidd_npy(tmp_path_factory.mktemp("SIDD"))


@pytest.fixture(scope="session")
def sidd_medium_root(tmp_path_factory) -> Path:
    """SIDD-Medium sRGB: SIDD_Medium_Srgb/Data/<scene>/0001_{NOISY,GT}_SRGB_01{0,1}.PNG (2 scenes)."""
    return layouts.make_sidd_medium(tmp_path_factory.mktemp("sidd_medium"))


@pytest.fixture(scope="session")
def gopro_root(tmp_path_factory) -> Path:
    """GoPro_Large: {train,test}/<sequence>/{blur,sharp}/0000NN.png (2 sequences x 2 frames each)."""
    return layouts.make_gopro(tmp_path_factory.mktemp("gopro"))


@pytest.fixture(scope="session")
def gopro_flat_root(tmp_path_factory) -> Path:
    """GoPro, the flat DBlur copy of write-up 004: DBlur/Gopro/{train,test}/{blur,sharp}/."""
    return layouts.make_gopro(tmp_path_factory.mktemp("gopro_flat"), official=False)


@pytest.fixture(scope="session")
def dacon_inpainting_root(tmp_path_factory) -> Path:
    """DACON colorization + inpainting: train.csv, train_input/, train_gt/, test.csv, test_input/."""
    return layouts.make_dacon_inpainting(tmp_path_factory.mktemp("dacon_inpainting"))
