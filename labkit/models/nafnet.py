"""NAFNet (Chen, Chu, Zhang, Sun: "Simple Baselines for Image Restoration", ECCV 2022) and its
test-time local converter (TLC, Chu et al., "Improving Image Restoration by Revisiting Global
Information Aggregation", ECCV 2022).

Written from the paper and the layout of the official repository (megvii-research/NAFNet,
``basicsr/models/archs/NAFNet_arch.py`` and ``local_arch.py``) so that official checkpoints
(``NAFNet-SIDD-width32.pth`` ... ``NAFNet-GoPro-width64.pth``, wrapped as ``{'params': ...}``) load
with ``strict=True`` through :func:`labkit.weights.load_weights`.

State-dict keys: ``intro``, ``encoders.i.j.*``, ``downs.i`` (2x2 stride-2 conv), ``middle_blks.j.*``,
``ups.i.0`` (1x1 conv without bias, followed by PixelShuffle(2)), ``decoders.i.j.*``, ``ending``;
each block has ``conv1..conv5``, ``sca.1``, ``norm1``/``norm2`` (``weight``, ``bias``), ``beta``,
``gamma``.

Images: NCHW float in [0, 1] (the model predicts a residual added to its input); any H and W (the
input is zero-padded to a multiple of ``2 ** len(enc_blk_nums)`` and the output cropped back).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LayerNorm2d", "SimpleGate", "GlobalAvgPool2d", "NAFBlock", "NAFNet", "LocalAvgPool2d", "NAFNetLocal", "CONFIGS"]


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of an NCHW tensor, per pixel (NAFNet's ``LayerNorm2d``).

    ``y = (x - mean_c) / sqrt(var_c + eps) * weight + bias`` with the biased variance. The official
    code writes the backward pass by hand (``LayerNormFunction``); plain ops give the same values and
    let autograd do the gradient. Parameters: ``weight`` (ones) and ``bias`` (zeros), shape (C,).
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = x.mean(1, keepdim=True)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        y = (x - mu) / torch.sqrt(var + self.eps)
        return y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class SimpleGate(nn.Module):
    """Split the channels in two halves and multiply them: (N, 2C, H, W) -> (N, C, H, W).

    NAFNet's replacement for GELU: a nonlinearity without an activation function.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=1)
        return x1 * x2


