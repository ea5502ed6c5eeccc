"""labkit.train.fit: exact resume, early stopping, schedulers, atomic checkpoints, History."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from labkit.metrics import psnr_tensor
from labkit.train import CheckpointError, History, fit
from labkit.weights import load_weights


class Denoise(Dataset):
    """Smooth random images + Gaussian noise; random flips drawn from torch and numpy RNGs."""

    def __init__(self, n: int, seed: int, size: int = 16, sigma: float = 0.1) -> None:
        g = torch.Generator().manual_seed(seed)
        coarse = torch.rand(n, 3, size // 4, size // 4, generator=g)
        self.gt = nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
        self.lq = (self.gt + sigma * torch.randn(self.gt.shape, generator=g)).clamp(0, 1)

    def __len__(self) -> int:
        return len(self.gt)

    def __getitem__(self, i: int) -> dict:
        lq, gt = self.lq[i], self.gt[i]
        if torch.rand(()) < 0.5:  # augmentation draws from the global RNGs, as albumentations does
            lq, gt = lq.flip(-1), gt.flip(-1)
        if np.random.rand() < 0.5:
            lq, gt = lq.flip(-2), gt.flip(-2)
        return {"lq": lq, "gt": gt, "name": f"img{i:03d}"}


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 3, 3, padding=1)

    def forward(self, x):
        return x + self.conv2(torch.relu(self.conv1(x)))


class TwoStage(Tiny):
    def forward(self, x):
        s1 = super().forward(x)
        return [s1, super().forward(s1)]


TRAIN, VAL = Denoise(24, seed=0), Denoise(6, seed=1)
#: the validation pairs without random flips, as (input, target) tuples (a list is a Dataset)
VAL_FIXED = [(VAL.lq[i], VAL.gt[i]) for i in range(len(VAL))]


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _rows(h: History):
    return [{k: v for k, v in r.items() if k not in ("seconds", "train_seconds")} for r in h.epochs]   # times


def _setup(init_seed: int, lr: float = 1e-2):
    torch.manual_seed(init_seed)
    model = Tiny()
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.99))
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    return model, opt, sched


class CrashAfter(nn.Module):
    """An L1 loss that raises on its n-th call (simulates a killed run)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n, self.calls = n, 0

    def forward(self, pred, target):
        self.calls += 1
        if self.calls >= self.n:
            raise KeyboardInterrupt("simulated crash")
        return (pred - target).abs().mean()


COMMON = dict(epochs=4, batch_size=4, seed=123, progress=False, log=None, restore_best=False,
              ema_decay=0.9, grad_clip=1.0)


def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path):
    model_a, opt_a, sched_a = _setup(0)
    hist_a = fit(model_a, TRAIN, VAL, loss=nn.L1Loss(), optimizer=opt_a, scheduler=sched_a,
                 checkpoint_dir=tmp_path / "a", **COMMON)
    assert len(hist_a.epochs) == 4

    # same run, killed in epoch 3 (6 train + 6 val loss calls per epoch)
    model_b, opt_b, sched_b = _setup(0)
    with pytest.raises(KeyboardInterrupt):
        fit(model_b, TRAIN, VAL, loss=CrashAfter(2 * 12 + 3), optimizer=opt_b, scheduler=sched_b,
            checkpoint_dir=tmp_path / "b", **COMMON)
    ck = torch.load(tmp_path / "b" / "last.pth", weights_only=True)
    assert ck["epoch"] == 2 and len(ck["history"]["epochs"]) == 2
    # some RNG draws happened after the checkpoint: resuming must restore, not reuse, them
    torch.rand(100)
    np.random.rand(7)

    # resume with a freshly (differently) initialised model, optimizer and scheduler
    model_c, opt_c, sched_c = _setup(99)
    hist_c = fit(model_c, TRAIN, VAL, loss=nn.L1Loss(), optimizer=opt_c, scheduler=sched_c,
                 checkpoint_dir=tmp_path / "b", **COMMON)
    assert _rows(hist_c) == _rows(hist_a)
    sa, sc = model_a.state_dict(), model_c.state_dict()
    assert all(torch.equal(sa[k], sc[k]) for k in sa)
    last_a = torch.load(tmp_path / "a" / "last.pth", weights_only=True)
    last_c = torch.load(tmp_path / "b" / "last.pth", weights_only=True)
    for k in last_a["model"]:  # raw weights and EMA weights
        assert torch.equal(last_a["model"][k], last_c["model"][k])
        assert torch.equal(last_a["ema"][k], last_c["ema"][k])
    assert opt_c.param_groups[0]["lr"] == opt_a.param_groups[0]["lr"]

    # a finished run returns its history and final weights without training
    model_d, opt_d, sched_d = _setup(7)
    hist_d = fit(model_d, TRAIN, VAL, loss=CrashAfter(1), optimizer=opt_d, scheduler=sched_d,
                 checkpoint_dir=tmp_path / "b", **COMMON)
    assert _rows(hist_d) == _rows(hist_a)
    assert all(torch.equal(sa[k], model_d.state_dict()[k]) for k in sa)


