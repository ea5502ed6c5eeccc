"""``labkit train NN`` (:mod:`labkit.labs`): every lab's training script, on the bundled photos and on each real layout.

Each run is capped at 2 optimizer steps (``max_steps``); the checks are what a run must leave
behind (``last.pth`` at the capped step, ``history.json``) and that the recipe is the write-up's
(loss, optimizer, schedule), plus the layout errors and the files rank 0 derives once.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn


from labkit import labs, layouts
from labkit.data import augment, pairing
from labkit.train import History, fit


def _last(out) -> dict:
    return torch.load(out / "last.pth", weights_only=True)


def test_every_lab_has_a_recipe():
    assert sorted(labs.LABS) == ["02", "03", "04", "05", "06"]


def test_03_smoke_fine_tunes_the_000_recipe_on_the_miniature(tmp_path):
    out = tmp_path / "t03"
    h = labs.train_lab("03", "smoke", {"max_steps": 2, "pretrained": "scratch"}, out=out, resume=False, progress=False)
    assert h.epochs[-1]["step"] == 2 and _last(out)["global_step"] == 2
    assert h.epochs[-1]["val_psnr"] > 10                      # validated on the whole val photo, Y, crop 4
    patches = out / "patches_mini_dacon_train_4x4"
    n_pairs = len(list((out / "mini_dacon" / "train" / "hr").glob("*.png")))
    assert n_pairs == 9 * 5 and len(list((patches / "gt").glob("*.png"))) == 16 * n_pairs
    r = labs.build_recipe("03", *labs.split_overrides("03", "smoke", {"pretrained": "scratch"}), work_dir=out)
    assert r.fit_kwargs["loss"] == {"l1": 2.0, "l2": 1.0} and r.fit_kwargs["monitor"] == "val_loss"
    assert r.fit_kwargs["optimizer"].defaults["betas"] == (0.9, 0.99) and r.fit_kwargs["early_stopping"] == 2
    assert isinstance(r.fit_kwargs["scheduler"], torch.optim.lr_scheduler.StepLR)
    stamp = (patches / ".complete").stat().st_mtime_ns
    labs.build_recipe("03", *labs.split_overrides("03", "smoke", {"pretrained": "scratch"}), work_dir=out)
    assert (patches / ".complete").stat().st_mtime_ns == stamp   # the patches are reused, not rewritten
    labs.build_recipe("03", *labs.split_overrides("03", "smoke", {"pretrained": "scratch", "max_images": 3}), work_dir=out)
    assert len(list((patches / "gt").glob("*.png"))) == 16 * 3      # other settings: remade, no stale patches left


def test_03_full_on_the_dacon_layout_with_esrgan_weights(tmp_path, dacon_sr_root):
    from labkit import models, weights

    torch.manual_seed(0)
    small = models.RRDBNet(scale=4, num_feat=8, num_block=1, num_grow_ch=4)
    pth = tmp_path / "small_esrgan.pth"
    torch.save(weights.rrdb_from_basicsr(small.state_dict(), "esrgan"), pth)   # the ESRGAN repository's layout
    out = tmp_path / "t03"
    over = {"max_steps": 2, "pretrained": str(pth), "model": {"num_feat": 8, "num_block": 1, "num_grow_ch": 4},
            "val_fraction": 0.34}
    cfg, opts = labs.split_overrides("03", "full", {**over, "data_root": str(dacon_sr_root)})
    r = labs.build_recipe("03", cfg, opts, work_dir=out)
    assert all(torch.equal(a, b) for a, b in zip(r.model.state_dict().values(), small.state_dict().values()))
    assert len(r.val_set) == 1 and len(r.train_set) == 16 * 2   # 3 pairs: 1 validates, 2 give 4 x 4 patches
    h = labs.train_lab("03", "full", {**over, "data_root": str(dacon_sr_root)}, out=out, resume=False, progress=False)
    assert _last(out)["global_step"] == 2 and h.epochs[-1]["val_psnr"] > 5


def test_03_errors_name_what_is_missing(tmp_path, dacon_sr_root):
    with pytest.raises(ValueError, match="data_root"):
        labs.build_recipe("03", *labs.split_overrides("03", "full", {}), work_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="train"):
        labs.build_recipe("03", *labs.split_overrides("03", "full", {"data_root": str(tmp_path)}), work_dir=tmp_path)
    missing = tmp_path / "no_such_RRDB_PSNR_x4.pth"
    cfg, opts = labs.split_overrides("03", "full", {"data_root": str(dacon_sr_root), "pretrained": str(missing)})
    with pytest.raises((OSError, ValueError), match="no_such_RRDB_PSNR_x4"):
        labs.build_recipe("03", cfg, opts, work_dir=tmp_path / "w")


def test_04_smoke_flares_on_the_bundled_photos(tmp_path):
    out = tmp_path / "t04"
    over = {"max_steps": 2, "hinet": {"wf": 4, "depth": 3, "hin_position_left": 0, "hin_position_right": 2},
            "process_num": 1}
    r = labs.build_recipe("04", *labs.split_overrides("04", "smoke", over), work_dir=out)
    assert isinstance(r.train_set.augment, augment.AdaptiveAugment) and r.train_set.augment.start_epoch == 2
    assert r.fit_kwargs["grad_clip"] == 1.0 and r.fit_kwargs["amp"] is True
    assert isinstance(r.fit_kwargs["scheduler"], torch.optim.lr_scheduler.CosineAnnealingLR)
    h = labs.train_lab("04", "smoke", over, out=out, resume=False, progress=False)
    assert _last(out)["global_step"] == 2 and h.epochs[-1]["val_psnr"] > 5


@pytest.mark.parametrize("layout", ["lg", "flare7k"])
def test_04_full_on_the_contest_and_flare7k_layouts(tmp_path, layout):
    root = (layouts.make_lg_flare(tmp_path / "lg", n_train=6, n_test=1, size=(256, 320)) if layout == "lg"
            else layouts.make_flare7k(tmp_path / "f7k", n=6, size=(256, 320)))
    out = tmp_path / "t04"
    over = {"max_steps": 2, "batch_size": 2, "process_num": 1, "folds": 3, "hsv_threshold": 0,
            "hinet": {"wf": 4, "depth": 5, "hin_position_left": 3, "hin_position_right": 4}, "data_root": str(root)}
    h = labs.train_lab("04", "full", over, out=out, resume=False, progress=False)
    assert _last(out)["global_step"] == 2 and torch.isfinite(torch.tensor(h.epochs[-1]["train_loss"]))
    assert len(list((out / "patches" / "input").glob("*.png"))) > 0 and (out / "patches" / ".complete").is_file()


def test_05_smoke_and_sidd_arrays(tmp_path, sidd_npy_root):
    small = {"max_steps": 2, "width": 8, "batch_size": 2}
    h = labs.train_lab("05", "smoke", small, out=tmp_path / "a", resume=False, progress=False)
    assert _last(tmp_path / "a")["global_step"] == 2 and h.epochs[-1]["val_psnr"] > 10
    cfg, opts = labs.split_overrides("05", "full", {**small, "data_root": str(sidd_npy_root), "max_images": 2,
                                                       "sidd_counts": (2, 1, 1)})
    r = labs.build_recipe("05", cfg, opts, work_dir=tmp_path / "b")
    assert (len(r.train_set), len(r.val_set)) == (2, 1) and r.train_set.augment is not None
    assert r.fit_kwargs["optimizer"].defaults["betas"] == (0.9, 0.9)   # NAFNet's AdamW
    h = labs.train_lab("05", "full", {**small, "data_root": str(sidd_npy_root), "sidd_counts": (2, 1, 1)},
                    out=tmp_path / "b", resume=False, progress=False)
    assert _last(tmp_path / "b")["global_step"] == 2


def test_06_gan_recipe_smoke_and_dacon_layout(tmp_path, dacon_inpainting_root):
    small = {"max_steps": 2, "batch_size": 2, "generator": {"num_feat": 8, "num_down": 3, "block_type": "plain"},
             "discriminator": {"ndf": 8, "n_layers": 3, "norm": "instance"}}
    r = labs.build_recipe("06", *labs.split_overrides("06", "smoke", small), work_dir=tmp_path)
    assert r.discriminator is not None and r.fit_kwargs["step"].lambda_gp == 10.0
    h = labs.train_lab("06", "smoke", small, out=tmp_path / "a", resume=False, progress=False)
    assert h.epochs[-1]["step"] == 2 and (tmp_path / "a" / "last.pth").is_file()
    h = labs.train_lab("06", "full", {**small, "data_root": str(dacon_inpainting_root)}, out=tmp_path / "b",
                    resume=False, progress=False)
    assert h.epochs[-1]["step"] == 2
    with pytest.raises(ValueError, match="data_root"):
        labs.build_recipe("06", *labs.split_overrides("06", "full", {}), work_dir=tmp_path)


class _EpochRecorder:
    """An epoch-dependent augmentation that records the epoch of every call."""

    def __init__(self):
        self.epoch, self.seen = 0, []

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __call__(self, lq, gt):
        self.seen.append(self.epoch)
        return lq, gt


def test_fit_sets_the_augment_epoch_also_after_a_resume(tmp_path):
    """001's "augment from epoch N": fit calls ``train_set.augment.set_epoch`` at every epoch."""
    import numpy as np

    rng = np.random.default_rng(0)
    imgs = [rng.random((8, 8, 3), dtype=np.float32) for _ in range(4)]
    ds = pairing.ArrayPairDataset(imgs, imgs, scale=1)
    ds.augment = rec = _EpochRecorder()

    def train(epochs):
        torch.manual_seed(0)
        net = nn.Conv2d(3, 3, 3, padding=1)
        return fit(net, ds, loss="l1", optimizer=torch.optim.SGD(net.parameters(), lr=0.01), epochs=epochs,
                   batch_size=2, checkpoint_dir=tmp_path, device="cpu", progress=False, log=None, seed=0)

    train(2)
    assert rec.seen == [0] * 4 + [1] * 4
    rec.seen.clear()
    train(3)                                                   # resumes after epoch 2: the third epoch is epoch 2
    assert rec.seen == [2] * 4
    adaptive = augment.AdaptiveAugment(lambda lq, gt: (lq + 1, gt), start_epoch=1)
    ds.augment = adaptive
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, [0, 1]), batch_size=2)
    from labkit.train.batches import set_epoch as _set_epoch
    _set_epoch(loader, 1)
    assert adaptive.epoch == 1                                 # reached through a Subset too


