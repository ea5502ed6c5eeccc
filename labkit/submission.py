"""Competition submissions: predictions written as PNG files named as the inputs, zipped.

The DACON competitions these labs follow (000: AI Yangjae Hub SR, 512 -> 2048) took a ``.zip`` of
PNG images whose file names are the test inputs' names. :func:`write_submission` writes one
atomically (a temporary file in the same folder, then ``os.replace``), so an interrupted run never
leaves a half-written zip under the final name; :func:`check_submission` reads one back and checks
it against the test inputs.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from labkit.files import atomic_write
from labkit.io import image_size, list_images, to_uint8

__all__ = ["SubmissionError", "check_submission", "write_submission"]


class SubmissionError(ValueError):
    """A submission zip that does not match the test inputs (names the file and the problem)."""


def _png_bytes(img: np.ndarray, name: str) -> bytes:
    arr = to_uint8(img, name)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="PNG")
    return buf.getvalue()


def write_submission(predictions: Iterable[tuple[str, np.ndarray]], zip_path: str | os.PathLike) -> Path:
    """Write ``(file name, image)`` predictions into ``zip_path`` as PNG files, atomically.

    Args:
        predictions: pairs of the input's file name (``'0000.png'``; a name without ``.png`` gets
            it) and the predicted HWC image, float in [0, 1] (rounded to 8 bits) or uint8. An
            iterable, so predictions can be made one at a time without holding them all.
        zip_path: the ``.zip`` to write (parent folders created).

    Returns: the path written.

    Raises:
        ValueError: a duplicate name, an empty set of predictions, or an image that is not HWC /
            HW (named); the zip is not created then.
    """
    seen: set[str] = set()

    def write(f) -> None:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
            for name, img in predictions:
                arc = Path(str(name)).name
                if not arc.lower().endswith(".png"):
                    arc = Path(arc).stem + ".png"
                if arc in seen:
                    raise ValueError(f"write_submission: two predictions named {arc!r}")
                seen.add(arc)
                zf.writestr(arc, _png_bytes(np.asarray(img), arc))
            if not seen:
                raise ValueError("write_submission: no predictions given")

    return atomic_write(zip_path, write)


def check_submission(zip_path: str | os.PathLike, input_dir: str | os.PathLike, *, scale: int = 4) -> dict:
    """Check a submission zip against the test inputs: one PNG per input, same name, ``scale`` x its size.

    Returns: ``{'files': n, 'size': (H, W) of the first prediction, 'bytes': size of the zip}``.

    Raises:
        FileNotFoundError: the zip or the input folder is missing.
        SubmissionError: missing or extra names (a few of each listed), an image of the wrong size
            (named, with both sizes) or one that is not a PNG.
    """
    zip_path, input_dir = Path(zip_path), Path(input_dir)
    if not zip_path.is_file():
        raise FileNotFoundError(f"submission not found: {zip_path}")
    inputs = {Path(p).stem: p for p in list_images(input_dir)}
    with zipfile.ZipFile(zip_path) as zf:
        names = {Path(n).stem: n for n in zf.namelist()}
        missing, extra = sorted(set(inputs) - set(names)), sorted(set(names) - set(inputs))
        if missing or extra:
            raise SubmissionError(
                f"{zip_path}: {len(missing)} inputs without a prediction {missing[:5]}, "
                f"{len(extra)} predictions without an input {extra[:5]}"
            )
        first = None
        for stem, arc in sorted(names.items()):
            with Image.open(io.BytesIO(zf.read(arc))) as im:
                if im.format != "PNG":
                    raise SubmissionError(f"{zip_path}: {arc} is {im.format}, not PNG")
                w, h = im.size
            ih, iw = image_size(inputs[stem])
            if (h, w) != (ih * scale, iw * scale):
                raise SubmissionError(
                    f"{zip_path}: {arc} is {h}x{w}, expected {ih * scale}x{iw * scale} ({scale} x input {ih}x{iw})"
                )
            first = first or (h, w)
    return {"files": len(names), "size": first, "bytes": zip_path.stat().st_size}
