"""Standard SR evaluation on a benchmark folder (Set5, Set14, B100, Urban100, DIV2K valid...).

The protocol is BasicSR's (``basicsr/metrics/psnr_ssim.py`` and ``basicsr/test.py``), which reproduces the
MATLAB scripts of the SR papers (EDSR, RRDB/ESRGAN, SwinIR):

* the SR output is clipped to [0, 1] and rounded to 8 bits before it is measured (``tensor2img``);
* PSNR and SSIM on the luma Y of ITU-R BT.601 *studio swing* (MATLAB ``rgb2ycbcr``, Y in [16, 235]);
* ``crop_border = scale`` pixels removed from every edge; the mean of the per-image values;
* with the set's bicubic LR files (``LR_bicubic/X4/babyx4.png``) the ground truth is cropped bottom/right
  to ``scale`` x the LR size (BasicSR's paired test dataset); with HR images only, the HR is first
  mod-cropped to a multiple of ``scale`` (BasicSR ``mod_crop``), and the LR is made on the fly with
  MATLAB bicubic (:func:`labkit.data.degrade.bicubic_downsample`, the benchmarks' "BI" degradation) and
  rounded to 8 bits, as the published LR files are.

Large inputs run tiled (:func:`labkit.infer.tiled`): by default an LR image of more than
``AUTO_TILE_PIXELS`` = 256 x 256 pixels (DIV2K valid, 4K photos; not Set5 / Set14 / B100 / Urban100,
whose LR images are at most about 256 x 192) is cut into ``AUTO_TILE`` = 128 px tiles overlapping by
``OVERLAP`` = 32 px (SwinIR's test ``tile_overlap``), so that peak memory stays bounded (the
full-size RRDBNet x4 on a 1024 x 1024 LR image on CPU: see the README).

``bicubic`` is a pseudo-model: MATLAB bicubic upsampling (:func:`labkit.data.degrade.bicubic_upsample`),
the "Bicubic" row of the SR tables. Published numbers (REFERENCE.md, the papers' tables) are printed beside
the measured ones when the model and set are known (:data:`PUBLISHED`).
"""

from __future__ import annotations

import inspect
import os
import time
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
from torch import nn

from labkit.data.sr import sr_benchmark_paths
from labkit.data.degrade import bicubic_downsample, bicubic_upsample, crop_to_multiple
from labkit.env import pick_device, progress_bar
from labkit.infer import predict
from labkit.io import list_images, read_image
from labkit.metrics import gaussian_window_1d, rgb_to_y, ssim_channels
from labkit.models import CONFIGS, MODELS, RRDBNet, build
from labkit.weights import load_weights, rrdb_to_basicsr

__all__ = ["evaluate_sr", "format_table", "load_sr_model", "sr_benchmark_pairs", "check_eval_sizes", "load_eval_pair",
           "min_eval_size", "y_psnr_ssim", "PUBLISHED", "CONVENTION",
           "AUTO_TILE_PIXELS", "AUTO_TILE", "OVERLAP"]

#: LR images with more pixels than this run tiled when ``tile`` is None.
AUTO_TILE_PIXELS = 256 * 256
#: Tile side (LR pixels) and overlap of the automatic tiling.
AUTO_TILE = 128
OVERLAP = 32

CONVENTION = ("PSNR (dB) / SSIM on Y (ITU-R BT.601 studio swing, MATLAB rgb2ycbcr), 8-bit, crop_border = {scale} "
              "(BasicSR / EDSR / SwinIR protocol)")

#: Published PSNR / SSIM (Y, crop = scale) from REFERENCE.md "Published numbers":
#: ``(method, scale) -> {set: (psnr, ssim)}``.
PUBLISHED: dict[tuple[str, int], dict[str, tuple[float, float]]] = {
    ("bicubic", 2): {"Set5": (33.66, 0.9299), "Set14": (30.24, 0.8688), "B100": (29.56, 0.8431),
                     "Urban100": (26.88, 0.8403)},
    ("EDSR", 2): {"Set5": (38.11, 0.9601), "Set14": (33.92, 0.9195), "B100": (32.32, 0.9013),
                  "Urban100": (32.93, 0.9351)},
    ("SwinIR (DF2K)", 2): {"Set5": (38.42, 0.9623), "Set14": (34.46, 0.9250), "B100": (32.53, 0.9041),
                           "Urban100": (33.81, 0.9427)},
    ("bicubic", 4): {"Set5": (28.42, 0.8104), "Set14": (26.00, 0.7027), "B100": (25.96, 0.6675),
                     "Urban100": (23.14, 0.6577)},
    ("EDSR", 4): {"Set5": (32.46, 0.8968), "Set14": (28.80, 0.7876), "B100": (27.71, 0.7420),
                  "Urban100": (26.64, 0.8033)},
    ("RRDB (DF2K)", 4): {"Set5": (32.73, 0.9011), "Set14": (28.99, 0.7917), "B100": (27.85, 0.7455),
                         "Urban100": (27.03, 0.8153)},
    ("SwinIR (DF2K)", 4): {"Set5": (32.92, 0.9044), "Set14": (29.09, 0.7950), "B100": (27.92, 0.7489),
                           "Urban100": (27.45, 0.8254)},
    ("SwinIR+ (x8 self-ensemble)", 4): {"Set5": (32.93, 0.9043), "Set14": (29.15, 0.7958),
                                        "B100": (27.95, 0.7494), "Urban100": (27.56, 0.8273)},
}