def test_training_reduces_the_loss_and_multi_output_models_work():
    torch.manual_seed(0)
    model = TwoStage()
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    hist = fit(model, TRAIN, VAL_FIXED, loss="l1", optimizer=opt, epochs=6, batch_size=4, seed=0,
               progress=False, log=None)
    first, last = hist.epochs[0], hist.epochs[-1]
    assert last["train_loss"] < 0.7 * first["train_loss"]
    assert hist.best("val_psnr") > first["val_psnr"] + 1.0
    # the best epoch's weights are restored: validating them again gives the recorded PSNR
    best_row = hist.epochs[hist.best_epoch - 1]
    assert best_row["val_psnr"] == hist.best("val_psnr")
    model.eval()
    with torch.no_grad():
        psnrs = [psnr_tensor(model(lq[None])[-1].clamp(0, 1), gt[None]).item() for lq, gt in VAL_FIXED]
    assert float(np.mean(psnrs)) == pytest.approx(best_row["val_psnr"], abs=1e-4)


def test_loss_mix_2l1_plus_l2_is_what_validation_reports():
    torch.manual_seed(0)
    model = Tiny()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    val = DataLoader(VAL_FIXED, batch_size=2, shuffle=False)  # a DataLoader is used as given
    hist = fit(model, TRAIN, val, loss={"l1": 2.0, "l2": 1.0}, optimizer=opt, epochs=1,
               batch_size=8, restore_best=False, progress=False, log=None)
    # 2 * mean|e| + mean(e^2) per image with the final weights, averaged over the images
    with torch.no_grad():
        errors = [model(lq[None]) - gt[None] for lq, gt in VAL_FIXED]
    hand = float(np.mean([(2 * e.abs().mean() + (e**2).mean()).item() for e in errors]))
    assert hist.epochs[0]["val_loss"] == pytest.approx(hand, rel=1e-5)


def test_early_stopping_on_constant_and_degrading_metric(tmp_path):
    # lr 0: the metric is constant, so epochs 2 and 3 do not improve -> stop after epoch 3
    torch.manual_seed(0)
    model = Tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    hist = fit(model, TRAIN, VAL_FIXED, loss="l1", optimizer=opt, epochs=10, early_stopping=2,
               monitor="val_loss", progress=False, log=None)
    assert [r["epoch"] for r in hist.epochs] == [1, 2, 3]
    assert hist.stopped_early and hist.best_epoch == 1

    # gradient *ascent* on the MSE: PSNR falls every epoch; the epoch-1 weights are restored
    torch.manual_seed(0)
    model = Tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    hist = fit(model, TRAIN, VAL_FIXED, loss=lambda p, t: -((p - t) ** 2).mean(), optimizer=opt,
               epochs=10, early_stopping=2, monitor="val_psnr", batch_size=4,
               checkpoint_dir=tmp_path, progress=False, log=None)
    psnrs = hist.column("val_psnr")
    assert len(psnrs) == 3 and psnrs[0] > psnrs[1] > psnrs[2]
    assert hist.stopped_early and hist.best_epoch == 1
    best = load_weights(Tiny(), tmp_path / "best.pth")
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in best.state_dict().items())
    last = torch.load(tmp_path / "last.pth", weights_only=True)
    assert not torch.equal(last["model"]["conv1.weight"], model.conv1.weight)  # raw weights moved on


def test_steplr_halves_every_three_epochs_without_validation():
    torch.manual_seed(0)
    model = Tiny()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    hist = fit(model, TRAIN, None, loss="l1", optimizer=opt, scheduler=sched, epochs=7,
               batch_size=12, progress=False, log=None)
    assert hist.column("lr") == pytest.approx([1e-3] * 3 + [5e-4] * 3 + [2.5e-4])
    assert hist.column("val_psnr") == [None] * 7 and hist.best_epoch is None


