"""EDSR: Enhanced Deep Residual Networks for Single Image Super-Resolution.

Lim, Son, Kim, Nah, Lee, CVPR Workshops 2017 (NTIRE 2017 winner), arXiv:1707.02921.
State-dict layout of BasicSR's ``basicsr/archs/edsr_arch.py`` (``conv_first``, ``body.{i}.conv1/conv2``,
``conv_after_body``, ``upsample.0/.2``, ``conv_last``), so BasicSR's EDSR checkpoints load with
``strict=True``; the official EDSR-PyTorch files (``head``, ``body.i.body``, ``tail``, ``sub_mean`` /
``add_mean``) load too, through ``EDSR.official_layouts`` and :func:`labkit.weights.edsr_to_basicsr`.
Parameter counts (REFERENCE.md): baseline (64 features, 16 blocks) x2 1,369,859,
x3 1,554,499, x4 1,517,571; large (256 features, 32 blocks, res_scale 0.1) x2 40,729,603,
x4 43,089,923.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial

import torch
from torch import nn

from labkit.models.common import ResidualBlockNoBN, Upsample
from labkit.weights import edsr_to_basicsr

#: DIV2K's mean RGB, subtracted before the body and added back at the end (BasicSR default).
DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


class EDSR(nn.Module):
    """EDSR super-resolution network (no batch norm, long global residual, sub-pixel upsampler).

    Args:
        num_in_ch / num_out_ch: image channels (3 for RGB).
        num_feat: feature width (64 baseline, 256 large).
        num_block: residual blocks (16 baseline, 32 large).
        upscale: SR factor: 2, 3, 4 (or 8).
        res_scale: residual scaling inside each block (1.0 baseline, 0.1 large).
        img_range: the network works on pixel values in [0, img_range] after mean subtraction
            (255 as in the paper and BasicSR; the input and output stay in [0, 1]).
        rgb_mean: mean subtracted from the input (in [0, 1] units).

    Shapes: input (N, num_in_ch, H, W) in [0, 1] -> output (N, num_out_ch, H*upscale, W*upscale),
    roughly [0, 1] (not clamped: clamp before saving or measuring).

    Checkpoints: BasicSR's layout is the class's own; EDSR-PyTorch's official files load too (see
    ``official_layouts``): build the model with their ``n_feats``, ``n_resblocks``, scale and
    ``res_scale`` and keep ``img_range=255`` (their ``rgb_range``) and the DIV2K ``rgb_mean``.
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_block: int = 16,
        upscale: int = 4,
        res_scale: float = 1.0,
        img_range: float = 255.0,
        rgb_mean: tuple[float, float, float] = DIV2K_RGB_MEAN,
    ) -> None:
        super().__init__()
        self.upscale = upscale
        self.img_range = img_range
        # Not a buffer: BasicSR keeps the mean out of the state dict, so official files load strictly.
        self.mean = torch.tensor(rgb_mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[ResidualBlockNoBN(num_feat, res_scale) for _ in range(num_block)])
        self.conv_after_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.upsample = Upsample(upscale, num_feat)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)

    @property
    def official_layouts(self) -> dict[str, Callable[[Mapping], dict]]:
        """Key layouts besides our own (BasicSR): ``'edsr_pytorch'`` -> :func:`labkit.weights.edsr_to_basicsr`.

        A property because the converter checks the file's ``sub_mean`` / ``add_mean`` against this
        model's ``img_range * rgb_mean`` (a mismatch raises ValueError saying what to set).
        """
        rgb_mean = tuple(self.mean.flatten().tolist())
        return {"edsr_pytorch": partial(edsr_to_basicsr, img_range=self.img_range, rgb_mean=rgb_mean,
                                        keep_unknown=True)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = self.mean.to(dtype=x.dtype, device=x.device)
        x = (x - mean) * self.img_range
        x = self.conv_first(x)
        x = x + self.conv_after_body(self.body(x))
        x = self.conv_last(self.upsample(x))
        return x / self.img_range + mean
