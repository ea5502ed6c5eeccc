"""Inference helpers: tiled (overlapping-window) inference, the x8 self-ensemble, ``predict``.

- :func:`tiled` runs a fully convolutional / windowed network on overlapping tiles so that large
  images fit in memory (SwinIR's ``test`` with ``tile`` / ``tile_overlap``; the 000 and 001
  write-ups' overlapping test patches that remove border artifacts).
- :func:`self_ensemble` is EDSR's geometric self-ensemble ("EDSR+", Lim et al., CVPRW 2017): the
  8 flips / rotations of the input are restored, mapped back and averaged.
- :func:`predict`: numpy HWC [0, 1] image in, numpy HWC [0, 1] out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn

from labkit.data.tiling import padded_patches, skip_padded, stitch
from labkit.env import autocast, pick_device

__all__ = ["count_parameters", "dihedral_predictions", "padded_patch_predict", "predict", "self_ensemble", "tiled",
           "tile_starts"]


def _last(out: torch.Tensor | list | tuple) -> torch.Tensor:
    """The prediction of a model: the tensor itself, or the last one of a list (HINet stages)."""
    if isinstance(out, (list, tuple)):
        if not out:
            raise ValueError("the model returned an empty list/tuple")
        out = out[-1]
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"the model returned {type(out).__name__}, expected a tensor or a list of them")
    return out


def _model_device(model: nn.Module, fallback: torch.device) -> torch.device:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return fallback


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` with stride ``tile - overlap`` covering ``length``.

    The last tile is flush with the end (it may overlap its neighbour by more than ``overlap``).
    A length not larger than the tile gives ``[0]`` (the whole extent in one tile).
    """
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def _hann(n: int) -> torch.Tensor:
    # raised cosine over the tile, strictly positive so a pixel covered by one tile keeps its value
    w = torch.hann_window(n + 2, periodic=False, dtype=torch.float32)[1:-1]
    return w.clamp_min(1e-3)