def test_steps_cap_and_per_step_scheduler():
    torch.manual_seed(0)
    model = Tiny()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (s + 1))
    hist = fit(model, TRAIN, VAL, loss="l1", optimizer=opt, scheduler=sched,
               scheduler_interval="step", steps=10, batch_size=4, progress=False, log=None)
    assert hist.column("step") == [6, 10]  # 6 batches per epoch; the second epoch is cut at 10
    assert hist.column("lr") == pytest.approx([1.0, 1.0 / 7])
    with pytest.raises(ValueError, match="epochs or steps"):
        fit(model, TRAIN, loss="l1", optimizer=opt)


def test_checkpoints_are_atomic_and_weights_only(tmp_path):
    model, opt, sched = _setup(0)
    fit(model, TRAIN, VAL, loss="l1", optimizer=opt, scheduler=sched, epochs=2, batch_size=8,
        checkpoint_dir=tmp_path, progress=False, log=None)
    files = sorted(f for f in os.listdir(tmp_path) if not f.startswith("events.out.tfevents."))   # + TensorBoard's
    assert files == ["best.pth", "last.pth", "train_log.csv"]  # no temp files left
    ck = torch.load(tmp_path / "last.pth", weights_only=True)
    assert ck["epoch"] == 2 and ck["global_step"] == 6
    assert {"model", "optimizer", "scheduler", "rng", "history", "best_state", "bad_epochs"} <= set(ck)
    assert isinstance(ck["rng"]["torch"], torch.Tensor)
    History.from_dict(ck["history"])


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    model, opt, sched = _setup(0)
    fit(model, TRAIN, None, loss="l1", optimizer=opt, epochs=1, batch_size=12,
        checkpoint_dir=tmp_path, progress=False, log=None)
    last = tmp_path / "last.pth"
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(CheckpointError, match="last.pth"):
        fit(model, TRAIN, None, loss="l1", optimizer=opt, epochs=2, checkpoint_dir=tmp_path,
            progress=False, log=None)
    last.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match=str(last)):
        fit(model, TRAIN, None, loss="l1", optimizer=opt, epochs=2, checkpoint_dir=tmp_path,
            progress=False, log=None)
    # resume=False starts over and overwrites it
    hist = fit(model, TRAIN, None, loss="l1", optimizer=opt, epochs=1, batch_size=12,
               checkpoint_dir=tmp_path, resume=False, progress=False, log=None)
    assert len(hist.epochs) == 1
    assert torch.load(last, weights_only=True)["epoch"] == 1


