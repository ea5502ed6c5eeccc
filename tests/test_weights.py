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
    with pytest.raises(RuntimeError, match="object.pth"):
        load_weights(_net(0), bad)


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
    url = "https://example.invalid/weights/RRDB_PSNR_x4.pth"
    with pytest.raises(RuntimeError, match="downloading weights from https://example.invalid") as err:
        load_weights(_net(0), url)
    assert "local path" in str(err.value)


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
