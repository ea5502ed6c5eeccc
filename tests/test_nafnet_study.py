"""Notebook 05's profile: the write-up's variants are complete and build real NAFNets."""

from __future__ import annotations

import pytest

from labkit import models, profiles


@pytest.mark.parametrize("profile", ["smoke", "full"])
def test_profile_05_variants_and_architectures(profile):
    cfg = profiles.get("05", profile)
    assert set(cfg["variants"]) == set(cfg["variant_specs"]) == {"baseline", "arch", "x12", "x12_dropout", "crop_2x2"}
    for name, spec in cfg["variant_specs"].items():
        assert spec["arch"] in cfg["archs"], name
        assert spec["data"] in ("arrays", "x12", "crop_2x2"), name
    assert cfg["variant_specs"]["x12_dropout"]["drop_out_rate"] == 0.5  # 004's dropout
    assert cfg["variant_specs"]["baseline"]["drop_out_rate"] == 0.0
    assert len(cfg["sidd_counts"]) == 3 and cfg["crop_size"] == 2 * cfg["sidd_size"]  # crop_2x2: 2x2 tiles of the array size


def test_full_profile_uses_the_official_layouts():
    cfg = profiles.get("05", "full")
    for arch, official in (("sidd", "nafnet_sidd_width32"), ("gopro", "nafnet_gopro_width32")):
        ref = models.CONFIGS[official][1]
        assert cfg["width"] == ref["width"]
        for key in ("enc_blk_nums", "middle_blk_num", "dec_blk_nums"):
            assert tuple(cfg["archs"][arch][key]) == tuple(ref[key]) if key != "middle_blk_num" else cfg["archs"][arch][key] == ref[key]
    assert cfg["sidd_counts"] == (128, 16, 16) and cfg["sidd_size"] == 256 and cfg["lr"] == 1e-4
