"""RRDBNet: the ESRGAN generator (Residual-in-Residual Dense Blocks, no batch norm).

Wang et al., "ESRGAN: Enhanced Super-Resolution Generative Adversarial Networks", ECCV Workshops
2018, arXiv:1809.00219. State-dict layout of BasicSR's ``basicsr/archs/rrdbnet_arch.py``:
``conv_first``, ``body.{i}.rdb{1,2,3}.conv{1..5}``, ``conv_body``, ``conv_up1``, ``conv_up2``,
``conv_hr``, ``conv_last`` (every conv with a bias), so BasicSR's ESRGAN / Real-ESRGAN files load
with ``strict=True``. The ESRGAN repository's own files (``RRDB_PSNR_x4.pth``: ``RRDB_trunk``,
``trunk_conv``, ``upconv1`` ...; the oldest ``model.N`` files) load with no extra argument too:
``RRDBNet.official_layouts`` lists their key converters, which :func:`labkit.weights.load_weights`
applies when it recognises the layout.

Parameter counts (num_feat 64, num_block 23, num_grow_ch 32; REFERENCE.md): x4 16,697,987;
x2 16,703,171 (x2 and x1 fold the input with pixel-unshuffle, 4x / 16x the input channels, and keep
the two x2 upsampling stages, as Real-ESRGAN's x2 model does).
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from labkit.weights import rrdb_to_basicsr

__all__ = ["ResidualDenseBlock", "RRDB", "RRDBNet"]


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs; the output is scaled by 0.2 and added to the input.

    Conv ``k`` (k = 1..4) sees the block input and every earlier conv's output (``num_feat + (k-1)
    * num_grow_ch`` channels) and adds ``num_grow_ch`` channels; conv 5 maps back to ``num_feat``.
    LeakyReLU(0.2) after convs 1-4. Shapes: (N, num_feat, H, W) -> (N, num_feat, H, W).

    Initialisation as BasicSR's ``default_init_weights(..., 0.1)``: Kaiming-normal weights scaled
    by 0.1 and zero biases, so that a fresh block starts close to the identity and a deep trunk
    trains from scratch.
    """

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_grow_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4, self.conv5):
            nn.init.kaiming_normal_(conv.weight)
            conv.weight.data.mul_(0.1)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            feats.append(self.lrelu(conv(torch.cat(feats, 1))))
        return x + 0.2 * self.conv5(torch.cat(feats, 1))


class RRDB(nn.Module):
    """Residual-in-Residual Dense Block: three dense blocks, their output scaled by 0.2 plus the input."""

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.2 * self.rdb3(self.rdb2(self.rdb1(x)))


class RRDBNet(nn.Module):
    """The ESRGAN / RRDB generator (BasicSR argument names and layout).

    Args:
        num_in_ch / num_out_ch: image channels (3 for RGB).
        scale: SR factor: 4 (the official models), 2 or 1 (the input is pixel-unshuffled by 2 or 4
            first, so ``conv_first`` sees 12 or 48 channels and the x4 trunk does the rest).
        num_feat: trunk width (64).
        num_block: number of RRDBs (23 in ESRGAN; 6 in Real-ESRGAN's anime model).
        num_grow_ch: growth channels of the dense blocks (32).

    Shapes: input (N, num_in_ch, H, W), float in [0, 1] -> output (N, num_out_ch, H*scale,
    W*scale), roughly [0, 1] (not clamped). For ``scale`` 2 / 1, H and W must be divisible by 2 / 4.

    Raises:
        ValueError: ``scale`` not in (1, 2, 4); at forward, an input not divisible as above.

    Upsampling is nearest-neighbour x2 then a 3x3 conv, twice (``conv_up1``, ``conv_up2``), as the
    paper's generator; then ``conv_hr`` and ``conv_last``.

    Checkpoints: BasicSR's layout is the class's own; ``official_layouts`` adds the ESRGAN
    repository's (``RRDB_PSNR_x4.pth``) and its oldest ``model.N`` files, so
    ``load_weights(RRDBNet(), path)`` loads any of the three strictly (:func:`labkit.weights.load_weights`).
    """

    #: Key layouts of official files besides our own (BasicSR): name -> converter to ours.
    official_layouts = {
        "esrgan": partial(rrdb_to_basicsr, layout="esrgan", keep_unknown=True),
        "esrgan_old": partial(rrdb_to_basicsr, layout="esrgan_old", keep_unknown=True),
    }

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        scale: int = 4,
        num_feat: int = 64,
        num_block: int = 23,
        num_grow_ch: int = 32,
    ) -> None:
        super().__init__()
        if scale not in (1, 2, 4):
            raise ValueError(f"RRDBNet: scale must be 1, 2 or 4, got {scale!r}")
        self.scale = scale
        self.unshuffle = {4: 1, 2: 2, 1: 4}[scale]
        self.conv_first = nn.Conv2d(num_in_ch * self.unshuffle ** 2, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(num_feat, num_grow_ch) for _ in range(num_block)])
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.unshuffle > 1:
            r = self.unshuffle
            if x.shape[-2] % r or x.shape[-1] % r:
                raise ValueError(
                    f"RRDBNet(scale={self.scale}) needs H and W divisible by {r}, got {tuple(x.shape[-2:])}"
                )
            x = F.pixel_unshuffle(x, r)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))
