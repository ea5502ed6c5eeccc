"""Image I/O: read and write RGB images as float32 HWC arrays in [0, 1], with errors that name the file.

Conventions (see the project's DESIGN.md): a numpy image is ``float32``, ``HWC``, RGB, values in
``[0, 1]``; a torch image is ``float32``, ``CHW``, RGB, ``[0, 1]``. Decoding uses Pillow; 16-bit colour
PNGs, which Pillow silently reduces to 8 bits, are decoded with OpenCV (installed with albumentations).

Public API: :class:`ImageError`, :func:`read_image`, :func:`image_size`, :func:`write_image`,
:func:`img2tensor`, :func:`tensor2img`, :data:`IMAGE_EXTENSIONS`, :func:`list_images`.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from typing import Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from labkit.files import atomic_write

__all__ = [
    "ImageError",
    "IMAGE_EXTENSIONS",
    "read_image",
    "image_size",
    "write_image",
    "img2tensor",
    "tensor2img",
    "list_images",
    "to_uint8",
]

PathLike = Union[str, "os.PathLike[str]"]

#: File extensions (lower case, with the dot) that :func:`list_images` picks up.
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

# Extension -> Pillow format name for write_image.
_WRITE_FORMATS: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}

# What Pillow (and the zlib / struct code under it) raises on a corrupt or truncated file.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    zlib.error,
    Image.DecompressionBombError,
)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ImageError(ValueError):
    """An image file that exists but cannot be decoded (corrupt, truncated, not an image, odd mode).

    The message always names the file and the reason. Subclass of ``ValueError`` so that callers
    that catch bad input generically still catch it.
    """


# --------------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------------


def _check_file(path: Path) -> None:
    """Raise FileNotFoundError / IsADirectoryError naming ``path`` unless it is an existing file."""
    if not path.exists():
        raise FileNotFoundError(f"image file not found: '{path}'")
    if path.is_dir():
        raise IsADirectoryError(f"expected an image file but '{path}' is a directory")


def _png_bit_depth_and_color_type(path: Path) -> tuple[int, int] | None:
    """Return (bit depth, colour type) from a PNG's IHDR chunk, or None if ``path`` is not a PNG.

    PNG layout (ISO/IEC 15948, section 11.2.2): 8-byte signature, then the IHDR chunk whose data
    holds width (4), height (4), bit depth (1), colour type (1), ...
    """
    with open(path, "rb") as f:
        head = f.read(33)
    if len(head) < 26 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]


def _read_png16_color(path: Path) -> np.ndarray:
    """Decode a 16-bit colour PNG (RGB, RGBA or gray+alpha) at full precision with OpenCV.

    Pillow opens such files as 8-bit ``RGB``/``RGBA`` (the low byte is dropped), and scikit-image /
    imageio read them through Pillow too, so OpenCV's libpng decoder is used. Returns float32 RGB HWC
    in [0, 1] (divided by 65535); alpha is dropped.
    """
    try:
        import cv2  # installed with albumentations (opencv-python-headless)
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImageError(
            f"cannot read '{path}': it is a 16-bit colour PNG, which needs OpenCV "
            "(pip install opencv-python-headless) to keep its precision"
        ) from e
    # np.fromfile + imdecode also works for non-ASCII paths on Windows, unlike cv2.imread.
    buf = np.fromfile(str(path), dtype=np.uint8)
    arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ImageError(f"cannot decode '{path}': OpenCV failed on this 16-bit PNG")
    if arr.ndim == 2:  # defensive: gray data
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.shape[2] == 4:  # BGRA -> BGR (alpha dropped)
        arr = arr[:, :, :3]
    elif arr.shape[2] == 2:  # gray + alpha (OpenCV normally expands this to BGRA)
        arr = np.repeat(arr[:, :, :1], 3, axis=2)
    arr = arr[:, :, ::-1]  # BGR -> RGB
    scale = 65535.0 if arr.dtype == np.uint16 else 255.0
    return np.ascontiguousarray(arr).astype(np.float32) / np.float32(scale)


def _pil_to_float_rgb(im: Image.Image, path: Path) -> np.ndarray:
    """Convert a loaded Pillow image of any supported mode to float32 RGB HWC in [0, 1]."""
    mode = im.mode
    if mode == "RGB":
        return np.asarray(im, dtype=np.uint8).astype(np.float32) / np.float32(255.0)
    if mode in ("L", "1"):
        gray = np.asarray(im.convert("L"), dtype=np.uint8).astype(np.float32) / np.float32(255.0)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode.startswith("I;16") or mode == "I":
        # 16-bit grayscale (PNG gives "I;16"; some Pillow versions and TIFFs give "I").
        gray = np.asarray(im).astype(np.float32) / np.float32(65535.0)
        if mode == "I":
            gray = np.clip(gray, 0.0, 1.0)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode in ("RGBA", "RGBa", "RGBX", "LA", "La", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
        # Palette images may carry transparency; going through RGBA avoids Pillow's warning.
        # Alpha (if any) is dropped, not composited.
        target = "RGBA" if mode in ("P", "PA", "LA", "La", "RGBa") else "RGB"
        rgb = np.asarray(im.convert(target), dtype=np.uint8)[:, :, :3]
        return rgb.astype(np.float32) / np.float32(255.0)
    raise ImageError(f"cannot read '{path}': unsupported Pillow image mode '{mode}'")


def read_image(path: PathLike, *, exif_transpose: bool = False) -> np.ndarray:
    """Read an image file as a float32 RGB array, shape (H, W, 3), values in [0, 1].

    Modes handled (decoding with Pillow, which loads the whole file so truncation is detected):

    - 8-bit RGB: divided by 255.
    - 8-bit grayscale (``L``, also 1-bit ``1``): replicated to 3 channels.
    - 16-bit grayscale (``I;16``, ``I``): divided by 65535, replicated to 3 channels.
    - 16-bit RGB / RGBA PNG: Pillow would silently drop the low byte (and scikit-image / imageio
      read through Pillow), so these are decoded with OpenCV and divided by 65535.
    - RGBA and LA (gray + alpha): the alpha channel is **dropped** (not composited on a background);
      the colour values are returned as stored.
    - Palette (``P``/``PA``), CMYK, YCbCr: converted to RGB by Pillow (palette transparency dropped).

    ICC profiles are ignored (values are returned as stored). EXIF orientation is not applied unless
    ``exif_transpose=True`` (pixels as stored keep LR/HR pairs aligned).

    Args:
        path: the image file (PNG, JPEG, BMP, TIFF, WebP, anything Pillow decodes).
        exif_transpose: rotate/flip according to the EXIF Orientation tag.

    Returns:
        np.ndarray, float32, (H, W, 3), RGB, [0, 1].

    Raises:
        FileNotFoundError: ``path`` does not exist (the message names it).
        IsADirectoryError: ``path`` is a directory.
        ImageError: the file is not an image, is corrupt or truncated, or has an unsupported mode;
            the message names the file and the reason. Pillow's ``LOAD_TRUNCATED_IMAGES`` is left at
            its default (False); if other code sets it to True, truncated files load padded.
    """
    path = Path(path)
    _check_file(path)
    try:
        with Image.open(path) as im:
            im.load()  # force a full decode: truncated / corrupt data raises here
            if exif_transpose:
                im = ImageOps.exif_transpose(im)
            png = _png_bit_depth_and_color_type(path) if im.format == "PNG" else None
            if png is not None and png[0] == 16 and png[1] in (2, 4, 6):
                # 16-bit colour PNG: Pillow has validated the file; decode again at full precision.
                arr = _read_png16_color(path)
                if exif_transpose:  # pragma: no cover - 16-bit PNGs with EXIF are rare
                    arr = _apply_exif_orientation(arr, im)
                return arr
            return _pil_to_float_rgb(im, path)
    except UnidentifiedImageError as e:
        raise ImageError(f"cannot read '{path}': not a recognised image file ({e.__class__.__name__})") from e
    except ImageError:
        raise
    except _DECODE_ERRORS as e:
        raise ImageError(f"cannot read '{path}': corrupt or truncated image ({e})") from e


def _apply_exif_orientation(arr: np.ndarray, im: Image.Image) -> np.ndarray:  # pragma: no cover
    """Apply the EXIF Orientation of ``im`` (values 1-8, EXIF 2.3 tag 0x0112) to an HWC array."""
    orientation = im.getexif().get(0x0112, 1)
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.transpose(a, (1, 0, 2)),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.rot90(a, -1)[:, ::-1],
        8: lambda a: np.rot90(a, 1),
    }
    op = ops.get(orientation)
    return np.ascontiguousarray(op(arr)) if op else arr


def image_size(path: PathLike) -> tuple[int, int]:
    """Return ``(height, width)`` of an image file in pixels, reading only its header (fast).

    Raises:
        FileNotFoundError / IsADirectoryError: as :func:`read_image`.
        ImageError: the file is not a recognised image (the message names it). A file whose header
            is fine but whose data is truncated is only detected by :func:`read_image`.
    """
    path = Path(path)
    _check_file(path)
    try:
        with Image.open(path) as im:
            w, h = im.size
    except UnidentifiedImageError as e:
        raise ImageError(f"cannot read '{path}': not a recognised image file") from e
    except _DECODE_ERRORS as e:
        raise ImageError(f"cannot read the header of '{path}' ({e})") from e
    return int(h), int(w)


# --------------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------------


def to_uint8(img: np.ndarray, name: str = "img") -> np.ndarray:
    """float [0,1] (clipped, rounded) or uint8 array -> uint8; TypeError/ValueError otherwise."""
    if not isinstance(img, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(img).__name__}")
    if img.dtype == np.uint8:
        return img
    if np.issubdtype(img.dtype, np.floating):
        if not np.all(np.isfinite(img)):
            raise ValueError(f"{name} contains NaN or infinite values; cannot write it")
        return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)
    raise TypeError(f"{name} must be float in [0, 1] or uint8, got dtype {img.dtype}")


def write_image(path: PathLike, img: np.ndarray, *, quality: int = 95) -> Path:
    """Write an image atomically; the format follows the extension.

    ``img`` is float (clipped to [0, 1], then rounded to 8 bits) or uint8 ([0, 255]), shaped
    (H, W, 3) RGB, (H, W, 1) or (H, W) grayscale. Parent folders are created. The data go to a
    temporary file in the same folder, which then replaces ``path`` with ``os.replace`` (atomic on
    POSIX and Windows), so a reader never sees a half-written file and no temp file is left behind.

    Args:
        path: target file; extension ``.png``, ``.jpg``/``.jpeg``, ``.bmp`` or ``.tif``/``.tiff``.
        img: the image (see above).
        quality: JPEG quality (1-95 is Pillow's useful range); ignored for other formats.

    Returns:
        The written path as a :class:`pathlib.Path`.

    Raises:
        ValueError: unknown extension, bad shape, or NaN/inf values.
        TypeError: not a numpy array, or a dtype other than float / uint8.
    """
    path = Path(path)
    fmt = _WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"cannot write '{path}': unknown image extension '{path.suffix}' "
            f"(supported: {', '.join(sorted(_WRITE_FORMATS))})"
        )
    arr = to_uint8(img)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise ValueError(f"cannot write '{path}': expected (H, W, 3) RGB or (H, W) gray, got shape {img.shape}")
    pil = Image.fromarray(np.ascontiguousarray(arr))
    save_kwargs = {"quality": int(quality)} if fmt == "JPEG" else {}

    return atomic_write(path, lambda f: pil.save(f, format=fmt, **save_kwargs))


# --------------------------------------------------------------------------------------------------
# numpy <-> torch
# --------------------------------------------------------------------------------------------------


def img2tensor(img: np.ndarray) -> torch.Tensor:
    """HWC numpy image -> CHW float32 torch tensor in [0, 1] (a copy; no memory is shared).

    Args:
        img: (H, W, C) or (H, W) array. uint8 is divided by 255, uint16 by 65535; float values are
            cast to float32 unchanged (not clipped).

    Returns:
        torch.Tensor, float32, (C, H, W) ((1, H, W) for a 2-D input).

    Raises:
        TypeError: not a numpy array, or an unsupported dtype.
        ValueError: not 2-D or 3-D.
    """
    if not isinstance(img, np.ndarray):
        raise TypeError(f"img2tensor expects a numpy array, got {type(img).__name__}")
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3:
        raise ValueError(f"img2tensor expects an (H, W, C) or (H, W) array, got shape {img.shape}")
    if img.dtype == np.uint8:
        arr = img.astype(np.float32) / np.float32(255.0)
    elif img.dtype == np.uint16:
        arr = img.astype(np.float32) / np.float32(65535.0)
    elif np.issubdtype(img.dtype, np.floating):
        arr = img.astype(np.float32, copy=False)
    else:
        raise TypeError(f"img2tensor expects uint8, uint16 or float data, got dtype {img.dtype}")
    # np.array copies, so the tensor never shares memory with the caller's array.
    return torch.from_numpy(np.array(arr.transpose(2, 0, 1), dtype=np.float32, order="C"))


def tensor2img(t: torch.Tensor) -> np.ndarray:
    """CHW (or 1xCxHxW) torch tensor -> HWC float32 numpy image clipped to [0, 1].

    The tensor may live on any device and require grad (it is detached and copied to the CPU).

    Returns:
        np.ndarray, float32, (H, W, C), values clipped to [0, 1].

    Raises:
        TypeError: not a torch tensor.
        ValueError: not (C, H, W) or (1, C, H, W) (e.g. a batch of several images).
    """
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"tensor2img expects a torch.Tensor, got {type(t).__name__}")
    if t.ndim == 4:
        if t.shape[0] != 1:
            raise ValueError(f"tensor2img expects one image, got a batch of shape {tuple(t.shape)}; index it first")
        t = t[0]
    if t.ndim != 3:
        raise ValueError(f"tensor2img expects a (C, H, W) or (1, C, H, W) tensor, got shape {tuple(t.shape)}")
    arr = t.detach().to(device="cpu", dtype=torch.float32).clamp(0.0, 1.0)  # clamp returns a new tensor
    return np.ascontiguousarray(arr.numpy().transpose(1, 2, 0))


# --------------------------------------------------------------------------------------------------
# folders
# --------------------------------------------------------------------------------------------------


def list_images(folder: PathLike) -> list[Path]:
    """List the image files directly inside ``folder`` (not recursive), sorted by file name.

    A file counts when its extension (case-insensitive) is in :data:`IMAGE_EXTENSIONS`. Hidden files
    (names starting with ``.``, e.g. macOS ``._0001.png`` resource forks or write_image's temp files)
    are skipped.

    Returns:
        list of :class:`pathlib.Path`, sorted by name.

    Raises:
        FileNotFoundError: ``folder`` does not exist (named in the message).
        NotADirectoryError: ``folder`` is a file.
        ValueError: no image file in ``folder``; the message names it and the extensions looked for.
    """
    folder = Path(folder)
    if not folder.exists():
        raise FileNotFoundError(f"image folder not found: '{folder}'")
    if not folder.is_dir():
        raise NotADirectoryError(f"expected a folder of images but '{folder}' is not a directory")
    files = [
        p
        for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()
    ]
    if not files:
        raise ValueError(f"no image files in '{folder}' (looked for {', '.join(IMAGE_EXTENSIONS)})")
    return sorted(files, key=lambda p: p.name)
