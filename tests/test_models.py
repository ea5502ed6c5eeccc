"""EDSR: official BasicSR layout, parameter counts from REFERENCE.md, shapes, strict loading."""

from __future__ import annotations

import pytest
import torch

from labkit import models
from labkit.infer import count_parameters
from labkit.weights import load_weights

# REFERENCE.md, "Architectures": EDSR baseline (64 feat, 16 blocks) and large (256 feat, 32 blocks).
EDSR_COUNTS = {
    "edsr_baseline_x2": 1_369_859,
    "edsr_baseline_x3": 1_554_499,
    "edsr_baseline_x4": 1_517_571,
    "edsr_large_x2": 40_729_603,
    "edsr_large_x4": 43_089_923,
}


@pytest.mark.parametrize("name,count", EDSR_COUNTS.items())
def test_edsr_parameter_counts_match_reference(name, count):
    assert count_parameters(models.build(name)) == count


def official_edsr_x4_keys(num_block: int = 16) -> list[str]:
    """The key names of BasicSR's edsr_arch.py at x4, written out from the official layout."""
    keys = ["conv_first.weight", "conv_first.bias"]
    for i in range(num_block):
        keys += [f"body.{i}.conv{j}.{p}" for j in (1, 2) for p in ("weight", "bias")]
    keys += ["conv_after_body.weight", "conv_after_body.bias"]
    keys += [f"upsample.{k}.{p}" for k in (0, 2) for p in ("weight", "bias")]
    keys += ["conv_last.weight", "conv_last.bias"]
    return keys


def test_edsr_state_dict_has_the_official_keys():
    assert list(models.build("edsr_baseline_x4").state_dict()) == official_edsr_x4_keys()


def test_official_state_dict_loads_strictly_and_is_used(tmp_path):
    # An "official" checkpoint: built from the official key names and shapes (BasicSR wraps it in 'params').
    ref = models.build("edsr_baseline_x4")
    shapes = {k: v.shape for k, v in ref.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    official = {k: torch.randn(shapes[k], generator=g) * 0.01 for k in official_edsr_x4_keys()}
    path = tmp_path / "EDSR_Mx4_official.pth"
    torch.save({"params": official}, path)
    net = load_weights(models.build("edsr_baseline_x4"), path, strict=True)
    for k, v in net.state_dict().items():
        assert torch.equal(v, official[k]), k


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_edsr_output_shape_and_range_convention(scale):
    net = models.EDSR(num_feat=8, num_block=1, upscale=scale).eval()
    x = torch.rand(2, 3, 11, 13)
    with torch.no_grad():
        y = net(x)
    assert y.shape == (2, 3, 11 * scale, 13 * scale)
    # with every conv zeroed, EDSR returns the mean image: the mean shift is undone exactly
    for p in net.parameters():
        p.data.zero_()
    with torch.no_grad():
        y0 = net(x)
    assert torch.allclose(y0, net.mean.expand_as(y0), atol=1e-6)


def test_build_rejects_unknown_names_and_bad_scale():
    with pytest.raises(KeyError, match="unknown model"):
        models.build("edsr_gigantic")
    with pytest.raises(ValueError, match="upscale=5"):
        models.EDSR(upscale=5)


@pytest.mark.parametrize("name,count", [("msrresnet_x4", 1_517_571), ("vgg_discriminator_128", 14_499_401),
                                        ("swinir_lightweight_x4", 929_628)])
def test_registry_builds_the_official_sr_configurations(name, count):
    # REFERENCE.md counts, reached through the plain-dict registry the notebooks use
    assert count_parameters(models.build(name)) == count
