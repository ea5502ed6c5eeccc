"""VGG-style discriminator of SRGAN / ESRGAN, in BasicSR's layout.

Ledig et al., CVPR 2017 (SRGAN's discriminator: VGG-like strided convolutions + BN + LeakyReLU
0.2, two dense layers); the BasicSR version (``basicsr/archs/discriminator_arch.py``,
``VGGStyleDiscriminator``, used by ESRGAN, Wang et al. ECCV-W 2018) has the keys ``conv0_0``,
``conv0_1``, ``bn0_1``, ``conv{1..4}_{0,1}``, ``bn{1..4}_{0,1}`` (+ ``conv5_*`` / ``bn5_*`` for
256-px inputs), ``linear1``, ``linear2``. Parameter count (3, 64, 128): 14,499,401 (REFERENCE.md).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["VGGStyleDiscriminator"]


class VGGStyleDiscriminator(nn.Module):
    """VGG-style discriminator for fixed-size patches; returns one logit per image.

    Stage 0: ``conv0_0`` (3x3, bias) then ``conv0_1`` (4x4 stride 2, no bias) + ``bn0_1``; stages
    1-4 (and 5 at 256 px): ``conv{k}_0`` (3x3) + BN, ``conv{k}_1`` (4x4 stride 2) + BN, all without
    bias; widths num_feat x (1, 2, 4, 8, 8, 8); LeakyReLU 0.2 after every conv and after
    ``linear1`` (8*num_feat*4*4 -> 100); ``linear2`` (100 -> 1) gives the logit.

    Args:
        num_in_ch: image channels (3 for RGB).
        num_feat: base width (64 in BasicSR).
        input_size: the square patch size it accepts, 128 or 256 (the flattened 4x4 map needs it).

    Shapes: (N, num_in_ch, input_size, input_size), images in [0, 1] -> (N, 1) raw logits (no
    sigmoid; pair with :class:`labkit.losses.GANLoss`).

    Raises:
        ValueError: ``input_size`` not 128 / 256 (constructor); an input that is not 4-D or whose
            height / width differ from ``input_size`` (forward), naming both sizes.

    Source: BasicSR ``discriminator_arch.py`` (``VGGStyleDiscriminator``); Ledig et al. CVPR 2017.
    """

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, input_size: int = 128) -> None:
        super().__init__()
        if input_size not in (128, 256):
            raise ValueError(f"VGGStyleDiscriminator: input_size must be 128 or 256, got {input_size!r}")
        self.input_size = input_size
        widths = [num_feat, num_feat * 2, num_feat * 4, num_feat * 8, num_feat * 8]
        if input_size == 256:
            widths.append(num_feat * 8)
        self.num_stages = len(widths)

        self.conv0_0 = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1, bias=True)
        self.conv0_1 = nn.Conv2d(num_feat, num_feat, 4, 2, 1, bias=False)
        self.bn0_1 = nn.BatchNorm2d(num_feat, affine=True)
        for k in range(1, self.num_stages):
            c_in, c_out = widths[k - 1], widths[k]
            self.add_module(f"conv{k}_0", nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False))
            self.add_module(f"bn{k}_0", nn.BatchNorm2d(c_out, affine=True))
            self.add_module(f"conv{k}_1", nn.Conv2d(c_out, c_out, 4, 2, 1, bias=False))
            self.add_module(f"bn{k}_1", nn.BatchNorm2d(c_out, affine=True))
        self.linear1 = nn.Linear(widths[-1] * 4 * 4, 100)
        self.linear2 = nn.Linear(100, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(
                f"VGGStyleDiscriminator(input_size={self.input_size}) needs (N, C, "
                f"{self.input_size}, {self.input_size}) inputs, got {tuple(x.shape)}; crop the "
                f"patches to {self.input_size} px (gt_size) or build it with the matching input_size"
            )
        feat = self.lrelu(self.conv0_0(x))
        feat = self.lrelu(self.bn0_1(self.conv0_1(feat)))
        for k in range(1, self.num_stages):
            feat = self.lrelu(getattr(self, f"bn{k}_0")(getattr(self, f"conv{k}_0")(feat)))
            feat = self.lrelu(getattr(self, f"bn{k}_1")(getattr(self, f"conv{k}_1")(feat)))
        feat = self.lrelu(self.linear1(feat.flatten(1)))
        return self.linear2(feat)