def tiled(
    model: nn.Module | Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    scale: int = 1,
    tile: int = 128,
    overlap: int = 16,
    blend: str = "mean",
    batch: int = 1,
) -> torch.Tensor:
    """Run ``model`` on overlapping tiles of ``x`` and stitch the outputs.

    Args:
        model: maps an NCHW tile of size (h, w) to an NC'HW output of size (h*scale, w*scale);
            when it returns a list/tuple (multi-stage nets), the last element is used.
        x: NCHW float tensor (any range; usually [0, 1]).
        scale: the model's upscaling factor (1 for restoration).
        tile: tile size in input pixels (square). A side not larger than ``tile`` is run whole.
        overlap: overlap between neighbouring tiles, in input pixels; ``0 <= overlap < tile``.
        blend: ``'mean'`` -- each tile gives up ``overlap // 2`` pixels on every side that lies
            inside the image and the remaining parts are averaged where they still overlap (the
            flush last tile). A network whose receptive-field radius is at most ``overlap // 2``
            then reproduces the whole-image output exactly. ``'hann'`` -- whole tiles weighted by a
            raised-cosine window (smooth seams for nets with large receptive fields, not exact).
        batch: tiles per forward call (all tiles have the same shape, so they stack along the
            batch axis: ``N * batch`` images per call). Fewer, larger calls cut the per-call
            overhead (Python, kernel launches, thread start-up per operator), which dominates for
            small tiles and small models, especially with several CPU threads or on a GPU; peak
            memory grows about ``batch`` times. The output does not depend on it (up to float
            rounding of the kernels, ~1e-6) unless the model mixes the images of a batch
            (batch-norm in training mode).

    Returns: NC'(H*scale)(W*scale) float32 tensor on the model's device.

    Runs in inference mode when the caller is (wrap the call in ``torch.no_grad()``;
    :func:`predict` does). Raises ValueError for ``tile <= overlap``, ``overlap < 0``,
    ``batch < 1``, a non-4-D ``x``, an unknown ``blend`` or a model output of the wrong size.
    Source: SwinIR ``main_test_swinir.py`` (tile / tile_overlap, flush last tile, averaging).
    """
    if x.ndim != 4:
        raise ValueError(f"tiled expects an NCHW tensor, got shape {tuple(x.shape)}")
    if not isinstance(tile, int) or not isinstance(overlap, int):
        raise TypeError(f"tile and overlap must be ints, got tile={tile!r}, overlap={overlap!r}")
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap}")
    if tile <= overlap:
        raise ValueError(f"tile must be larger than overlap, got tile={tile}, overlap={overlap}")
    if blend not in ("mean", "hann"):
        raise ValueError(f"blend must be 'mean' or 'hann', got {blend!r}")
    if scale < 1 or int(scale) != scale:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive int, got {batch!r}")
    scale = int(scale)
    n, _, h, w = x.shape
    device = _model_device(model, x.device) if isinstance(model, nn.Module) else x.device
    th, tw = min(tile, h), min(tile, w)
    oh, ow = th * scale, tw * scale
    margin = overlap // 2
    tiles = [(y0, x0) for y0 in tile_starts(h, tile, overlap) for x0 in tile_starts(w, tile, overlap)]
    if blend == "hann":  # one window for all tiles (they all have the same shape)
        hann = (_hann(oh)[:, None] * _hann(ow)[None, :]).to(device)
    out = weight = None
    for i in range(0, len(tiles), batch):
        block = tiles[i:i + batch]
        # one contiguous (len(block) * n)-image input: tile j's images are rows j*n:(j+1)*n
        patch = torch.cat([x[..., y0:y0 + th, x0:x0 + tw] for y0, x0 in block]).to(device)
        y = _last(model(patch)).float()
        if y.shape[0] != patch.shape[0] or y.shape[-2:] != (oh, ow):
            raise ValueError(
                f"model output {tuple(y.shape)} for a tile batch {tuple(patch.shape)} does not match "
                f"scale={scale} (expected spatial size {(oh, ow)})"
            )
        if out is None:
            out = torch.zeros(n, y.shape[1], h * scale, w * scale, device=device)
            weight = torch.zeros(1, 1, h * scale, w * scale, device=device)
        for j, (y0, x0) in enumerate(block):
            yj = y[j * n:(j + 1) * n]
            if blend == "mean":
                # crop the margin on the sides that face another tile (not on the image border)
                t = margin if y0 > 0 else 0
                b = margin if y0 + th < h else 0
                le = margin if x0 > 0 else 0
                r = margin if x0 + tw < w else 0
                sy, ey = (y0 + t) * scale, (y0 + th - b) * scale
                sx, ex = (x0 + le) * scale, (x0 + tw - r) * scale
                out[..., sy:ey, sx:ex] += yj[..., t * scale:(th - b) * scale, le * scale:(tw - r) * scale]
                weight[..., sy:ey, sx:ex] += 1.0
            else:
                sy, sx = y0 * scale, x0 * scale
                out[..., sy:sy + oh, sx:sx + ow] += yj * hann
                weight[..., sy:sy + oh, sx:sx + ow] += hann
    return out / weight


# The 8 elements of the dihedral group D4 as (number of 90-degree rotations, horizontal flip first).
_D4 = [(k, f) for f in (False, True) for k in range(4)]


