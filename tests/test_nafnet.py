"""NAFNet (official layout and counts, REFERENCE.md) and TLC (NAFNetLocal)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from labkit import models
from labkit.infer import count_parameters
from labkit.models.nafnet import LayerNorm2d, LocalAvgPool2d, NAFNet, NAFNetLocal

OFFICIAL = {
    "nafnet_sidd_width32": 29_159_715,
    "nafnet_sidd_width64": 115_982_915,
    "nafnet_gopro_width32": 17_111_907,
    "nafnet_gopro_width64": 67_888_835,
}
TINY = dict(width=8, enc_blk_nums=(1, 1), middle_blk_num=1, dec_blk_nums=(1, 1))


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_official_parameter_counts_and_keys(name):
    with torch.device("meta"):
        net = models.build(name)
    assert count_parameters(net) == OFFICIAL[name]
    keys = set(net.state_dict())
    cfg = models.CONFIGS[name][1]
    n_enc = len(cfg["enc_blk_nums"])
    for block in ("encoders.0.0", f"middle_blks.{cfg['middle_blk_num'] - 1}", f"decoders.{n_enc - 1}.0"):
        for part in ("conv1.weight", "conv2.weight", "conv3.bias", "conv4.weight", "conv5.bias", "sca.1.weight",
                     "sca.1.bias", "norm1.weight", "norm1.bias", "norm2.weight", "beta", "gamma"):
            assert f"{block}.{part}" in keys, f"{block}.{part}"
    last_enc = cfg["enc_blk_nums"][-1] - 1
    assert f"encoders.{n_enc - 1}.{last_enc}.beta" in keys
    assert {"intro.weight", "intro.bias", "ending.weight", "ending.bias", "downs.0.weight", "downs.0.bias",
            "ups.0.0.weight"} <= keys
    assert "ups.0.0.bias" not in keys  # the official 1x1 up-conv has no bias
    assert net.state_dict()[f"encoders.0.0.beta"].shape == (1, cfg["width"], 1, 1)


def test_local_model_has_the_same_keys_and_loads_strictly():
    plain, local = NAFNet(**TINY), NAFNetLocal(train_size=(1, 3, 32, 32), **TINY)
    assert list(plain.state_dict()) == list(local.state_dict())
    local.load_state_dict(plain.state_dict(), strict=True)


def test_layernorm2d_matches_layer_norm_over_channels():
    torch.manual_seed(0)
    ln = LayerNorm2d(6)
    with torch.no_grad():
        ln.weight.uniform_(0.5, 2)
        ln.bias.uniform_(-1, 1)
    x = torch.randn(2, 6, 5, 7)
    ref = torch.nn.functional.layer_norm(x.permute(0, 2, 3, 1), (6,), ln.weight, ln.bias, eps=1e-6).permute(0, 3, 1, 2)
    torch.testing.assert_close(ln(x), ref, atol=1e-5, rtol=1e-5)


def _trained_like(net: NAFNet) -> NAFNet:
    # beta/gamma start at 0 (the identity): give every weight a value so the blocks matter
    torch.manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return net.eval()


def test_forward_shape_any_size_and_blocks_start_as_identity():
    net = NAFNet(**TINY).eval()
    x = torch.rand(1, 3, 19, 23)  # not a multiple of 4: padded inside, cropped back
    with torch.no_grad():
        y = net(x)
        assert y.shape == x.shape
        torch.testing.assert_close(net(torch.nn.functional.pad(x, (0, 1, 0, 1)))[..., :19, :23].shape, y.shape)
        feat = torch.randn(1, 8, 6, 6)
        torch.testing.assert_close(net.encoders[0][0](feat), feat)  # beta = gamma = 0 at init
    with pytest.raises(ValueError, match="NCHW"):
        net(torch.rand(3, 8, 8))


def test_tlc_equals_plain_on_an_image_no_larger_than_the_training_size():
    plain = _trained_like(NAFNet(**TINY))
    local = NAFNetLocal(train_size=(1, 3, 32, 32), **TINY).eval()
    local.load_state_dict(plain.state_dict())
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(local(x), plain(x), atol=1e-5, rtol=1e-5)
        # larger than 1.5x the training size: local statistics, a different output
        big = torch.rand(1, 3, 96, 96)
        assert (local(big) - plain(big)).abs().max() > 1e-4


def test_local_pool_is_a_sliding_mean_with_replicate_border():
    x = torch.arange(36.0).view(1, 1, 6, 6)
    pool = LocalAvgPool2d((3, 3))
    y = pool(x)
    assert y.shape == x.shape
    ref = torch.nn.functional.avg_pool2d(x, 3, stride=1)  # 4x4 valid
    torch.testing.assert_close(y[..., 1:5, 1:5], ref)
    torch.testing.assert_close(y[..., 0, 1:5], ref[..., 0, :])  # replicate-padded row
    torch.testing.assert_close(LocalAvgPool2d((6, 6))(x), x.mean().view(1, 1, 1, 1))


def test_tlc_kernel_sizes_follow_the_training_size():
    local = NAFNetLocal(train_size=(1, 3, 64, 64), **TINY)
    assert local.encoders[0][0].sca[0].kernel_size == (96, 96)
    assert local.encoders[1][0].sca[0].kernel_size == (48, 48)
    assert local.middle_blks[0].sca[0].kernel_size == (24, 24)
    assert local.decoders[0][0].sca[0].kernel_size == (48, 48)
    assert local.decoders[1][0].sca[0].kernel_size == (96, 96)


def test_dropout_only_when_asked_and_bad_arguments_named():
    assert not any(isinstance(m, torch.nn.Dropout) for m in NAFNet(**TINY).modules())
    drop = NAFNet(**TINY, drop_out_rate=0.5)
    assert sum(isinstance(m, torch.nn.Dropout) for m in drop.modules()) == 2 * 5
    with pytest.raises(ValueError, match="same length"):
        NAFNet(width=8, enc_blk_nums=(1, 1), dec_blk_nums=(1,))
    with pytest.raises(ValueError, match="drop_out_rate"):
        NAFNet(**TINY, drop_out_rate=1.0)
    with pytest.raises(ValueError, match="width"):
        NAFNet(width=0)


def test_tiny_nafnet_learns_to_denoise():
    torch.manual_seed(0)
    net = NAFNet(**TINY)
    clean = torch.rand(4, 3, 4, 4).repeat_interleave(8, -1).repeat_interleave(8, -2)  # flat 8x8 tiles, 32 px
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    noisy = (clean + 0.1 * torch.randn_like(clean))
    before = torch.mean((noisy - clean) ** 2)
    for _ in range(100):
        loss = torch.mean((net(noisy) - clean) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.7 * before.item()


def test_global_avg_pool_is_adaptive_avg_pool_with_a_deterministic_backward():
    from labkit.models.nafnet import GlobalAvgPool2d

    torch.manual_seed(0)
    for shape in [(4, 16, 64, 64), (2, 32, 17, 23)]:
        x = torch.randn(*shape, requires_grad=True)
        a, b = nn.AdaptiveAvgPool2d(1)(x), GlobalAvgPool2d()(x)
        w = torch.randn_like(a)
        ga, = torch.autograd.grad((a * w).sum(), x)
        gb, = torch.autograd.grad((b * w).sum(), x)
        assert (a - b).abs().max() <= 1e-6 and (ga - gb).abs().max() <= 1e-6
    block = models.nafnet.NAFBlock(8)
    assert isinstance(block.sca[0], GlobalAvgPool2d) and not list(block.sca[0].parameters())
    assert {k for k in block.state_dict() if k.startswith("sca.")} == {"sca.1.weight", "sca.1.bias"}   # official layout
