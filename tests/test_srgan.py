"""SRGAN pieces: MSRResNet, VGGStyleDiscriminator (official layouts, counts), GANStep, fit_gan."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from labkit.train.gan import GANStep, GANTrainingError, fit_gan, gradient_penalty
from labkit.losses import GANLoss
from labkit.models.discriminator import VGGStyleDiscriminator
from labkit.models.srresnet import MSRResNet
from labkit.train import CheckpointError, History
from labkit.weights import load_weights


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ----------------------------------------------------------------------------- models


def test_parameter_counts_match_reference():
    # REFERENCE.md: MSRResNet x4 (64 feat, 16 blocks) and VGGStyleDiscriminator (3, 64, 128)
    assert n_params(MSRResNet(3, 3, 64, 16, upscale=4)) == 1_517_571
    assert n_params(VGGStyleDiscriminator(3, 64, 128)) == 14_499_401


def official_msrresnet_keys(num_block: int, upscale: int) -> list[str]:
    """BasicSR srresnet_arch.py, written out: conv_first, body.i.conv1/2, upconv1(/2), conv_hr, conv_last."""
    wb = ("weight", "bias")
    keys = [f"conv_first.{p}" for p in wb]
    for i in range(num_block):
        keys += [f"body.{i}.conv{j}.{p}" for j in (1, 2) for p in wb]
    keys += [f"upconv1.{p}" for p in wb]
    if upscale == 4:
        keys += [f"upconv2.{p}" for p in wb]
    keys += [f"conv_hr.{p}" for p in wb] + [f"conv_last.{p}" for p in wb]
    return keys


def official_discriminator_keys(input_size: int) -> list[str]:
    """BasicSR discriminator_arch.py (VGGStyleDiscriminator), written out."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = ["conv0_0.weight", "conv0_0.bias", "conv0_1.weight"] + [f"bn0_1.{p}" for p in bn]
    for k in range(1, 6 if input_size == 256 else 5):
        for j in (0, 1):
            keys += [f"conv{k}_{j}.weight"] + [f"bn{k}_{j}.{p}" for p in bn]
    keys += ["linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias"]
    return keys


@pytest.mark.parametrize("upscale", [2, 3, 4])
def test_msrresnet_keys_and_upconv_shapes(upscale):
    net = MSRResNet(num_feat=16, num_block=3, upscale=upscale)
    sd = net.state_dict()
    assert list(sd) == official_msrresnet_keys(3, upscale)
    # x2 / x3: one upconv1 with s^2 * num_feat channels; x4: two x2 stages of 4 * num_feat
    assert sd["upconv1.weight"].shape == (16 * (4 if upscale == 4 else upscale**2), 16, 3, 3)


def test_discriminator_keys_and_shapes():
    for size in (128, 256):
        d = VGGStyleDiscriminator(3, 64, size)
        assert list(d.state_dict()) == official_discriminator_keys(size)
    d = VGGStyleDiscriminator(3, 64, 128)
    assert d.conv0_1.weight.shape == (64, 64, 4, 4) and d.conv0_1.bias is None
    assert d.conv4_1.weight.shape == (512, 512, 4, 4)
    assert d.linear1.weight.shape == (100, 512 * 4 * 4)


def test_msrresnet_loads_its_own_state_dict_strictly(tmp_path):
    a, b = MSRResNet(num_feat=8, num_block=2), MSRResNet(num_feat=8, num_block=2)
    torch.save({"params": a.state_dict()}, tmp_path / "net_g.pth")  # BasicSR wrapper
    load_weights(b, tmp_path / "net_g.pth")
    x = torch.rand(1, 3, 6, 6)
    assert torch.equal(a(x), b(x))


@pytest.mark.parametrize("upscale", [2, 3, 4])
def test_msrresnet_shapes_and_zero_weights_give_bilinear_upsample(upscale):
    net = MSRResNet(num_feat=8, num_block=2, upscale=upscale).eval()
    x = torch.rand(2, 3, 7, 5)
    with torch.no_grad():
        assert net(x).shape == (2, 3, 7 * upscale, 5 * upscale)
        for p in net.parameters():
            p.zero_()
        out = net(x)
    expected = F.interpolate(x, scale_factor=upscale, mode="bilinear", align_corners=False)
    assert torch.allclose(out, expected, atol=1e-6)
    # and that is bilinear with half-pixel centres: a horizontal ramp stays a ramp inside
    ramp = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 3, 4, 8).contiguous()
    with torch.no_grad():
        up = net(ramp)[0, 0, 0]
    k = torch.arange(up.numel(), dtype=torch.float32)
    src = (k + 0.5) / upscale - 0.5  # source coordinate of output pixel k
    inside = (src >= 0) & (src <= 7)
    assert torch.allclose(up[inside], src[inside], atol=1e-5)


