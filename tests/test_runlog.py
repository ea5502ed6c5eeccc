"""The run folder's training logs (issue 21): TensorBoard event files read back with TensorBoard's own reader,
the CSV that is always written, and logging that changes no number of the run."""

import importlib.util

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from labkit.train import fit, runlog
from labkit.train.gan import GANStep, fit_gan

EventAccumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator").EventAccumulator
B = 4


def _data(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 16, 16, generator=g)
    return TensorDataset(x, (x * 0.8 + 0.1).clamp(0, 1))


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))


def _fit(folder, *, epochs=3, tensorboard=None, resume=False, net=None):
    net = net or _net()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    h = fit(net, _data(), _data(6, seed=1), loss="l1", optimizer=opt, epochs=epochs, batch_size=B, seed=0,
            checkpoint_dir=folder, resume=resume, progress=False, log=None, tensorboard=tensorboard,
            scheduler=torch.optim.lr_scheduler.StepLR(opt, 1, 0.5))
    return net, h


def _events(folder):
    ea = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    ea.Reload()
    return ea


def test_fit_writes_scalars_images_and_hparams_that_tensorboard_reads(tmp_path):
    _, h = _fit(tmp_path / "run", tensorboard=True)
    ea = _events(tmp_path / "run")
    tags = ea.Tags()
    # 10 steps per epoch, 3 epochs: the step scalars at every step, the epoch rows at 10, 20, 30
    assert [e.step for e in ea.Scalars("train/train_loss")] == list(range(1, 31))
    assert [e.step for e in ea.Scalars("epoch/val_psnr")] == [10, 20, 30]
    assert [round(e.value, 4) for e in ea.Scalars("epoch/val_psnr")] == [round(r["val_psnr"], 4) for r in h.epochs]
    assert [e.value for e in ea.Scalars("lr/lr")] == pytest.approx([1e-3] * 10 + [5e-4] * 10 + [2.5e-4] * 10)
    assert [e.value for e in ea.Scalars("epoch/lr")] == pytest.approx([1e-3, 5e-4, 2.5e-4])
    assert {"epoch/train_loss", "epoch/val_loss", "epoch/seconds", "epoch/train_seconds"} <= set(tags["scalars"])
    # validation images: LR / output / HR of the first IMAGES items at epochs 1, 2 (powers of two) and 3 (the last)
    assert {f"val_images/{i}/{p}" for i in range(runlog.IMAGES) for p in ("lq", "output", "gt")} == set(tags["images"])
    assert [e.step for e in ea.Images("val_images/0/output")] == [10, 20, 30]
    assert ea.Images("val_images/0/gt")[0].width == 16
    hp = ea.PluginTagToContent("hparams")
    assert hp and any(b"batch_size" in v for v in hp.values())
    # the CSV holds the same values
    rows = runlog.read_csv_log(tmp_path / "run" / runlog.CSV_NAME)
    assert [r["value"] for r in rows if r["tag"] == "epoch/val_psnr"] == pytest.approx([r["val_psnr"] for r in h.epochs])


def test_logging_changes_no_number_of_the_run(tmp_path):
    plain, h_plain = _fit(None)
    logged, h_logged = _fit(tmp_path / "logged", tensorboard=True)
    for a, b in zip(plain.state_dict().values(), logged.state_dict().values()):
        assert torch.equal(a, b)
    assert [r["val_psnr"] for r in h_plain.epochs] == [r["val_psnr"] for r in h_logged.epochs]


def test_without_the_tensorboard_package_the_run_writes_the_csv(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    assert not runlog.tensorboard_enabled()
    _, h = _fit(tmp_path / "run")
    assert not list((tmp_path / "run").glob("events.out.tfevents.*"))
    rows = runlog.read_csv_log(tmp_path / "run" / runlog.CSV_NAME)
    assert [r["step"] for r in rows if r["tag"] == "train/train_loss"] == list(range(1, 31))
    assert len([r for r in rows if r["tag"] == "epoch/val_psnr"]) == len(h.epochs) == 3
    with pytest.raises(ImportError, match="pip install"):
        runlog.tensorboard_enabled(True)


def test_tensorboard_can_be_switched_off(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_TENSORBOARD", "0")
    _fit(tmp_path / "off")
    assert not list((tmp_path / "off").glob("events.out.tfevents.*"))
    assert (tmp_path / "off" / runlog.CSV_NAME).exists()


def test_a_resumed_run_drops_what_came_after_its_checkpoint(tmp_path):
    folder = tmp_path / "run"
    _fit(folder, epochs=2, tensorboard=True)
    with (folder / runlog.CSV_NAME).open("a") as f:   # rows an interrupted run wrote after its last checkpoint
        f.write("25,3,train/train_loss,9.0,0\n")
    _fit(folder, epochs=3, tensorboard=True, resume=True)
    rows = runlog.read_csv_log(folder / runlog.CSV_NAME)
    assert [r["step"] for r in rows if r["tag"] == "train/train_loss"] == list(range(1, 31))
    assert 9.0 not in [r["value"] for r in rows]
    assert [e.step for e in _events(folder).Scalars("epoch/val_psnr")] == [10, 20, 30]
    _fit(folder, epochs=1, tensorboard=True, resume=False)   # a fresh run in the same folder starts the log again
    assert [r["step"] for r in runlog.read_csv_log(folder / runlog.CSV_NAME) if r["tag"] == "epoch/val_psnr"] == [10]


def test_fit_gan_logs_both_players_and_the_discriminator_margin(tmp_path):
    g = _net(1)
    torch.manual_seed(2)
    d = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(4 * 8 * 8, 1))
    step = GANStep({"pix": (1.0, nn.L1Loss())}, gan_loss="lsgan", adv_weight=0.1)
    opt_g, opt_d = torch.optim.Adam(g.parameters(), 1e-3), torch.optim.Adam(d.parameters(), 1e-3)
    fit_gan(g, d, _data(), _data(4, seed=1), step=step, opt_g=opt_g, opt_d=opt_d, epochs=2, batch_size=B, seed=0,
            checkpoint_dir=tmp_path / "gan", progress=False, log=None, tensorboard=True)
    ea = _events(tmp_path / "gan")
    scalars = set(ea.Tags()["scalars"])
    assert {"train/l_g_total", "train/l_g_gan", "train/l_d_real", "train/l_d_fake", "train/d_real_mean",
            "train/d_fake_mean", "train/d_margin", "epoch/val_psnr"} <= scalars
    real, fake, margin = (ea.Scalars(f"train/{k}") for k in ("d_real_mean", "d_fake_mean", "d_margin"))
    assert [m.step for m in margin] == list(range(1, 21))
    assert [m.value for m in margin] == pytest.approx([r.value - f.value for r, f in zip(real, fake)], abs=1e-5)
    assert "val_images/0/output" in ea.Tags()["images"]


def test_image_epochs_are_the_first_powers_of_two_and_the_last():
    assert [e for e in range(1, 20) if runlog.image_epoch(e, last=False)] == [1, 2, 4, 8, 16]
    assert runlog.image_epoch(7, last=True)
