"""labkit.weights: wrappers, key errors, sha256, URL download path (no network)."""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict

import pytest
import torch
from torch import nn

from labkit import weights
from labkit.weights import (
    WeightsMismatchError,
    atomic_save,
    load_weights,
    resolve_weights,
    save_state_dict,
)


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(OrderedDict(conv_first=nn.Conv2d(3, 4, 3), bn=nn.BatchNorm2d(4),
                                     conv_last=nn.Conv2d(4, 3, 1)))


def _same(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("wrap", ["plain", "params", "params_ema", "state_dict", "model", "module"])
def test_wrappers_load_strictly(tmp_path, wrap):
    src, dst = _net(0), _net(1)
    assert not _same(src, dst)
    sd = src.state_dict()
    obj = {
        "plain": sd,
        "params": {"params": sd},
        # BasicSR stores both; the EMA weights are the ones to use
        "params_ema": {"params": _net(2).state_dict(), "params_ema": sd},
        "state_dict": {"state_dict": sd, "epoch": 3},
        "model": {"model": sd, "optimizer": {"lr": 0.1}},
        "module": {"params": {f"module.{k}": v for k, v in sd.items()}},  # DataParallel
    }[wrap]
    path = tmp_path / f"{wrap}.pth"
    torch.save(obj, path)
    assert load_weights(dst, path) is dst
    assert _same(src, dst)


def test_explicit_key_and_converters(tmp_path):
    src, dst = _net(0), _net(1)
    torch.save({"params": _net(5).state_dict(), "g": {"net." + k: v for k, v in src.state_dict().items()}},
               tmp_path / "c.pth")

    def strip_net(sd):
        return {k.removeprefix("net."): v for k, v in sd.items()}

    load_weights(dst, tmp_path / "c.pth", key="g", converters=[strip_net])
    assert _same(src, dst)
    with pytest.raises(KeyError, match="'nope' not found"):
        load_weights(dst, tmp_path / "c.pth", key="nope")


def test_mismatched_key_names_the_key_and_file(tmp_path):
    sd = _net(0).state_dict()
    sd["conv_final.weight"] = sd.pop("conv_last.weight")
    path = tmp_path / "renamed.pth"
    torch.save({"params": sd}, path)
    with pytest.raises(WeightsMismatchError) as err:
        load_weights(_net(1), path)
    msg = str(err.value)
    assert "conv_final.weight" in msg and "conv_last.weight" in msg and str(path) in msg
    # strict=False tolerates the renamed key and loads the rest
    dst = _net(1)
    load_weights(dst, path, strict=False)
    assert torch.equal(dst.conv_first.weight, sd["conv_first.weight"])


def test_shape_mismatch_lists_shapes(tmp_path):
    sd = _net(0).state_dict()
    sd["conv_first.weight"] = torch.zeros(4, 3, 5, 5)
    torch.save(sd, tmp_path / "shape.pth")
    expected = r"conv_first.weight: checkpoint \(4, 3, 5, 5\) vs model \(4, 3, 3, 3\)"
    with pytest.raises(WeightsMismatchError, match=expected):
        load_weights(_net(1), tmp_path / "shape.pth", strict=False)


def test_missing_file_and_unsafe_pickle(tmp_path):
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        load_weights(_net(0), missing)
    # weights_only=True refuses arbitrary objects
    bad = tmp_path / "object.pth"
    torch.save({"params": _net(0).state_dict(), "obj": _Unsafe()}, bad)
    with pytest.raises(weights.WeightsError, match="object.pth was refused for safety") as err:
        load_weights(_net(0), bad)
    assert "test_weights._Unsafe" in str(err.value) and "weights_only=False" not in str(err.value)


class _Unsafe:
    pass


def test_local_sha256_check(tmp_path):
    path = tmp_path / "w.pth"
    torch.save(_net(0).state_dict(), path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    load_weights(_net(1), path, sha256=digest)
    load_weights(_net(1), path, sha256=digest[:8])  # BasicSR-style prefix
    with pytest.raises(ValueError, match="sha256 mismatch"):
        load_weights(_net(1), path, sha256="0" * 64)


@pytest.fixture
def hub_dir(tmp_path):
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield tmp_path / "hub"
    torch.hub.set_dir(old)


def test_file_url_downloads_into_hub_cache_with_sha256(tmp_path, hub_dir):
    src = tmp_path / "release" / "net_x4-1234abcd.pth"
    src.parent.mkdir()
    torch.save({"params_ema": _net(0).state_dict()}, src)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    dst = _net(1)
    load_weights(dst, src.as_uri(), sha256=digest)
    assert _same(dst, _net(0))
    assert (hub_dir / "checkpoints" / src.name).is_file()


def test_url_sha256_mismatch_removes_the_download(tmp_path, hub_dir, monkeypatch):
    payload = tmp_path / "payload.pth"
    torch.save(_net(0).state_dict(), payload)
    calls = []

    def fake_download(url, dst, hash_prefix=None, progress=True):
        calls.append(url)
        with open(dst, "wb") as f:
            f.write(payload.read_bytes())

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    url = "https://example.invalid/weights/model.pth"
    with pytest.raises(ValueError, match="sha256 mismatch.*example.invalid"):
        load_weights(_net(1), url, sha256="deadbeef")
    assert calls == [url]
    assert not (hub_dir / "checkpoints" / "model.pth").exists()
    # the right hash: downloaded once, then served from the cache
    digest = hashlib.sha256(payload.read_bytes()).hexdigest()
    load_weights(_net(1), url, sha256=digest)
    load_weights(_net(1), url, sha256=digest)
    assert calls == [url, url]


def test_offline_download_error_says_what_to_do(hub_dir, monkeypatch):
    def offline(url, dst, hash_prefix=None, progress=True):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    monkeypatch.setitem(weights.NAMED_WEIGHTS, "tiny_x4", ("https://example.invalid/weights/tiny_x4.pth", None))
    with pytest.raises(weights.WeightsDownloadError) as err:
        load_weights(_net(0), "tiny_x4")
    msg = str(err.value)
    assert isinstance(err.value, RuntimeError) and isinstance(err.value, ValueError)  # old and new callers catch it
    assert msg.startswith("could not download weights 'tiny_x4' from https://example.invalid/weights/tiny_x4.pth "
                          "(OSError: Temporary failure in name resolution)")
    assert str(hub_dir / "checkpoints" / "tiny_x4.pth") in msg and "$TORCH_HOME" in msg
    for way in ("--weights PATH (labkit eval)", "-p pretrained=PATH (labkit run / train)", "load_weights(model, PATH)"):
        assert way in msg
    assert len(msg.splitlines()) <= 3
    # the file put where the message says is used, without a download
    torch.save(_net(3).state_dict(), hub_dir / "checkpoints" / "tiny_x4.pth")
    assert _same(load_weights(_net(0), "tiny_x4"), _net(3))


def test_a_name_typo_lists_the_known_names(tmp_path):
    with pytest.raises(weights.WeightsNotFoundError) as err:
        load_weights(_net(0), "rrdb_psnr")
    msg = str(err.value)
    assert isinstance(err.value, FileNotFoundError) and isinstance(err.value, ValueError)
    assert "'rrdb_psnr': no such file, and not a known name" in msg and "did you mean 'rrdb_psnr_x4'?" in msg
    assert all(name in msg for name in weights.NAMED_WEIGHTS)
    with pytest.raises(weights.WeightsNotFoundError, match="did you mean 'rrdb_psnr_x4'"):
        load_weights(_net(0), tmp_path / "RRDB_PSNR_x4.pth")   # a missing file named like a known name
    with pytest.raises(weights.WeightsNotFoundError) as err:
        load_weights(_net(0), "zzzz")
    assert "did you mean" not in str(err.value) and "esrgan_x4" in str(err.value)


def test_named_weights_resolution(monkeypatch):
    monkeypatch.setitem(weights.NAMED_WEIGHTS, "tiny", ("https://example.invalid/tiny.pth", "abc123"))
    assert resolve_weights("tiny") == ("https://example.invalid/tiny.pth", "abc123")
    assert resolve_weights("some/file.pth") == ("some/file.pth", None)


def test_save_state_dict_is_atomic_and_weights_only(tmp_path, monkeypatch):
    net = _net(0)
    path = save_state_dict(net, tmp_path / "sub" / "best.pth")
    assert torch.equal(torch.load(path, weights_only=True)["conv_first.weight"], net.conv_first.weight)
    assert sorted(os.listdir(path.parent)) == ["best.pth"]
    # a failure while writing keeps the old file and leaves no temp file
    before = path.read_bytes()

    def boom(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"x": torch.zeros(1)}, path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(path.parent)) == ["best.pth"]


# ------------------------------------------------------------------------------ official layouts


class _MeanShift(nn.Conv2d):
    """EDSR-PyTorch's ``common.MeanShift`` (rgb_std 1): a fixed 1x1 conv adding sign * rgb_range * mean."""

    def __init__(self, rgb_range: float, sign: float) -> None:
        super().__init__(3, 3, 1)
        self.weight.data = torch.eye(3).view(3, 3, 1, 1)
        self.bias.data = sign * rgb_range * torch.tensor([0.4488, 0.4371, 0.4040])


class _ResBlock(nn.Module):
    def __init__(self, n: int, res_scale: float) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(n, n, 3, 1, 1), nn.ReLU(True), nn.Conv2d(n, n, 3, 1, 1))
        self.res_scale = res_scale

    def forward(self, x):
        return x + self.body(x) * self.res_scale


