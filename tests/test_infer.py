"""labkit.infer: tiled inference, the x8 self-ensemble and predict()."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from labkit.infer import count_parameters, predict, self_ensemble, tile_starts, tiled


def _conv_net(n_layers: int, scale: int = 1, seed: int = 0) -> nn.Module:
    """3x3 convs with zero padding: receptive-field radius = n_layers (in input pixels)."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Conv2d(3, 8, 3, padding=1)]
    for _ in range(n_layers - 2):
        layers += [nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1)]
    if scale == 1:
        layers += [nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1)]
    else:  # the last conv runs at LR resolution, then a pixel shuffle: radius stays n_layers
        layers += [nn.ReLU(), nn.Conv2d(8, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale)]
    return nn.Sequential(*layers).eval()


@pytest.fixture
def image():
    return torch.rand(2, 3, 45, 61, generator=torch.Generator().manual_seed(1))


def test_tile_starts_cover_and_are_flush():
    assert tile_starts(100, 32, 8) == [0, 24, 48, 68]
    assert tile_starts(20, 32, 8) == [0]
    assert tile_starts(32, 32, 8) == [0]


@pytest.mark.parametrize("scale", [1, 2])
def test_tiled_equals_whole_image_when_overlap_covers_receptive_field(image, scale):
    net = _conv_net(3, scale=scale)  # radius 3 < overlap/2 = 4
    with torch.no_grad():
        whole = net(image)
        out = tiled(net, image, scale=scale, tile=20, overlap=8)
    assert out.shape == whole.shape == (2, 3, 45 * scale, 61 * scale)
    assert (out - whole).abs().max().item() < 1e-5


def test_tiled_without_overlap_differs_for_a_large_receptive_field(image):
    net = _conv_net(6)  # radius 6
    with torch.no_grad():
        whole = net(image)
        seams = tiled(net, image, tile=20, overlap=0)
        fine = tiled(net, image, tile=20, overlap=14)  # radius 6 <= 14 // 2
    assert (seams - whole).abs().max().item() > 1e-3
    assert (fine - whole).abs().max().item() < 1e-5


def test_tiled_small_image_runs_whole_and_hann_is_close(image):
    net = _conv_net(3)
    small = image[..., :16, :16]
    with torch.no_grad():
        assert torch.allclose(tiled(net, small, tile=32, overlap=8), net(small), atol=1e-6)
        # Hann blending mixes tiles with small errors near their edges: close, not exact
        hann = tiled(net, image, tile=24, overlap=12, blend="hann")
    assert (hann - net(image)).abs().max().item() < 0.05


def test_tiled_argument_errors(image):
    net = _conv_net(3)
    with pytest.raises(ValueError, match="tile must be larger than overlap"):
        tiled(net, image, tile=16, overlap=16)
    with pytest.raises(ValueError, match="overlap must be >= 0"):
        tiled(net, image, tile=16, overlap=-1)
    with pytest.raises(ValueError, match="blend"):
        tiled(net, image, tile=16, overlap=4, blend="max")
    with pytest.raises(ValueError, match="scale=2"):
        tiled(net, image, scale=2, tile=16, overlap=4)
    with pytest.raises(ValueError, match="batch"):
        tiled(net, image, tile=16, overlap=4, batch=0)


@pytest.mark.parametrize("blend", ["mean", "hann"])
@pytest.mark.parametrize("batch", [2, 3, 100])
def test_tiled_batches_of_tiles_give_the_one_at_a_time_result(image, blend, batch):
    net = _conv_net(6, scale=2)  # radius 6 > overlap/2: seams exist, so tile order/placement matters
    calls = []

    def counting(t):
        calls.append(t.shape[0])
        return net(t)

    with torch.no_grad():
        single = tiled(net, image, scale=2, tile=20, overlap=6, blend=blend)
        batched = tiled(counting, image, scale=2, tile=20, overlap=6, blend=blend, batch=batch)
        ens1 = self_ensemble(net, image[..., :30, :41], tile=16, overlap=6, scale=2)
        ens = self_ensemble(net, image[..., :30, :41], tile=16, overlap=6, scale=2, batch=batch)
    n_tiles = len(tile_starts(45, 20, 6)) * len(tile_starts(61, 20, 6))  # 3 x 4
    assert calls == [2 * min(batch, n_tiles - i) for i in range(0, n_tiles, batch)]  # N=2 images per tile
    assert torch.allclose(batched, single, atol=1e-6) and torch.allclose(ens, ens1, atol=1e-6)
    if blend == "mean":  # predict's tiling blends with the mean
        out = predict(net, image[0].permute(1, 2, 0).numpy(), tile=20, overlap=6, scale=2, batch=batch)
        np.testing.assert_allclose(out, single[0].clamp(0, 1).permute(1, 2, 0).numpy(), atol=1e-6)


