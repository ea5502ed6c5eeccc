"""Load official (and our own) checkpoints safely; save state dicts atomically.

- :func:`load_weights` reads a local file or an http(s)/file URL (downloaded once into the torch
  hub cache, ``torch.hub.get_dir()/checkpoints``, with an optional sha256 check), always with
  ``torch.load(..., weights_only=True)`` (no arbitrary code from pickles). It unwraps BasicSR's
  ``params_ema`` / ``params`` and the common ``state_dict`` / ``model`` wrappers, strips the
  ``module.`` prefix DataParallel adds, applies explicit key converters, and then recognises the
  key layout of the file on its own: the model's own layout (BasicSR's) first, then each layout
  the model class lists in ``official_layouts`` (a mapping ``name -> converter to our layout``),
  the way spandrel recognises architectures from their keys. So the ESRGAN repository's
  ``RRDB_PSNR_x4.pth`` loads with one line, strictly, and no ``converters=``::

      load_weights(RRDBNet(num_feat=64, num_block=23, num_grow_ch=32, scale=4), "RRDB_PSNR_x4.pth")

  When no layout fits, :class:`WeightsMismatchError` names the file, the model class and the
  closest known layout, with a few of its missing / unexpected keys.
- Key converters between layouts: :func:`rrdb_to_basicsr` / :func:`rrdb_from_basicsr` (ESRGAN
  repository and its oldest ``model.N`` files <-> BasicSR), :func:`edsr_to_basicsr` (EDSR-PyTorch
  -> BasicSR).
- Errors are :class:`WeightsError` (a ValueError, from :mod:`labkit.torchfile`), each naming the file or name:
  a file that is empty, not a PyTorch checkpoint, truncated or corrupt, or refused for safety
  (:func:`labkit.torchfile.read_torch_file`, the one reader); a name that is neither a file nor in
  :data:`NAMED_WEIGHTS` (:class:`WeightsNotFoundError`, listing the names and the closest one); a failed
  download (:class:`WeightsDownloadError`: where to put the file, how to pass a path from the CLI or Python).
- :func:`atomic_save` / :func:`save_state_dict`: write to a temp file in the same folder, fsync,
  ``os.replace`` -- a crash never leaves a half-written checkpoint under the final name.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlparse

import torch
from torch import nn

from labkit.files import atomic_write
from labkit.torchfile import WeightsDownloadError, WeightsError, WeightsNotFoundError, read_torch_file

__all__ = [
    "sha256_file",
    "NAMED_WEIGHTS",
    "WeightsSource",
    "rrdb_from_basicsr",
    "rrdb_layout",
    "rrdb_to_basicsr",
    "edsr_to_basicsr",
    "WeightsMismatchError",
    "WeightsError",
    "WeightsNotFoundError",
    "WeightsDownloadError",
    "atomic_save",
    "load_state_dict_file",
    "load_weights",
    "official_layouts",
    "resolve_weights",
    "save_state_dict",
    "unwrap_state_dict",
]

class WeightsSource(NamedTuple):
    """Where a named official checkpoint lives.

    Attributes:
        url: an ``https://`` URL (GitHub releases download directly; Google Drive links
            ``https://drive.google.com/uc?id=...`` need the ``gdown`` package, which Colab ships).
        sha256: the file's SHA-256, full or a prefix (BasicSR file names end in its first 8 hex).
        filename: the name in the hub cache (default: the URL's last path component).
        note: what the file is, for people reading the table.
    """

    url: str
    sha256: str | None
    filename: str | None = None
    note: str = ""


#: Named official checkpoints: ``name -> WeightsSource`` (a plain ``(url, sha256)`` pair works too),
#: so that a notebook can write ``load_weights(models.build('rrdbnet_x4'), 'rrdb_psnr_x4')``.
#: The ESRGAN repository's own ``RRDB_PSNR_x4.pth`` sits in a Google Drive folder without a file
#: link; BasicSR re-released the same DF2K PSNR-oriented weights in its own layout (below). A
#: local copy of either file loads the same way, with no ``converters=``: RRDBNet lists the ESRGAN
#: layouts in its ``official_layouts``.
NAMED_WEIGHTS: dict[str, WeightsSource | tuple[str, str | None]] = {
    "rrdb_psnr_x4": WeightsSource(
        "https://drive.google.com/uc?id=1swaV5iBMFfg-DL6ZyiARztbhutDCWXMM", "150ff491",
        "ESRGAN_PSNR_SRx4_DF2K_official-150ff491.pth",
        "RRDBNet x4 (64, 23, 32), PSNR-oriented, DF2K, MATLAB bicubic; BasicSR's release of "
        "ESRGAN's RRDB_PSNR_x4.pth ({'params': ...}); the 000 write-up fine-tuned it",
    ),
    "esrgan_x4": WeightsSource(
        "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.0/ESRGAN_SRx4_DF2KOST_official-ff704c30.pth",
        "ff704c30", None,
        "RRDBNet x4 (64, 23, 32), the ESRGAN (GAN-trained) generator, DF2K + OST; for comparison",
    ),
}

#: Wrapper keys tried by ``key='auto'``, in order of preference (BasicSR stores the EMA weights
#: under ``params_ema``; they are the ones the papers evaluate).
WRAPPER_KEYS: tuple[str, ...] = ("params_ema", "params", "state_dict", "model")

_URL_SCHEMES = ("http://", "https://", "file://")


class WeightsMismatchError(WeightsError):
    """The checkpoint's keys or shapes do not fit the model.

    The message names the file, the model class and the closest known layout, and lists a few
    missing / unexpected keys and shape mismatches of that layout. ``closest`` holds the layout's
    name (``'own'`` for the model's own layout, else a key of the class's ``official_layouts``).
    """

    def __init__(self, message: str, closest: str | None = None) -> None:
        super().__init__(message, kind="mismatch")
        self.closest = closest


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
        entry = NAMED_WEIGHTS[s]
        return entry[0], entry[1]
    if _is_url(s):
        return s, None
    return os.path.expanduser(s), None


def sha256_file(path: str | os.PathLike) -> str:
    """The SHA-256 hex digest of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_sha256(path: str, expected: str, source: str) -> None:
    expected = expected.lower()
    got = sha256_file(path)
    if not got.startswith(expected):
        raise WeightsError(
            f"sha256 mismatch for {source} (file {path}): expected {expected}..., got {got}. "
            "The file is corrupt or not the expected release; delete it and download again.", path, "sha256"
        )


def _cache_name(url: str) -> str:
    """The hub-cache file name for ``url``: the named table's ``filename``, else the URL's basename."""
    for entry in NAMED_WEIGHTS.values():
        if entry[0] == url and len(entry) > 2 and entry[2]:
            return entry[2]
    parsed = urlparse(url)
    if "drive.google.com" in parsed.netloc:
        return "gdrive-" + parse_qs(parsed.query).get("id", ["weights"])[0] + ".pth"
    return os.path.basename(parsed.path) or "weights.pth"


def _fetch(url: str, dst: str, progress: bool) -> None:
    """Download ``url`` to ``dst``: Google Drive through ``gdown`` (Colab has it), the rest through torch.hub."""
    if "drive.google.com" in urlparse(url).netloc:
        try:
            import gdown  # noqa: PLC0415 (optional: preinstalled on Colab)
        except ImportError as e:
            raise RuntimeError("a Google Drive file needs the gdown package: pip install gdown") from e
        tmp = dst + ".part"
        if gdown.download(url, tmp, quiet=not progress) is None:
            raise RuntimeError("gdown could not download it")
        os.replace(tmp, dst)
    else:
        torch.hub.download_url_to_file(url, dst, hash_prefix=None, progress=progress)


def _download(url: str, sha256: str | None, progress: bool = True) -> str:
    """Download ``url`` into the hub cache once; check sha256 (full hex digest or a prefix)."""
    name = _cache_name(url)
    folder = os.path.join(torch.hub.get_dir(), "checkpoints")
    os.makedirs(folder, exist_ok=True)
    dst = os.path.join(folder, name)
    if not os.path.exists(dst):
        try:
            _fetch(url, dst, progress)
        except Exception as e:  # URLError, HTTPError, socket errors, no gdown ...
            raise WeightsDownloadError(download_help(url, dst, e), url, "download") from e
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
    """``torch.load(path, weights_only=True)`` with clear errors (:func:`labkit.torchfile.read_torch_file`).

    Raises WeightsNotFoundError (a FileNotFoundError) naming a missing file; WeightsError (a
    ValueError) naming a file that is empty, not a PyTorch checkpoint, truncated or corrupt, or
    refused for safety (objects other than tensors and containers).
    """
    return read_torch_file(path, map_location=map_location, what="weights file")


def download_help(url: str, dst: str, error: BaseException) -> str:
    """The message for a failed download of ``url``: why, and the ways on for the CLI and Python (3 lines).

    ``dst`` is the hub-cache path a copy placed by hand is read from (``torch.hub.get_dir()``, moved by
    ``$TORCH_HOME``).
    """
    name = next((f"weights {n!r}" for n, entry in NAMED_WEIGHTS.items() if entry[0] == url), "weights")
    reason = (str(error).splitlines() or [""])[0][:160]
    return (f"could not download {name} from {url} ({type(error).__name__}: {reason}).\n"
            f"  Download it in a browser and put it at {dst} (torch's hub cache; $TORCH_HOME moves it),\n"
            "  or pass its path: --weights PATH (labkit eval), -p pretrained=PATH (labkit run / train), "
            "load_weights(model, PATH) (Python).")


def unknown_weights(name: str) -> WeightsNotFoundError:
    """The error for ``name`` that is neither an existing file nor a known name nor a URL.

    It lists :data:`NAMED_WEIGHTS` and the closest name (``difflib``, case-insensitive, on the
    name without folder and suffix). A WeightsNotFoundError is also a FileNotFoundError.
    """
    names = list(NAMED_WEIGHTS)
    stem = os.path.splitext(os.path.basename(name))[0].lower()
    close = difflib.get_close_matches(stem, names, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return WeightsNotFoundError(
        f"weights {name!r}: no such file, and not a known name ({hint}known names: {', '.join(names)}); "
        "pass an existing file, a known name or an http(s):// URL", name, "unknown_name")


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


def _few(keys: list[str], n: int = 5) -> str:
    more = f" ... (+{len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def _mismatch_report(own: Mapping[str, torch.Tensor], state: Mapping, strict: bool) -> tuple[str, bool]:
    """Lines listing missing / unexpected keys (strict) and shape mismatches; and whether it fails."""
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        (k, tuple(state[k].shape), tuple(own[k].shape))
        for k in own
        if k in state and isinstance(state[k], torch.Tensor) and state[k].shape != own[k].shape
    ]
    bad = bool(shapes) or (strict and bool(missing or unexpected))
    lines = []
    if missing and strict:
        lines.append(f"missing keys ({len(missing)}): {_few(missing)}")
    if unexpected and strict:
        lines.append(f"unexpected keys ({len(unexpected)}): {_few(unexpected)}")
    if shapes:
        shown = [f"{k}: checkpoint {a} vs model {b}" for k, a, b in shapes[:5]]
        more = f" ... (+{len(shapes) - 5} more)" if len(shapes) > 5 else ""
        lines.append(f"shape mismatches ({len(shapes)}): " + "; ".join(shown) + more)
    return "\n  ".join(lines), bad


def _key_overlap(own: Mapping, state: Mapping) -> float:
    """Shared key names over all key names (Jaccard index): 1.0 when the key sets are equal."""
    return len(own.keys() & state.keys()) / max(1, len(own.keys() | state.keys()))


def official_layouts(model: nn.Module) -> dict[str, Callable[[Mapping], Mapping]]:
    """The key layouts ``model`` loads besides its own: ``model.official_layouts`` or ``{}``.

    The protocol (read by :func:`load_weights`): a model class may define ``official_layouts``, a
    mapping ``layout name -> converter``, as a class attribute, or as a property when the
    conversion depends on the instance's settings (EDSR's mean shift). A converter takes a state
    dict in that layout and returns it in the model's own layout; keys it does not know pass
    through unchanged (so a dict in another layout comes back unchanged, and a strict load lists
    those keys). It raises ValueError for a file in its layout that the model cannot use as built.
    """
    layouts = getattr(model, "official_layouts", None) or {}
    if not isinstance(layouts, Mapping):
        raise TypeError(f"{type(model).__name__}.official_layouts must be a mapping name -> converter")
    return dict(layouts)


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
    """Load a checkpoint into ``model`` (in place), whichever known key layout it uses; return the model.

    ``load_weights(RRDBNet(num_feat=64, num_block=23, num_grow_ch=32, scale=4), "RRDB_PSNR_x4.pth")``
    loads the ESRGAN repository's file strictly, as it loads BasicSR's release of the same weights.

    Steps: read the file (``weights_only=True``); unwrap ``params_ema`` / ``params`` / ... and strip
    ``module.``; apply ``converters`` in order; then pick the layout. The state dict is tried as it
    is (the model's own layout, BasicSR's names) and converted by each entry of the model's
    ``official_layouts`` (see :func:`official_layouts`); the candidate whose key names overlap the
    model's most wins (the model's own layout on a tie). It loads when it fits: with ``strict=True``
    the exact key set, either way no shape mismatch.

    Layouts known today: RRDBNet ``'esrgan'`` (ESRGAN repository: ``RRDB_trunk``, ``trunk_conv``,
    ``upconv1/2``, ``HRconv``) and ``'esrgan_old'`` (``model.N``); EDSR ``'edsr_pytorch'``
    (EDSR-PyTorch: ``head``, ``body.i.body``, ``tail``, ``sub_mean`` / ``add_mean``). SwinIR,
    NAFNet, HINet, MSRResNet and the discriminators use their official layouts as their own.

    Args:
        model: the network whose ``state_dict`` the checkpoint must fill.
        path_or_url: a local file, an ``http(s)://`` or ``file://`` URL, or a name in
            :data:`NAMED_WEIGHTS`. URLs are downloaded once into
            ``torch.hub.get_dir()/checkpoints/<basename>`` with ``torch.hub.download_url_to_file``.
        strict: as ``nn.Module.load_state_dict``; shape mismatches are errors either way.
        key: wrapper to unwrap, see :func:`unwrap_state_dict` (``'auto'``: ``params_ema`` >
            ``params`` > ``state_dict`` > ``model``).
        sha256: expected SHA-256 of the file, the full hex digest or a prefix (BasicSR / torch hub
            file names carry an 8-hex prefix). Checked for downloads and for local files.
        converters: callables ``state_dict -> state_dict`` applied in order after unwrapping and
            ``module.`` stripping, before the layout is recognised (for layouts the model class
            does not list; the known ones need none).
        map_location: passed to ``torch.load`` (default ``'cpu'``; ``load_state_dict`` then copies
            onto the model's device).

    Returns: ``model``.

    Raises:
        WeightsNotFoundError (a WeightsError and a FileNotFoundError): neither an existing file nor
            a known name nor a URL (lists the known names and the closest one).
        WeightsDownloadError (a WeightsError and a RuntimeError): a download that failed (names the
            URL, where to put the file by hand and how to pass a path from the CLI or Python).
        WeightsError (a ValueError): a file that is empty, not a PyTorch checkpoint, truncated or
            corrupt, or refused for safety (see :func:`labkit.torchfile.read_torch_file`).
        ValueError: a sha256 mismatch.
        TypeError: a converter that does not return a mapping.
        WeightsMismatchError (a WeightsError): no known layout fits. The message names the file, the
            model class and the closest layout (``.closest``), with a few of its missing /
            unexpected keys and shape mismatches; or a layout converter's own objection.

    Source: BasicSR ``BaseModel.load_network`` (``params`` / ``params_ema`` wrappers, ``module.``
    stripping); spandrel's key-based architecture detection (the idea of recognising a layout from
    its keys); ``torch.load`` security note on ``weights_only``.
    """
    location, named_sha = resolve_weights(path_or_url)
    sha256 = sha256 or named_sha
    if _is_url(location):
        source = location
        file = _download(location, sha256)
    else:
        source = file = location
        if not os.path.exists(file):
            raise unknown_weights(os.fspath(path_or_url))
        if sha256:
            _check_sha256(file, sha256, file)
    obj = load_state_dict_file(file, map_location=map_location)
    state = unwrap_state_dict(obj, key=key, source=file)
    for conv in converters:
        state = conv(dict(state))
        if not isinstance(state, Mapping):
            raise TypeError(f"converter {conv!r} returned {type(state).__name__}, not a mapping")

    where = file if file == source else f"{file} (from {source})"
    cls = type(model).__name__
    own = model.state_dict()
    candidates: dict[str, Mapping] = {"own": state}
    for name, convert in official_layouts(model).items():
        try:
            candidates[name] = convert(dict(state))
        except ValueError as e:
            raise WeightsMismatchError(f"weights in {where} are in {cls}'s {name!r} layout but: {e}", name) from e
    best = max(candidates, key=lambda name: _key_overlap(own, candidates[name]))  # first wins a tie
    state = candidates[best]
    report, bad = _mismatch_report(own, state, strict)
    if bad:
        shared = len(own.keys() & state.keys())
        if strict and own.keys() != state.keys() and len(candidates) > 1:
            head = (f"its keys fit none of {cls}'s known layouts ({', '.join(candidates)}); "
                    f"closest: {best!r} layout, {shared} of the model's {len(own)} keys present")
        elif strict and own.keys() != state.keys():
            head = f"{shared} of the model's {len(own)} keys present ({cls} knows no other layout)"
        else:
            head = (f"the keys are in {cls}'s {best!r} layout but shapes differ: was the model built "
                    "with other settings than the checkpoint?")
        if shared < len(own) / 2:
            tops = list(dict.fromkeys(str(k).split(".")[0] for k in state))
            head += (f"\n  fewer than half the keys match: a checkpoint of another architecture or "
                     f"configuration? (its top-level names: {_few(tops, 8)})")
        raise WeightsMismatchError(
            f"weights in {where} do not fit {cls} (strict={strict}): {head}\n  {report}", best
        )
    model.load_state_dict(state, strict=strict)
    return model


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj, path)`` atomically: temp file in the same folder, fsync, ``os.replace``.

    The parent folder is created if needed. A crash (or an exception from ``torch.save``) leaves
    either the previous file or the new one, never a partial file, and no temp file behind.
    Returns the final path. (:func:`labkit.files.atomic_write` with ``torch.save``.)
    """
    return atomic_write(path, lambda f: torch.save(obj, f))


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


# --------------------------------------------------------------------------------------------------
# RRDBNet key layouts (ESRGAN repository, its oldest files, BasicSR)
# --------------------------------------------------------------------------------------------------

#: ESRGAN repository (``RRDBNet_arch.py``, e.g. ``RRDB_PSNR_x4.pth``) -> BasicSR names, outside the trunk.
_ESRGAN_TOP = {"trunk_conv": "conv_body", "upconv1": "conv_up1", "upconv2": "conv_up2", "HRconv": "conv_hr"}
#: The oldest ESRGAN files (``architecture.py``, a ``model`` Sequential): index -> BasicSR name.
_OLD_TOP = {"0": "conv_first", "3": "conv_up1", "6": "conv_up2", "8": "conv_hr", "10": "conv_last"}
_ESRGAN_BLOCK = re.compile(r"^RRDB_trunk\.(\d+)\.RDB([123])\.(conv[1-5])\.(weight|bias)$")
_OLD_BLOCK = re.compile(r"^model\.1\.sub\.(\d+)\.RDB([123])\.(conv[1-5])\.0\.(weight|bias)$")
_OLD_TRUNK = re.compile(r"^model\.1\.sub\.(\d+)\.(weight|bias)$")
_OLD_TOP_KEY = re.compile(r"^model\.(\d+)\.(weight|bias)$")


def rrdb_layout(state: Mapping[str, Any]) -> str:
    """Which RRDBNet key layout ``state`` uses: ``'basicsr'``, ``'esrgan'`` or ``'esrgan_old'``.

    Raises ValueError when it is none of them (the message shows a few keys).
    """
    keys = list(state)
    if any(k.startswith("body.") for k in keys) and "conv_body.weight" in state:
        return "basicsr"
    if any(k.startswith("RRDB_trunk.") for k in keys) and "trunk_conv.weight" in state:
        return "esrgan"
    if "model.0.weight" in state and any(k.startswith("model.1.sub.") for k in keys):
        return "esrgan_old"
    raise ValueError(f"not an RRDBNet state dict (keys: {keys[:6]}...)")


def rrdb_to_basicsr(
    state: Mapping[str, Any], layout: str | None = None, *, keep_unknown: bool = False
) -> dict[str, Any]:
    """Rename an ESRGAN-repository or oldest-ESRGAN RRDBNet state dict to BasicSR's layout.

    ``RRDB_trunk.i.RDBk.convj`` -> ``body.i.rdbk.convj``, ``trunk_conv`` -> ``conv_body``,
    ``upconv1/2`` -> ``conv_up1/2``, ``HRconv`` -> ``conv_hr``; in the oldest files
    ``model.0`` -> ``conv_first``, ``model.1.sub.i.RDBk.convj.0`` -> ``body.i.rdbk.convj``,
    ``model.1.sub.<num_block>`` -> ``conv_body``, ``model.3/6/8/10`` -> ``conv_up1/conv_up2/conv_hr/
    conv_last``. A BasicSR dict is returned unchanged. Tensors are not copied.

    :func:`load_weights` applies it on its own (``RRDBNet.official_layouts``), so
    ``load_weights(RRDBNet(), 'RRDB_PSNR_x4.pth')`` needs no converter; passing
    ``converters=[rrdb_to_basicsr]`` still works.

    Args:
        state: the state dict.
        layout: ``'esrgan'``, ``'esrgan_old'`` or ``'basicsr'``; ``None`` detects it
            (:func:`rrdb_layout`).
        keep_unknown: pass keys the layout does not have through unchanged instead of raising
            (what :func:`load_weights` uses to score candidate layouts of any state dict).

    Raises ValueError for a dict in none of the three layouts (``layout=None``), an unknown
    ``layout``, or (unless ``keep_unknown``) a key the layout does not have.
    Source: ESRGAN ``RRDBNet_arch.py`` / ``architecture.py`` and ``transer_RRDB_models.py``;
    BasicSR ``rrdbnet_arch.py``.
    """
    layout = rrdb_layout(state) if layout is None else layout
    if layout not in ("basicsr", "esrgan", "esrgan_old"):
        raise ValueError(f"layout must be 'basicsr', 'esrgan' or 'esrgan_old', got {layout!r}")
    if layout == "basicsr":
        return dict(state)
    out: dict[str, Any] = {}
    for k, v in state.items():
        new = None
        if layout == "esrgan":
            m = _ESRGAN_BLOCK.match(k)
            head, _, kind = k.rpartition(".")
            if m:
                new = f"body.{m[1]}.rdb{m[2]}.{m[3]}.{m[4]}"
            elif head in (*_ESRGAN_TOP, "conv_first", "conv_last") and kind in ("weight", "bias"):
                new = f"{_ESRGAN_TOP.get(head, head)}.{kind}"
        else:
            m, t, top = _OLD_BLOCK.match(k), _OLD_TRUNK.match(k), _OLD_TOP_KEY.match(k)
            if m:
                new = f"body.{m[1]}.rdb{m[2]}.{m[3]}.{m[4]}"
            elif t:
                new = f"conv_body.{t[2]}"
            elif top and top[1] in _OLD_TOP:
                new = f"{_OLD_TOP[top[1]]}.{top[2]}"
        if new is None and not keep_unknown:
            what = "an ESRGAN-layout" if layout == "esrgan" else "an old-ESRGAN (model.N)"
            raise ValueError(f"unexpected key {k!r} in {what} RRDBNet state dict")
        out[new or k] = v
    return out


def rrdb_from_basicsr(state: Mapping[str, Any], layout: str = "esrgan") -> dict[str, Any]:
    """The inverse of :func:`rrdb_to_basicsr`: BasicSR names -> ``'esrgan'`` or ``'esrgan_old'``.

    For exporting to tools that expect the ESRGAN repository's files. Raises ValueError for an
    unknown ``layout`` or a dict that is not in BasicSR's layout.
    """
    if layout not in ("esrgan", "esrgan_old"):
        raise ValueError(f"layout must be 'esrgan' or 'esrgan_old', got {layout!r}")
    if rrdb_layout(state) != "basicsr":
        raise ValueError("rrdb_from_basicsr expects a BasicSR-layout RRDBNet state dict")
    num_block = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("body."))
    top_esrgan = {v: k for k, v in _ESRGAN_TOP.items()}
    top_old = {v: k for k, v in _OLD_TOP.items()}
    out: dict[str, Any] = {}
    for k, v in state.items():
        head, _, kind = k.rpartition(".")
        m = re.match(r"^body\.(\d+)\.rdb([123])\.(conv[1-5])$", head)
        if layout == "esrgan":
            new = f"RRDB_trunk.{m[1]}.RDB{m[2]}.{m[3]}.{kind}" if m else f"{top_esrgan.get(head, head)}.{kind}"
        elif m:
            new = f"model.1.sub.{m[1]}.RDB{m[2]}.{m[3]}.0.{kind}"
        elif head == "conv_body":
            new = f"model.1.sub.{num_block}.{kind}"
        else:
            new = f"model.{top_old[head]}.{kind}"
        out[new] = v
    return out


# --------------------------------------------------------------------------------------------------
# EDSR key layout (EDSR-PyTorch -> BasicSR)
# --------------------------------------------------------------------------------------------------

_EDSR_BLOCK = re.compile(r"^body\.(\d+)\.body\.([02])\.(weight|bias)$")
_EDSR_BODY_END = re.compile(r"^body\.(\d+)\.(weight|bias)$")
_EDSR_UP = re.compile(r"^tail\.0\.(\d+)\.(weight|bias)$")
_EDSR_TOP = {"head.0": "conv_first", "tail.1": "conv_last"}


def edsr_to_basicsr(
    state: Mapping[str, Any],
    *,
    img_range: float | None = None,
    rgb_mean: tuple[float, float, float] | None = None,
    keep_unknown: bool = False,
) -> dict[str, Any]:
    """Rename an EDSR-PyTorch state dict (the official ``edsr_baseline_x4-6b446fab.pt`` ...) to BasicSR's.

    Maps ``head.0`` -> ``conv_first``, ``body.i.body.0/2`` -> ``body.i.conv1/conv2``, ``body.N``
    (the conv after the N blocks) -> ``conv_after_body``, ``tail.0.j`` -> ``upsample.j`` (the
    sub-pixel convs, same indices), ``tail.1`` -> ``conv_last``, and drops ``sub_mean`` /
    ``add_mean``. Those two are EDSR-PyTorch's fixed ``MeanShift`` 1x1 convs (identity weight, bias
    ``-/+ rgb_range * rgb_mean``, DIV2K's mean, ``rgb_range`` 255 for every released model) on
    images in [0, rgb_range]. Labkit's :class:`~labkit.models.EDSR` takes [0, 1] images and computes
    ``(x - rgb_mean) * img_range`` instead, which is the same thing when ``img_range`` equals the
    file's ``rgb_range``: so build ``EDSR(num_feat=n_feats, num_block=n_resblocks, upscale=scale,
    res_scale=res_scale)`` (res_scale 0.1 for the large model) with the default ``img_range=255``
    and ``rgb_mean`` (DIV2K's), and the outputs equal EDSR-PyTorch's divided by 255.

    Args:
        state: the state dict.
        img_range / rgb_mean: the target model's; when both are given the file's ``sub_mean`` /
            ``add_mean`` must equal ``-/+ img_range * rgb_mean`` with identity weights (rgb_std 1).
            :func:`load_weights` passes EDSR's own (``EDSR.official_layouts``).
        keep_unknown: pass keys EDSR-PyTorch does not have through unchanged instead of raising.

    Raises ValueError for a key EDSR-PyTorch's EDSR does not have (unless ``keep_unknown``) or a
    mean shift that differs from ``img_range * rgb_mean`` (the message gives both).
    Source: EDSR-PyTorch ``src/model/edsr.py`` / ``common.py`` (``MeanShift``, ``ResBlock``,
    ``Upsampler``); BasicSR ``edsr_arch.py`` and ``scripts/model_conversion/convert_models.py``.
    """
    if img_range is not None and rgb_mean is not None:
        expected = torch.tensor(rgb_mean, dtype=torch.float64) * img_range
        for name, sign in (("sub_mean", -1.0), ("add_mean", 1.0)):
            w, b = state.get(f"{name}.weight"), state.get(f"{name}.bias")
            if w is None or b is None:
                continue
            eye = torch.eye(3, dtype=torch.float64).view(3, 3, 1, 1)
            if w.shape != eye.shape or not torch.allclose(w.double(), eye, atol=1e-4):
                raise ValueError(f"{name}.weight is not the identity (a MeanShift with rgb_std != 1); "
                                 "labkit's EDSR has no rgb_std")
            if b.shape != (3,) or not torch.allclose(sign * b.double(), expected, rtol=1e-4, atol=1e-3):
                raise ValueError(
                    f"{name}.bias is {[round(x, 4) for x in b.tolist()]} (rgb_range * rgb_mean of the file) "
                    f"but the model's img_range * rgb_mean is {[round(x, 4) for x in expected.tolist()]}: "
                    "build EDSR with img_range = the file's rgb_range (255 for the released models) "
                    "and rgb_mean = its mean"
                )
    out: dict[str, Any] = {}
    for k, v in state.items():
        head, _, kind = k.rpartition(".")
        block, end, up = _EDSR_BLOCK.match(k), _EDSR_BODY_END.match(k), _EDSR_UP.match(k)
        if head in ("sub_mean", "add_mean") and kind in ("weight", "bias"):
            continue
        if block:
            new = f"body.{block[1]}.conv{1 if block[2] == '0' else 2}.{block[3]}"
        elif end:
            new = f"conv_after_body.{end[2]}"
        elif up:
            new = f"upsample.{up[1]}.{up[2]}"
        elif head in _EDSR_TOP and kind in ("weight", "bias"):
            new = f"{_EDSR_TOP[head]}.{kind}"
        elif keep_unknown:
            new = k
        else:
            raise ValueError(f"unexpected key {k!r} in an EDSR-PyTorch EDSR state dict")
        out[new] = v
    return out
