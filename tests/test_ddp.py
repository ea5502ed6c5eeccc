"""Data-parallel fit on CPU (gloo): global-batch equivalence, crash + resume, torchrun CLI, fit_gan."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from ddp_faults import CrashOnRank1
from labkit import distributed
from labkit.train import History, fit

N, B, EPOCHS = 16, 8, 3  # 2 steps per epoch, 6 optimizer steps


def _data() -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(N, 3, 8, 8, generator=g)
    return TensorDataset(x, x.flip(-1) * 0.5 + 0.25)  # deterministic pairs, no augmentation


def _net() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))


def _fit(model, data, ckdir, loss, log=None) -> History:
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    val = [_data()[i] for i in range(2)]
    return fit(model, data, val, loss=loss, optimizer=opt, epochs=EPOCHS, batch_size=B, seed=0,
               checkpoint_dir=ckdir, device="cpu", progress=False, monitor="val_loss", early_stopping=5, log=log)


def _worker(rank: int, world: int, port: int, ckdir: str, out: str, crash_at: int | None) -> None:
    # A forked child must not grow an OpenMP thread pool (the parent's pool does not survive fork, and
    # libgomp then hangs): fit's seed_everything reads the thread count from LABKIT_NUM_THREADS.
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), LABKIT_NUM_THREADS="1")
    torch.set_num_threads(1)
    model = _net()
    lines: list[str] = []
    hist = _fit(model, _data(), ckdir, CrashOnRank1(nn.MSELoss(), crash_at), log=lines.append)
    assert distributed.world_size() == world
    torch.save({"state": model.state_dict(), "history": hist.to_dict(), "log": lines}, f"{out}.{rank}")
    torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(tmp_path, name: str, ckdir, crash_at=None) -> list[dict]:
    out = str(tmp_path / name)
    mp.start_processes(_worker, args=(2, _free_port(), str(ckdir), out, crash_at), nprocs=2,
                       start_method="fork")
    return [torch.load(f"{out}.{r}", weights_only=False) for r in range(2)]


def _close(a: dict, b: dict, tol: float = 1e-6) -> None:
    for k in a:
        assert torch.allclose(a[k], b[k], atol=tol, rtol=0), f"{k}: max diff {(a[k] - b[k]).abs().max()}"


def test_two_processes_match_one_with_the_global_batch_and_resume_after_a_crash(tmp_path):
    # one process, global batch B, drawn in DistributedSampler order (num_replicas=1: the same
    # permutation the 2-rank samplers split); fit calls set_epoch on it as on the ranks' samplers
    data = _data()
    single = _net()
    loader = DataLoader(data, batch_size=B, sampler=DistributedSampler(data, num_replicas=1, rank=0, seed=0))
    h1 = _fit(single, loader, tmp_path / "single", nn.MSELoss())

    ranks = _spawn(tmp_path, "ddp", tmp_path / "ddp")
    _close(ranks[0]["state"], ranks[1]["state"], tol=0)  # every rank ends with the same weights
    _close(single.state_dict(), ranks[0]["state"])  # ... those of one process with batch B
    for r1, rd in zip(h1.epochs, ranks[0]["history"]["epochs"]):
        assert rd["train_loss"] == pytest.approx(r1["train_loss"], rel=1e-5)  # mean over all ranks' samples
        assert rd["val_loss"] == pytest.approx(r1["val_loss"], rel=1e-5)
    assert ranks[1]["log"] == [] and len(ranks[0]["log"]) == EPOCHS  # rank 0 alone logs
    ck = torch.load(tmp_path / "ddp" / "last.pth", weights_only=True)
    assert len(ck["rng_ranks"]) == 2

    # rank 1 dies in epoch 3 (its 5th step); the whole job stops; a restart resumes and finishes
    with pytest.raises(mp.ProcessExitedException):
        _spawn(tmp_path, "crash", tmp_path / "crash", crash_at=5)
    assert torch.load(tmp_path / "crash" / "last.pth", weights_only=True)["epoch"] == 2
    resumed = _spawn(tmp_path, "resume", tmp_path / "crash")
    assert any("resuming" in line and "after epoch 2" in line for line in resumed[0]["log"])
    _close(resumed[0]["state"], ranks[0]["state"], tol=0)  # exactly the uninterrupted run
    assert [r["train_loss"] for r in resumed[0]["history"]["epochs"]] == \
        [r["train_loss"] for r in ranks[0]["history"]["epochs"]]


def test_global_batch_must_divide_over_the_ranks():
    from labkit.train.batches import as_loader as _as_loader

    # fake a 2-process world for the check only (no collective is called)
    orig = distributed.is_distributed, distributed.world_size
    distributed.is_distributed, distributed.world_size = (lambda: True), (lambda: 2)
    try:
        with pytest.raises(ValueError, match="global batch"):
            _as_loader(_data(), batch_size=5, shuffle=True, num_workers=0, device=torch.device("cpu"),
                       name="train_data", shard=True)
    finally:
        distributed.is_distributed, distributed.world_size = orig


def test_single_process_helpers_are_no_ops(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.init_from_env() is False
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    assert distributed.broadcast_object({"stop": True}) == {"stop": True}
    assert distributed.all_reduce_mean(2.5) == 2.5
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(ValueError, match="RANK|MASTER_ADDR"):
        distributed.init_from_env()


def test_backend_follows_the_runs_device_and_waits_long_enough(monkeypatch):
    """-p device=cpu on a GPU machine trains on the CPU: gloo, not NCCL; the timeout outlasts rank 0's validation."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)   # a GPU machine
    assert distributed.backend_for("cpu") == "gloo" and distributed.backend_for(torch.device("cpu")) == "gloo"
    assert distributed.backend_for("auto") == distributed.backend_for(None) == distributed.backend_for("cuda") == "nccl"
    calls = []
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: False)
    monkeypatch.setattr(distributed.dist, "init_process_group", lambda **kw: calls.append(kw))
    monkeypatch.setattr(torch.cuda, "set_device", lambda i: calls.append({"set_device": i}))
    for name, value in (("WORLD_SIZE", "2"), ("RANK", "1"), ("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", "29500")):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("LABKIT_DDP_TIMEOUT_MIN", raising=False)
    distributed.init_from_env(device="cpu")
    (kw,) = calls
    assert kw["backend"] == "gloo" and kw["timeout"].total_seconds() >= 30 * 60