class _EDSRPyTorch(nn.Module):
    """EDSR-PyTorch's ``src/model/edsr.py`` structure (its key names), on images in [0, rgb_range]."""

    def __init__(self, n_feats: int, n_resblocks: int, scale: int, res_scale: float = 1.0, rgb_range: float = 255):
        super().__init__()
        self.sub_mean, self.add_mean = _MeanShift(rgb_range, -1), _MeanShift(rgb_range, 1)
        self.head = nn.Sequential(nn.Conv2d(3, n_feats, 3, 1, 1))
        self.body = nn.Sequential(*[_ResBlock(n_feats, res_scale) for _ in range(n_resblocks)],
                                  nn.Conv2d(n_feats, n_feats, 3, 1, 1))
        up = []
        for r in [3] if scale == 3 else [2] * (scale.bit_length() - 1):
            up += [nn.Conv2d(n_feats, r * r * n_feats, 3, 1, 1), nn.PixelShuffle(r)]
        self.tail = nn.Sequential(nn.Sequential(*up), nn.Conv2d(n_feats, 3, 3, 1, 1))

    def forward(self, x):
        x = self.head(self.sub_mean(x))
        return self.add_mean(self.tail(self.body(x) + x))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_edsr_pytorch_layout_loads_with_no_converter_and_gives_its_outputs(tmp_path, scale):
    from labkit.models import EDSR

    torch.manual_seed(0)
    official = _EDSRPyTorch(n_feats=8, n_resblocks=2, scale=scale, res_scale=0.1).eval()
    sd = official.state_dict()
    assert {"sub_mean.bias", "head.0.weight", "body.1.body.2.weight", "body.2.weight", "tail.1.bias"} <= set(sd)
    path = tmp_path / f"edsr_x{scale}.pt"
    torch.save(sd, path)
    net = load_weights(EDSR(num_feat=8, num_block=2, upscale=scale, res_scale=0.1), path).eval()
    assert torch.equal(net.conv_after_body.weight, sd["body.2.weight"])
    x = torch.rand(1, 3, 9, 7)
    with torch.no_grad():
        ours, theirs = net(x), official(x * 255) / 255  # EDSR-PyTorch works on [0, 255]
    assert ours.shape == theirs.shape == (1, 3, 9 * scale, 7 * scale)
    assert torch.allclose(ours, theirs, atol=1e-5), (ours - theirs).abs().max()