def test_msrresnet_init_is_scaled_kaiming_and_output_near_bilinear():
    torch.manual_seed(0)
    net = MSRResNet(num_feat=64, num_block=4)
    w = net.body[0].conv1.weight
    # kaiming normal (fan_in = 64*9) times 0.1 -> std 0.1 * sqrt(2 / 576)
    assert w.std().item() == pytest.approx(0.1 * math.sqrt(2 / 576), rel=0.05)
    assert torch.count_nonzero(net.conv_first.bias) == 0


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="upscale"):
        MSRResNet(upscale=8)
    with pytest.raises(ValueError, match="input_size"):
        VGGStyleDiscriminator(input_size=64)
    d = VGGStyleDiscriminator(3, 8, 128)
    with pytest.raises(ValueError, match=r"128, 128.*\(1, 3, 96, 96\)"):
        d(torch.rand(1, 3, 96, 96))
    with pytest.raises(ValueError, match="input_size"):
        d(torch.rand(1, 3, 128, 64))
    assert d(torch.rand(2, 3, 128, 128)).shape == (2, 1)
    assert VGGStyleDiscriminator(3, 4, 256)(torch.rand(1, 3, 256, 256)).shape == (1, 1)


# ----------------------------------------------------------------------------- GAN losses


def test_gan_loss_vanilla_and_lsgan_match_hand_formulas():
    x = torch.tensor([[-2.0], [0.5], [3.0]])
    sig = 1 / (1 + torch.exp(-x))
    v = GANLoss("vanilla", loss_weight=0.25)
    # D side: never weighted; -log sigmoid for real, -log(1 - sigmoid) for fake
    assert v(x, True, is_disc=True).item() == pytest.approx((-torch.log(sig)).mean().item(), rel=1e-6)
    assert v(x, False, is_disc=True).item() == pytest.approx((-torch.log(1 - sig)).mean().item(), rel=1e-6)
    # G side: weighted
    assert v(x, True).item() == pytest.approx(0.25 * (-torch.log(sig)).mean().item(), rel=1e-6)
    ls = GANLoss("lsgan", real_label_val=0.9, loss_weight=2.0)
    assert ls(x, True, is_disc=True).item() == pytest.approx(((x - 0.9) ** 2).mean().item(), rel=1e-6)
    assert ls(x, False, is_disc=True).item() == pytest.approx((x**2).mean().item(), rel=1e-6)
    assert ls(x, True).item() == pytest.approx(2.0 * ((x - 0.9) ** 2).mean().item(), rel=1e-6)
    w = GANLoss("wgan", loss_weight=3.0)
    assert w(x, True, is_disc=True).item() == pytest.approx(-x.mean().item())
    assert w(x, False, is_disc=True).item() == pytest.approx(x.mean().item())
    assert w(x, True).item() == pytest.approx(-3.0 * x.mean().item())
    h = GANLoss("hinge")
    assert h(x, True, is_disc=True).item() == pytest.approx(torch.relu(1 - x).mean().item())
    assert h(x, False, is_disc=True).item() == pytest.approx(torch.relu(1 + x).mean().item())
    with pytest.raises(ValueError, match="gan_type"):
        GANLoss("bce")


# ----------------------------------------------------------------------------- gradient penalty


