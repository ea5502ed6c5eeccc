"""Building blocks shared by the SR architectures (BasicSR ``arch_util`` naming)."""

from __future__ import annotations

import math

import torch
from torch import nn


class ResidualBlockNoBN(nn.Module):
    """Residual block without batch norm: ``x + res_scale * conv2(relu(conv1(x)))``.

    The EDSR block (Lim et al., CVPR-W 2017, "Enhanced Deep Residual Networks for Single Image
    Super-Resolution"); keys ``conv1``, ``conv2`` as in BasicSR's ``arch_util.ResidualBlockNoBN``.
    EDSR-large uses ``res_scale=0.1`` to keep its 32 wide blocks stable.

    Shapes: (N, num_feat, H, W) -> (N, num_feat, H, W).
    """

    def __init__(self, num_feat: int = 64, res_scale: float = 1.0) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.relu(self.conv1(x))) * self.res_scale


class Upsample(nn.Sequential):
    """Sub-pixel upsampler (Shi et al., CVPR 2016): conv to ``r^2 * num_feat`` channels + PixelShuffle(r).

    Scales 2^n use n stages of x2 (state_dict keys ``0``, ``2``, ...); scale 3 uses one x3 stage
    (key ``0``), as BasicSR's ``arch_util.Upsample``.

    Raises:
        ValueError: ``scale`` is not a power of two or 3.
    """

    def __init__(self, scale: int, num_feat: int) -> None:
        layers: list[nn.Module] = []
        if scale >= 1 and (scale & (scale - 1)) == 0:
            for _ in range(int(math.log2(scale))):
                layers += [nn.Conv2d(num_feat, 4 * num_feat, 3, 1, 1), nn.PixelShuffle(2)]
        elif scale == 3:
            layers += [nn.Conv2d(num_feat, 9 * num_feat, 3, 1, 1), nn.PixelShuffle(3)]
        else:
            raise ValueError(f"upscale={scale} is not supported; use a power of 2 (1, 2, 4, 8) or 3")
        super().__init__(*layers)