# model name (labkit.models) -> the method of the published table (the papers' configurations only)
_METHODS = {"bicubic": "bicubic", "edsr_large_x2": "EDSR", "edsr_large_x4": "EDSR", "rrdbnet": "RRDB (DF2K)",
            "rrdbnet_x4": "RRDB (DF2K)", "swinir_classical_x2": "SwinIR (DF2K)", "swinir_classical_x4": "SwinIR (DF2K)"}
# folder name (lower case) -> the set's name in the tables
_SETS = {"set5": "Set5", "set14": "Set14", "b100": "B100", "bsd100": "B100", "bsds100": "B100", "urban100": "Urban100"}

PathLike = Union[str, "os.PathLike[str]"]


def _set_name(data_dir: Path) -> str:
    folder = data_dir.parent if data_dir.name in ("HR", "GTmod12") else data_dir
    return _SETS.get(folder.name.lower(), folder.name)


def published(model_name: str, scale: int, set_name: str, *, self_ensemble: bool = False) -> Optional[dict]:
    """The published ``{'method', 'psnr', 'ssim'}`` for a model name, scale and set, or None if unknown."""
    method = _METHODS.get(model_name.lower())
    if method == "SwinIR (DF2K)" and self_ensemble:
        method = "SwinIR+ (x8 self-ensemble)"
    entry = PUBLISHED.get((method, scale), {}).get(set_name) if method else None
    return None if entry is None else {"method": method, "psnr": entry[0], "ssim": entry[1]}


def load_sr_model(name: str, scale: int, weights: Optional[PathLike] = None) -> nn.Module:
    """Build an SR model by name (``labkit.models.build``: a configuration such as ``rrdbnet_x4`` or an
    architecture such as ``rrdbnet``, which gets ``scale`` / ``upscale`` = ``scale``) and load ``weights``
    (a path, URL or :data:`labkit.weights.NAMED_WEIGHTS` name; RRDBNet checkpoints in any of the three key
    layouts through :func:`labkit.weights.rrdb_to_basicsr`).

    Raises:
        KeyError: unknown name (the message lists the known ones). ValueError: a configuration of
        another scale. As :func:`labkit.weights.load_weights` for the weights.
    """
    key = name.lower()
    if key in CONFIGS:
        cfg = CONFIGS[key][1]
        cfg_scale = cfg.get("upscale", cfg.get("scale"))
        if cfg_scale is not None and cfg_scale != scale:
            raise ValueError(f"model {name!r} is a x{cfg_scale} configuration but --scale is {scale}")
        model = build(key)
    elif key in MODELS:
        params = inspect.signature(MODELS[key]).parameters
        kw = {k: scale for k in ("upscale", "scale") if k in params}
        model = build(key, **kw)
    else:
        build(key)  # raises KeyError listing the names
        raise AssertionError("unreachable")
    if weights is not None:
        converters = [rrdb_to_basicsr] if isinstance(model, RRDBNet) else []
        load_weights(model, weights, converters=converters)
    return model.eval()