def test_torchrun_two_processes_train_lab_04_on_real_photos(tmp_path):
    """Rank 0 writes the patches once while rank 1 waits; both train from them."""
    root = layouts.make_lg_flare(tmp_path / "lg", n_train=6, n_test=1, size=(256, 320))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LABKIT_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}", "-m", "labkit.labs", "04", "--profile", "full", "-p", "max_steps=2",
           "-p", "batch_size=2", "-p", "process_num=1", "-p", "folds=3", "-p", "hsv_threshold=0",
           "-p", "hinet={'wf': 4, 'depth': 3, 'hin_position_left': 0, 'hin_position_right': 2}",
           "-p", f"data_root={root}", "--out", str(tmp_path / "t04"), "--no-resume"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=180)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "on 2 process(es), global batch 2" in res.stdout
    ck = _last(tmp_path / "t04")
    assert ck["global_step"] == 2 and len(ck["rng_ranks"]) == 2
    assert History.load_json(tmp_path / "t04" / "history.json").epochs[-1]["step"] == 2


# --------------------------------------------------------------------------- one builder per lab
# The notebook's set-up cells and ``labkit train NN`` (``labs.build_recipe``) call the same functions of
# ``labkit.labs.labNN``: every ``labNN.<function>(`` a notebook calls must be one that ``build_recipe`` goes
# through too (a few only serve the real-data branch, which the smoke build does not take).

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SMALL = {
    "02": {"edsr": {"num_feat": 4, "num_block": 1}},
    "03": {"pretrained": "scratch", "max_images": 2, "model": {"num_feat": 4, "num_block": 1, "num_grow_ch": 4}},
    "04": {"process_num": 1, "hinet": {"wf": 4, "depth": 3, "hin_position_left": 0, "hin_position_right": 2}},
    "05": {"width": 8},
    "06": {"generator": {"num_feat": 8, "num_down": 3, "block_type": "plain"},
           "discriminator": {"ndf": 8, "n_layers": 3, "norm": "instance"}},
}
REAL_DATA_ONLY = {"03": {"make_val_subset"}, "06": {"make_dacon_sets"}}
#: builders only a notebook stage uses: 02's SRGAN stage fine-tunes the notebook's own pixel-trained SRResNet
#: (``labkit train 02`` trains the pixel stages, ``-p net=...``)
NOTEBOOK_ONLY = {"02": {"gan_losses"},
                 "06": {"input_image", "make_photo_test_set"}}   # the held-out photos and the figures: notebook only
