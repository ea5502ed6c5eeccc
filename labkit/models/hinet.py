"""HINet: Half Instance Normalization Network (Chen et al., CVPR-W 2021), the official layout.

Source: the paper "HINet: Half Instance Normalization Network for Image Restoration" (Liangyu Chen,
Xin Lu, Jie Zhang, Xiaojie Chu, Chengpeng Chen, CVPR Workshops 2021) and the state-dict layout of
the official repository github.com/megvii-model/HINet (``basicsr/models/archs/hinet_arch.py``).
Written here from that description; the key names are the official ones, so the released
checkpoints (``HINet-GoPro.pth``, ``HINet-SIDD-1x.pth``, ``HINet-SIDD-0.5x.pth``, wrapped as
``{'params': ...}``) load with ``strict=True`` through :func:`labkit.weights.load_weights`.

The network is two U-Nets in a row (stages), each ``depth`` levels deep with ``wf * 2**i``
channels at level ``i``:

- every encoder block (:class:`UNetConvBlock`) is conv3x3 -> *half instance normalization*
  (the first half of the channels instance-normalised with affine parameters, the second half
  untouched; only for ``hin_position_left <= i <= hin_position_right``) -> LeakyReLU -> conv3x3 ->
  LeakyReLU, plus a 1x1 ``identity`` shortcut; a 4x4 stride-2 conv (``downsample``, no bias)
  halves the resolution except at the deepest level;
- decoders upsample with a 2x2 stride-2 transposed conv (``up``), concatenate the encoder feature
  passed through a 3x3 ``skip_conv``, and run a block without normalisation (``conv_block``);
- the **supervised attention module** (``sam12``) turns stage 1's last feature into a restored
  image (``conv2(x) + input``, the stage-1 output that the loss supervises) and into attention
  maps (``sigmoid(conv3(img))``) that gate the features passed on to stage 2;
- stage 2 starts from ``conv_02(input)`` concatenated with those features (``cat12``, 1x1), and
  its encoder blocks add **cross-stage feature fusion**: ``csff_enc(stage-1 encoder feature) +
  csff_dec(stage-1 decoder feature)`` at every level but the deepest;
- ``last`` (3x3) maps the final feature to a residual added to the input.

``forward`` returns ``[stage1, stage2]`` (both NCHW, the input's shape); the official training
(and ``labkit.train.fit``) sums the loss over both, the last one is the prediction.

Configurations (:data:`CONFIGS`, parameter counts of REFERENCE.md): GoPro deblurring ``wf=64,
depth=5, hin_position_left=3, hin_position_right=4`` (88,668,806 parameters, 186 tensors);
SIDD denoising ``hin 0..4`` (88,669,702, 198 tensors); SIDD 0.5x ``wf=32`` (22,176,518).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["HINet", "UNetConvBlock", "UNetUpBlock", "SAM", "CONFIGS"]


class SAM(nn.Module):
    """Supervised attention module (MPRNet's SAM, as HINet uses it between the stages).

    ``forward(x, x_img) -> (features, img)``: ``img = conv2(x) + x_img`` is the stage-1 restored
    image (N, 3, H, W); ``features = conv1(x) * sigmoid(conv3(img)) + x`` (N, n_feat, H, W).
    Keys: ``conv1`` (n_feat -> n_feat), ``conv2`` (n_feat -> 3), ``conv3`` (3 -> n_feat), all 3x3
    with bias.
    """

    def __init__(self, n_feat: int, kernel_size: int = 3, bias: bool = True, in_chn: int = 3) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.conv1 = nn.Conv2d(n_feat, n_feat, kernel_size, padding=pad, bias=bias)
        self.conv2 = nn.Conv2d(n_feat, in_chn, kernel_size, padding=pad, bias=bias)
        self.conv3 = nn.Conv2d(in_chn, n_feat, kernel_size, padding=pad, bias=bias)

    def forward(self, x: torch.Tensor, x_img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        img = self.conv2(x) + x_img
        attention = torch.sigmoid(self.conv3(img))
        return self.conv1(x) * attention + x, img


class UNetConvBlock(nn.Module):
    """HINet's residual block, with optional half instance normalization, CSFF and downsampling.

    Args:
        in_size, out_size: channels in / out.
        downsample: add ``downsample`` (4x4 conv, stride 2, no bias); forward then returns
            ``(downsampled, full_resolution)``.
        relu_slope: LeakyReLU negative slope (0.2).
        use_csff: add ``csff_enc`` / ``csff_dec`` (3x3) for cross-stage feature fusion (only
            together with ``downsample``, as in the official code).
        use_HIN: add ``norm``: ``InstanceNorm2d(out_size // 2, affine=True)`` on the first half of
            the channels after ``conv_1``.

    ``forward(x, enc=None, dec=None)``: x (N, in_size, H, W); enc/dec (N, out_size, H, W), the
    stage-1 encoder/decoder features fused when both are given (requires ``use_csff``).
    """

    def __init__(self, in_size: int, out_size: int, downsample: bool, relu_slope: float,
                 use_csff: bool = False, use_HIN: bool = False) -> None:  # noqa: N803 (official name)
        super().__init__()
        self.identity = nn.Conv2d(in_size, out_size, 1, 1, 0)
        self.conv_1 = nn.Conv2d(in_size, out_size, 3, padding=1, bias=True)
        self.relu_1 = nn.LeakyReLU(relu_slope, inplace=False)
        self.conv_2 = nn.Conv2d(out_size, out_size, 3, padding=1, bias=True)
        self.relu_2 = nn.LeakyReLU(relu_slope, inplace=False)
        self.use_csff = bool(downsample and use_csff)
        if self.use_csff:
            self.csff_enc = nn.Conv2d(out_size, out_size, 3, 1, 1)
            self.csff_dec = nn.Conv2d(out_size, out_size, 3, 1, 1)
        self.use_HIN = bool(use_HIN)
        if self.use_HIN:
            self.norm = nn.InstanceNorm2d(out_size // 2, affine=True)
        self.downsample = nn.Conv2d(out_size, out_size, 4, stride=2, padding=1, bias=False) if downsample else None

    def forward(self, x: torch.Tensor, enc: torch.Tensor | None = None, dec: torch.Tensor | None = None):
        out = self.conv_1(x)
        if self.use_HIN:
            half = out.shape[1] // 2
            out = torch.cat([self.norm(out[:, :half]), out[:, half:]], dim=1)
        out = self.relu_1(out)
        out = self.relu_2(self.conv_2(out))
        out = out + self.identity(x)
        if enc is not None and dec is not None:
            if not self.use_csff:
                raise ValueError("this block has no cross-stage fusion (use_csff=False) but got enc/dec features")
            out = out + self.csff_enc(enc) + self.csff_dec(dec)
        if self.downsample is not None:
            return self.downsample(out), out
        return out


class UNetUpBlock(nn.Module):
    """Decoder block: ``up`` (2x2 transposed conv, stride 2) then concat with the skip, ``conv_block``.

    ``forward(x, bridge)``: x (N, in_size, H, W), bridge (N, out_size, 2H, 2W) -> (N, out_size, 2H, 2W).
    """

    def __init__(self, in_size: int, out_size: int, relu_slope: float) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_size, out_size, kernel_size=2, stride=2, bias=True)
        self.conv_block = UNetConvBlock(in_size, out_size, False, relu_slope)

    def forward(self, x: torch.Tensor, bridge: torch.Tensor) -> torch.Tensor:
        return self.conv_block(torch.cat([self.up(x), bridge], dim=1))


class HINet(nn.Module):
    """HINet (official argument names and state-dict keys; see the module docstring).

    Args:
        in_chn: image channels (3).
        wf: channels of the first level (64 in the paper; 32 for SIDD 0.5x).
        depth: U-Net levels per stage (5); inputs are padded to a multiple of ``2**(depth-1)``.
        relu_slope: LeakyReLU slope (0.2).
        hin_position_left, hin_position_right: the encoder levels (inclusive, 0-based) whose blocks
            use half instance normalization (GoPro 3..4; SIDD 0..4).

    ``forward(x)``: x (N, in_chn, H, W) float, images in [0, 1] -> ``[stage1, stage2]``, each
    (N, in_chn, H, W) (not clamped). Sizes that are not a multiple of ``2**(depth-1)`` are
    reflect-padded on the bottom/right and the outputs cropped back (the official code requires
    the multiple; padding does not change the weights or keys).

    Raises:
        ValueError: ``depth < 1``, ``wf < 2`` or an odd ``wf`` with half instance normalization,
            ``hin_position_left > hin_position_right``; in forward, an input that is not 4-D with
            ``in_chn`` channels.
    """

    def __init__(self, in_chn: int = 3, wf: int = 64, depth: int = 5, relu_slope: float = 0.2,
                 hin_position_left: int = 0, hin_position_right: int = 4) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if wf < 2 or wf % 2:
            raise ValueError(f"wf must be an even number >= 2 (half instance norm splits channels), got {wf}")
        if hin_position_left > hin_position_right:
            raise ValueError(f"hin_position_left ({hin_position_left}) > hin_position_right ({hin_position_right})")
        self.in_chn, self.wf, self.depth = in_chn, wf, depth
        self.conv_01 = nn.Conv2d(in_chn, wf, 3, 1, 1)
        self.conv_02 = nn.Conv2d(in_chn, wf, 3, 1, 1)
        self.down_path_1 = nn.ModuleList()
        self.down_path_2 = nn.ModuleList()
        prev = wf
        for i in range(depth):
            use_hin = hin_position_left <= i <= hin_position_right
            down = i + 1 < depth
            width = wf * 2**i
            self.down_path_1.append(UNetConvBlock(prev, width, down, relu_slope, use_HIN=use_hin))
            self.down_path_2.append(UNetConvBlock(prev, width, down, relu_slope, use_csff=down, use_HIN=use_hin))
            prev = width
        self.up_path_1 = nn.ModuleList()
        self.up_path_2 = nn.ModuleList()
        self.skip_conv_1 = nn.ModuleList()
        self.skip_conv_2 = nn.ModuleList()
        for i in reversed(range(depth - 1)):
            width = wf * 2**i
            self.up_path_1.append(UNetUpBlock(prev, width, relu_slope))
            self.up_path_2.append(UNetUpBlock(prev, width, relu_slope))
            self.skip_conv_1.append(nn.Conv2d(width, width, 3, 1, 1))
            self.skip_conv_2.append(nn.Conv2d(width, width, 3, 1, 1))
            prev = width
        self.sam12 = SAM(prev, in_chn=in_chn)
        self.cat12 = nn.Conv2d(prev * 2, prev, 1, 1, 0)
        self.last = nn.Conv2d(prev, in_chn, 3, 1, 1, bias=True)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.ndim != 4 or x.shape[1] != self.in_chn:
            raise ValueError(f"HINet expects (N, {self.in_chn}, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        m = 2 ** (self.depth - 1)
        ph, pw = (-h) % m, (-w) % m
        image = F.pad(x, (0, pw, 0, ph), mode="reflect") if (ph or pw) else x
        # stage 1: encoder, decoder, supervised attention
        x1 = self.conv_01(image)
        encs, decs = [], []
        for i, down in enumerate(self.down_path_1):
            if i + 1 < self.depth:
                x1, x1_full = down(x1)
                encs.append(x1_full)
            else:
                x1 = down(x1)
        for i, up in enumerate(self.up_path_1):
            x1 = up(x1, self.skip_conv_1[i](encs[-i - 1]))
            decs.append(x1)
        sam_feature, out_1 = self.sam12(x1, image)
        # stage 2: fresh features of the input + SAM features, cross-stage feature fusion
        x2 = self.cat12(torch.cat([self.conv_02(image), sam_feature], dim=1))
        blocks = []
        for i, down in enumerate(self.down_path_2):
            if i + 1 < self.depth:
                x2, x2_full = down(x2, encs[i], decs[-i - 1])
                blocks.append(x2_full)
            else:
                x2 = down(x2)
        for i, up in enumerate(self.up_path_2):
            x2 = up(x2, self.skip_conv_2[i](blocks[-i - 1]))
        out_2 = self.last(x2) + image
        if ph or pw:
            out_1, out_2 = out_1[..., :h, :w], out_2[..., :h, :w]
        return [out_1, out_2]


#: The official configurations: name -> HINet keyword arguments (counts in REFERENCE.md).
CONFIGS: dict[str, dict[str, Any]] = {
    "hinet_gopro": dict(wf=64, depth=5, hin_position_left=3, hin_position_right=4),
    "hinet_sidd_1x": dict(wf=64, depth=5, hin_position_left=0, hin_position_right=4),
    "hinet_sidd_0.5x": dict(wf=32, depth=5, hin_position_left=0, hin_position_right=4),
}
