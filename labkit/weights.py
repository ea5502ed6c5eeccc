"""Load official (and our own) checkpoints safely; save state dicts atomically.

- :func:`load_weights` reads a local file or an http(s)/file URL (downloaded once into the torch
  hub cache, ``torch.hub.get_dir()/checkpoints``, with an optional sha256 check), always with
  ``torch.load(..., weights_only=True)`` (no arbitrary code from pickles). It unwraps BasicSR's
  ``params_ema`` / ``params`` and the common ``state_dict`` / ``model`` wrappers, strips the
  ``module.`` prefix DataParallel adds, applies key converters (e.g. old ESRGAN layouts) and loads
  with clear errors.
- :func:`atomic_save` / :func:`save_state_dict`: write to a temp file in the same folder, fsync,
  ``os.replace`` -- a crash never leaves a half-written checkpoint under the final name.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

__all__ = [
    "NAMED_WEIGHTS",
    "WeightsMismatchError",
    "atomic_save",
    "load_state_dict_file",
    "load_weights",
    "resolve_weights",
    "save_state_dict",
    "unwrap_state_dict",
]

#: Named official checkpoints: ``name -> (url, sha256 or None)``. Empty for now; the model issues
#: fill it (e.g. ``'RRDB_PSNR_x4'``, the SwinIR / NAFNet / HINet release files) so that a notebook
#: can write ``load_weights(model, 'RRDB_PSNR_x4')`` and get the URL and hash check from here.
NAMED_WEIGHTS: dict[str, tuple[str, str | None]] = {}

#: Wrapper keys tried by ``key='auto'``, in order of preference (BasicSR stores the EMA weights
#: under ``params_ema``; they are the ones the papers evaluate).
WRAPPER_KEYS: tuple[str, ...] = ("params_ema", "params", "state_dict", "model")

_URL_SCHEMES = ("http://", "https://", "file://")


class WeightsMismatchError(ValueError):
    """The checkpoint's keys or shapes do not fit the model (message lists them and the file)."""


def _is_url(s: str) -> bool:
    return s.lower().startswith(_URL_SCHEMES)


