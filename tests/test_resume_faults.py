"""Interrupted training runs lose nothing and never resume the wrong run (issue 18).

A tiny model on a tiny dataset whose items draw from the global RNGs (a random flip and noise, as an
augmentation would) and a model with dropout, so that resume must restore every RNG at the right
point: a run killed inside an epoch after a time-based checkpoint, or during a checkpoint write,
and rerun must end with the same weights and history as an uninterrupted run, bit for bit.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from ddp_faults import CrashOnRank1
from labkit import env
from labkit.io import write_image
from labkit.data.fingerprint import data_fingerprint
from labkit.labs import SAFE_ON_RESUME, default_out_dir, run_settings, split_overrides
from labkit.train import CheckpointError, History, SettingsChangedError, fit, fit_gan
from labkit.train.gan import GANStep

N, B = 20, 4  # 5 batches per epoch


class _Noisy(Dataset):
    """Pairs whose input gets a random flip (Python RNG), NumPy noise and torch noise per item."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.rand(N, 3, 8, 8, generator=g)

    def __len__(self) -> int:
        return N

    def __getitem__(self, i):
        x = self.x[i]
        if random.random() < 0.5:
            x = x.flip(-1)
        x = x + float(np.random.rand()) * 0.01 + 0.01 * torch.rand_like(x)
        return x, 0.8 * x + 0.1


class _Boom(Exception):
    pass


class _CrashingL1(nn.L1Loss):
    """L1 that raises at its ``at``-th call (a kill inside a training batch)."""

    def __init__(self, at: int | None) -> None:
        super().__init__()
        self.at, self.calls = at, 0

    def forward(self, a, b):
        self.calls += 1
        if self.at is not None and self.calls == self.at:
            raise _Boom(f"killed at call {self.calls}")
        return super().forward(a, b)


def _val() -> TensorDataset:
    x = torch.linspace(0, 1, 2 * 3 * 8 * 8).reshape(2, 3, 8, 8)
    return TensorDataset(x, 0.8 * x + 0.1)


def _net(seed: int = 1) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Dropout(0.2), nn.Conv2d(8, 3, 3, padding=1))


def _fit(folder, *, crash_at=None, epochs=3, steps=None, settings=None, interval=1e-9, log=None, resume=True):
    model = _net()
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, 0.7)
    hist = fit(model, _Noisy(), _val(), loss=_CrashingL1(crash_at), optimizer=opt,
               scheduler=sched, epochs=epochs, steps=steps, batch_size=B, ema_decay=0.9, seed=3,
               checkpoint_dir=folder, progress=False, log=log, checkpoint_interval=interval,
               settings=settings, resume=resume)
    return model, hist


def _rows(h: History) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("seconds", "train_seconds")} for r in h.epochs]   # times


def _same(a: nn.Module, b: nn.Module) -> None:
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), f"{name} differs after resume"


@pytest.mark.parametrize("bars", ["text", "auto"])  # tqdm.auto's bar draws from the RNG when it is made
def test_a_run_killed_inside_an_epoch_resumes_bit_for_bit(tmp_path, monkeypatch, bars):
    monkeypatch.setenv("LABKIT_PROGRESS", bars)
    straight, h_straight = _fit(None, interval=None)
    saving, h_saving = _fit(tmp_path / "saving", log=[].append)  # a checkpoint after every batch
    assert _rows(h_saving) == _rows(h_straight)  # saving changes no number
    _same(straight, saving)
    cut = tmp_path / "cut"
    # validation calls the loss too (2 items per epoch): call 10 is batch 3 of epoch 2 (5 + 2 + 3)
    with pytest.raises(_Boom):
        _fit(cut, crash_at=10)
    ck = torch.load(cut / "last.pth", weights_only=True)
    assert ck["epoch"] == 1 and ck["global_step"] == 7 and ck["partial"]["batches"] == 2
    torch.manual_seed(999)  # the resumed run must not depend on the RNG it starts with
    random.seed(7)
    lines: list[str] = []
    resumed, h_resumed = _fit(cut, log=lines.append)
    assert any("resuming from" in ln and "in epoch 2 after batch" in ln for ln in lines), lines
    assert _rows(h_resumed) == _rows(h_straight)
    _same(straight, resumed)