class GlobalAvgPool2d(nn.Module):
    """The channel attention's global average pool, ``x.mean((2, 3), keepdim=True)``: (N, C, H, W) -> (N, C, 1, 1).

    The same computation as the official ``nn.AdaptiveAvgPool2d(1)`` (bit for bit on CPU, forward and
    backward; tested) with a deterministic backward on CUDA, where ``AdaptiveAvgPool2d``'s is not (so "same
    seed, same numbers" and exact resume hold for NAFNet on a GPU too). No parameters: the state-dict
    layout (``sca.1.weight``) is the official one.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3), keepdim=True)

class NAFBlock(nn.Module):
    """One NAFNet block: LayerNorm -> 1x1 -> 3x3 depthwise -> SimpleGate -> simplified channel
    attention (global average pool + 1x1 conv, multiplied in) -> 1x1, added with the learned scale
    ``beta``; then LayerNorm -> 1x1 -> SimpleGate -> 1x1 (the FFN), added with ``gamma``.

    Args:
        c: channels. DW_Expand, FFN_Expand: expansion ratios (2, 2 in every official model).
        drop_out_rate: dropout after each branch (0 in the official models; write-up 004 used 0.5).
    """

    def __init__(self, c: int, DW_Expand: int = 2, FFN_Expand: int = 2, drop_out_rate: float = 0.0) -> None:  # noqa: N803
        super().__init__()
        dw = c * DW_Expand
        self.conv1 = nn.Conv2d(c, dw, 1, bias=True)
        self.conv2 = nn.Conv2d(dw, dw, 3, padding=1, groups=dw, bias=True)
        self.conv3 = nn.Conv2d(dw // 2, c, 1, bias=True)
        self.sca = nn.Sequential(GlobalAvgPool2d(), nn.Conv2d(dw // 2, dw // 2, 1, bias=True))
        self.sg = SimpleGate()
        ffn = FFN_Expand * c
        self.conv4 = nn.Conv2d(c, ffn, 1, bias=True)
        self.conv5 = nn.Conv2d(ffn // 2, c, 1, bias=True)
        self.norm1 = LayerNorm2d(c)
        self.norm2 = LayerNorm2d(c)
        self.dropout1 = nn.Dropout(drop_out_rate) if drop_out_rate > 0 else nn.Identity()
        self.dropout2 = nn.Dropout(drop_out_rate) if drop_out_rate > 0 else nn.Identity()
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        x = self.conv2(self.conv1(self.norm1(inp)))
        x = self.sg(x)
        x = x * self.sca(x)
        x = self.dropout1(self.conv3(x))
        y = inp + x * self.beta
        x = self.conv5(self.sg(self.conv4(self.norm2(y))))
        x = self.dropout2(x)
        return y + x * self.gamma


def _check_blocks(value: Sequence[int], name: str) -> list[int]:
    try:
        nums = [int(v) for v in value]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a sequence of non-negative ints, got {value!r}") from None
    if any(n < 0 for n in nums) or any(n != v for n, v in zip(nums, value)):
        raise ValueError(f"{name} must be a sequence of non-negative ints, got {value!r}")
    return nums


class NAFNet(nn.Module):
    """NAFNet: a U-Net of :class:`NAFBlock` stages (official ``NAFNet``).

    Args:
        img_channel: input/output channels (3).
        width: channels of the first stage; doubled at each ``downs`` (2x2 stride-2 conv) and halved
            at each ``ups`` (1x1 conv to 2x channels, PixelShuffle(2)).
        middle_blk_num: blocks at the lowest resolution.
        enc_blk_nums, dec_blk_nums: blocks per encoder / decoder stage (same length). Official:
            SIDD ``[2, 2, 4, 8]`` / 12 / ``[2, 2, 2, 2]``; GoPro ``[1, 1, 1, 28]`` / 1 / ``[1, 1, 1, 1]``.
        drop_out_rate: dropout inside every block (an addition for write-up 004; 0 = official).

    Forward: (N, img_channel, H, W) -> same shape; ``output = input + net(input)``.

    Raises:
        ValueError: bad widths / block lists (named).
    """

    def __init__(
        self,
        img_channel: int = 3,
        width: int = 16,
        middle_blk_num: int = 1,
        enc_blk_nums: Sequence[int] = (),
        dec_blk_nums: Sequence[int] = (),
        drop_out_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive int, got {width!r}")
        if not isinstance(img_channel, int) or img_channel < 1:
            raise ValueError(f"img_channel must be a positive int, got {img_channel!r}")
        enc = _check_blocks(enc_blk_nums, "enc_blk_nums")
        dec = _check_blocks(dec_blk_nums, "dec_blk_nums")
        if len(enc) != len(dec):
            raise ValueError(f"enc_blk_nums {enc} and dec_blk_nums {dec} must have the same length")
        if not 0.0 <= float(drop_out_rate) < 1.0:
            raise ValueError(f"drop_out_rate must be in [0, 1), got {drop_out_rate!r}")
        self.intro = nn.Conv2d(img_channel, width, 3, padding=1, bias=True)
        self.ending = nn.Conv2d(width, img_channel, 3, padding=1, bias=True)
        self.encoders = nn.ModuleList()
        self.decoders = nn.ModuleList()
        self.ups = nn.ModuleList()
        self.downs = nn.ModuleList()
        chan = width
        for num in enc:
            self.encoders.append(nn.Sequential(*[NAFBlock(chan, drop_out_rate=drop_out_rate) for _ in range(num)]))
            self.downs.append(nn.Conv2d(chan, 2 * chan, 2, 2))
            chan *= 2
        self.middle_blks = nn.Sequential(*[NAFBlock(chan, drop_out_rate=drop_out_rate) for _ in range(int(middle_blk_num))])
        for num in dec:
            self.ups.append(nn.Sequential(nn.Conv2d(chan, chan * 2, 1, bias=False), nn.PixelShuffle(2)))
            chan //= 2
            self.decoders.append(nn.Sequential(*[NAFBlock(chan, drop_out_rate=drop_out_rate) for _ in range(num)]))
        self.padder_size = 2 ** len(self.encoders)

    def check_image_size(self, x: torch.Tensor) -> torch.Tensor:
        """Zero-pad bottom/right to a multiple of ``padder_size`` (as the official code)."""
        _, _, h, w = x.shape
        ph = (self.padder_size - h % self.padder_size) % self.padder_size
        pw = (self.padder_size - w % self.padder_size) % self.padder_size
        return F.pad(x, (0, pw, 0, ph))

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        if inp.ndim != 4:
            raise ValueError(f"NAFNet expects an NCHW tensor, got shape {tuple(inp.shape)}")
        _, _, h, w = inp.shape
        inp = self.check_image_size(inp)
        x = self.intro(inp)
        skips = []
        for encoder, down in zip(self.encoders, self.downs):
            x = encoder(x)
            skips.append(x)
            x = down(x)
        x = self.middle_blks(x)
        for decoder, up, skip in zip(self.decoders, self.ups, skips[::-1]):
            x = decoder(up(x) + skip)
        x = self.ending(x) + inp
        return x[:, :, :h, :w]


class LocalAvgPool2d(nn.Module):
    """TLC's replacement for the global average pool of the channel attention.

    At training time NAFNet's ``AdaptiveAvgPool2d(1)`` sees a training patch (e.g. 256 px); on a
    full 720x1280 GoPro frame it would average over far more context than it was trained with.
    TLC averages over a local window of ``kernel_size`` instead (stride 1, "same" output size with
    replicate padding, as the official ``AvgPool2d(auto_pad=True)``, computed with an integral image).
    When the window covers the whole feature map the result is exactly the global average.

    Args:
        kernel_size: (kh, kw) window in pixels of this feature map.
    """

    def __init__(self, kernel_size: tuple[int, int]) -> None:
        super().__init__()
        self.kernel_size = (int(kernel_size[0]), int(kernel_size[1]))

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if self.kernel_size[0] >= h and self.kernel_size[1] >= w:
            return F.adaptive_avg_pool2d(x, 1)
        k1, k2 = min(h, self.kernel_size[0]), min(w, self.kernel_size[1])
        s = F.pad(x.cumsum(dim=-1).cumsum(dim=-2), (1, 0, 1, 0))
        out = (s[..., k1:, k2:] + s[..., :-k1, :-k2] - s[..., :-k1, k2:] - s[..., k1:, :-k2]) / (k1 * k2)
        _h, _w = out.shape[-2:]
        pad = ((w - _w) // 2, (w - _w + 1) // 2, (h - _h) // 2, (h - _h + 1) // 2)
        return F.pad(out, pad, mode="replicate")


class NAFNetLocal(NAFNet):
    """NAFNet with the test-time local converter (TLC): official ``NAFNetLocal``.

    Every channel-attention global pool becomes a :class:`LocalAvgPool2d` whose window is
    ``base_scale`` (1.5 officially) times the feature-map size that a ``train_size`` input gives at
    that block's level. Same parameters and state-dict keys as :class:`NAFNet` (official weights load
    into either). On an input no larger than ``base_scale x`` the training size the output equals
    plain NAFNet's; on larger inputs it keeps the statistics the model was trained with (REFERENCE.md:
    GoPro width 64 gives 33.71 dB with TLC, 33.08 without).

    Args:
        train_size: (N, C, H, W) of the training patches, default (1, 3, 256, 256).
        base_scale: window / training feature size (1.5).
        other arguments: as :class:`NAFNet`.
    """

    def __init__(self, *args, train_size: Sequence[int] = (1, 3, 256, 256), base_scale: float = 1.5, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if len(train_size) != 4:
            raise ValueError(f"train_size must be (N, C, H, W), got {train_size!r}")
        self.train_size = tuple(int(v) for v in train_size)
        self.base_scale = float(base_scale)
        _, _, th, tw = self.train_size
        base_h, base_w = int(th * base_scale), int(tw * base_scale)
        # the feature height at level k for a train_size input (padded like forward does)
        ph = -(-th // self.padder_size) * self.padder_size
        pw = -(-tw // self.padder_size) * self.padder_size

        def convert(stage: nn.Module, level: int) -> None:
            fh, fw = ph >> level, pw >> level
            kernel = (fh * base_h // th, fw * base_w // tw)
            for block in stage:
                block.sca[0] = LocalAvgPool2d(kernel)

        n = len(self.encoders)
        for k, stage in enumerate(self.encoders):
            convert(stage, k)
        convert(self.middle_blks, n)
        for k, stage in enumerate(self.decoders):
            convert(stage, n - 1 - k)


#: The official configurations (megvii-research/NAFNet ``options/test/{SIDD,GoPro}/NAFNet-width*.yml``).
CONFIGS: dict[str, dict] = {
    "nafnet_sidd_width32": dict(width=32, enc_blk_nums=(2, 2, 4, 8), middle_blk_num=12, dec_blk_nums=(2, 2, 2, 2)),
    "nafnet_sidd_width64": dict(width=64, enc_blk_nums=(2, 2, 4, 8), middle_blk_num=12, dec_blk_nums=(2, 2, 2, 2)),
    "nafnet_gopro_width32": dict(width=32, enc_blk_nums=(1, 1, 1, 28), middle_blk_num=1, dec_blk_nums=(1, 1, 1, 1)),
    "nafnet_gopro_width64": dict(width=64, enc_blk_nums=(1, 1, 1, 28), middle_blk_num=1, dec_blk_nums=(1, 1, 1, 1)),
}