class LinearCritic(nn.Module):
    """D(x) = sum(w * x) per sample: its input gradient is w everywhere."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x):
        return (self.w * x).flatten(1).sum(1, keepdim=True)


def test_gradient_penalty_known_gradient_norms():
    torch.manual_seed(0)
    real, fake = torch.rand(4, 3, 5, 6), torch.rand(4, 3, 5, 6)
    w = torch.randn(1, 3, 5, 6)
    unit = w / w.norm()  # whole-sample norm 1
    assert gradient_penalty(LinearCritic(unit), real, fake).item() == pytest.approx(0.0, abs=1e-10)
    assert gradient_penalty(LinearCritic(3 * unit), real, fake).item() == pytest.approx(4.0, rel=1e-5)
    # per pixel: channel norm 2 at every pixel -> pixel GP (2-1)^2 = 1,
    # whole-sample norm 2*sqrt(H*W) -> sample GP (2*sqrt(30) - 1)^2
    per_pixel = 2 * w / w.norm(dim=1, keepdim=True)
    critic = LinearCritic(per_pixel)
    assert gradient_penalty(critic, real, fake, reduction="pixel").item() == pytest.approx(1.0, rel=1e-5)
    sample_gp = (2 * math.sqrt(30) - 1) ** 2
    assert gradient_penalty(critic, real, fake).item() == pytest.approx(sample_gp, rel=1e-5)
    # differentiable w.r.t. the critic: d/dw of (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    critic = LinearCritic(3 * unit)
    gradient_penalty(critic, real, fake).backward()
    assert torch.allclose(critic.w.grad, 2 * (3 - 1) * unit, atol=1e-5)
    with pytest.raises(ValueError, match="reduction"):
        gradient_penalty(critic, real, fake, reduction="channel")


def test_gradient_penalty_finite_on_a_real_discriminator():
    torch.manual_seed(0)
    d = VGGStyleDiscriminator(3, 4, 128)
    gp = gradient_penalty(d, torch.rand(2, 3, 128, 128), torch.rand(2, 3, 128, 128))
    assert torch.isfinite(gp) and gp.item() >= 0
    gp.backward()
    assert d.conv0_0.weight.grad is not None and torch.isfinite(d.conv0_0.weight.grad).all()


# ----------------------------------------------------------------------------- GANStep


class TinyG(nn.Module):
    def __init__(self, two_outputs: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.two = two_outputs

    def forward(self, x):
        y = x + self.conv(x)
        return [x, y] if self.two else y


class TinyD(nn.Module):
    def __init__(self, in_ch: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, 4, 3, stride=2, padding=1)
        self.lin = nn.Linear(4, 1)

    def forward(self, x):
        return self.lin(F.leaky_relu(self.conv(x), 0.2).mean(dim=(2, 3)))


def _params(m):
    return [p.detach().clone() for p in m.parameters()]


def _changed(before, m):
    return all(not torch.equal(a, b) for a, b in zip(before, m.parameters()))


@pytest.mark.parametrize("gan_type,lambda_gp,two", [("vanilla", 0.0, False), ("lsgan", 10.0, True)])
def test_gan_step_updates_both_nets_with_finite_losses(gan_type, lambda_gp, two):
    torch.manual_seed(0)
    g, d = TinyG(two), TinyD()
    opt_g = torch.optim.Adam(g.parameters(), 1e-2)
    opt_d = torch.optim.Adam(d.parameters(), 1e-2)
    step = GANStep({"pix": (1.0, nn.L1Loss()), "l2": (0.5, nn.MSELoss())},
                   gan_loss=gan_type, adv_weight=0.1, lambda_gp=lambda_gp)
    gb, db = _params(g), _params(d)
    lq, gt = torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8)
    logs = step(g, d, lq, gt, opt_g, opt_d, step=1)
    assert _changed(gb, g) and _changed(db, d)
    expected = {"l_g_total", "l_g_pix", "l_g_l2", "l_g_gan", "l_d_real", "l_d_fake", "l_d_total",
                "d_real_mean", "d_fake_mean"} | ({"l_d_gp"} if lambda_gp else set())
    assert set(logs) == expected
    assert all(isinstance(v, float) and math.isfinite(v) for v in logs.values())
    assert logs["l_g_total"] == pytest.approx(logs["l_g_pix"] + logs["l_g_l2"] + logs["l_g_gan"], rel=1e-5)
    d_sum = logs["l_d_real"] + logs["l_d_fake"] + logs.get("l_d_gp", 0.0)
    assert logs["l_d_total"] == pytest.approx(d_sum, rel=1e-5)
    # the weighted pixel term is computed on the (last) output before the update
    fake = lq + F.conv2d(lq, gb[0], gb[1], padding=1)
    assert logs["l_g_pix"] == pytest.approx(F.l1_loss(fake, gt).item(), rel=1e-5)
    assert all(p.requires_grad for p in d.parameters())  # D unfrozen again


def test_gan_step_generator_gan_term_uses_the_updated_discriminator():
    torch.manual_seed(0)
    g, d = TinyG(), TinyD()
    opt_g, opt_d = torch.optim.SGD(g.parameters(), 0.1), torch.optim.SGD(d.parameters(), 0.1)
    lq, gt = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        fake = g(lq)
    logs = GANStep(gan_loss="vanilla", adv_weight=0.5)(g, d, lq, gt, opt_g, opt_d)
    with torch.no_grad():  # d was updated by the D step; G's term is measured with it
        expected = 0.5 * F.softplus(-d(fake)).mean().item()
    assert logs["l_g_gan"] == pytest.approx(expected, rel=1e-5)


def test_gan_step_conditional_discriminator_input():
    torch.manual_seed(0)
    g, d = TinyG(), TinyD(in_ch=6)
    opt_g, opt_d = torch.optim.Adam(g.parameters()), torch.optim.Adam(d.parameters())
    step = GANStep({"pix": (1.0, nn.L1Loss())}, gan_loss="lsgan", lambda_gp=1.0,
                   d_input=lambda lq, img: torch.cat([lq, img], 1))
    logs = step(g, d, torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8), opt_g, opt_d)
    assert all(math.isfinite(v) for v in logs.values())


def test_gan_step_nan_guard_names_the_update_and_loss():
    torch.manual_seed(0)
    g, d = TinyG(), TinyD()
    opt_g, opt_d = torch.optim.Adam(g.parameters()), torch.optim.Adam(d.parameters())
    lq, gt = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    step = GANStep({"bad": (1.0, lambda p, t: (p - t).mean() * float("nan"))})
    gb = _params(g)
    with pytest.raises(GANTrainingError, match=r"generator update at step 7.*l_g_total = nan"):
        step(g, d, lq, gt, opt_g, opt_d, step=7)
    assert all(torch.equal(a, b) for a, b in zip(gb, g.parameters()))  # no NaN step taken
    assert all(p.requires_grad for p in d.parameters())

    class InfD(TinyD):
        def forward(self, x):
            return super().forward(x) * float("inf")

    d2 = InfD()
    with pytest.raises(GANTrainingError, match=r"discriminator update.*l_d_real"):
        GANStep({"pix": (1.0, nn.L1Loss())}, gan_loss="lsgan")(
            g, d2, lq, gt, opt_g, torch.optim.Adam(d2.parameters()))
    assert issubclass(GANTrainingError, RuntimeError)


def test_gan_step_argument_checks():
    with pytest.raises(ValueError, match="not both"):
        GANStep(gan_loss=GANLoss("vanilla", loss_weight=5e-3), adv_weight=5e-3)
    assert GANStep(gan_loss=GANLoss("vanilla", loss_weight=5e-3)).adv_weight == 5e-3
    assert GANStep(gan_loss="lsgan", adv_weight=2.0).adv_weight == 2.0
    with pytest.raises(TypeError, match="pix"):
        GANStep({"pix": nn.L1Loss()})
    with pytest.raises(ValueError, match="total"):
        GANStep({"total": (1.0, nn.L1Loss())})
    with pytest.raises(ValueError, match="gp_reduction"):
        GANStep(gp_reduction="channel")


# ----------------------------------------------------------------------------- fit_gan


def _pairs(n: int, seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    gt = torch.rand(n, 3, 8, 8, generator=g)
    lq = (gt + 0.1 * torch.randn(gt.shape, generator=g)).clamp(0, 1)
    return [{"lq": lq[i], "gt": gt[i], "name": f"{i}"} for i in range(n)]


TRAIN, VAL = _pairs(12, 0), _pairs(3, 1)


def _setup(seed: int = 0):
    torch.manual_seed(seed)
    g, d = TinyG(), TinyD()
    opt_g = torch.optim.Adam(g.parameters(), 1e-2)
    opt_d = torch.optim.Adam(d.parameters(), 1e-2)
    sched_g = torch.optim.lr_scheduler.StepLR(opt_g, step_size=1, gamma=0.5)
    sched_d = torch.optim.lr_scheduler.StepLR(opt_d, step_size=2, gamma=0.5)
    step = GANStep({"pix": (1.0, nn.L1Loss())}, gan_loss="lsgan", adv_weight=0.1, lambda_gp=1.0)
    return g, d, dict(step=step, opt_g=opt_g, opt_d=opt_d, sched_g=sched_g, sched_d=sched_d)


def _rows(h: History):
    return [{k: v for k, v in r.items() if k not in ("seconds", "train_seconds")} for r in h.epochs]   # times


def test_fit_gan_checkpoints_and_resumes_exactly(tmp_path):
    kw = dict(batch_size=4, device="cpu", progress=False, seed=3)
    # reference: 3 epochs in one go
    g_ref, d_ref, parts = _setup()
    h_ref = fit_gan(g_ref, d_ref, TRAIN, VAL, epochs=3, log=None, **parts, **kw)
    assert [r["epoch"] for r in h_ref.epochs] == [1, 2, 3] and h_ref.epochs[-1]["step"] == 9
    row = h_ref.epochs[0]
    for key in ("l_g_total", "l_g_pix", "l_g_gan", "l_d_real", "l_d_fake", "l_d_gp", "d_real_mean",
                "d_fake_mean", "val_psnr", "val_l1", "train_loss"):
        assert math.isfinite(row[key]), key
    assert row["train_loss"] == row["l_g_total"]
    # StepLR per epoch: G halves every epoch, D every second one
    assert [r["lr_g"] for r in h_ref.epochs] == pytest.approx([1e-2, 5e-3, 2.5e-3])
    assert [r["lr_d"] for r in h_ref.epochs] == pytest.approx([1e-2, 1e-2, 5e-3])

    # 2 epochs with checkpoints, then a new process-like call with epochs=3
    ck = tmp_path / "gan"
    g1, d1, parts1 = _setup()
    fit_gan(g1, d1, TRAIN, VAL, epochs=2, checkpoint_dir=ck, log=None, **parts1, **kw)
    assert (ck / "last.pth").is_file() and (ck / "net_g.pth").is_file()
    last = torch.load(ck / "last.pth", weights_only=True)
    assert last["epoch"] == 2
    assert {"net_g", "net_d", "opt_g", "opt_d", "sched_g", "sched_d", "rng"} <= set(last)

    g2, d2, parts2 = _setup(seed=99)  # different init: everything must come from the checkpoint
    lines: list[str] = []
    h = fit_gan(g2, d2, TRAIN, VAL, epochs=3, checkpoint_dir=ck, log=lines.append, **parts2, **kw)
    assert "resuming" in lines[0] and "after epoch 2" in lines[0]
    assert [r["epoch"] for r in h.epochs] == [1, 2, 3]
    assert _rows(h) == _rows(h_ref)
    for a, b in zip(g2.state_dict().values(), g_ref.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6)
    for a, b in zip(d2.state_dict().values(), d_ref.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6)
    # net_g.pth holds the generator weights of the last epoch
    g3 = TinyG()
    load_weights(g3, ck / "net_g.pth")
    assert all(torch.equal(a, b) for a, b in zip(g3.state_dict().values(), g2.state_dict().values()))

    # already finished: nothing to train, history returned
    g4, d4, parts4 = _setup(seed=5)
    lines.clear()
    h4 = fit_gan(g4, d4, TRAIN, None, epochs=3, checkpoint_dir=ck, log=lines.append, **parts4, **kw)
    assert len(h4.epochs) == 3 and "already finished" in lines[0]
    assert torch.equal(g4.conv.weight, g2.conv.weight)


def test_fit_gan_rejects_bad_checkpoints_and_arguments(tmp_path):
    g, d, parts = _setup()
    (tmp_path / "last.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="last.pth"):
        fit_gan(g, d, TRAIN, epochs=1, checkpoint_dir=tmp_path, device="cpu", progress=False,
                log=None, **parts)
    # a labkit.train.fit checkpoint is not a fit_gan one
    torch.save({"format": "labkit.fit/1"}, tmp_path / "last.pth")
    with pytest.raises(CheckpointError, match="fit_gan"):
        fit_gan(g, d, TRAIN, epochs=1, checkpoint_dir=tmp_path, device="cpu", progress=False,
                log=None, **parts)
    with pytest.raises(ValueError, match="epochs"):
        fit_gan(g, d, TRAIN, epochs=0, device="cpu", **parts)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(parts["opt_g"])
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        fit_gan(g, d, TRAIN, epochs=1, device="cpu", **{**parts, "sched_g": plateau})
