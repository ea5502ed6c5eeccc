"""labkit.losses: Charbonnier, the HINet/NAFNet PSNR loss and weighted loss mixes."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from labkit.losses import CharbonnierLoss, PSNRLoss, WeightedSum, loss_mix


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(0)
    target = torch.rand(3, 3, 8, 10, generator=g)
    pred = (target + 0.1 * torch.randn(3, 3, 8, 10, generator=g)).clamp(0, 1)
    return pred, target


def test_charbonnier_matches_formula_and_tends_to_l1(pair):
    pred, target = pair
    eps = 1e-3
    d = (pred - target).double()
    expected = torch.sqrt(d**2 + eps**2).mean()
    assert torch.allclose(CharbonnierLoss(eps)(pred, target).double(), expected, atol=1e-7)
    # for a tiny eps it is the L1 loss; at equality it is eps
    assert torch.allclose(CharbonnierLoss(1e-9)(pred, target), nn.L1Loss()(pred, target), atol=1e-6)
    assert CharbonnierLoss(eps)(target, target).item() == pytest.approx(eps, rel=1e-5)


def test_psnr_loss_is_minus_mean_per_image_psnr(pair):
    pred, target = pair
    mse = ((pred.double() - target.double()) ** 2).mean(dim=(1, 2, 3))
    psnr_per_image = 10 * torch.log10(1.0 / mse)
    value = PSNRLoss()(pred, target).double()
    # 10/ln10 * log(mse + 1e-8) = -PSNR up to the 1e-8 guard
    assert value.item() == pytest.approx(-psnr_per_image.mean().item(), abs=1e-3)
    # the weight scales it, and it is a mean over images (not the PSNR of the batch MSE)
    assert PSNRLoss(loss_weight=0.5)(pred, target).item() == pytest.approx(0.5 * value.item(), rel=1e-5)
    # two images with errors 0.1 and 0.01: PSNR 20 and 40 dB -> loss -30 (not -22.96 of the pooled MSE)
    t = torch.zeros(2, 3, 4, 4)
    p = t.clone()
    p[0] += 0.1
    p[1] += 0.01
    assert PSNRLoss()(p, t).item() == pytest.approx(-30.0, abs=1e-3)


def test_psnr_loss_toY_uses_bt601_luma(pair):
    pred, target = pair
    coef = torch.tensor([65.481, 128.553, 24.966]).view(1, 3, 1, 1)
    py = ((pred * coef).sum(1, keepdim=True) + 16) / 255
    ty = ((target * coef).sum(1, keepdim=True) + 16) / 255
    mse = ((py - ty) ** 2).mean(dim=(1, 2, 3))
    expected = (10 / math.log(10)) * torch.log(mse + 1e-8).mean()
    assert PSNRLoss(toY=True)(pred, target).item() == pytest.approx(expected.item(), rel=1e-5)


def test_loss_mix_2l1_plus_l2_equals_hand_formula(pair):
    pred, target = pair
    mix = loss_mix({"l1": 2.0, "l2": 1.0})
    expected = 2 * (pred - target).abs().mean() + ((pred - target) ** 2).mean()
    out = mix(pred, target)
    assert out.ndim == 0
    assert out.item() == pytest.approx(expected.item(), rel=1e-6)
    assert set(mix.last_components) == {"l1", "l2"}
    assert mix.last_components["l1"] == pytest.approx(2 * (pred - target).abs().mean().item(), rel=1e-6)
    assert mix.last_total == pytest.approx(expected.item(), rel=1e-6)


def test_loss_mix_accepts_modules_names_and_gradients(pair):
    pred, target = pair
    pred = pred.clone().requires_grad_(True)
    charb = CharbonnierLoss(eps=1e-2)
    mix = loss_mix([("mse", 1.0), (charb, 0.5), ("psnr", 0.01)])
    assert isinstance(mix, WeightedSum)
    expected = nn.MSELoss()(pred, target) + 0.5 * charb(pred, target) + 0.01 * PSNRLoss()(pred, target)
    out = mix(pred, target)
    assert out.item() == pytest.approx(expected.item(), rel=1e-6)
    out.backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()
    assert set(mix.last_components) == {"mse", "charbonnierloss", "psnr"}


def test_loss_mix_errors():
    with pytest.raises(ValueError, match="unknown loss name 'ssimx'"):
        loss_mix({"ssimx": 1.0})
    with pytest.raises(ValueError, match="empty"):
        loss_mix({})
    with pytest.raises(TypeError, match="weight"):
        loss_mix({"l1": "2"})
    with pytest.raises(ValueError, match="shapes differ"):
        CharbonnierLoss()(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5))