def resolve_weights(name_or_path: str | os.PathLike) -> tuple[str, str | None]:
    """Resolve a name from :data:`NAMED_WEIGHTS`, a URL or a path into ``(location, sha256)``.

    Returns ``(url, sha256)`` for a known name, otherwise ``(str(name_or_path), None)`` unchanged
    (``~`` expanded for paths). Raises TypeError for a non-string, non-path argument.
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(f"expected a weights name, path or URL, got {type(name_or_path).__name__}")
    s = os.fspath(name_or_path)
    if s in NAMED_WEIGHTS:
        url, sha = NAMED_WEIGHTS[s]
        return url, sha
    if _is_url(s):
        return s, None
    return os.path.expanduser(s), None


def _sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_sha256(path: str, expected: str, source: str) -> None:
    expected = expected.lower()
    got = _sha256(path)
    if not got.startswith(expected):
        raise ValueError(
            f"sha256 mismatch for {source} (file {path}): expected {expected}..., got {got}. "
            "The file is corrupt or not the expected release; delete it and download again."
        )


def _download(url: str, sha256: str | None, progress: bool = True) -> str:
    """Download ``url`` into the hub cache once; check sha256 (full hex digest or a prefix)."""
    name = os.path.basename(urlparse(url).path) or "weights.pth"
    folder = os.path.join(torch.hub.get_dir(), "checkpoints")
    os.makedirs(folder, exist_ok=True)
    dst = os.path.join(folder, name)
    if not os.path.exists(dst):
        try:
            torch.hub.download_url_to_file(url, dst, hash_prefix=None, progress=progress)
        except Exception as e:  # URLError, HTTPError, socket errors, ...
            raise RuntimeError(
                f"downloading weights from {url} failed ({type(e).__name__}: {e}). Without network "
                "access, download the file elsewhere and pass its local path instead, e.g. "
                f"load_weights(model, '/path/to/{name}')."
            ) from e
        if sha256:
            try:
                _check_sha256(dst, sha256, url)
            except ValueError:
                os.remove(dst)  # never keep a bad download in the cache
                raise
    elif sha256:
        _check_sha256(dst, sha256, url)
    return dst


def load_state_dict_file(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with clear errors.

    Raises FileNotFoundError naming a missing file, RuntimeError naming a file that cannot be read
    (corrupt, truncated, or holding objects that ``weights_only`` refuses).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights file not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise RuntimeError(
            f"could not load weights file {path} with torch.load(weights_only=True): "
            f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        ) from e


def unwrap_state_dict(obj: Any, key: str | None = "auto", source: str = "checkpoint") -> dict:
    """Return the plain ``{name: tensor}`` state dict inside a checkpoint object.

    Args:
        obj: what ``torch.load`` returned.
        key: ``'auto'`` unwraps ``params_ema`` (preferred), ``params``, ``state_dict`` or ``model``
            (repeatedly, for nested wrappers) when their value is a mapping; a string takes exactly
            that key; ``None`` takes ``obj`` as it is.
        source: the file name used in error messages.

    A ``module.`` prefix (``nn.DataParallel`` / DDP) is stripped from the keys that carry it.
    Raises KeyError naming a missing explicit key and the keys present, TypeError when the result
    is not a mapping.
    """
    if key == "auto":
        for _ in range(4):
            if not isinstance(obj, Mapping):
                break
            found = next((k for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
            if found is None:
                break
            obj = obj[found]
    elif key is not None:
        if not isinstance(obj, Mapping) or key not in obj:
            present = list(obj.keys())[:10] if isinstance(obj, Mapping) else type(obj).__name__
            raise KeyError(f"key {key!r} not found in {source}; top-level keys: {present}")
        obj = obj[key]
    if not isinstance(obj, Mapping):
        raise TypeError(f"{source} does not hold a state dict (got {type(obj).__name__})")
    return {(k[len("module."):] if isinstance(k, str) and k.startswith("module.") else k): v
            for k, v in obj.items()}


def _mismatch_report(model: nn.Module, state: Mapping, strict: bool) -> tuple[str, bool]:
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        (k, tuple(state[k].shape), tuple(own[k].shape))
        for k in own
        if k in state and isinstance(state[k], torch.Tensor) and state[k].shape != own[k].shape
    ]
    bad = bool(shapes) or (strict and bool(missing or unexpected))
    lines = []

    def few(keys: list[str]) -> str:
        more = f" ... (+{len(keys) - 5} more)" if len(keys) > 5 else ""
        return ", ".join(keys[:5]) + more

    if missing and strict:
        lines.append(f"missing keys ({len(missing)}): {few(missing)}")
    if unexpected and strict:
        lines.append(f"unexpected keys ({len(unexpected)}): {few(unexpected)}")
    if shapes:
        shown = [f"{k}: checkpoint {a} vs model {b}" for k, a, b in shapes[:5]]
        more = f" ... (+{len(shapes) - 5} more)" if len(shapes) > 5 else ""
        lines.append(f"shape mismatches ({len(shapes)}): " + "; ".join(shown) + more)
    return "\n  ".join(lines), bad


def load_weights(
    model: nn.Module,
    path_or_url: str | os.PathLike,
    *,
    strict: bool = True,
    key: str | None = "auto",
    sha256: str | None = None,
    converters: Iterable[Callable[[dict], Mapping]] = (),
    map_location: Any = "cpu",
) -> nn.Module:
    """Load a checkpoint into ``model`` (in place) and return the model.

    Args:
        model: the network whose ``state_dict`` layout the checkpoint must match.
        path_or_url: a local file, an ``http(s)://`` or ``file://`` URL, or a name in
            :data:`NAMED_WEIGHTS`. URLs are downloaded once into
            ``torch.hub.get_dir()/checkpoints/<basename>`` with ``torch.hub.download_url_to_file``.
        strict: as ``nn.Module.load_state_dict``; shape mismatches are errors either way.
        key: wrapper to unwrap, see :func:`unwrap_state_dict` (``'auto'``: ``params_ema`` >
            ``params`` > ``state_dict`` > ``model``).
        sha256: expected SHA-256 of the file, the full hex digest or a prefix (BasicSR / torch hub
            file names carry an 8-hex prefix). Checked for downloads and for local files.
        converters: callables ``state_dict -> state_dict`` applied in order after unwrapping and
            ``module.`` stripping (e.g. the ESRGAN -> BasicSR RRDB key conversion).
        map_location: passed to ``torch.load`` (default ``'cpu'``; ``load_state_dict`` then copies
            onto the model's device).

    Returns: ``model``.

    Raises:
        FileNotFoundError: a local file that does not exist (named).
        RuntimeError: a download that failed (names the URL and how to pass a local file), or a
            file ``torch.load(weights_only=True)`` cannot read.
        ValueError: a sha256 mismatch.
        WeightsMismatchError (a ValueError): missing / unexpected keys (strict) or shape
            mismatches, listing a few of each with their shapes and the file.

    Source: BasicSR ``BaseModel.load_network`` (``params`` / ``params_ema`` wrappers, ``module.``
    stripping); ``torch.load`` security note on ``weights_only``.
    """
    location, named_sha = resolve_weights(path_or_url)
    sha256 = sha256 or named_sha
    if _is_url(location):
        source = location
        file = _download(location, sha256)
    else:
        source = file = location
        if not os.path.isfile(file):
            raise FileNotFoundError(f"weights file not found: {file}")
        if sha256:
            _check_sha256(file, sha256, file)
    obj = load_state_dict_file(file, map_location=map_location)
    state = unwrap_state_dict(obj, key=key, source=file)
    for conv in converters:
        state = conv(dict(state))
        if not isinstance(state, Mapping):
            raise TypeError(f"converter {conv!r} returned {type(state).__name__}, not a mapping")
    report, bad = _mismatch_report(model, state, strict)
    if bad:
        where = file if file == source else f"{file} (from {source})"
        raise WeightsMismatchError(
            f"weights in {where} do not fit {type(model).__name__} (strict={strict}):\n  {report}"
        )
    model.load_state_dict(state, strict=strict)
    return model


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj, path)`` atomically: temp file in the same folder, fsync, ``os.replace``.

    The parent folder is created if needed. A crash (or an exception from ``torch.save``) leaves
    either the previous file or the new one, never a partial file, and no temp file behind.
    Returns the final path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    try:  # persist the rename itself (POSIX); harmless to skip where unsupported
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return path


def save_state_dict(state: Mapping[str, torch.Tensor] | nn.Module, path: str | os.PathLike) -> Path:
    """Save a state dict (or a module's) atomically, tensors detached and moved to the CPU.

    The file loads with ``torch.load(path, weights_only=True)`` and :func:`load_weights`.
    Raises TypeError for anything other than a mapping or a module.
    """
    if isinstance(state, nn.Module):
        state = state.state_dict()
    if not isinstance(state, Mapping):
        raise TypeError(f"save_state_dict expects a state dict or a module, got {type(state).__name__}")
    plain = {k: (v.detach().cpu() if isinstance(v, torch.Tensor) else v) for k, v in state.items()}
    return atomic_save(plain, path)
