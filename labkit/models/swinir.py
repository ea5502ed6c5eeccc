"""SwinIR: Image Restoration Using Swin Transformer.

Liang, Cao, Sun, Zhang, Van Gool, Timofte, ICCV Workshops 2021 (AIM), arXiv:2108.10257; official
code https://github.com/JingyunLiang/SwinIR (``models/network_swinir.py``). Re-written here with the
official state-dict layout, so the released checkpoints (``{'params': ...}``) load with
``strict=True``:

- ``conv_first``: 3x3 conv, image -> ``embed_dim`` features (shallow features);
- ``patch_embed.norm`` (LayerNorm, with ``patch_norm``); ``absolute_pos_embed`` (with ``ape``);
- ``layers.{i}`` residual Swin Transformer blocks (RSTB): ``layers.{i}.residual_group.blocks.{j}``
  with ``norm1``, ``attn.relative_position_bias_table`` ((2w-1)^2, heads), the *persistent* buffer
  ``attn.relative_position_index`` (w^2, w^2), ``attn.qkv``, ``attn.proj``, ``norm2``, ``mlp.fc1``,
  ``mlp.fc2``, and in the shifted blocks (odd ``j``) the persistent buffer ``attn_mask``
  (windows of the training patch, w^2, w^2); then ``layers.{i}.conv`` ('1conv') or
  ``layers.{i}.conv.{0,2,4}`` ('3conv');
- ``norm`` (LayerNorm), ``conv_after_body``;
- reconstruction: 'pixelshuffle' (classical SR) ``conv_before_upsample.0``, ``upsample.0``
  (``upsample.2`` at x4), ``conv_last``; 'pixelshuffledirect' (lightweight SR) ``upsample.0``;
  'nearest+conv' (real-world SR, x4) ``conv_before_upsample.0``, ``conv_up1``, ``conv_up2``,
  ``conv_hr``, ``conv_last``; '' (denoising / JPEG, x1) ``conv_last``.

Because ``attn_mask`` is saved in the checkpoints and its shape follows ``img_size``, the model must
be built with the ``img_size`` the checkpoint was trained with (48 for the DIV2K classical models,
64 for DF2K and the lightweight ones); any *input* size works (see :class:`SwinIR`).

Parameter counts (trainable, buffers excluded; REFERENCE.md): classical (window 8, depths [6]*6,
embed 180, heads [6]*6, mlp_ratio 2, '1conv') x2 11,752,487, x3 11,937,127, x4 11,900,199;
lightweight x4 (embed 60, depths [6]*4, 'pixelshuffledirect') 929,628.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from labkit.models.common import Upsample

__all__ = [
    "CONFIGS",
    "DropPath",
    "RSTB",
    "SwinIR",
    "SwinTransformerBlock",
    "WindowAttention",
    "relative_position_index",
    "shifted_window_mask",
    "swinir_config",
    "window_partition",
    "window_reverse",
]

#: DIV2K's mean RGB (in [0, 1] units), subtracted from 3-channel inputs, as the official code.
DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)

#: The value the official shifted-window mask puts between tokens of different regions.
MASK_VALUE = -100.0

UPSAMPLERS = ("pixelshuffle", "pixelshuffledirect", "nearest+conv", "")


# --------------------------------------------------------------------------------------------------
# window helpers
# --------------------------------------------------------------------------------------------------


def window_partition(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """Cut (B, H, W, C) features into non-overlapping windows: (B * H/w * W/w, w, w, C).

    H and W must be multiples of ``window_size`` (the model pads its input so that they are).
    Windows are ordered row-major over the image, batch first (as the official ``window_partition``).
    """
    b, h, w, c = x.shape
    ws = window_size
    x = x.view(b, h // ws, ws, w // ws, ws, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, ws, ws, c)


def window_reverse(windows: torch.Tensor, window_size: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: (B * H/w * W/w, w, w, C) -> (B, H, W, C)."""
    ws = window_size
    c = windows.shape[-1]
    b = windows.shape[0] // ((h // ws) * (w // ws))
    x = windows.view(b, h // ws, w // ws, ws, ws, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)


def relative_position_index(window_size: tuple[int, int]) -> torch.Tensor:
    """Index into the relative-position bias table for every pair of tokens of a window.

    Swin Transformer (Liu et al., ICCV 2021), eq. (4): the bias of query ``(y1, x1)`` and key
    ``(y2, x2)`` is ``B[(y1 - y2 + wh - 1) * (2 ww - 1) + (x1 - x2 + ww - 1)]``.

    Returns: int64 (wh*ww, wh*ww), values in [0, (2wh - 1)(2ww - 1)).
    """
    wh, ww = window_size
    ys, xs = torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    dy = ys[:, None] - ys[None, :] + (wh - 1)
    dx = xs[:, None] - xs[None, :] + (ww - 1)
    return dy * (2 * ww - 1) + dx


def shifted_window_mask(h: int, w: int, window_size: int, shift_size: int) -> torch.Tensor:
    """Attention mask of the shifted windows (SW-MSA) for an ``h x w`` token grid.

    After the cyclic shift by ``shift_size`` the last row/column of windows mixes tokens that were
    far apart in the image; tokens of different regions must not attend to each other. The grid is
    split into 3 x 3 regions by the cuts at ``-window_size`` and ``-shift_size`` (Swin Transformer,
    Liu et al. 2021, Fig. 4); pairs in different regions get ``MASK_VALUE`` (-100, as official).

    Returns: float32 (h/w * w/w windows, window_size^2, window_size^2), values 0 or -100.
    Raises: ValueError if h or w is not a multiple of ``window_size``.
    """
    if h % window_size or w % window_size:
        raise ValueError(f"shifted_window_mask: {h}x{w} is not a multiple of window_size {window_size}")
    region = torch.zeros(1, h, w, 1)
    cuts = (slice(0, -window_size), slice(-window_size, -shift_size), slice(-shift_size, None))
    label = 0
    for hs in cuts:
        for wsl in cuts:
            region[:, hs, wsl, :] = label
            label += 1
    win = window_partition(region, window_size).view(-1, window_size * window_size)
    differ = win[:, None, :] != win[:, :, None]
    return torch.zeros(differ.shape).masked_fill(differ, MASK_VALUE)


# --------------------------------------------------------------------------------------------------
# building blocks
# --------------------------------------------------------------------------------------------------


class DropPath(nn.Module):
    """Stochastic depth (Huang et al., ECCV 2016): drop a residual branch per sample while training.

    In training mode each sample's branch is zeroed with probability ``drop_prob`` and the kept ones
    are divided by ``1 - drop_prob`` (expectation unchanged); in eval mode it is the identity.
    Shapes: any (B, ...) -> same.
    """

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= drop_prob < 1.0:
            raise ValueError(f"drop_prob must be in [0, 1), got {drop_prob}")
        self.drop_prob = float(drop_prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop_prob == 0.0:
            return x
        keep = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"


class Mlp(nn.Module):
    """Transformer feed-forward: ``fc1`` -> GELU -> dropout -> ``fc2`` -> dropout. (..., C) -> (..., C)."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows with a learned relative-position bias (W-MSA).

    ``softmax(q k^T * scale + B + mask) v`` per window and head (Swin Transformer eq. 4), then the
    ``proj`` linear layer. Computed with ``F.scaled_dot_product_attention``; ``attn_drop`` is its
    dropout (training mode only), ``proj_drop`` a dropout after ``proj``.

    Keys: ``relative_position_bias_table`` ((2wh-1)(2ww-1), num_heads), buffer
    ``relative_position_index`` (wh*ww, wh*ww), ``qkv`` (dim -> 3 dim), ``proj`` (dim -> dim).

    Shapes: x (B*nW, N = wh*ww, C); mask None or (nW, N, N) -> (B*nW, N, C).
    """

    def __init__(
        self,
        dim: int,
        window_size: tuple[int, int],
        num_heads: int,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed dim {dim} is not divisible by num_heads {num_heads}")
        self.dim, self.window_size, self.num_heads = dim, tuple(window_size), num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        wh, ww = self.window_size
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * wh - 1) * (2 * ww - 1), num_heads))
        # Persistent, as official: it appears in the released state dicts.
        self.register_buffer("relative_position_index", relative_position_index(self.window_size))
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def position_bias(self) -> torch.Tensor:
        """The relative-position bias, (num_heads, N, N)."""
        n = self.window_size[0] * self.window_size[1]
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return bias.view(n, n, self.num_heads).permute(2, 0, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        bw, n, c = x.shape
        heads = self.num_heads
        q, k, v = self.qkv(x).view(bw, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        bias = self.position_bias().to(q.dtype)  # (heads, N, N)
        if mask is not None:
            nw = mask.shape[0]
            # (B, nW, heads, N, hd) flattened to 4-D with the window mask broadcast over heads.
            bias = (bias.unsqueeze(0) + mask.to(q.dtype).unsqueeze(1)).reshape(1, nw * heads, n, n)
            q, k, v = (t.reshape(bw // nw, nw * heads, n, -1) for t in (q, k, v))
        p = self.attn_drop.p if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p, scale=self.scale)
        out = out.reshape(bw, heads, n, c // heads).transpose(1, 2).reshape(bw, n, c)
        return self.proj_drop(self.proj(out))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, window_size={self.window_size}, num_heads={self.num_heads}"


class SwinTransformerBlock(nn.Module):
    """Swin Transformer block: (shifted) window attention and an MLP, each with pre-LayerNorm.

    ``x = x + drop_path(attn(norm1(x)))`` (windows cyclically shifted by ``shift_size`` when > 0),
    ``x = x + drop_path(mlp(norm2(x)))``.

    As official: when the training token grid (``input_resolution``) is not larger than
    ``window_size``, the window shrinks to the grid and the block is not shifted. Shifted blocks
    keep the mask of ``input_resolution`` as the persistent buffer ``attn_mask``; another input
    size gets its mask computed on the fly (the last one is cached, not saved).

    Shapes: x (B, H*W, C) with ``x_size = (H, W)`` multiples of the window -> (B, H*W, C).
    """

    def __init__(
        self,
        dim: int,
        input_resolution: tuple[int, int],
        num_heads: int,
        window_size: int = 8,
        shift_size: int = 0,
        mlp_ratio: float = 2.0,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        norm_layer: Callable[[int], nn.Module] = nn.LayerNorm,
    ) -> None:
        super().__init__()
        self.input_resolution = tuple(input_resolution)
        if min(self.input_resolution) <= window_size:
            shift_size, window_size = 0, min(self.input_resolution)
        if not 0 <= shift_size < window_size:
            raise ValueError(f"shift_size must be in [0, window_size={window_size}), got {shift_size}")
        self.window_size, self.shift_size = window_size, shift_size
        self.norm1 = norm_layer(dim)
        self.attn = WindowAttention(dim, (window_size, window_size), num_heads, qkv_bias, qk_scale, attn_drop, drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)
        mask = shifted_window_mask(*self.input_resolution, window_size, shift_size) if shift_size > 0 else None
        self.register_buffer("attn_mask", mask)  # None -> not in the state dict (unshifted blocks)
        self._mask_cache: tuple[tuple, torch.Tensor] | None = None

    def _mask_for(self, h: int, w: int, device: torch.device) -> torch.Tensor | None:
        if self.shift_size == 0:
            return None
        if (h, w) == self.input_resolution and self.attn_mask is not None:
            return self.attn_mask
        key = (h, w, device)
        if self._mask_cache is None or self._mask_cache[0] != key:
            self._mask_cache = (key, shifted_window_mask(h, w, self.window_size, self.shift_size).to(device))
        return self._mask_cache[1]

    def forward(self, x: torch.Tensor, x_size: tuple[int, int]) -> torch.Tensor:
        h, w = x_size
        b, _, c = x.shape
        ws, shift = self.window_size, self.shift_size
        y = self.norm1(x).view(b, h, w, c)
        if shift:
            y = torch.roll(y, shifts=(-shift, -shift), dims=(1, 2))
        win = window_partition(y, ws).view(-1, ws * ws, c)
        win = self.attn(win, mask=self._mask_for(h, w, x.device))
        y = window_reverse(win.view(-1, ws, ws, c), ws, h, w)
        if shift:
            y = torch.roll(y, shifts=(shift, shift), dims=(1, 2))
        x = x + self.drop_path(y.reshape(b, h * w, c))
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def extra_repr(self) -> str:
        return f"input_resolution={self.input_resolution}, window_size={self.window_size}, shift_size={self.shift_size}"


class BasicLayer(nn.Module):
    """``depth`` Swin blocks, alternately regular (even ``j``) and shifted by ``window_size // 2``."""

    def __init__(
        self,
        dim: int,
        input_resolution: tuple[int, int],
        depth: int,
        num_heads: int,
        window_size: int,
        mlp_ratio: float,
        qkv_bias: bool,
        qk_scale: float | None,
        drop: float,
        attn_drop: float,
        drop_path: Sequence[float],
        norm_layer: Callable[[int], nn.Module],
        use_checkpoint: bool = False,
    ) -> None:
        super().__init__()
        self.use_checkpoint = use_checkpoint
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(
                dim, input_resolution, num_heads, window_size, 0 if j % 2 == 0 else window_size // 2,
                mlp_ratio, qkv_bias, qk_scale, drop, attn_drop, drop_path[j], norm_layer,
            )
            for j in range(depth)
        )

    def forward(self, x: torch.Tensor, x_size: tuple[int, int]) -> torch.Tensor:
        for blk in self.blocks:
            if self.use_checkpoint and x.requires_grad:
                x = checkpoint(blk, x, x_size, use_reentrant=False)
            else:
                x = blk(x, x_size)
        return x


def _conv_block(dim: int, resi_connection: str) -> nn.Module:
    """'1conv': one 3x3 conv; '3conv': 3x3 dim->dim/4, LReLU(0.2), 1x1, LReLU(0.2), 3x3 dim/4->dim."""
    if resi_connection == "1conv":
        return nn.Conv2d(dim, dim, 3, 1, 1)
    if resi_connection == "3conv":
        q = dim // 4
        return nn.Sequential(
            nn.Conv2d(dim, q, 3, 1, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(q, q, 1, 1, 0),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(q, dim, 3, 1, 1),
        )
    raise ValueError(f"resi_connection must be '1conv' or '3conv', got {resi_connection!r}")


class RSTB(nn.Module):
    """Residual Swin Transformer Block: ``x + conv(Swin blocks(x))`` (SwinIR paper, eq. 5-6).

    Keys ``residual_group.blocks.{j}.*`` and ``conv`` / ``conv.{0,2,4}``.
    Shapes: tokens (B, H*W, C) with ``x_size = (H, W)`` -> (B, H*W, C).
    """

    def __init__(self, dim: int, input_resolution: tuple[int, int], depth: int, num_heads: int,
                 window_size: int, mlp_ratio: float, qkv_bias: bool, qk_scale: float | None, drop: float,
                 attn_drop: float, drop_path: Sequence[float], norm_layer: Callable[[int], nn.Module],
                 resi_connection: str = "1conv", use_checkpoint: bool = False) -> None:
        super().__init__()
        self.residual_group = BasicLayer(dim, input_resolution, depth, num_heads, window_size, mlp_ratio,
                                         qkv_bias, qk_scale, drop, attn_drop, drop_path, norm_layer,
                                         use_checkpoint)
        self.conv = _conv_block(dim, resi_connection)

    def forward(self, x: torch.Tensor, x_size: tuple[int, int]) -> torch.Tensor:
        b, _, c = x.shape
        y = self.residual_group(x, x_size).transpose(1, 2).reshape(b, c, *x_size)
        return self.conv(y).flatten(2).transpose(1, 2) + x


class PatchEmbed(nn.Module):
    """Feature map (B, C, H, W) -> tokens (B, H*W, C), then ``norm`` (key ``patch_embed.norm``) if any.

    SwinIR embeds every pixel (patch_size 1): no projection, only the optional LayerNorm.
    """

    def __init__(self, dim: int, norm_layer: Callable[[int], nn.Module] | None) -> None:
        super().__init__()
        self.norm = norm_layer(dim) if norm_layer is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(2).transpose(1, 2)
        return self.norm(x) if self.norm is not None else x


def _pair(v: int | Sequence[int], name: str) -> tuple[int, int]:
    t = (int(v), int(v)) if isinstance(v, int) else tuple(int(i) for i in v)
    if len(t) != 2 or min(t) < 1:
        raise ValueError(f"{name} must be a positive int or an (h, w) pair, got {v!r}")
    return t  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------------
# SwinIR
# --------------------------------------------------------------------------------------------------


class SwinIR(nn.Module):
    """SwinIR (Liang et al., ICCV-W 2021): shallow conv, residual Swin Transformer groups, upsampler.

    Args:
        upscale: SR factor (2, 3, 4, 8 for 'pixelshuffle'; any for 'pixelshuffledirect'; 4 for
            'nearest+conv'; 1 with upsampler '').
        in_chans: image channels (3 RGB, 1 gray); the output has the same number.
        img_size: the *training* LR patch size, int or (h, w). It fixes the shape of the ``attn_mask``
            buffers saved in checkpoints (48 DIV2K classical, 64 DF2K classical and lightweight), so
            build the model with the checkpoint's value; inputs of any size still work.
        patch_size: must be 1 (SwinIR embeds single pixels; kept for the official signature).
        window_size: attention window side w (8 for SR; padded inputs become multiples of it).
        img_range: the network works on ``(x - mean) * img_range``; the output is divided back (1.0 as
            the official SR models; 255 in write-up 003). The mean is DIV2K's RGB mean
            (0.4488, 0.4371, 0.4040) for 3 channels, 0 otherwise; a plain tensor, not in the state dict.
        depths / num_heads: Swin blocks and heads of each RSTB (one entry per RSTB).
        embed_dim: token width C (180 classical, 60 lightweight); divisible by every head count.
        mlp_ratio: MLP hidden width / C.
        qkv_bias, qk_scale: bias of ``qkv``; attention scale override (default head_dim^-0.5).
        drop_rate: dropout after the token embedding, in the MLP and after ``attn.proj``.
        attn_drop_rate: dropout on the attention weights.
        drop_path_rate: stochastic depth, growing linearly from 0 to this over all blocks.
        norm_layer: ``dim -> module`` (LayerNorm).
        ape: learned absolute position embedding ``absolute_pos_embed`` (1, h*w, C) (needs inputs of
            exactly ``img_size``; off in all SwinIR releases).
        patch_norm: LayerNorm after the token embedding (``patch_embed.norm``).
        upsampler: 'pixelshuffle' (classical), 'pixelshuffledirect' (lightweight), 'nearest+conv'
            (real-world x4) or '' (no upsampling: denoising / JPEG; the output adds the input).
        resi_connection: '1conv' or '3conv' (the conv closing each RSTB and ``conv_after_body``).
        use_checkpoint: gradient checkpointing per Swin block while training (saves memory).

    Shapes: input (N, in_chans, H, W) in [0, 1], any H, W -> output (N, in_chans, H*upscale,
    W*upscale) (H x W with upsampler ''), roughly [0, 1] (not clamped). The input is padded
    bottom/right by reflection to a multiple of the window (official ``check_image_size``; by
    replication where the image is smaller than the padding, which reflection cannot do) and the
    output is cropped back.

    Raises:
        ValueError: unknown upsampler / resi_connection, patch_size != 1, depths and num_heads of
            different lengths, embed_dim not divisible by a head count, an upscale the upsampler
            cannot do.
    """

    def __init__(
        self,
        upscale: int = 2,
        in_chans: int = 3,
        img_size: int | Sequence[int] = 64,
        patch_size: int = 1,
        window_size: int = 8,
        img_range: float = 1.0,
        depths: Sequence[int] = (6, 6, 6, 6, 6, 6),
        embed_dim: int = 180,
        num_heads: Sequence[int] = (6, 6, 6, 6, 6, 6),
        mlp_ratio: float = 2.0,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        norm_layer: Callable[[int], nn.Module] = nn.LayerNorm,
        ape: bool = False,
        patch_norm: bool = True,
        upsampler: str = "pixelshuffle",
        resi_connection: str = "1conv",
        use_checkpoint: bool = False,
    ) -> None:
        super().__init__()
        upsampler = upsampler or ""
        if upsampler not in UPSAMPLERS:
            raise ValueError(f"upsampler must be one of {UPSAMPLERS}, got {upsampler!r}")
        if patch_size != 1:
            raise ValueError(f"patch_size must be 1 (SwinIR embeds single pixels), got {patch_size}")
        if len(depths) != len(num_heads):
            raise ValueError(f"depths {list(depths)} and num_heads {list(num_heads)} differ in length")
        if upsampler == "" and upscale != 1:
            raise ValueError(f"upsampler '' (no upsampling) needs upscale=1, got {upscale}")
        if upsampler == "nearest+conv" and upscale != 4:
            raise ValueError(f"upsampler 'nearest+conv' supports upscale=4 only (as official), got {upscale}")
        self.upscale, self.upsampler, self.img_range = int(upscale), upsampler, float(img_range)
        self.in_chans, self.embed_dim = in_chans, embed_dim
        mean = DIV2K_RGB_MEAN if in_chans == 3 else (0.0,)
        # Not a buffer: the official code keeps the mean out of the state dict.
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        res = _pair(img_size, "img_size")
        self.img_size = res
        # The window every block really uses (official: it shrinks to a grid smaller than w).
        self.window_size = min(window_size, min(res))

        # 1. shallow features
        self.conv_first = nn.Conv2d(in_chans, embed_dim, 3, 1, 1)
        # 2. deep features
        self.patch_embed = PatchEmbed(embed_dim, norm_layer if patch_norm else None)
        self.ape = ape
        if ape:
            self.absolute_pos_embed = nn.Parameter(torch.zeros(1, res[0] * res[1], embed_dim))
            nn.init.trunc_normal_(self.absolute_pos_embed, std=0.02)
        self.pos_drop = nn.Dropout(drop_rate)
        n_blocks = sum(depths)  # stochastic depth: linear from 0 to drop_path_rate over all blocks
        dpr = [drop_path_rate * i / max(n_blocks - 1, 1) for i in range(n_blocks)]
        starts = [sum(depths[:i]) for i in range(len(depths))]
        self.layers = nn.ModuleList(
            RSTB(embed_dim, res, d, h, window_size, mlp_ratio, qkv_bias, qk_scale, drop_rate, attn_drop_rate,
                 dpr[s : s + d], norm_layer, resi_connection, use_checkpoint)
            for d, h, s in zip(depths, num_heads, starts)
        )
        self.norm = norm_layer(embed_dim)
        self.conv_after_body = _conv_block(embed_dim, resi_connection)
        # 3. reconstruction
        num_feat = 64
        if upsampler == "pixelshuffle":
            self.conv_before_upsample = nn.Sequential(nn.Conv2d(embed_dim, num_feat, 3, 1, 1), nn.LeakyReLU(inplace=True))
            self.upsample = Upsample(upscale, num_feat)
            self.conv_last = nn.Conv2d(num_feat, in_chans, 3, 1, 1)
        elif upsampler == "pixelshuffledirect":
            self.upsample = nn.Sequential(nn.Conv2d(embed_dim, upscale**2 * in_chans, 3, 1, 1), nn.PixelShuffle(upscale))
        elif upsampler == "nearest+conv":
            self.conv_before_upsample = nn.Sequential(nn.Conv2d(embed_dim, num_feat, 3, 1, 1), nn.LeakyReLU(inplace=True))
            self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            self.conv_last = nn.Conv2d(num_feat, in_chans, 3, 1, 1)
            self.lrelu = nn.LeakyReLU(0.2, inplace=True)
        else:
            self.conv_last = nn.Conv2d(embed_dim, in_chans, 3, 1, 1)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        """Official init: Linear weights truncated normal (std 0.02), biases 0; LayerNorm (1, 0)."""
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        """Pad bottom/right to a multiple of the window: reflect (official), replicate if too small."""
        h, w = x.shape[-2:]
        ws = self.window_size
        ph, pw = (ws - h % ws) % ws, (ws - w % ws) % ws
        if ph == 0 and pw == 0:
            return x
        mode = "reflect" if ph < h and pw < w else "replicate"
        return F.pad(x, (0, pw, 0, ph), mode=mode)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Deep features: (N, C, H, W) with H, W multiples of the window -> (N, C, H, W)."""
        n, c, h, w = x.shape
        if self.ape and (h, w) != self.img_size:
            raise ValueError(f"ape=True needs inputs of img_size {self.img_size} after padding, got {(h, w)}")
        t = self.patch_embed(x)
        if self.ape:
            t = t + self.absolute_pos_embed
        t = self.pos_drop(t)
        for layer in self.layers:
            t = layer(t, (h, w))
        return self.norm(t).transpose(1, 2).reshape(n, c, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise ValueError(f"SwinIR expects (N, {self.in_chans}, H, W) input, got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        mean = self.mean.to(dtype=x.dtype, device=x.device)
        x = (self._pad(x) - mean) * self.img_range
        if self.upsampler == "":
            first = self.conv_first(x)
            x = x + self.conv_last(self.conv_after_body(self.forward_features(first)) + first)
        else:
            x = self.conv_first(x)
            x = self.conv_after_body(self.forward_features(x)) + x
            if self.upsampler == "pixelshuffle":
                x = self.conv_last(self.upsample(self.conv_before_upsample(x)))
            elif self.upsampler == "pixelshuffledirect":
                x = self.upsample(x)
            else:  # nearest+conv
                x = self.conv_before_upsample(x)
                x = self.lrelu(self.conv_up1(F.interpolate(x, scale_factor=2, mode="nearest")))
                x = self.lrelu(self.conv_up2(F.interpolate(x, scale_factor=2, mode="nearest")))
                x = self.conv_last(self.lrelu(self.conv_hr(x)))
        x = x / self.img_range + mean
        return x[..., : h * self.upscale, : w * self.upscale]


# --------------------------------------------------------------------------------------------------
# named configurations
# --------------------------------------------------------------------------------------------------

_CLASSICAL = dict(
    in_chans=3, img_size=64, window_size=8, img_range=1.0, depths=(6,) * 6, embed_dim=180,
    num_heads=(6,) * 6, mlp_ratio=2.0, upsampler="pixelshuffle", resi_connection="1conv",
)

#: Named SwinIR settings (keyword arguments of :class:`SwinIR`). The classical models use img_size 64
#: (the DF2K releases ``001_classicalSR_DF2K_s64w8_SwinIR-M_x{2,3,4}.pth``); the DIV2K releases
#: (``..._DIV2K_s48w8_...``) need ``img_size=48``. ``swinir_003_x2`` is write-up 003's model
#: (anime images, x2, trained on 64x64 tiles; its table lists IMG_RANGE 255).
CONFIGS: dict[str, dict[str, Any]] = {
    "swinir_classical_x2": dict(_CLASSICAL, upscale=2),
    "swinir_classical_x3": dict(_CLASSICAL, upscale=3),
    "swinir_classical_x4": dict(_CLASSICAL, upscale=4),
    "swinir_lightweight_x4": dict(
        upscale=4, in_chans=3, img_size=64, window_size=8, img_range=1.0, depths=(6,) * 4, embed_dim=60,
        num_heads=(6,) * 4, mlp_ratio=2.0, upsampler="pixelshuffledirect", resi_connection="1conv",
    ),
    "swinir_003_x2": dict(
        upscale=2, in_chans=3, img_size=64, patch_size=1, window_size=4, img_range=255.0, depths=(6,) * 4,
        embed_dim=180, num_heads=(6,) * 4, mlp_ratio=4.0, qkv_bias=True, drop_rate=0.1, attn_drop_rate=0.1,
        drop_path_rate=0.1, ape=False, patch_norm=True, upsampler="pixelshuffle", resi_connection="3conv",
    ),
}


def swinir_config(name: str, **overrides: Any) -> dict[str, Any]:
    """A copy of ``CONFIGS[name]`` with ``overrides`` applied, e.g. ``SwinIR(**swinir_config(
    'swinir_classical_x2', img_size=48))`` for the DIV2K release.

    Raises KeyError naming the known configurations.
    """
    key = name.lower()
    if key not in CONFIGS:
        raise KeyError(f"unknown SwinIR configuration {name!r}; known: {sorted(CONFIGS)}")
    return {**CONFIGS[key], **overrides}
