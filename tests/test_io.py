"""Tests for labkit.io: decoding modes, bad files, atomic writes, tensors, folder listing."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from labkit.io import (
    IMAGE_EXTENSIONS,
    ImageError,
    image_size,
    img2tensor,
    list_images,
    read_image,
    tensor2img,
    write_image,
)

RNG = np.random.default_rng(1234)


def _rand_u8(h: int, w: int, c: int | None = 3) -> np.ndarray:
    shape = (h, w) if c is None else (h, w, c)
    return RNG.integers(0, 256, shape, dtype=np.uint8)


def _write_png16_rgb(path: Path, arr: np.ndarray) -> None:
    """Write a 16-bit RGB (colour type 2) PNG by hand, per the PNG specification (ISO/IEC 15948).

    Independent of the decoders under test: signature, IHDR, one IDAT of filter-0 scanlines of
    big-endian samples, IEND.
    """
    h, w, c = arr.shape
    assert c == 3 and arr.dtype == np.uint16

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


# ------------------------------------------------------------------ decoding modes


def test_png_rgb8_round_trip(tmp_path):
    a = _rand_u8(17, 23)
    p = tmp_path / "rgb.png"
    Image.fromarray(a).save(p)
    img = read_image(p)
    assert img.dtype == np.float32 and img.shape == (17, 23, 3)
    np.testing.assert_array_equal(np.round(img * 255).astype(np.uint8), a)
    assert img.min() >= 0.0 and img.max() <= 1.0


def test_grayscale_replicated_to_three_channels(tmp_path):
    g = _rand_u8(9, 11, None)
    p = tmp_path / "gray.png"
    Image.fromarray(g).save(p)
    img = read_image(p)
    assert img.shape == (9, 11, 3)
    for ch in range(3):
        np.testing.assert_allclose(img[:, :, ch], g / 255.0, atol=1e-7)


def test_16bit_grayscale_keeps_precision(tmp_path):
    g = RNG.integers(0, 65536, (8, 10), dtype=np.uint16)
    g[0, 0], g[0, 1] = 1, 65534  # values that 8 bits cannot represent
    p = tmp_path / "gray16.png"
    Image.fromarray(g).save(p)
    assert Image.open(p).mode.startswith("I")  # really stored as 16-bit
    img = read_image(p)
    assert img.shape == (8, 10, 3) and img.dtype == np.float32
    np.testing.assert_allclose(img[:, :, 1], g / 65535.0, atol=0.5 / 65535)
    assert abs(img[0, 0, 0] - 1 / 65535) < 1e-7


def test_16bit_rgb_png_keeps_precision(tmp_path):
    a = RNG.integers(0, 65536, (6, 7, 3), dtype=np.uint16)
    a[0, 0] = (1, 257, 65534)
    p = tmp_path / "rgb16.png"
    _write_png16_rgb(p, a)
    img = read_image(p)
    assert img.shape == (6, 7, 3) and img.dtype == np.float32
    np.testing.assert_allclose(img, a / 65535.0, atol=0.5 / 65535)
    # the 8-bit truncation Pillow would give is far from the right answer
    assert abs(img[0, 0, 0] * 65535 - 1) < 0.5


def test_rgba_alpha_dropped(tmp_path):
    a = _rand_u8(5, 6, 4)
    a[..., 3] = 0  # fully transparent: values must still be the stored colours, not composited
    p = tmp_path / "rgba.png"
    Image.fromarray(a, "RGBA").save(p)
    img = read_image(p)
    assert img.shape == (5, 6, 3)
    np.testing.assert_allclose(img, a[..., :3] / 255.0, atol=1e-7)


def test_la_alpha_dropped(tmp_path):
    a = _rand_u8(5, 6, 2)
    p = tmp_path / "la.png"
    Image.fromarray(a, "LA").save(p)
    img = read_image(p)
    assert img.shape == (5, 6, 3)
    np.testing.assert_allclose(img[:, :, 2], a[..., 0] / 255.0, atol=1e-7)


def test_palette_converted_to_rgb(tmp_path):
    palette_colours = np.array([[255, 0, 0], [0, 128, 255], [10, 200, 30]], dtype=np.uint8)
    idx = RNG.integers(0, 3, (7, 8), dtype=np.uint8)
    im = Image.fromarray(idx, "P")
    im.putpalette(palette_colours.flatten().tolist() + [0] * (768 - 9))
    p = tmp_path / "pal.png"
    im.save(p)
    assert Image.open(p).mode == "P"
    img = read_image(p)
    np.testing.assert_allclose(img, palette_colours[idx] / 255.0, atol=1e-7)


def test_cmyk_jpeg_converted_to_rgb(tmp_path):
    p = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (8, 8), (0, 0, 0, 0)).save(p)  # no ink = white
    img = read_image(p)
    assert img.shape == (8, 8, 3)
    assert img.min() > 0.95


# ------------------------------------------------------------------ bad input


def test_corrupt_file_raises_image_error_naming_it(tmp_path):
    p = tmp_path / "noise_file.png"
    p.write_bytes(RNG.bytes(2000))
    with pytest.raises(ImageError, match="noise_file.png"):
        read_image(p)
    assert issubclass(ImageError, ValueError)


def test_truncated_jpeg_raises_image_error_naming_it(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(_rand_u8(64, 64)).save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    p = tmp_path / "cut_in_half.jpg"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="cut_in_half.jpg"):
        read_image(p)


def test_truncated_png_raises_image_error(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(_rand_u8(64, 64)).save(buf, "PNG")
    data = buf.getvalue()
    p = tmp_path / "half.png"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="half.png"):
        read_image(p)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing_here.png"):
        read_image(tmp_path / "nothing_here.png")
    d = tmp_path / "a_folder.png"
    d.mkdir()
    with pytest.raises((ImageError, IsADirectoryError), match="a_folder.png"):
        read_image(d)


def test_image_size_reads_header(tmp_path):
    p = tmp_path / "x.png"
    Image.fromarray(_rand_u8(13, 21)).save(p)
    assert image_size(p) == (13, 21)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(ImageError, match="bad.png"):
        image_size(bad)


# ------------------------------------------------------------------ writing


def test_write_float_png_round_trip_and_rounding(tmp_path):
    img = RNG.random((10, 12, 3)).astype(np.float32)
    img[0, 0] = (-0.5, 1.7, 0.5 / 255 + 1e-4)  # clipped, clipped, rounds up to 1
    p = write_image(tmp_path / "sub" / "dir" / "f.png", img)  # parent folders created
    assert p.exists()
    back = np.asarray(Image.open(p))
    np.testing.assert_array_equal(back, np.round(np.clip(img, 0, 1) * 255).astype(np.uint8))
    assert tuple(back[0, 0]) == (0, 255, 1)


def test_write_uint8_gray_and_jpeg(tmp_path):
    g = _rand_u8(8, 9, None)
    write_image(tmp_path / "g.png", g)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "g.png")), g)
    smooth = np.tile(np.linspace(0, 1, 32, dtype=np.float32), (32, 1))[..., None].repeat(3, axis=2)
    write_image(tmp_path / "s.jpeg", smooth)
    with Image.open(tmp_path / "s.jpeg") as im:
        assert im.format == "JPEG"
    assert np.abs(read_image(tmp_path / "s.jpeg") - smooth).max() < 0.05


def test_write_image_is_atomic_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out.png"
    first = _rand_u8(20, 20)
    write_image(target, first)
    second = _rand_u8(30, 25)
    write_image(target, second)  # replaces the existing file
    assert sorted(os.listdir(tmp_path)) == ["out.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(target)), second)


def test_write_image_failure_keeps_old_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "keep.png"
    old = _rand_u8(6, 6)
    write_image(target, old)

    def boom(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(OSError, match="simulated"):
        write_image(target, _rand_u8(6, 6))
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["keep.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(target)), old)


def test_write_image_bad_input(tmp_path):
    with pytest.raises(ValueError, match=r"\.gif"):
        write_image(tmp_path / "x.gif", _rand_u8(4, 4))
    with pytest.raises(ValueError, match="shape"):
        write_image(tmp_path / "x.png", np.zeros((4, 4, 2), np.float32))
    with pytest.raises(TypeError, match="int64"):
        write_image(tmp_path / "x.png", np.zeros((4, 4, 3), np.int64))
    with pytest.raises(ValueError, match="NaN"):
        write_image(tmp_path / "x.png", np.full((4, 4, 3), np.nan, np.float32))
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ tensors


def test_img2tensor_and_back():
    u8 = _rand_u8(5, 7)
    t = img2tensor(u8)
    assert t.dtype == torch.float32 and t.shape == (3, 5, 7)
    np.testing.assert_allclose(t[1].numpy(), u8[:, :, 1] / 255.0, atol=1e-7)
    f = RNG.random((5, 7, 3)).astype(np.float32)
    t2 = img2tensor(f)
    t2[0, 0, 0] = 42.0
    assert f[0, 0, 0] != 42.0  # no shared memory
    back = tensor2img(img2tensor(f).unsqueeze(0))
    np.testing.assert_array_equal(back, f)
    assert back.shape == (5, 7, 3) and back.dtype == np.float32


def test_tensor2img_clips_and_rejects_batches():
    t = torch.tensor([[[-1.0, 0.5, 2.0]]], dtype=torch.float64)  # (1, 1, 3) = C, H, W
    out = tensor2img(t)
    assert out.dtype == np.float32 and out.shape == (1, 3, 1)
    np.testing.assert_array_equal(out[..., 0], [[0.0, 0.5, 1.0]])
    with pytest.raises(ValueError, match="batch"):
        tensor2img(torch.zeros(2, 3, 4, 4))
    with pytest.raises(TypeError):
        img2tensor(torch.zeros(3, 4, 4))


# ------------------------------------------------------------------ folders


def test_list_images_sorted_filtered(tmp_path):
    for name in ["b.png", "a.JPG", "c.txt", ".hidden.png", "d.jpeg"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["a.JPG", "b.png", "d.jpeg"]
    assert ".png" in IMAGE_EXTENSIONS


def test_list_images_errors(tmp_path):
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match="empty_dir") as e:
        list_images(empty)
    assert ".png" in str(e.value)
    with pytest.raises(FileNotFoundError, match="no_such_dir"):
        list_images(tmp_path / "no_such_dir")
