from __future__ import annotations

import pytest
import torch

from labkit import env, profiles


def test_pick_device_cpu_and_auto():
    assert env.pick_device("cpu").type == "cpu"
    assert env.pick_device(None).type in {"cpu", "cuda", "mps"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="machine has CUDA")
def test_pick_device_refuses_missing_cuda():
    with pytest.raises(ValueError, match="CUDA is not available"):
        env.pick_device("cuda")


def test_seed_everything_repeats_draws():
    env.seed_everything(7)
    a = (torch.rand(3), __import__("numpy").random.rand(2))
    env.seed_everything(7)
    b = (torch.rand(3), __import__("numpy").random.rand(2))
    assert torch.equal(a[0], b[0]) and (a[1] == b[1]).all()


def test_autocast_is_a_noop_on_cpu():
    x = torch.rand(4, 4)
    with env.autocast("cpu"):
        y = x @ x
    assert y.dtype == torch.float32


def test_profile_from_env(monkeypatch):
    monkeypatch.delenv("LABKIT_PROFILE", raising=False)
    assert env.profile_from_env() == "smoke"
    monkeypatch.setenv("LABKIT_PROFILE", "full")
    assert env.profile_from_env() == "full"
    monkeypatch.setenv("LABKIT_PROFILE", "huge")
    with pytest.raises(ValueError, match="huge"):
        env.profile_from_env()


def test_profiles_overrides():
    cfg = profiles.get("02_sr_trials_edsr_srgan_swinir", "smoke", epochs=9, lr=None)
    assert cfg["epochs"] == 9 and cfg["lr"] == profiles.PROFILES["02"]["smoke"]["lr"]
    with pytest.raises(KeyError, match="no setting 'epohcs'"):
        profiles.get("02", "smoke", epohcs=3)
    with pytest.raises(KeyError, match="unknown profile"):
        profiles.get("02", "medium")


def test_resolve_out_dir_uses_runs_env(monkeypatch, tmp_path):
    monkeypatch.setenv("LABKIT_RUNS", str(tmp_path))
    out = env.resolve_out_dir(None, "01_x", "smoke")
    assert out == tmp_path / "smoke" / "01_x" and out.is_dir()


def test_progress_bar_is_plain_text_when_asked(monkeypatch):
    import tqdm
    import tqdm.auto

    monkeypatch.setenv("LABKIT_PROGRESS", "text")
    assert env.progress_bar() is tqdm.tqdm
    monkeypatch.setenv("LABKIT_PROGRESS", "auto")
    assert env.progress_bar() is tqdm.auto.tqdm
    monkeypatch.delenv("LABKIT_PROGRESS")
    assert env.progress_bar() is tqdm.auto.tqdm


@pytest.mark.parametrize("card, capability, expected", [
    ("T4", (7, 5), torch.float16), ("V100", (7, 0), torch.float16),
    ("A100", (8, 0), torch.bfloat16), ("H100", (9, 0), torch.bfloat16)])
def test_amp_dtype_is_bf16_only_where_the_card_has_it_natively(monkeypatch, card, capability, expected):
    """torch.cuda.is_bf16_supported() answers True on a T4 or V100 by default (emulation counted): cuDNN has no
    bf16 convolutions there, so those cards must get fp16 + GradScaler. The fake answers as torch 2.14 does."""
    def is_bf16_supported(including_emulation: bool = True) -> bool:
        return capability >= (8, 0) or including_emulation
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    assert env.amp_dtype("cuda") == expected, card
    assert env.amp_dtype("cpu") is None and env.amp_dtype("mps") is None