def _by_hand(model, x):
    """The 8 dihedral transforms written out one by one (numpy-style), with their inverses."""
    t = lambda a: a.transpose(-2, -1)  # noqa: E731
    h = lambda a: a.flip(-1)  # noqa: E731
    v = lambda a: a.flip(-2)  # noqa: E731
    pairs = [
        (lambda a: a, lambda a: a),  # identity
        (h, h),  # horizontal flip
        (v, v),  # vertical flip
        (lambda a: h(v(a)), lambda a: v(h(a))),  # rotation by 180
        (t, t),  # transpose
        (lambda a: h(t(a)), lambda a: t(h(a))),  # rotation by 90 (one direction)
        (lambda a: v(t(a)), lambda a: t(v(a))),  # rotation by 90 (the other)
        (lambda a: h(v(t(a))), lambda a: t(v(h(a)))),  # anti-transpose
    ]
    outs = [inv(model(fwd(x))) for fwd, inv in pairs]
    return torch.stack(outs).mean(0)


def test_self_ensemble_equals_hand_written_mean(image):
    net = _conv_net(3)
    x = image[..., :20, :28]
    with torch.no_grad():
        ens = self_ensemble(net, x)
        hand = _by_hand(net, x)
        plain = net(x)
    assert ens.shape == x.shape
    assert torch.allclose(ens, hand, atol=1e-6)
    assert (ens - plain).abs().max().item() > 1e-4  # a generic net is not equivariant
    with torch.no_grad():  # tiled pass-through gives the same result (radius 3 < 8 // 2 + 1)
        assert torch.allclose(self_ensemble(net, x, tile=12, overlap=8), ens, atol=1e-5)


def test_self_ensemble_of_equivariant_model_is_the_plain_output(image):
    conv = nn.Conv2d(3, 3, 3, padding=1, groups=3, bias=False)
    k = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16  # D4-symmetric
    with torch.no_grad():
        conv.weight.copy_(k.expand(3, 1, 3, 3))
        assert torch.allclose(self_ensemble(conv, image), conv(image), atol=1e-6)
        assert torch.allclose(self_ensemble(nn.Identity(), image), image)


class _TwoStage(nn.Module):
    """Returns [stage1, stage2] like HINet; the prediction is the last element."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(0.5))

    def forward(self, x):
        return [x * 0.0, x * self.scale]


def test_predict_hwc_numpy_and_list_outputs():
    rng = np.random.default_rng(0)
    img = rng.random((17, 23, 3), dtype=np.float32)
    model = _TwoStage().train()
    out = predict(model, img)
    assert out.dtype == np.float32 and out.shape == (17, 23, 3)
    np.testing.assert_allclose(out, img * 0.5, atol=1e-6)
    assert model.training  # the previous mode is restored
    # tiled and self-ensemble paths, and uint8 input
    np.testing.assert_allclose(predict(model, img, tile=8, overlap=2), img * 0.5, atol=1e-6)
    np.testing.assert_allclose(predict(model, img, self_ensemble=True), img * 0.5, atol=1e-6)
    u8 = (img * 255).round().astype(np.uint8)
    np.testing.assert_allclose(predict(model, u8), u8 / 255.0 * 0.5, atol=1e-6)


def test_predict_upscales_clamps_and_rejects_bad_shapes():
    net = _conv_net(3, scale=2)
    img = np.random.default_rng(1).random((12, 14, 3)).astype(np.float32)
    out = predict(net, img, scale=2)
    assert out.shape == (24, 28, 3)
    assert out.min() >= 0.0 and out.max() <= 1.0
    with torch.no_grad():
        ref = net(torch.from_numpy(img).permute(2, 0, 1)[None]).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(out, ref, atol=1e-6)
    with pytest.raises(ValueError, match="HWC"):
        predict(net, np.zeros((1, 2, 3, 4), dtype=np.float32))


def test_count_parameters_counts_trainable_only():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 2, 1))
    assert count_parameters(net) == (3 * 4 * 9 + 4) + (4 * 2 + 2)
    net[0].requires_grad_(False)
    assert count_parameters(net) == 4 * 2 + 2