def test_torchrun_two_processes_run_lab_02_from_the_cli(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           "-m", "labkit.labs", "02", "--profile", "smoke", "-p", "max_steps=2", "-p", "batch_size=4",
           "--out", str(tmp_path / "t02"), "--no-resume"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "on 2 process(es), global batch 4" in res.stdout
    assert res.stdout.count("done: 1 epoch(s), step 2") == 1  # rank 0 alone reports
    ck = torch.load(tmp_path / "t02" / "last.pth", weights_only=True)
    assert ck["global_step"] == 2 and len(ck["rng_ranks"]) == 2
    assert History.load_json(tmp_path / "t02" / "history.json").epochs[0]["val_psnr"] > 10


def _fit_gan(data, ckdir):
    from labkit.train.gan import GANStep, fit_gan

    g = _net()
    torch.manual_seed(2)
    d = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 3))
    step = GANStep({"pix": (1.0, nn.L1Loss())}, gan_loss="vanilla", adv_weight=0.1)
    opt_g, opt_d = (torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9) for m in (g, d))
    h = fit_gan(g, d, data, step=step, opt_g=opt_g, opt_d=opt_d, epochs=2, batch_size=B, seed=0,
                checkpoint_dir=ckdir, device="cpu", progress=False, log=None)
    return g, d, h


def _gan_worker(rank: int, world: int, port: int, ckdir: str, out: str) -> None:
    # A forked child must not grow an OpenMP thread pool (the parent's pool does not survive fork, and
    # libgomp then hangs): fit's seed_everything reads the thread count from LABKIT_NUM_THREADS.
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), LABKIT_NUM_THREADS="1")
    torch.set_num_threads(1)
    g, d, h = _fit_gan(_data(), ckdir)
    torch.save({"g": g.state_dict(), "d": d.state_dict(), "history": h.to_dict()}, f"{out}.{rank}")
    torch.distributed.destroy_process_group()


def test_fit_gan_two_processes_match_one_with_the_global_batch(tmp_path):
    data = _data()
    loader = DataLoader(data, batch_size=B, sampler=DistributedSampler(data, num_replicas=1, rank=0, seed=0))
    g, d, h = _fit_gan(loader, tmp_path / "single")
    out = str(tmp_path / "gan")
    mp.start_processes(_gan_worker, args=(2, _free_port(), str(tmp_path / "ddp"), out), nprocs=2,
                       start_method="fork")
    ranks = [torch.load(f"{out}.{r}", weights_only=False) for r in range(2)]
    for key, single in (("g", g), ("d", d)):  # G via DDP, D by explicit gradient averaging
        _close(ranks[0][key], ranks[1][key], tol=0)
        _close(single.state_dict(), ranks[0][key])
    for r1, rd in zip(h.epochs, ranks[0]["history"]["epochs"]):
        assert rd["l_d_total"] == pytest.approx(r1["l_d_total"], rel=1e-5)