def _forward_t(x: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    if flip:
        x = torch.flip(x, dims=(-1,))
    return torch.rot90(x, k, dims=(-2, -1))


def _inverse_t(y: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    y = torch.rot90(y, -k, dims=(-2, -1))
    if flip:
        y = torch.flip(y, dims=(-1,))
    return y


def dihedral_predictions(
    model: nn.Module | Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    tile: int | None = None,
    overlap: int = 32,
    scale: int = 1,
    batch: int = 1,
) -> Iterator[torch.Tensor]:
    """Yield ``T^-1(model(T(x)))`` for the 8 dihedral transforms T, one at a time.

    The order is the identity, rotations by 90/180/270 degrees, then the same four after a
    horizontal flip. Each output is mapped back to ``x``'s orientation, so all 8 are predictions of
    the same image; :func:`self_ensemble` averages them. Arguments as :func:`self_ensemble`.
    """
    if x.ndim != 4:
        raise ValueError(f"self_ensemble expects an NCHW tensor, got shape {tuple(x.shape)}")
    for k, flip in _D4:
        xt = _forward_t(x, k, flip)
        if tile is None:
            device = _model_device(model, x.device) if isinstance(model, nn.Module) else x.device
            y = _last(model(xt.to(device))).float()
        else:
            y = tiled(model, xt, scale=scale, tile=tile, overlap=overlap, batch=batch)
        yield _inverse_t(y, k, flip)


def self_ensemble(
    model: nn.Module | Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    tile: int | None = None,
    overlap: int = 32,
    scale: int = 1,
    batch: int = 1,
) -> torch.Tensor:
    """x8 geometric self-ensemble ("EDSR+"): average of ``T^-1(model(T(x)))`` over the 8 dihedral T.

    The 8 transforms are the identity, the three rotations by 90/180/270 degrees, and the same four
    after a horizontal flip (which gives the vertical flip, transpose and anti-transpose). It costs
    8 forward passes. It helps because a trained network is not exactly equivariant: its errors on
    the 8 views are partly independent and averaging cancels part of them; for a network that is
    equivariant (e.g. an isotropic filter) the 8 outputs coincide and nothing changes.

    Args:
        model: NCHW -> NC'(H*s)(W*s); a list/tuple output uses its last element.
        x: NCHW float tensor.
        tile, overlap, scale, batch: when ``tile`` is given, each transformed input runs through
            :func:`tiled` with these settings (``scale`` is only needed then).

    Returns: the averaged output, float32, on the model's (or ``x``'s) device.
    Raises: ValueError for a non-4-D ``x`` (and what :func:`tiled` raises).
    Source: Lim et al., "Enhanced Deep Residual Networks for Single Image Super-Resolution",
    CVPRW 2017, section 4.4 (geometric self-ensemble).
    """
    acc = None
    for y in dihedral_predictions(model, x, tile=tile, overlap=overlap, scale=scale, batch=batch):
        acc = y if acc is None else acc + y
    return acc / len(_D4)


_self_ensemble = self_ensemble  # predict() has a keyword argument of the same name


def predict(
    model: nn.Module,
    img: np.ndarray,
    *,
    device: str | torch.device | None = None,
    tile: int | None = None,
    overlap: int = 32,
    scale: int = 1,
    self_ensemble: bool = False,  # noqa: A002 (shadows the function inside predict)
    amp: bool = False,
    batch: int = 1,
) -> np.ndarray:
    """Restore one numpy image: HWC float [0, 1] in, HWC float32 [0, 1] out.

    Args:
        model: the network (eval mode is set for the call and the previous mode restored).
        img: HWC (or HW grayscale) array, float in [0, 1] or uint8 in [0, 255].
        device: where to run; None keeps the model where it is, otherwise the model is moved there
            (``'auto'`` = ``labkit.env.pick_device``).
        tile, overlap, batch: tiled inference (see :func:`tiled`; ``batch`` tiles per forward call)
            when ``tile`` is given.
        scale: the model's upscaling factor (needed with ``tile``).
        self_ensemble: average the 8 flips/rotations (see :func:`self_ensemble`).
        amp: autocast (bf16 where supported, else fp16) on CUDA; ignored elsewhere.

    Returns: float32 HWC array (H*scale, W*scale, C') clipped to [0, 1]; HW input gives HW1 unless
    the model changes the channel count.
    Raises ValueError for an input that is not 2-D or 3-D. No gradients are recorded.
    """
    arr = np.asarray(img)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise ValueError(f"predict expects an HWC (or HW) image, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    arr = arr.astype(np.float32, copy=False)
    if device is not None:
        model.to(pick_device(device))
    dev = _model_device(model, torch.device("cpu"))
    x = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))[None].to(dev)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), autocast(dev, enabled=amp):
            if self_ensemble:
                y = _self_ensemble(model, x, tile=tile, overlap=overlap, scale=scale, batch=batch)
            elif tile is not None:
                y = tiled(model, x, scale=scale, tile=tile, overlap=overlap, batch=batch)
            else:
                y = _last(model(x))
    finally:
        model.train(was_training)
    y = y.float().clamp_(0.0, 1.0)[0].permute(1, 2, 0).cpu().numpy()
    return np.ascontiguousarray(y, dtype=np.float32)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (``requires_grad``), each shared tensor counted once."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def padded_patch_predict(
    model: nn.Module,
    img: np.ndarray,
    *,
    patch_size: int = 256,
    stride: int = 128,
    skip_padding: bool = True,
    batch_size: int = 16,
    device: str | torch.device | None = None,
    amp: bool = False,
) -> tuple[np.ndarray, dict]:
    """001's patch inference: zero-padded sliding windows, averaged, with or without padded-patch skipping.

    The image is cut like 001's ``test.py`` (:func:`labkit.data.tiling.padded_patches`: windows
    every ``stride`` pixels, the part beyond the image zero-filled), every window is restored by
    the model and the outputs are averaged where they overlap
    (:func:`labkit.data.tiling.stitch` with ``blend='mean'``), then cropped to the image.
    ``skip_padding=True`` keeps only the windows that :func:`labkit.data.tiling.skip_padded`
    keeps: zero-padded windows only up to the first stride past the edge. The others are mostly
    black, which the model never saw in training; their outputs drag the average down near the
    right/bottom edges and cost time (001: 1614 s -> 1117 s and a better score). Every pixel
    stays covered either way.

    Args:
        model: image-to-image network (a list output such as HINet's counts its last tensor).
        img: HWC float [0, 1] (or uint8) image.
        patch_size, stride: window size and step in pixels (``1 <= stride <= patch_size``).
        skip_padding: drop the windows 001 drops (True) or run all of them (False, "plain").
        batch_size: windows per forward pass.
        device: see :func:`predict`; amp: autocast on CUDA.

    Returns:
        ``(restored, info)``: float32 HWC [0, 1] image of img's height and width, and
        ``{'patches': number run, 'patches_total': number of padded windows, 'seconds': wall
        time of the model and stitching}``.

    Raises:
        ValueError: an image that is not HWC, bad sizes (see ``padded_patches``).
    """
    arr = np.asarray(img)
    if arr.ndim != 3:
        raise ValueError(f"padded_patch_predict expects an HWC image, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    arr = arr.astype(np.float32, copy=False)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    t0 = time.perf_counter()
    patches, positions, pad_fraction = padded_patches(arr, patch_size, stride)
    total = len(positions)
    if skip_padding:
        keep = skip_padded(positions, pad_fraction, arr.shape, patch_size, stride)
        patches, positions = patches[keep], [positions[i] for i in keep]
    if device is not None:
        model.to(pick_device(device))
    dev = _model_device(model, torch.device("cpu"))
    was_training = model.training
    model.eval()
    outs = []
    try:
        with torch.no_grad(), autocast(dev, enabled=amp):
            for i in range(0, len(patches), batch_size):
                x = torch.from_numpy(np.ascontiguousarray(patches[i:i + batch_size].transpose(0, 3, 1, 2))).to(dev)
                y = _last(model(x)).float().clamp_(0.0, 1.0)
                outs.append(y.permute(0, 2, 3, 1).cpu().numpy())
    finally:
        model.train(was_training)
    out_patches = np.concatenate(outs)
    canvas = (max(y for y, _ in positions) + patch_size, max(x for _, x in positions) + patch_size, out_patches.shape[-1])
    restored = stitch(out_patches, positions, canvas, blend="mean")[: arr.shape[0], : arr.shape[1]]
    info = {"patches": len(positions), "patches_total": total, "seconds": time.perf_counter() - t0}
    return np.ascontiguousarray(restored, dtype=np.float32), info