#: other ``-p net=`` values whose builders the notebook calls too
OTHER_NETS = {"02": ["swinir_x2"]}


def _notebook_calls(nb: str) -> set[str]:
    path = next(NOTEBOOKS.glob(f"{nb}_*.ipynb"))
    code = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
    assert f"from labkit.labs import lab{nb}" in code
    return set(re.findall(rf"\blab{nb}\.(\w+)\(", code))


@pytest.mark.parametrize("nb", ["02", "03", "04", "05", "06"])
def test_the_notebook_and_labkit_train_share_the_lab_builder(nb, tmp_path, monkeypatch):
    module = labs.LABS[nb]
    called = []
    for name in module.__all__:
        fn = getattr(module, name)
        if callable(fn) and not isinstance(fn, type) and name != "build_training":
            def spy(*a, _fn=fn, _name=name, **k):
                called.append(_name)
                return _fn(*a, **k)
            monkeypatch.setattr(module, name, spy)
    in_notebook = _notebook_calls(nb)
    assert in_notebook, f"notebook {nb} calls no lab{nb} builder"
    r = labs.build_recipe(nb, *labs.split_overrides(nb, "smoke", SMALL[nb]), work_dir=tmp_path)
    assert r.model is not None and called
    for net in OTHER_NETS.get(nb, []):
        assert labs.build_recipe(nb, *labs.split_overrides(nb, "smoke", {**SMALL[nb], "net": net}),
                                 work_dir=tmp_path).model is not None
    missing = in_notebook - set(called) - REAL_DATA_ONLY.get(nb, set()) - NOTEBOOK_ONLY.get(nb, set())
    assert not missing, f"notebook {nb} calls lab{nb}.{sorted(missing)}, which labkit train {nb} does not"


def test_python_m_labkit_labs_does_not_import_the_cli():
    code = "import sys, labkit.labs.__main__; print('labkit.cli' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "False", res.stderr[-2000:]


def test_lab05_variants_are_written_once():
    from labkit import profiles

    smoke, full = profiles.get("05", "smoke"), profiles.get("05", "full")
    assert smoke["variant_specs"] == full["variant_specs"] == profiles.NAFNET_VARIANT_SPECS
    smoke["variant_specs"]["baseline"]["arch"] = "changed"          # get() returns a copy
    assert profiles.get("05", "full")["variant_specs"]["baseline"]["arch"] == "gopro"
