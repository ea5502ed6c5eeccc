"""labkit.losses: Charbonnier, the HINet/NAFNet PSNR loss, weighted loss mixes, the VGG19 perceptual loss."""

from __future__ import annotations

import math
import urllib.error

import pytest
import torch
import torchvision
from torch import nn

from labkit.losses import (
    VGG19_LAYER_NAMES,
    CharbonnierLoss,
    PerceptualLoss,
    PSNRLoss,
    WeightedSum,
    WeightsUnavailableError,
    loss_mix,
    vgg19_available,
)


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


# ----------------------------------------------------------------------------- perceptual (VGG19)
# No network: VGG19 with random weights saved to a temporary file stands in for the ImageNet file.


@pytest.fixture(scope="module")
def vgg_features_file(tmp_path_factory):
    """torchvision vgg19 features with random weights, saved as the ``features.*`` subset."""
    torch.manual_seed(0)
    feats = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["E"])
    path = tmp_path_factory.mktemp("vgg") / "vgg19_features_random.pth"
    torch.save({f"features.{k}": v for k, v in feats.state_dict().items()}, path)
    return path


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No LABKIT_VGG19, an empty hub cache, and a torchvision download that fails like offline."""
    calls = []

    def no_network(url, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.delenv("LABKIT_VGG19", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    return calls


def test_perceptual_loss_zero_positive_gradients_frozen(vgg_features_file):
    loss = PerceptualLoss({"conv2_2": 1.0, "relu3_1": 0.5}, weights=vgg_features_file)
    # only the layers up to the deepest requested one (relu3_1 = index 11) are built
    assert len(loss.vgg) == VGG19_LAYER_NAMES.index("relu3_1") + 1 == 12
    g = torch.Generator().manual_seed(1)
    target = torch.rand(2, 3, 32, 32, generator=g)
    pred = (target + 0.1 * torch.randn(target.shape, generator=g)).clamp(0, 1).requires_grad_(True)
    assert loss(target, target.clone()).item() == 0.0
    target.requires_grad_(True)
    value = loss(pred, target)
    assert value.item() > 0
    value.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert target.grad is None  # the target is detached, as BasicSR
    # the VGG is frozen and stays in eval mode
    assert all(not p.requires_grad for p in loss.vgg.parameters())
    assert all(p.grad is None for p in loss.vgg.parameters())
    loss.train()
    assert loss.training and not loss.vgg.training


def test_perceptual_loss_matches_torchvision_vgg19_before_activation(tmp_path):
    # a full torchvision vgg19 state dict (classifier included) is accepted
    torch.manual_seed(2)
    vgg = torchvision.models.vgg19(weights=None).eval()
    path = tmp_path / "vgg19_random.pth"
    torch.save(vgg.state_dict(), path)
    loss = PerceptualLoss({"conv1_2": 1.0, "conv3_4": 0.25}, weights=path)
    g = torch.Generator().manual_seed(3)
    pred, target = torch.rand(1, 3, 32, 32, generator=g), torch.rand(1, 3, 32, 32, generator=g)

    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def tv_features(x, index):  # torchvision's own layers, stopped right after the conv
        with torch.no_grad():
            return vgg.features[: index + 1]((x - mean) / std)

    expected = 0.0
    for name, w in (("conv1_2", 1.0), ("conv3_4", 0.25)):
        i = VGG19_LAYER_NAMES.index(name)
        fp, ft = tv_features(pred, i), tv_features(target, i)
        assert fp.min() < 0  # conv output before the ReLU: negative values survive
        assert torch.allclose(loss.features(pred)[name], fp, atol=1e-5)
        expected += w * (fp - ft).abs().mean().item()
    assert loss(pred, target).item() == pytest.approx(expected, rel=1e-5)
    # relu layers are after the activation (non-negative)
    relu = PerceptualLoss({"relu1_2": 1.0}, weights=path)
    assert relu.features(pred)["relu1_2"].min() >= 0


def test_perceptual_loss_criteria_and_range_norm(vgg_features_file):
    g = torch.Generator().manual_seed(4)
    pred, target = torch.rand(1, 3, 16, 16, generator=g), torch.rand(1, 3, 16, 16, generator=g)
    l1 = PerceptualLoss({"conv1_1": 1.0}, weights=vgg_features_file)
    fp, ft = l1.features(pred)["conv1_1"], l1.features(target)["conv1_1"]
    l2 = PerceptualLoss({"conv1_1": 1.0}, criterion="l2", weights=vgg_features_file)
    fro = PerceptualLoss({"conv1_1": 2.0}, criterion="fro", weights=vgg_features_file)
    assert l2(pred, target).item() == pytest.approx(((fp - ft) ** 2).mean().item(), rel=1e-5)
    assert fro(pred, target).item() == pytest.approx(2.0 * (fp - ft).pow(2).sum().sqrt().item(), rel=1e-5)
    # range_norm: inputs in [-1, 1] give the same loss as their [0, 1] versions
    rn = PerceptualLoss({"conv1_1": 1.0}, range_norm=True, weights=vgg_features_file)
    assert rn(pred * 2 - 1, target * 2 - 1).item() == pytest.approx(l1(pred, target).item(), rel=1e-5)


def test_perceptual_loss_argument_errors(vgg_features_file, tmp_path):
    with pytest.raises(ValueError, match="conv6_1"):
        PerceptualLoss({"conv6_1": 1.0}, weights=vgg_features_file)
    with pytest.raises(ValueError, match="vgg_type"):
        PerceptualLoss(vgg_type="vgg16", weights=vgg_features_file)
    with pytest.raises(ValueError, match="criterion"):
        PerceptualLoss(criterion="cos", weights=vgg_features_file)
    # a file that is not VGG19 names the file
    torch.save({"features.0.weight": torch.zeros(8, 3, 3, 3), "features.0.bias": torch.zeros(8)},
               tmp_path / "small.pth")
    with pytest.raises(ValueError, match="small.pth"):
        PerceptualLoss({"conv1_1": 1.0}, weights=tmp_path / "small.pth")
    ok, why = vgg19_available(tmp_path / "small.pth")
    assert ok is False and "small.pth" in why and "do not fit" in why
    loss = PerceptualLoss({"conv1_1": 1.0}, weights=vgg_features_file)
    with pytest.raises(ValueError, match="shapes differ"):
        loss(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))


def test_perceptual_loss_unavailable_raises_clear_error(offline, tmp_path):
    with pytest.raises(WeightsUnavailableError) as err:
        PerceptualLoss()
    msg = str(err.value)
    assert "LABKIT_VGG19 is not set" in msg and "URLError" in msg
    assert "vgg19-dcbb9e9d.pth" in msg and "weights=" in msg  # how to provide the file
    assert isinstance(err.value, RuntimeError) and offline  # the download was really attempted
    with pytest.raises(WeightsUnavailableError, match="torchvision"):
        PerceptualLoss(weights="torchvision")
    with pytest.raises(WeightsUnavailableError, match="missing.pth"):
        PerceptualLoss(weights=tmp_path / "missing.pth")
    ok, why = vgg19_available()
    assert ok is False and "URLError" in why
    assert vgg19_available(tmp_path / "missing.pth")[0] is False


def test_perceptual_loss_weight_sources(offline, monkeypatch, vgg_features_file, tmp_path):
    # the environment variable
    monkeypatch.setenv("LABKIT_VGG19", str(vgg_features_file))
    loss = PerceptualLoss({"conv1_1": 1.0})
    assert "LABKIT_VGG19" in loss.weights_source and not offline
    ok, why = vgg19_available()
    assert ok and str(vgg_features_file) in why
    # torchvision (download replaced by the local file's content); a bare features dict works too
    bare = {k[len("features."):]: v for k, v in torch.load(vgg_features_file, weights_only=True).items()}
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", lambda url, *a, **k: bare)
    assert "torchvision" in PerceptualLoss({"conv1_1": 1.0}, weights="torchvision").weights_source
    # a broken LABKIT_VGG19 is not skipped silently
    monkeypatch.setenv("LABKIT_VGG19", str(tmp_path / "gone.pth"))
    with pytest.warns(UserWarning, match="gone.pth"):
        loss = PerceptualLoss({"conv1_1": 1.0})
    assert "torchvision" in loss.weights_source
