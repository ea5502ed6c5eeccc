"""MSRResNet: the SRResNet generator of SRGAN, in BasicSR's "modified" form (no batch norm).

Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a Generative Adversarial
Network", CVPR 2017 (SRResNet, and the SRGAN generator). The batch-norm-free variant is the
MSRResNet of BasicSR (Wang et al., "ESRGAN: Enhanced Super-Resolution Generative Adversarial
Networks", ECCV Workshops 2018, which removed BN from the SRGAN generator), state-dict layout of
BasicSR's ``basicsr/archs/srresnet_arch.py``:

``conv_first``, ``body.{i}.conv1/conv2``, ``upconv1`` (+ ``upconv2`` at x4), ``conv_hr``,
``conv_last``, so BasicSR's MSRResNet checkpoints load with ``strict=True``. Parameter count
x4 (64 features, 16 blocks): 1,517,571 (REFERENCE.md).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.nn import functional as F

from labkit.models.common import ResidualBlockNoBN

__all__ = ["MSRResNet", "SRResNet"]


@torch.no_grad()
def _scaled_kaiming_init(modules: Iterable[nn.Module], scale: float = 0.1) -> None:
    """Kaiming-normal (fan_in) init of every conv in ``modules``, weights times ``scale``, bias 0.

    BasicSR's ``arch_util.default_init_weights(..., scale=0.1)``, used by MSRResNet for all its
    convolutions (its residual blocks are built with ``pytorch_init=False``): the small scale keeps
    the 16 un-normalised residual blocks close to the identity at the start of training.
    """
    for module in modules:
        for m in module.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
                m.weight.mul_(scale)
                if m.bias is not None:
                    m.bias.zero_()


class MSRResNet(nn.Module):
    """Modified SRResNet (no BN): residual body, sub-pixel upsampling, bilinear global skip.

    ``out = conv_last(lrelu(conv_hr(up(body(lrelu(conv_first(x))))))) + bilinear_up(x)`` where
    ``up`` is ``lrelu(PixelShuffle(2)(upconv1(.)))`` then the same with ``upconv2`` at x4, and one
    ``lrelu(PixelShuffle(s)(upconv1(.)))`` with ``s^2 * num_feat`` channels at x2 / x3. LeakyReLU
    slope 0.1; the bilinear upsample uses ``align_corners=False``. Unlike EDSR there is no long
    skip around the body and no mean shift.

    Args:
        num_in_ch / num_out_ch: image channels (3 for RGB; the global skip needs them equal).
        num_feat: feature width (64 in the paper and BasicSR).
        num_block: residual blocks (16 in the paper and BasicSR).
        upscale: SR factor 2, 3 or 4.

    Shapes: input (N, num_in_ch, H, W) in [0, 1] -> output (N, num_out_ch, H*upscale, W*upscale),
    roughly [0, 1] (not clamped: clamp before saving or measuring).

    Raises:
        ValueError: ``upscale`` not in (2, 3, 4), or ``num_in_ch != num_out_ch``.

    Sources: Ledig et al., CVPR 2017 (SRResNet / SRGAN); BasicSR ``srresnet_arch.py`` (MSRResNet,
    Wang et al., ESRGAN, ECCV-W 2018); weights initialised as BasicSR (Kaiming x 0.1, zero bias).
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_block: int = 16,
        upscale: int = 4,
    ) -> None:
        super().__init__()
        if upscale not in (2, 3, 4):
            raise ValueError(f"MSRResNet: upscale must be 2, 3 or 4, got {upscale!r}")
        if num_in_ch != num_out_ch:
            raise ValueError(
                f"MSRResNet adds the bilinear-upsampled input to the output, so num_in_ch "
                f"({num_in_ch}) must equal num_out_ch ({num_out_ch})"
            )
        self.upscale = upscale
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[ResidualBlockNoBN(num_feat, res_scale=1.0) for _ in range(num_block)])
        if upscale == 4:
            self.upconv1 = nn.Conv2d(num_feat, 4 * num_feat, 3, 1, 1)
            self.upconv2 = nn.Conv2d(num_feat, 4 * num_feat, 3, 1, 1)
            self.pixel_shuffle = nn.PixelShuffle(2)
        else:
            self.upconv1 = nn.Conv2d(num_feat, upscale * upscale * num_feat, 3, 1, 1)
            self.pixel_shuffle = nn.PixelShuffle(upscale)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1, inplace=True)
        _scaled_kaiming_init(self.children(), scale=0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.lrelu(self.conv_first(x))
        out = self.body(feat)
        out = self.lrelu(self.pixel_shuffle(self.upconv1(out)))
        if self.upscale == 4:
            out = self.lrelu(self.pixel_shuffle(self.upconv2(out)))
        out = self.conv_last(self.lrelu(self.conv_hr(out)))
        base = F.interpolate(x, scale_factor=self.upscale, mode="bilinear", align_corners=False)
        return out + base


#: The name used in the design notes (``labkit.models.SRResNet``): the same network.
SRResNet = MSRResNet