def test_edsr_pytorch_mean_shift_must_match_img_range(tmp_path):
    from labkit.models import EDSR

    path = tmp_path / "edsr_baseline_x2.pt"
    torch.save(_EDSRPyTorch(n_feats=8, n_resblocks=1, scale=2).state_dict(), path)
    with pytest.raises(WeightsMismatchError, match="'edsr_pytorch' layout but: sub_mean.bias.*img_range") as err:
        load_weights(EDSR(num_feat=8, num_block=1, upscale=2, img_range=1.0), path)
    assert err.value.closest == "edsr_pytorch" and str(path) in str(err.value)
    # a file trained with rgb_range 1 loads into a model built with img_range 1
    torch.save(_EDSRPyTorch(n_feats=8, n_resblocks=1, scale=2, rgb_range=1).state_dict(), path)
    load_weights(EDSR(num_feat=8, num_block=1, upscale=2, img_range=1.0), path)


def test_edsr_to_basicsr_names_unknown_keys_and_keeps_basicsr_dicts():
    from labkit.models import EDSR

    official = _EDSRPyTorch(n_feats=8, n_resblocks=1, scale=2).state_dict()
    with pytest.raises(ValueError, match="'head.1.weight'"):
        weights.edsr_to_basicsr({**official, "head.1.weight": torch.zeros(1)})
    ours = EDSR(num_feat=8, num_block=1, upscale=2).state_dict()
    assert weights.edsr_to_basicsr(ours, keep_unknown=True).keys() == ours.keys()
    assert weights.edsr_to_basicsr(official).keys() == ours.keys()


def test_models_without_other_layouts_say_so(tmp_path):
    sd = _net(0).state_dict()
    sd["head.weight"] = sd.pop("conv_first.weight")
    path = tmp_path / "other.pth"
    torch.save(sd, path)
    with pytest.raises(WeightsMismatchError, match="knows no other layout") as err:
        load_weights(_net(1), path)
    assert err.value.closest == "own"
    assert weights.official_layouts(_net(0)) == {}