def test_the_progress_bar_kind_changes_no_number(monkeypatch):
    """Text bars, Jupyter's widget bars (``tqdm.auto``) and no bar train the same run, bit for bit.

    tqdm.auto's bar, handed a DataLoader, makes a loader iterator of its own when it is created: one more
    draw from torch's RNG, which used to give a learner in Jupyter another run than CI's text bars.
    """
    runs = []
    for bars, progress in (("text", False), ("auto", False), ("auto", True), ("text", True)):
        monkeypatch.setenv("LABKIT_PROGRESS", bars)
        torch.manual_seed(0)
        model = _net()
        hist = fit(model, _Noisy(), None, loss=nn.L1Loss(), optimizer=torch.optim.Adam(model.parameters(), 1e-2),
                   epochs=2, batch_size=B, seed=3, progress=progress, log=None)
        runs.append((model, _rows(hist)))
    for model, rows in runs[1:]:
        assert rows == runs[0][1]
        _same(runs[0][0], model)


def test_resume_from_every_mid_epoch_checkpoint_and_for_a_gan(tmp_path):
    straight, h_straight = _fit(tmp_path / "straight", interval=None)
    for call in (2, 5, 11, 16):  # kills in epochs 1, 1, 2, 3 (2 validation calls per epoch)
        folder = tmp_path / f"cut{call}"
        with pytest.raises(_Boom):
            _fit(folder, crash_at=call)
        resumed, h_resumed = _fit(folder)
        assert _rows(h_resumed) == _rows(h_straight), call
        _same(straight, resumed)
    g_straight, h_g = _gan(tmp_path / "gan_straight", None)
    with pytest.raises(_Boom):
        _gan(tmp_path / "gan_cut", 7)
    assert torch.load(tmp_path / "gan_cut" / "last.pth", weights_only=True)["partial"] is not None
    g_resumed, h_g_resumed = _gan(tmp_path / "gan_cut", None)
    assert _rows(h_g_resumed) == _rows(h_g)
    for a, b in zip(g_straight, g_resumed):
        _same(a, b)


def _gan(folder, crash_at):
    g = _net(1)
    torch.manual_seed(2)
    d = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(4 * 4 * 4, 1))
    step = GANStep({"pix": (10.0, _CrashingL1(crash_at))}, gan_loss="lsgan", adv_weight=1.0)
    opt_g, opt_d = torch.optim.AdamW(g.parameters(), 1e-3), torch.optim.AdamW(d.parameters(), 1e-3)
    hist = fit_gan(g, d, _Noisy(), None, step=step, opt_g=opt_g, opt_d=opt_d, epochs=2, batch_size=B, seed=5,
                   checkpoint_dir=folder, progress=False, log=None, checkpoint_interval=1e-9)
    return [g, d], hist