def sr_benchmark_pairs(data_dir: PathLike, scale: int) -> tuple[list[tuple[str, Path, Optional[Path]]], str]:
    """``([(name, hr_path, lr_path or None), ...], lr_source)`` of a benchmark folder.

    ``lr_source`` describes where the LR comes from (the set's files or on the fly). Layouts: see
    :func:`labkit.data.sr.sr_benchmark_paths`; LR files pair with HR ``baby.png`` as
    ``babyx4.png`` or ``baby.png``.

    Raises:
        FileNotFoundError / ValueError: no layout (named, with data/README.md#sr-benchmarks); an HR
        image without its LR file (both paths named).
    """
    hr_dir, lr_dir = sr_benchmark_paths(data_dir, scale)
    hrs = list_images(hr_dir)
    if lr_dir is None:
        return [(p.stem, p, None) for p in hrs], f"made on the fly: mod-crop to {scale}, MATLAB bicubic, 8-bit"
    lrs = {p.stem: p for p in list_images(lr_dir)}
    out = []
    for p in hrs:
        lr = lrs.get(f"{p.stem}x{scale}") or lrs.get(p.stem)
        if lr is None:
            raise ValueError(f"expected {lr_dir / f'{p.stem}x{scale}.png'} (or {p.stem}.png) for {p} "
                             f"(see data/README.md#sr-benchmarks)")
        out.append((p.stem, p, lr))
    return out, f"the set's files ({lr_dir})"


#: Rows of the HR image measured at a time by :func:`y_psnr_ssim` (bounds the float64 temporaries).
STRIP_ROWS = 256


def y_psnr_ssim(sr: np.ndarray, gt: np.ndarray, crop_border: int) -> tuple[float, float]:
    """PSNR and SSIM on Y with ``crop_border``: the numbers of ``labkit.metrics.psnr`` / ``ssim(...,
    y_channel=True)``, computed in strips of :data:`STRIP_ROWS` rows so that a 4096 x 4096 image needs
    tens of MB of float64 temporaries instead of about 1.5 GB.

    Each strip is rounded to 8-bit levels as the metrics do (clip to [0, 1], x 255, round half to even,
    in float64), converted to studio-swing Y (:func:`labkit.metrics.rgb_to_y`), then PSNR pools the squared
    errors and SSIM the SSIM-map values of every strip (a strip of Y rows ``[r, r + n + 10)`` gives map rows
    ``[r, r + n)`` of the 'valid' 11 x 11 window), so both equal the whole-image values up to float
    summation order.

    Args: ``sr``, ``gt``: HWC RGB float [0, 1] (or uint8) of the same shape. Returns ``(psnr dB, ssim)``.
    Raises ValueError: different shapes, or an image smaller than 11 x 11 after the crop.
    """
    if sr.shape != gt.shape or sr.ndim != 3 or sr.shape[2] != 3:
        raise ValueError(f"expected two HWC RGB images of the same shape, got {sr.shape} and {gt.shape}")
    c = crop_border
    sr, gt = (x[c:x.shape[0] - c, c:x.shape[1] - c] for x in (sr, gt))
    h, w = sr.shape[:2]
    if h < 11 or w < 11:
        raise ValueError(f"ssim needs images of at least 11x11 after cropping, got {h}x{w}")
    r = gaussian_window_1d().size // 2

    def y(x: np.ndarray) -> np.ndarray:
        levels = x.astype(np.float64) if x.dtype == np.uint8 else np.round(np.clip(x.astype(np.float64), 0, 1) * 255)
        return rgb_to_y(levels.astype(np.uint8))[..., None]

    se = ssim_sum = 0.0
    for top in range(0, h - 2 * r, STRIP_ROWS):  # SSIM-map rows [top, top + n)
        n = min(STRIP_ROWS, h - 2 * r - top)
        a, b = y(sr[top:top + n + 2 * r]), y(gt[top:top + n + 2 * r])
        own = slice(r if top else 0, n + 2 * r if top + n + 2 * r == h else n + r)  # rows this strip owns for PSNR
        se += float(np.sum((a[own] - b[own]) ** 2))
        ssim_sum += float(ssim_channels(a, b)[0]) * n * (w - 2 * r)
    mse = se / (h * w)
    return (float("inf") if mse == 0 else float(10.0 * np.log10(255.0**2 / mse))), ssim_sum / ((h - 2 * r) * (w - 2 * r))


