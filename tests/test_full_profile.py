"""The ``full`` profiles, end to end on CPU: every lab's exact full-profile code on its real dataset
layout (``labkit/layouts.py``), capped with ``max_steps=2`` (and ``max_images``, ``batch_size``, and
the TESTS-ONLY width overrides where a full-size model is too slow on a CPU for even 2 steps).

Each test drives the real ``labkit run NN --profile full`` (papermill) and checks what a run must
leave behind: status 0, ``metrics.json`` with profile "full" and the lab's headline numbers, its
section in ``report.md``, figures, and for lab 03 a submission zip that passes the checker.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from labkit import cli, layouts, models, submission, weights

pytestmark = pytest.mark.notebook


@pytest.fixture(autouse=True)
def _headless(monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")


def run_full(tmp_path, nb: str, stem: str, data_root, *params: str) -> dict:
    """``labkit run nb --profile full -p data_root=... -p max_steps=2 ...``; the checked metrics.json.

    Lab 01 trains nothing and has no ``max_steps`` (labkit run refuses a key the notebook lacks)."""
    out = tmp_path / "runs"
    argv = ["run", nb, "--profile", "full", "--out", str(out), "-p", f"data_root={data_root}"]
    argv += ["-p", "max_steps=2"] if nb != "01" else []
    for p in params:
        argv += ["-p", p]
    assert cli.main(argv) == 0, (out / "report.md").read_text() if (out / "report.md").exists() else argv
    metrics = json.loads((out / stem / "metrics.json").read_text())
    assert metrics["profile"] == "full"
    assert metrics["notebook"] == stem
    assert list((out / stem / "figures").glob("*.png")), "no figures saved"
    assert stem in (out / "report.md").read_text()
    metrics["_out"] = out / stem
    return metrics


def finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def test_01_full_profile(tmp_path):
    root = layouts.make_div2k(tmp_path / "DIV2K", n_train=2, n_valid=1, size=(256, 320))
    m = run_full(tmp_path, "01", "01_data_and_patching", root / "DIV2K_train_HR", "max_images=2")
    assert m["headline"]["torch antialias vs MATLAB LR (dB)"] > 50
    assert finite(m["headline"]["overlapping+hann vs whole (dB)"])


def test_02_full_profile(tmp_path):
    root = layouts.make_div2k(tmp_path / "DIV2K", n_train=2, n_valid=2, size=(128, 160))
    m = run_full(tmp_path, "02", "02_sr_trials_edsr_srgan_swinir", root, "max_images=1", "batch_size=2", "gt_size=64")
    h = m["headline"]
    for key in ("bicubic PSNR-Y (dB)", "EDSR PSNR-Y (dB)", "SRResNet PSNR-Y (dB)", "SRGAN PSNR-Y (dB)", "SwinIR PSNR-Y (dB)"):
        assert finite(h[key]), key
    assert m["config"]["swinir"]["embed_dim"] == 180          # the full architecture, not smoke's
    assert all(hist["epochs"][-1]["step"] <= 2 for hist in m["histories"].values())   # the cap held


def _random_rrdb_esrgan(path):
    torch.manual_seed(0)
    net = models.build("rrdbnet_x4")                          # RRDBNet(64, 23, 32), x4
    torch.save(weights.rrdb_from_basicsr(net.state_dict(), "esrgan"), path)
    return path


def test_03_full_profile(tmp_path):
    root = layouts.make_dacon_sr(tmp_path / "dacon", n_train=20, n_test=2, lr_size=32)
    pth = _random_rrdb_esrgan(tmp_path / "RRDB_PSNR_x4.pth")
    m = run_full(tmp_path, "03", "03_rrdb_plus_best", root, f"pretrained={pth}")
    zip_path = m["_out"] / "submission.zip"
    check = submission.check_submission(zip_path, root / "test" / "lr", scale=4)
    assert check["files"] == 2 and check["size"] == (128, 128)


def test_04_full_profile(tmp_path):
    root = layouts.make_lg_flare(tmp_path / "lg", n_train=10, n_test=1, size=(256, 320))
    m = run_full(tmp_path, "04", "04_hinet_flare_removal", root, "batch_size=2", "test_width=4", "process_num=2")
    assert m["config"]["hinet"]["depth"] == 5 and m["config"]["patch_size"] == 256
    assert any(finite(v) for v in m["headline"].values())


def test_05_full_profile(tmp_path):
    sidd = layouts.make_sidd_npy(tmp_path / "SIDD", n=6)
    gopro = layouts.make_gopro(tmp_path / "gopro", size=(256, 288))
    m = run_full(tmp_path, "05", "05_nafnet_sidd_gopro_study", sidd, f"gopro_root={gopro}", "max_images=2",
                 "batch_size=2", "test_width=8")
    assert "baseline" in m["variants"] and m["config"]["archs"]["gopro"]["enc_blk_nums"] == [1, 1, 1, 28]
    assert "deblur_scratch" in m["histories"] and "deblur_course" not in m["histories"]   # full: no course checkpoint
    assert any(finite(v) for v in m["headline"].values())


def test_06_full_profile(tmp_path):
    root = layouts.make_dacon_inpainting(tmp_path / "inpainting", n_train=5, n_test=1, size=(64, 64))
    m = run_full(tmp_path, "06", "06_inpainting_colorization_gan", root, "batch_size=2")
    assert m["config"]["generator"]["num_feat"] == 64
    assert any(finite(v) for v in m["headline"].values())


def test_full_profile_wrong_data_root_names_the_path(tmp_path, capsys):
    wrong = tmp_path / "not_div2k"
    (wrong / "photos").mkdir(parents=True)
    out = tmp_path / "runs"
    status = cli.main(["run", "02", "--profile", "full", "--out", str(out), "-p", f"data_root={wrong}", "-p", "max_steps=2"])
    assert status == 1
    text = capsys.readouterr().out + capsys.readouterr().err
    assert str(wrong) in text, text