def test_a_failed_checkpoint_write_keeps_the_last_complete_one(tmp_path, monkeypatch):
    straight, h_straight = _fit(tmp_path / "straight", interval=None)
    folder = tmp_path / "cut"
    real_save, calls = torch.save, {"n": 0}

    def failing_save(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:  # a disk that fills up half-way through the 7th last.pth
            f.write(b"PK\x03\x04 half a checkpoint")
            raise OSError(28, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="No space"):
        _fit(folder)
    monkeypatch.setattr(torch, "save", real_save)
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
    ck = torch.load(folder / "last.pth", weights_only=True)  # the previous, complete checkpoint
    assert ck["global_step"] >= 4
    resumed, h_resumed = _fit(folder)
    assert _rows(h_resumed) == _rows(h_straight)
    _same(straight, resumed)


def test_leftover_temp_files_are_removed_at_the_next_start(tmp_path):
    tmp_path.mkdir(exist_ok=True)
    planted = [tmp_path / ".last.pth.x1y2.tmp", tmp_path / ".best.pth.abc123.tmp"]
    for p in planted:
        p.write_bytes(b"half")
    other = tmp_path / ".notes.txt.q9.tmp"   # not a file the session writes: left alone
    other.write_bytes(b"x")
    lines: list[str] = []
    _fit(tmp_path, epochs=1, interval=None, log=lines.append)
    assert not any(p.exists() for p in planted) and other.exists()
    assert any("removed 2 leftover temp file(s)" in ln and ".last.pth.x1y2.tmp" in ln for ln in lines), lines


def test_changed_settings_are_refused_and_max_steps_extends(tmp_path):
    base = {"cfg": {"lr": 5e-4, "net": {"num_feat": 32}}, "data": {"root": "bundled", "fingerprint": "aa"},
            "code_version": "0.1.0"}
    _fit(tmp_path, epochs=3, steps=7, settings=base)
    changed = {"cfg": {"lr": 2e-3, "net": {"num_feat": 32}}, "data": {"root": "/data/DIV2K", "fingerprint": "bb"},
               "code_version": "0.1.0"}
    with pytest.raises(SettingsChangedError) as e:
        _fit(tmp_path, epochs=3, steps=12, settings=changed)
    msg = str(e.value)
    assert "cfg.lr: 0.0005 -> 0.002" in msg and "data.root: 'bundled' -> '/data/DIV2K'" in msg
    assert "data.fingerprint" in msg and "--no-resume" in msg and "--out" in msg and "last.pth" in msg
    assert "net.num_feat" not in msg and isinstance(e.value, CheckpointError)
    # another code version is only a note; more steps extend the run
    lines: list[str] = []
    _, hist = _fit(tmp_path, epochs=3, steps=12, settings={**base, "code_version": "0.2.0"}, log=lines.append)
    assert hist.epochs[-1]["step"] == 12 and any("code_version" in ln for ln in lines)


def test_an_old_checkpoint_without_settings_resumes_with_a_note(tmp_path):
    _fit(tmp_path, epochs=1, interval=None)
    ck = torch.load(tmp_path / "last.pth", weights_only=True)
    del ck["settings"], ck["partial"]  # as written before this change (labkit.fit/1, end of epoch)
    torch.save(ck, tmp_path / "last.pth")
    lines: list[str] = []
    _, hist = _fit(tmp_path, epochs=2, settings={"cfg": {"lr": 1}}, log=lines.append)
    assert len(hist.epochs) == 2
    assert any("records no settings" in ln for ln in lines), lines


def test_a_truncated_checkpoint_names_the_file_and_the_ways_on(tmp_path):
    _fit(tmp_path, epochs=1, interval=None)
    last = tmp_path / "last.pth"
    last.write_bytes(last.read_bytes()[:1000])
    with pytest.raises(CheckpointError) as e:
        _fit(tmp_path, epochs=2)
    assert str(last) in str(e.value) and "--no-resume" in str(e.value)
    assert "weights_only" not in str(e.value)


def test_written_files_have_the_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        _, hist = _fit(tmp_path / "a", epochs=1)
        hist.save_json(tmp_path / "a" / "history.json")
        os.umask(0o002)
        _fit(tmp_path / "b", epochs=1)
    finally:
        os.umask(old)
    for name in ("last.pth", "best.pth", "history.json"):
        assert (tmp_path / "a" / name).stat().st_mode & 0o777 == 0o644, name
    for name in ("last.pth", "best.pth"):
        assert (tmp_path / "b" / name).stat().st_mode & 0o777 == 0o664, name


def test_progress_lines_only_when_asked_and_saving_prints_nothing(tmp_path):
    quiet: list[str] = []
    _fit(tmp_path / "q", epochs=1, log=quiet.append)  # checkpoints after every batch, no log_interval
    assert len(quiet) == 1 and quiet[0].startswith("epoch 1/1")
    model = _net()
    loud: list[str] = []
    fit(model, _Noisy(), None, loss="l1", optimizer=torch.optim.Adam(model.parameters()), epochs=1, batch_size=B,
        checkpoint_dir=tmp_path / "l", progress=False, log=loud.append, checkpoint_interval=1e-9,
        log_interval=1e-9)
    assert loud[0].startswith("epoch 1/1: 1/5 batches, step 1, train_loss ") and loud[0].endswith("(checkpoint saved)")
    assert len(loud) == 5  # batches 1-4, then the epoch line


# ----------------------------------------------------------------------------- labkit train (CLI)

ROOT = Path(__file__).resolve().parents[1]
TINY = ["-p", "net=edsr", "-p", "epochs=2", "-p", "iters_per_epoch=4", "-p", "batch_size=2", "-p", "gt_size=32",
        "-p", "checkpoint_interval=0.01"]


def _train(out, *extra, wait=True):
    cmd = [sys.executable, "-m", "labkit", "train", "02", "--profile", "smoke", "--out", str(out), *TINY, *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LABKIT_NUM_THREADS": "1"}
    if not wait:
        return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)


def _div2k(root: Path) -> Path:
    """A tiny DIV2K layout (train and valid, x4): 2 HR photos of 64x64 px and their 16x16 LR."""
    rng = np.random.default_rng(0)
    for split, names in (("train", ("0001", "0002")), ("valid", ("0801",))):
        for name in names:
            hr = rng.random((64, 64, 3), dtype=np.float32)
            write_image(root / f"DIV2K_{split}_HR" / f"{name}.png", hr)
            write_image(root / f"DIV2K_{split}_LR_bicubic" / "X4" / f"{name}x4.png", hr[::4, ::4])
    return root


def test_cli_run_killed_at_a_random_point_resumes_to_the_same_weights(tmp_path):
    straight = _train(tmp_path / "straight")
    assert straight.returncode == 0, straight.stdout + straight.stderr
    assert "checkpoint saved" in straight.stdout  # progress lines without a terminal
    proc = _train(tmp_path / "cut", wait=False)
    last = tmp_path / "cut" / "last.pth"
    deadline = time.monotonic() + 120
    while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(random.uniform(0.0, 0.5))  # then anywhere: in a batch, in a checkpoint write, ...
    proc.kill()
    proc.communicate()
    if last.exists():
        (last.parent / ".last.pth.x1y2.tmp").write_bytes(b"what a kill during a save leaves")
    resumed = _train(tmp_path / "cut")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    a = torch.load(tmp_path / "straight" / "last.pth", weights_only=True)
    b = torch.load(last, weights_only=True)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert _rows(History.from_dict(a["history"])) == _rows(History.from_dict(b["history"]))
    assert not list(last.parent.glob("*.tmp")) and not list(last.parent.glob(".*.tmp"))
    # (d) the same folder with another lr and another data root: refused, both named, nothing trained
    refused = _train(tmp_path / "cut", "-p", "lr=0.002", "-p", f"data_root={_div2k(tmp_path / 'div2k')}")
    out = refused.stdout + refused.stderr
    assert refused.returncode != 0
    assert "cfg.lr: 0.0005 -> 0.002" in out and "data.root: 'bundled' -> " in out and "--no-resume" in out, out
    assert torch.equal(torch.load(last, weights_only=True)["model"][k], b["model"][k])


def test_default_folders_name_the_settings_that_matter(monkeypatch, tmp_path):
    monkeypatch.setenv("LABKIT_RUNS", str(tmp_path))
    runs = env.runs_dir() / "smoke"
    assert default_out_dir("02", "smoke") == runs / "train_02"
    assert default_out_dir("02", "smoke", {"net": "swinir"}) == runs / "train_02_swinir"
    assert default_out_dir("02", "smoke", {"lr": 0.002}) == runs / "train_02@lr=0.002"
    assert default_out_dir("02", "smoke", {"lr": 0.0005}) == runs / "train_02"  # the profile's own value
    safe = {"max_steps": 10, "num_workers": 2, "device": "cpu", "checkpoint_interval": 60}
    assert default_out_dir("02", "smoke", safe) == runs / "train_02"
    div2k = tmp_path / "d" / "DIV2K"            # data_root must exist (labkit.parameters)
    div2k.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert default_out_dir("02", "smoke", {"data_root": "d/DIV2K", "seed": 1}) == \
        runs / "train_02@data_root=d_DIV2K,seed=1"
    longs = [tmp_path / "a" / "very" / "long" / (c * 80) for c in "xy"]
    for p in longs:
        p.mkdir(parents=True)
    long = default_out_dir("02", "smoke", {"data_root": str(longs[0])})
    assert long.name.startswith("train_02@h") and len(long.name) == len("train_02@h") + 12
    assert long != default_out_dir("02", "smoke", {"data_root": str(longs[1])})


# ----------------------------------------------------------------------------- DDP (gloo on CPU)


def _ddp_worker(rank: int, port: int, folder: str, out: str, die_at: int | None, interval: float | None) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), LABKIT_NUM_THREADS="1")
    torch.set_num_threads(1)
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    lines: list[str] = []
    hist = fit(model, _Noisy(), None, loss=CrashOnRank1(nn.L1Loss(), die_at), optimizer=opt, epochs=2, batch_size=B, seed=0,
               checkpoint_dir=folder, device="cpu", progress=False, monitor="train_loss", log=lines.append,
               checkpoint_interval=interval)
    torch.save({"state": model.state_dict(), "history": hist.to_dict(), "log": lines}, f"{out}.{rank}")
    torch.distributed.destroy_process_group()