def min_eval_size(scale: int) -> int:
    """The smallest HR side (pixels) :func:`evaluate_sr` measures at ``scale``: a multiple of ``scale`` that
    leaves SSIM's 11 x 11 window after the ``scale`` px border crop on each side (20 at x4, 16 at x2)."""
    return -(-(11 + 2 * scale) // scale) * scale


def check_eval_sizes(hr_path: Path, hr_hw: tuple[int, int], lr_path: Optional[Path], lr_hw: Optional[tuple[int, int]],
                     scale: int) -> None:
    """Check an HR image (and its LR file) before it is evaluated; sizes are (H, W) in pixels.

    The HR must be at least :func:`min_eval_size` on each side. An LR file must be the HR's size // ``scale``
    exactly: the rule of the training loaders (``PairedFolderDataset``: GT = ``scale`` x LR), after the mod-crop
    BasicSR's paired test dataset applies to benchmark HR images (it crops the HR's last ``H % scale`` rows
    and ``W % scale`` columns; more than that would measure a shifted, rescaled image).

    Raises ValueError naming the file(s), their sizes and the size expected.
    """
    m = min_eval_size(scale)
    if min(hr_hw) < m:
        raise ValueError(f"{hr_path} is {hr_hw[0]}x{hr_hw[1]} (HxW): too small to evaluate at x{scale}; it needs at "
                         f"least {m}x{m} ({scale} px cropped from each border must leave SSIM's 11x11 window); "
                         "remove it from the folder or use a larger image")
    want = (hr_hw[0] // scale, hr_hw[1] // scale)
    if lr_path is not None and lr_hw != want:
        raise ValueError(f"size mismatch: HR '{hr_path}' is {hr_hw[0]}x{hr_hw[1]} but LR '{lr_path}' is "
                         f"{lr_hw[0]}x{lr_hw[1]} (HxW); with scale {scale} the LR should be {want[0]}x{want[1]} "
                         f"(the HR's size // {scale}); re-make the LR file from the HR image or remove the LR "
                         "folder to make the LR on the fly (data/README.md#sr-benchmarks)")


def load_eval_pair(hr_path: Path, lr_path: Optional[Path], scale: int) -> tuple[np.ndarray, np.ndarray]:
    """``(gt, lr)`` float32 HWC RGB in [0, 1] for one benchmark image, checked by :func:`check_eval_sizes`.

    ``gt`` is the HR mod-cropped to a multiple of ``scale``; ``lr`` is the LR file, or (``lr_path`` None)
    MATLAB bicubic of ``gt`` rounded to 8 bits. Raises ValueError as :func:`check_eval_sizes`.
    """
    gt = read_image(hr_path)
    lr = None if lr_path is None else read_image(lr_path)
    check_eval_sizes(hr_path, gt.shape[:2], lr_path, None if lr is None else lr.shape[:2], scale)
    gt = crop_to_multiple(gt, scale)
    return gt, (_to8(bicubic_downsample(gt, scale)) if lr is None else lr)


def _to8(img: np.ndarray) -> np.ndarray:
    return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.float32) / np.float32(255.0)


def evaluate_sr(
    model: Union[str, nn.Module],
    data_dir: PathLike,
    *,
    scale: int,
    weights: Optional[PathLike] = None,
    tile: Optional[int] = None,
    overlap: int = OVERLAP,
    self_ensemble: bool = False,
    device: Optional[str] = None,
    progress: bool = True,
    name: Optional[str] = None,
) -> dict[str, Any]:
    """Score an SR model on a benchmark folder with the BasicSR protocol (module docstring).

    Args:
        model: a name (``'bicubic'``, a :data:`labkit.models.CONFIGS` name such as ``'rrdbnet_x4'``, or an
            architecture such as ``'rrdbnet'``, see :func:`load_sr_model`) or an ``nn.Module`` mapping
            NCHW [0, 1] to ``scale`` x larger.
        data_dir: a set's folder (``Set5/`` with ``HR/`` [+ ``LR_bicubic/X4/``], BasicSR's ``GTmod12/``, or a
            folder of HR images), see data/README.md#sr-benchmarks.
        scale: the SR factor (2, 3, 4); also the border cropped before measuring.
        weights: checkpoint for a model given by name (path, URL or named weights).
        tile: LR tile side for :func:`labkit.infer.tiled`; None = automatic (tiles of ``AUTO_TILE`` when the
            LR image has more than ``AUTO_TILE_PIXELS`` pixels); 0 = never tile.
        overlap: tile overlap in LR pixels. self_ensemble: EDSR's x8 geometric self-ensemble.
        device: ``'cpu'``, ``'cuda'``, ... (None / ``'auto'``: :func:`labkit.env.pick_device`).
        progress: a tqdm bar over the images. name: the model's name in the result (default: ``model``
            if a string, else its class name).

    Returns:
        ``{'model', 'weights', 'set', 'scale', 'convention', 'lr', 'images': [{'name', 'size' (H, W of the
        measured HR), 'psnr', 'ssim', 'tiled', 'seconds'}, ...], 'psnr', 'ssim' (means), 'published'
        ({'method', 'psnr', 'ssim'} or None), 'seconds'}``.

    Raises:
        FileNotFoundError / ValueError: a bad folder or missing LR file (named); an LR file whose size is not
        the HR's // ``scale`` or an HR image smaller than :func:`min_eval_size` (both named with their sizes,
        :func:`check_eval_sizes`); a model whose output is not ``scale`` x its input. KeyError: unknown model
        name. WeightsError (a ValueError, :func:`labkit.weights.load_weights`): a bad or missing weights file.
    """
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ValueError(f"scale: expected an integer >= 1, got {scale!r}")
    scale = int(scale)
    data_dir = Path(data_dir).expanduser()
    pairs, lr_source = sr_benchmark_pairs(data_dir, scale)
    model_name = name or (model if isinstance(model, str) else type(model).__name__)
    is_bicubic = isinstance(model, str) and model.lower() == "bicubic"
    if is_bicubic and weights is not None:
        raise ValueError("the bicubic pseudo-model takes no weights")
    net = None
    if not is_bicubic:
        net = load_sr_model(model, scale, weights) if isinstance(model, str) else model
        net.to(pick_device(device))
    rows, start = [], time.perf_counter()
    bar = progress_bar()(pairs, desc=f"{model_name} x{scale}", unit="img", disable=not progress)
    for stem, hr_path, lr_path in bar:
        t0 = time.perf_counter()
        gt, lr = load_eval_pair(hr_path, lr_path, scale)
        use_tile = tile if tile is not None else (AUTO_TILE if lr.shape[0] * lr.shape[1] > AUTO_TILE_PIXELS else 0)
        if is_bicubic:
            sr = np.clip(bicubic_upsample(lr, scale), 0.0, 1.0)
        else:
            sr = predict(net, lr, tile=use_tile or None, overlap=min(overlap, max(0, use_tile - 1)), scale=scale,
                         self_ensemble=self_ensemble)
        if sr.shape != gt.shape:
            raise ValueError(f"{model_name}: output {sr.shape} for the LR {lr.shape} of {hr_path.name} is not x{scale} "
                             f"(expected {gt.shape})")
        del lr
        p, q = y_psnr_ssim(sr, gt, scale)
        rows.append({"name": stem, "size": [int(gt.shape[0]), int(gt.shape[1])], "psnr": float(p), "ssim": float(q),
                     "tiled": bool(use_tile) and not is_bicubic, "seconds": round(time.perf_counter() - t0, 3)})
        del sr, gt
    set_name = _set_name(data_dir)
    return {
        "model": model_name, "weights": None if weights is None else str(weights), "set": set_name,
        "data": str(data_dir), "scale": scale, "convention": CONVENTION.format(scale=scale), "lr": lr_source,
        "self_ensemble": bool(self_ensemble), "images": rows,
        "psnr": float(np.mean([r["psnr"] for r in rows])), "ssim": float(np.mean([r["ssim"] for r in rows])),
        "published": published(model_name, scale, set_name, self_ensemble=self_ensemble) if isinstance(model, str) else None,
        "seconds": round(time.perf_counter() - start, 2),
    }


def format_table(result: dict[str, Any]) -> str:
    """The result of :func:`evaluate_sr` as a text table: the convention first, one row per image, the mean,
    and the published numbers beside it when known."""
    weights = f" (weights {result['weights']})" if result.get("weights") else ""
    lines = [
        f"SR evaluation: {result['model']}{weights} on {result['set']} x{result['scale']}, {len(result['images'])} images",
        f"convention: {result['convention']}",
        f"LR: {result['lr']}",
        "",
        f"{'image':<24} {'HR size':>11} {'PSNR':>8} {'SSIM':>8} {'time (s)':>9}",
    ]
    for r in result["images"]:
        size = f"{r['size'][0]}x{r['size'][1]}"
        lines.append(f"{r['name']:<24} {size:>11} {r['psnr']:>8.2f} {r['ssim']:>8.4f} {r['seconds']:>9.2f}"
                     + ("  tiled" if r["tiled"] else ""))
    lines.append(f"{'mean':<24} {'':>11} {result['psnr']:>8.2f} {result['ssim']:>8.4f}")
    pub = result.get("published")
    if pub:
        lines.append(f"{'published: ' + pub['method']:<36} {pub['psnr']:>8.2f} {pub['ssim']:>8.4f}  "
                     f"(REFERENCE.md; measured - published: {result['psnr'] - pub['psnr']:+.2f} dB)")
    else:
        lines.append(f"(no published numbers for {result['model']} on {result['set']} x{result['scale']})")
    return "\n".join(lines)
