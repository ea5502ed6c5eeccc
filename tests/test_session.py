"""labkit.train.session: fit and fit_gan run on the same session, and each resumes bit-exactly.

One helper trains a plain model (``fit``) and a GAN (``fit_gan``) the same way: straight for four
epochs, and interrupted after two then resumed from ``last.pth`` by a fresh process-like call
(new modules, new optimizers, a different global seed). The weights and histories must be equal
to the bit, and both runs must have gone through :class:`labkit.train.session.Session` (its
checkpoint writer and its restore), so resume, checkpoints and DDP are written once.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import TensorDataset

from labkit.train import History, fit, fit_gan
from labkit.train.gan import GANStep
from labkit.train.session import Session


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(24, 3, 16, 16, generator=g)
    return TensorDataset(x, 0.8 * x + 0.1), TensorDataset(x[:4], 0.8 * x[:4] + 0.1)


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))


def _disc(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(4 * 8 * 8, 1))


def _train_plain(epochs: int, folder) -> tuple[list[nn.Module], History]:
    train, val = _data()
    model = _net(1)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, 0.7)
    hist = fit(model, train, val, loss={"l1": 2, "l2": 1}, optimizer=opt, scheduler=sched, epochs=epochs,
               batch_size=4, ema_decay=0.9, seed=3, checkpoint_dir=folder, progress=False, log=None)
    return [model], hist


def _train_gan(epochs: int, folder) -> tuple[list[nn.Module], History]:
    train, val = _data()
    g, d = _net(1), _disc(2)
    step = GANStep({"pix": (10.0, nn.L1Loss())}, gan_loss="lsgan", adv_weight=1.0, lambda_gp=10.0)
    opt_g, opt_d = torch.optim.AdamW(g.parameters(), 1e-3), torch.optim.AdamW(d.parameters(), 1e-3)
    hist = fit_gan(g, d, train, val, step=step, opt_g=opt_g, opt_d=opt_d,
                   sched_g=torch.optim.lr_scheduler.StepLR(opt_g, 1, 0.5), epochs=epochs, batch_size=4, seed=5,
                   checkpoint_dir=folder, progress=False, log=None)
    return [g, d], hist


def _rows(h: History) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("seconds", "train_seconds")} for r in h.epochs]   # times


def _spy(monkeypatch) -> dict[str, int]:
    """Count calls of the session's checkpoint writer and its restore."""
    calls = {"checkpoint": 0, "restore": 0}
    for name in calls:
        real = getattr(Session, f"_{name}")

        def wrapped(self, _real=real, _name=name):
            calls[_name] += 1
            return _real(self)

        monkeypatch.setattr(Session, f"_{name}", wrapped)
    return calls


def test_plain_and_gan_training_share_the_session_and_resume_bit_exactly(tmp_path, monkeypatch):
    calls = _spy(monkeypatch)
    for kind, train in (("plain", _train_plain), ("gan", _train_gan)):
        straight, h_straight = train(4, tmp_path / kind / "straight")
        train(2, tmp_path / kind / "cut")
        torch.manual_seed(12345)  # the resumed run must not depend on the global RNG it starts with
        resumed, h_resumed = train(4, tmp_path / kind / "cut")
        assert _rows(h_resumed) == _rows(h_straight), kind
        for a, b in zip(straight, resumed):
            for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
                assert torch.equal(x, y), f"{kind}: {name} differs after resume"
        assert len(h_straight.epochs) == 4 and h_straight.epochs[-1]["step"] == 24
    # every epoch of every run wrote its checkpoint through Session; each resume read through it
    assert calls == {"checkpoint": 2 * (4 + 2 + 2), "restore": 2}


def test_a_fit_checkpoint_is_refused_by_fit_gan_and_named(tmp_path):
    _train_plain(1, tmp_path)
    try:
        _train_gan(2, tmp_path)
    except RuntimeError as e:
        assert "last.pth" in str(e) and "fit_gan" in str(e)
    else:
        raise AssertionError("fit_gan resumed from a fit checkpoint")