def _spawn(tmp_path, name, folder, die_at=None, interval=1e-9) -> list[dict]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = str(tmp_path / name)
    mp.start_processes(_ddp_worker, args=(port, str(folder), out, die_at, interval), nprocs=2, start_method="fork")
    return [torch.load(f"{out}.{r}", weights_only=False) for r in range(2)]


def test_ddp_mid_epoch_checkpoints_resume_every_rank_exactly(tmp_path):
    straight = _spawn(tmp_path, "straight", tmp_path / "straight", interval=None)
    # 20 items over 2 ranks, 2 per rank and step: 5 steps per epoch; rank 1 dies in its 8th step (epoch 2)
    with pytest.raises(mp.ProcessExitedException):
        _spawn(tmp_path, "cut", tmp_path / "cut", die_at=8)
    ck = torch.load(tmp_path / "cut" / "last.pth", weights_only=True)
    assert ck["epoch"] == 1 and ck["partial"]["batches"] == 2
    assert len(ck["rng_ranks"]) == 2 and len(ck["partial"]["rng_start_ranks"]) == 2
    resumed = _spawn(tmp_path, "resumed", tmp_path / "cut")
    assert any("in epoch 2 after batch 2" in ln for ln in resumed[0]["log"]), resumed[0]["log"]
    for r in range(2):
        for k, v in straight[r]["state"].items():
            assert torch.equal(v, resumed[r]["state"][k]), (r, k)
    assert _rows(History.from_dict(resumed[0]["history"])) == _rows(History.from_dict(straight[0]["history"]))


def test_data_fingerprint_and_run_settings(tmp_path):
    root = _div2k(tmp_path / "d")
    fp = data_fingerprint(root)
    assert fp == data_fingerprint(root) and len(fp) == 64 and fp != data_fingerprint(None)
    (root / "DIV2K_train_HR" / "0003.png").write_bytes(b"x")  # a file added: another listing
    assert data_fingerprint(root) != fp
    with pytest.raises(FileNotFoundError, match="data_root"):
        data_fingerprint(tmp_path / "missing")
    cfg, opts = split_overrides("02", "smoke", {"lr": 0.002, "max_steps": 5, "device": "cpu"})
    s = run_settings("02", "smoke", cfg, opts)
    assert s["cfg"]["lr"] == 0.002 and s["data"] == {"root": "bundled", "fingerprint": data_fingerprint(None)[:16]}
    assert not set(SAFE_ON_RESUME) & set(s["options"]) and s["options"]["seed"] == 42
