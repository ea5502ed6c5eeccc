"""HINet (issue 5): official layouts and counts (REFERENCE.md), two-stage outputs, half instance norm."""

from __future__ import annotations

import re

import pytest
import torch

from labkit import models, weights
from labkit.infer import count_parameters
from labkit.models.hinet import CONFIGS, HINet, UNetConvBlock


@pytest.mark.parametrize(
    "name,params,tensors,hin_levels",
    [
        ("hinet_gopro", 88_668_806, 186, {3, 4}),
        ("hinet_sidd_1x", 88_669_702, 198, {0, 1, 2, 3, 4}),
        ("hinet_sidd_0.5x", 22_176_518, 198, {0, 1, 2, 3, 4}),
    ],
)
def test_official_counts_and_keys(name, params, tensors, hin_levels):
    net = models.build(name)
    sd = net.state_dict()
    assert count_parameters(net) == params
    assert len(sd) == tensors
    # half instance normalization only between hin_position_left and hin_position_right, both stages
    for path in ("down_path_1", "down_path_2"):
        levels = {int(m.group(1)) for k in sd if (m := re.fullmatch(rf"{path}\.(\d)\.norm\.weight", k))}
        assert levels == hin_levels
    # cross-stage feature fusion in stage 2's encoder, every level but the deepest; none in stage 1
    csff = {int(m.group(1)) for k in sd if (m := re.fullmatch(r"down_path_2\.(\d)\.csff_enc\.weight", k))}
    assert csff == {0, 1, 2, 3}
    assert not any(k.startswith("down_path_1.") and "csff" in k for k in sd)
    # downsampling convs have no bias; the deepest level does not downsample
    assert "down_path_1.3.downsample.weight" in sd and "down_path_1.3.downsample.bias" not in sd
    assert not any(k.startswith("down_path_1.4.downsample") for k in sd)
    for key in ("conv_01.weight", "conv_02.weight", "up_path_1.0.up.weight", "up_path_2.3.conv_block.conv_2.bias",
                "skip_conv_1.3.weight", "skip_conv_2.0.bias", "sam12.conv1.weight", "sam12.conv2.weight",
                "sam12.conv3.weight", "cat12.weight", "last.weight", "last.bias"):
        assert key in sd, key
    assert not any(k.startswith(("up_path_1.4", "skip_conv_1.4")) for k in sd)
    assert sd["sam12.conv2.weight"].shape == (3, 64 if "0.5x" not in name else 32, 3, 3)
    assert sd["cat12.weight"].shape[:2] == (sd["last.weight"].shape[1], 2 * sd["last.weight"].shape[1])


def test_official_style_checkpoint_loads_strict(tmp_path):
    """A BasicSR-style {'params': ...} file (as the HINet releases) loads with strict=True."""
    src = HINet(wf=8, depth=3, hin_position_left=0, hin_position_right=2)
    path = tmp_path / "HINet-tiny.pth"
    torch.save({"params": src.state_dict()}, path)
    dst = HINet(wf=8, depth=3, hin_position_left=0, hin_position_right=2)
    weights.load_weights(dst, path, strict=True)
    for k, v in src.state_dict().items():
        assert torch.equal(v, dst.state_dict()[k])
    wrong = HINet(wf=8, depth=3, hin_position_left=2, hin_position_right=2)  # fewer norm layers
    with pytest.raises(Exception):
        weights.load_weights(wrong, path, strict=True)


@pytest.mark.parametrize("size", [(32, 48), (37, 45)])
def test_two_stage_outputs(size):
    torch.manual_seed(0)
    net = HINet(wf=8, depth=3, hin_position_left=0, hin_position_right=2).eval()
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        out = net(x)
    assert isinstance(out, list) and len(out) == 2
    for y in out:
        assert y.shape == x.shape and torch.isfinite(y).all()
    # the two stages are different predictions (stage 2 refines stage 1)
    assert not torch.allclose(out[0], out[1])


def test_stage1_is_supervised_attention_image():
    """Stage 1's output is SAM's conv2(features) + input: zeroing conv2 makes it the input."""
    net = HINet(wf=8, depth=2, hin_position_left=0, hin_position_right=1).eval()
    with torch.no_grad():
        net.sam12.conv2.weight.zero_()
        net.sam12.conv2.bias.zero_()
        net.last.weight.zero_()
        net.last.bias.zero_()
        x = torch.rand(1, 3, 16, 16)
        s1, s2 = net(x)
    assert torch.allclose(s1, x) and torch.allclose(s2, x)


def test_half_instance_norm_normalises_half_the_channels():
    torch.manual_seed(0)
    block = UNetConvBlock(4, 8, downsample=False, relu_slope=0.2, use_HIN=True)
    assert block.norm.num_features == 4 and block.norm.affine
    seen = {}
    block.norm.register_forward_hook(lambda m, i, o: seen.update(inp=i[0], out=o))
    block(torch.rand(2, 4, 16, 16) * 5 + 3)
    assert seen["inp"].shape[1] == 4                      # only the first half goes through norm
    m = seen["out"].mean(dim=(2, 3))
    assert torch.allclose(m, torch.zeros_like(m), atol=1e-5)


def test_gradients_reach_both_stages_through_fit_style_loss():
    net = HINet(wf=8, depth=2, hin_position_left=0, hin_position_right=1)
    x, y = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    loss = sum(torch.nn.functional.l1_loss(o, y) for o in net(x))
    loss.backward()
    assert net.sam12.conv2.weight.grad.abs().sum() > 0   # stage 1's supervision
    assert net.last.weight.grad.abs().sum() > 0          # stage 2's


def test_bad_arguments():
    with pytest.raises(ValueError, match="wf"):
        HINet(wf=7)
    with pytest.raises(ValueError, match="hin_position_left"):
        HINet(wf=8, depth=3, hin_position_left=2, hin_position_right=1)
    with pytest.raises(ValueError, match="depth"):
        HINet(wf=8, depth=0)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        HINet(wf=8, depth=2)(torch.rand(1, 1, 8, 8))
    assert set(CONFIGS) == {"hinet_gopro", "hinet_sidd_1x", "hinet_sidd_0.5x"}