def test_ema_with_decay_near_one_stays_at_the_initial_weights():
    torch.manual_seed(0)
    model = Tiny()
    init = _state(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    fit(model, TRAIN, VAL, loss="l1", optimizer=opt, epochs=1, batch_size=4, ema_decay=1 - 1e-9,
        restore_best=False, progress=False, log=None)
    assert all(torch.allclose(init[k], v, atol=1e-6) for k, v in model.state_dict().items())


def test_history_roundtrip_best_and_plot(tmp_path):
    h = History(epochs=[
        {"epoch": 1, "step": 3, "train_loss": 0.3, "val_loss": 0.25, "val_psnr": 20.0, "lr": 1e-3,
         "seconds": 1.0},
        {"epoch": 2, "step": 6, "train_loss": 0.2, "val_loss": 0.28, "val_psnr": 22.5, "lr": 1e-3,
         "seconds": 1.0},
    ], best_epoch=2, stopped_early=False, monitor="val_psnr")
    assert h.best("val_psnr") == 22.5 and h.best("val_loss") == 0.25 and h.best() == 22.5
    path = h.save_json(tmp_path / "h" / "history.json")
    assert json.loads(path.read_text())["best_epoch"] == 2
    assert History.load_json(path) == h
    assert History.from_dict(h.to_dict()) == h
    with pytest.raises(KeyError, match="ssim"):
        h.best("ssim")
    import matplotlib

    matplotlib.use("Agg")
    ax = h.plot()
    assert len(ax.figure.axes) == 2  # the PSNR twin axis
    assert math.isclose(ax.lines[0].get_ydata()[1], 0.2)


def test_the_epoch_loss_sum_has_no_float64_on_apple_gpus(monkeypatch):
    """MPS has no float64: the per-step loss kept for the epoch mean is float32 there, float64 elsewhere."""
    from labkit.train import supervised
    assert supervised.loss_sum_dtype(torch.device("mps")) == torch.float32
    assert supervised.loss_sum_dtype("cpu") == supervised.loss_sum_dtype("cuda") == torch.float64

    def no_float64(self, *a, **k):
        raise TypeError("Cannot convert a MPS Tensor to float64 dtype as the MPS framework doesn't support float64")
    monkeypatch.setattr(supervised, "loss_sum_dtype", lambda device: torch.float32)   # what MPS gets
    monkeypatch.setattr(torch.Tensor, "double", no_float64)                          # what MPS does with float64
    data = [(torch.rand(3, 8, 8), torch.rand(3, 8, 8)) for _ in range(4)]
    net = nn.Conv2d(3, 3, 3, padding=1)
    history = fit(net, data, loss=nn.L1Loss(), optimizer=torch.optim.SGD(net.parameters(), lr=0.1), epochs=1,
                  batch_size=2, device="cpu", progress=False, log=None)
    assert math.isfinite(history.epochs[-1]["train_loss"])


def test_channels_last_trains_the_same_parameters_in_nhwc_and_resumes_exactly(tmp_path):
    model_a, opt_a, sched_a = _setup(0)
    params = list(model_a.parameters())
    hist_a = fit(model_a, TRAIN, VAL, loss=nn.L1Loss(), optimizer=opt_a, scheduler=sched_a, channels_last=True,
                 checkpoint_dir=tmp_path / "a", **COMMON)
    assert list(model_a.parameters()) == params                       # the optimizer's own Parameters trained
    assert model_a.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    model_n, opt_n, sched_n = _setup(0)
    hist_n = fit(model_n, TRAIN, VAL, loss=nn.L1Loss(), optimizer=opt_n, scheduler=sched_n, **COMMON)
    assert not model_n.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    # the same arithmetic in another order: equal to float32 rounding, not bit for bit
    for ra, rn in zip(hist_a.epochs, hist_n.epochs):
        assert ra["train_loss"] == pytest.approx(rn["train_loss"], rel=1e-4)
    # killed in epoch 3 and resumed (with a fresh contiguous model): the channels_last run, bit for bit
    model_b, opt_b, sched_b = _setup(0)
    with pytest.raises(KeyboardInterrupt):
        fit(model_b, TRAIN, VAL, loss=CrashAfter(2 * 12 + 3), optimizer=opt_b, scheduler=sched_b, channels_last=True,
            checkpoint_dir=tmp_path / "b", **COMMON)
    model_c, opt_c, sched_c = _setup(99)
    hist_c = fit(model_c, TRAIN, VAL, loss=nn.L1Loss(), optimizer=opt_c, scheduler=sched_c, channels_last=True,
                 checkpoint_dir=tmp_path / "b", **COMMON)
    assert _rows(hist_c) == _rows(hist_a)
    assert all(torch.equal(v, model_c.state_dict()[k]) for k, v in model_a.state_dict().items())


def test_fixed_steps_loader_gives_the_same_steps_whatever_the_dataset_size():
    from labkit.train.batches import fixed_steps_loader

    small, large = list(range(6)), list(range(100))
    for data in (small, large):
        assert len(list(fixed_steps_loader(data, 4, 5))) == 5             # 5 batches of 4 either way
    epoch = [int(v) for b in fixed_steps_loader(large, 4, 5, seed=0) for v in b]
    assert len(set(epoch)) == 20                                          # large enough: no sample twice
    assert [int(v) for b in fixed_steps_loader(large, 4, 5, seed=0) for v in b] == epoch   # seeded
    assert len(list(fixed_steps_loader(large, 4, None))) == 25            # None: one pass
    # replacement=True with torch's RNG: the draws of RandomSampler(replacement=True, num_samples=batch * iters)
    torch.manual_seed(3)
    ours = [b.tolist() for b in fixed_steps_loader(large, 4, 5, replacement=True)]
    torch.manual_seed(3)
    plain = [b.tolist() for b in torch.utils.data.DataLoader(
        large, batch_size=4, sampler=torch.utils.data.RandomSampler(large, replacement=True, num_samples=20))]
    assert ours == plain
    with pytest.raises(ValueError, match="empty"):
        fixed_steps_loader([], 4, 5)
    with pytest.raises(ValueError, match="iters"):
        fixed_steps_loader(large, 4, 0)
