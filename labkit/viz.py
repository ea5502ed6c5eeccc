"""Pictures for the notebooks: side-by-side comparisons with zoomed crops, image grids, curves.

All functions take numpy images (HWC RGB float in [0,1] or uint8, or HW grayscale) and return a
matplotlib ``Figure``; :func:`save_figure` writes it under a run folder. Images of different sizes
(an LR input next to its SR output) are shown at a common size with nearest-neighbour
upsampling, so that a zoomed crop shows the same scene region in every panel.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

Box = tuple[int, int, int, int]  # (top, left, height, width) in pixels of the largest image


def _as_display(img: np.ndarray) -> np.ndarray:
    arr = np.asarray(img)
    if arr.dtype == np.uint8:
        return arr
    return np.clip(arr.astype(np.float32), 0.0, 1.0)


def _upscale_nearest(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize to ``shape`` (H, W): shows LR pixels as blocks, never smooths them."""
    h, w = img.shape[:2]
    if (h, w) == tuple(shape):
        return img
    rows = (np.arange(shape[0]) * h // shape[0]).clip(0, h - 1)
    cols = (np.arange(shape[1]) * w // shape[1]).clip(0, w - 1)
    return img[rows][:, cols]


def detail_box(img: np.ndarray, size: int) -> Box:
    """The ``size`` x ``size`` window with the most high-frequency detail (gradient energy).

    A good default zoom region: SR and restoration differences show in texture and edges, not in
    flat sky. Returns ``(top, left, size, size)``; the whole image if it is smaller than ``size``.
    """
    gray = np.asarray(img, dtype=np.float32)
    if gray.ndim == 3:
        gray = gray.mean(axis=2)
    h, w = gray.shape
    size = min(size, h, w)
    energy = np.zeros_like(gray)
    energy[:, 1:] += np.abs(np.diff(gray, axis=1))
    energy[1:, :] += np.abs(np.diff(gray, axis=0))
    integral = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = (integral[size:, size:] - integral[:-size, size:] - integral[size:, :-size] + integral[:-size, :-size])
    top, left = np.unravel_index(np.argmax(sums), sums.shape)
    return int(top), int(left), size, size


def compare(
    images: Mapping[str, np.ndarray],
    *,
    box: Box | None = None,
    zoom_size: int = 96,
    panel_size: float = 3.2,
    title: str | None = None,
):
    """A row of images (titles = dict keys) over a row of the same zoomed crop of each.

    Args:
        images: name -> image; the largest image sets the common display size.
        box: zoom region ``(top, left, height, width)`` in the largest image's pixels; default:
            :func:`detail_box` of the last image.
        zoom_size: side of the default zoom box in pixels.
        panel_size: inches per panel.
        title: optional figure title.

    Returns:
        The matplotlib Figure (2 rows x len(images) columns).
    """
    if not images:
        raise ValueError("compare() needs at least one image")
    names = list(images)
    shape = max((np.asarray(im).shape[:2] for im in images.values()), key=lambda s: s[0] * s[1])
    shown = {k: _upscale_nearest(_as_display(v), shape) for k, v in images.items()}
    if box is None:
        box = detail_box(shown[names[-1]], zoom_size)
    top, left, bh, bw = box
    fig, axes = plt.subplots(2, len(names), figsize=(panel_size * len(names), panel_size * 2), squeeze=False)
    for j, name in enumerate(names):
        img = shown[name]
        cmap = "gray" if img.ndim == 2 else None
        axes[0, j].imshow(img, cmap=cmap)
        axes[0, j].add_patch(Rectangle((left, top), bw, bh, fill=False, edgecolor="yellow", linewidth=1.5))
        axes[0, j].set_title(name, fontsize=9)
        axes[1, j].imshow(img[top : top + bh, left : left + bw], cmap=cmap, interpolation="nearest")
        for ax in axes[:, j]:
            ax.set_xticks([])
            ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def grid(images: Sequence[np.ndarray], titles: Sequence[str] | None = None, *, ncols: int = 4, panel_size: float = 2.2):
    """Images in a grid (``ncols`` per row), each with an optional title. Returns the Figure."""
    if len(images) == 0:
        raise ValueError("grid() needs at least one image")
    n = len(images)
    nrows = (n + ncols - 1) // ncols
    ncols = min(ncols, n)
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_size * ncols, panel_size * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, img in enumerate(images):
        ax = axes.ravel()[i]
        img = _as_display(img)
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    return fig


def save_figure(fig, out_dir: str | os.PathLike, name: str, *, dpi: int = 110) -> Path:
    """Save ``fig`` as ``<out_dir>/figures/<name>.png`` and return the path."""
    folder = Path(out_dir) / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


# ----------------------------------------------------------------------------- inpainting viewer (notebook 06)

#: The steps of the inpainting viewer, in order.
INPAINTING_STEPS = ("input", "mask", "output", "target")


def _check_items(items: Sequence[Mapping[str, np.ndarray]]) -> None:
    if not items:
        raise ValueError("items is empty: give at least one {'name', 'input', 'mask', 'output', 'target'} dict")
    for i, item in enumerate(items):
        missing = [k for k in ("name", *INPAINTING_STEPS) if k not in item]
        if missing:
            raise ValueError(f"items[{i}] is missing {missing} (needs 'name' and {list(INPAINTING_STEPS)})")


def _panel(item: Mapping[str, np.ndarray], step: str) -> tuple[np.ndarray, dict]:
    img = np.asarray(item[step])
    if img.dtype == bool:
        img = img.astype(np.float32)
    img = np.squeeze(img)
    kw = {"cmap": "gray", "vmin": 0, "vmax": 1} if img.ndim == 2 else {}
    return _as_display(img), kw


def inpainting_figure(items: Sequence[Mapping[str, np.ndarray]], *, panel_size: float = 2.2):
    """The static view: one row per image, columns input / mask / output / target.

    Args:
        items: dicts ``{'name', 'input', 'mask', 'output', 'target'}``; images HW (gray, or a bool
            mask) or HWC RGB, float [0, 1] or uint8.
        panel_size: inches per panel.

    Returns a matplotlib Figure. Raises ValueError naming the item and the missing keys.
    """
    _check_items(items)
    fig, axes = plt.subplots(len(items), len(INPAINTING_STEPS), squeeze=False,
                             figsize=(panel_size * len(INPAINTING_STEPS), panel_size * len(items)))
    for row, item in zip(axes, items):
        for ax, step in zip(row, INPAINTING_STEPS):
            img, kw = _panel(item, step)
            ax.imshow(img, **kw)
            ax.set_title(f"{item['name']}: {step}", fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    return fig


def _has_widget_kernel() -> bool:
    try:  # optional: probing whether widgets can be shown at all
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and hasattr(ip, "kernel")


def inpainting_viewer(items: Sequence[Mapping[str, np.ndarray]], *, interactive: bool | None = None,
                      panel_size: float = 4.0):
    """An ipywidgets control to pick an image and step through input, mask, output and target.

    Args:
        items: as :func:`inpainting_figure`.
        interactive: True = build the widget (needs ipywidgets), False = the static figure, None =
            the widget when ipywidgets is installed and this runs in a Jupyter kernel. A kernel
            without a widget front end (papermill, nbconvert) still builds it, but only a live
            Jupyter / Colab page draws it: show :func:`inpainting_figure` next to it so that
            GitHub and executed notebooks have a picture.
        panel_size: inches of the widget's image.

    Returns: an ``ipywidgets.VBox`` (a Dropdown for the image, ToggleButtons for the step, the
    image in an Output) or, static, the Figure of :func:`inpainting_figure`.

    Raises: ValueError as :func:`inpainting_figure`; ImportError with ``interactive=True`` and no
    ipywidgets (the message says how to install it).
    """
    _check_items(items)
    if interactive is None:
        interactive = _has_widget_kernel()
    if not interactive:
        return inpainting_figure(items)
    try:  # optional (the static figure works without it)
        import ipywidgets as widgets
    except ImportError as e:
        raise ImportError("inpainting_viewer(interactive=True) needs ipywidgets: pip install ipywidgets") from e
    names = [str(item["name"]) for item in items]
    pick = widgets.Dropdown(options=[(n, i) for i, n in enumerate(names)],
                            value=0, description="image")
    step = widgets.ToggleButtons(options=list(INPAINTING_STEPS), value="input", description="step")
    out = widgets.Output()

    def draw(*_):
        item = items[pick.value]
        img, kw = _panel(item, step.value)
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(panel_size, panel_size))
            ax.imshow(img, **kw)
            ax.set_title(f"{item['name']}: {step.value}", fontsize=9)
            ax.axis("off")
            plt.show()

    pick.observe(draw, names="value")
    step.observe(draw, names="value")
    draw()
    return widgets.VBox([widgets.HBox([pick, step]), out])
