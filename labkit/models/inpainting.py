"""Inpainting + colorization (write-up 002): a U-Net generator and an LSGAN PatchGAN discriminator.

Write-up 002 (DACON image colorization and missing-region restoration) trains an "Inpainting
Generator" against an "LSGAN discriminator": the input is a grayscale photo with missing regions,
the output the complete colour photo. The write-up tried residual and gated blocks and found them
*worse* than the plain encoder-decoder, so ``block_type='plain'`` is the default and the other two
are options for the ablation.

- :class:`InpaintingGenerator`: an encoder-decoder with skip connections (U-Net, Ronneberger et
  al., MICCAI 2015; the pix2pix generator, Isola et al., CVPR 2017) taking ``num_in_ch`` channels
  (1: the grayscale input; 2: grayscale + the binary mask, 1 = missing) and returning
  ``num_out_ch`` = 3 (RGB). Blocks: ``'plain'`` (two 3x3 convs + LeakyReLU), ``'residual'`` (EDSR
  style: ``x + conv(lrelu(conv(x)))``) or ``'gated'`` (gated convolution, Yu et al., "Free-Form
  Image Inpainting with Gated Convolution", ICCV 2019: ``lrelu(feature) * sigmoid(gate)``, one
  conv producing both halves as in DeepFill v2). The write-up's code is not public, so this
  layout is the project's own (documented below); there is no official checkpoint to match.
- :class:`PatchDiscriminator`: pix2pix's ``NLayerDiscriminator`` (70x70 PatchGAN) with its
  official key layout ``model.{i}`` (so pix2pix / CycleGAN ``*_net_D.pth`` files load with
  ``strict=True``): 4x4 convs, stride 2 then 1, LeakyReLU 0.2, BatchNorm (official default) or
  InstanceNorm or none. It returns a map of raw scores (no sigmoid): with
  ``labkit.losses.GANLoss('lsgan')`` it is the LSGAN discriminator (Mao et al., ICCV 2017).
  Parameters for pix2pix's configuration (input_nc 6, ndf 64, n_layers 3, batch norm):
  2,768,705.

Generator state-dict layout: ``conv_first``, ``encoders.{i}`` (a block), ``downs.{i}`` (4x4
stride-2 conv), ``middle`` (a block), ``ups.{i}`` (nearest x2 + 3x3 conv), ``decoders.{i}.fuse``
(1x1 conv over [upsampled, skip]) + ``decoders.{i}.block``, ``conv_last``. Block keys: plain
``conv1, conv2``; residual ``conv1, conv2``; gated ``conv1, conv2`` (each with ``2 * ch`` outputs).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["InpaintingGenerator", "PatchDiscriminator", "BLOCK_TYPES"]

BLOCK_TYPES = ("plain", "residual", "gated")


class _PlainBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(ch, ch, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.conv2(F.leaky_relu(self.conv1(x), 0.2)), 0.2)


class _ResidualBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(ch, ch, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.leaky_relu(self.conv1(x), 0.2))


class _GatedBlock(nn.Module):
    """Two gated convolutions (Yu et al. 2019): ``lrelu(f) * sigmoid(g)`` with ``f, g = conv(x)``."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ch, 2 * ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(ch, 2 * ch, 3, 1, 1)

    @staticmethod
    def _gated(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        f, g = conv(x).chunk(2, dim=1)
        return F.leaky_relu(f, 0.2) * torch.sigmoid(g)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._gated(self.conv2, self._gated(self.conv1, x))


_BLOCKS = {"plain": _PlainBlock, "residual": _ResidualBlock, "gated": _GatedBlock}


class _Decoder(nn.Module):
    def __init__(self, ch: int, block: type[nn.Module]) -> None:
        super().__init__()
        self.fuse = nn.Conv2d(2 * ch, ch, 1)
        self.block = block(ch)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.block(F.leaky_relu(self.fuse(torch.cat([x, skip], 1)), 0.2))


class InpaintingGenerator(nn.Module):
    """Grayscale image with missing regions (+ mask) -> colour image; a U-Net with skip connections.

    Args:
        num_in_ch: input channels: 1 (grayscale only, e.g. the competition's test inputs that come
            without masks) or 2 (grayscale and the mask, 1 = missing; the default); 3 / 4 the same with a
            faded RGB image in place of the gray (``labkit.data.masks.inpainting_input(chroma_kept=...)``,
            the course's smoke degradation).
        num_out_ch: output channels (3 = RGB).
        num_feat: channels at full resolution; level ``i`` has ``num_feat * 2**i``.
        num_down: number of stride-2 downsamplings (the input's H and W must be multiples of
            ``2**num_down``).
        block_type: ``'plain'`` (the write-up's final choice), ``'residual'`` or ``'gated'``.

    Input: ``(N, num_in_ch, H, W)`` float in [0, 1]. Output: ``(N, num_out_ch, H, W)`` RGB, a
    linear head (values are not clamped; clamp to [0, 1] for display / metrics), plus the input's
    image (the gray replicated on every channel, or the faded RGB): a global skip, so the network
    learns the colour and the missing content as a residual over the image it was given.

    Raises:
        ValueError: bad arguments (named), or an input whose channels or size do not fit.
    """

    def __init__(self, num_in_ch: int = 2, num_out_ch: int = 3, num_feat: int = 64, num_down: int = 3,
                 block_type: str = "plain") -> None:
        super().__init__()
        if num_in_ch not in (1, 2, 3, 4):
            raise ValueError(f"num_in_ch must be 1 (grayscale), 2 (grayscale + mask), 3 (faded RGB) or 4 "
                             f"(faded RGB + mask), got {num_in_ch!r}")
        if num_in_ch >= 3 and num_out_ch != 3:
            raise ValueError(f"num_in_ch={num_in_ch} (an RGB input) needs num_out_ch=3, got {num_out_ch!r}")
        if not isinstance(num_out_ch, int) or num_out_ch < 1:
            raise ValueError(f"num_out_ch must be a positive int, got {num_out_ch!r}")
        if not isinstance(num_feat, int) or num_feat < 1:
            raise ValueError(f"num_feat must be a positive int, got {num_feat!r}")
        if not isinstance(num_down, int) or not 0 <= num_down <= 6:
            raise ValueError(f"num_down must be an int in 0..6, got {num_down!r}")
        if block_type not in _BLOCKS:
            raise ValueError(f"block_type must be one of {BLOCK_TYPES}, got {block_type!r}")
        self.num_in_ch, self.num_out_ch, self.num_down, self.block_type = num_in_ch, num_out_ch, num_down, block_type
        block = _BLOCKS[block_type]
        chs = [num_feat * 2**i for i in range(num_down + 1)]
        self.conv_first = nn.Conv2d(num_in_ch, chs[0], 3, 1, 1)
        self.encoders = nn.ModuleList(block(c) for c in chs[:-1])
        self.downs = nn.ModuleList(nn.Conv2d(chs[i], chs[i + 1], 4, 2, 1) for i in range(num_down))
        self.middle = block(chs[-1])
        self.ups = nn.ModuleList(nn.Conv2d(chs[i + 1], chs[i], 3, 1, 1) for i in reversed(range(num_down)))
        self.decoders = nn.ModuleList(_Decoder(chs[i], block) for i in reversed(range(num_down)))
        self.conv_last = nn.Conv2d(chs[0], num_out_ch, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.num_in_ch:
            raise ValueError(f"InpaintingGenerator expects (N, {self.num_in_ch}, H, W), got {tuple(x.shape)}")
        m = 2**self.num_down
        if x.shape[-2] % m or x.shape[-1] % m:
            raise ValueError(f"InpaintingGenerator: H and W must be multiples of 2**num_down = {m}, "
                             f"got {tuple(x.shape[-2:])} (pad the input, e.g. with labkit.infer.predict)")
        feat = F.leaky_relu(self.conv_first(x), 0.2)
        skips = []
        for enc, down in zip(self.encoders, self.downs):
            feat = enc(feat)
            skips.append(feat)
            feat = F.leaky_relu(down(feat), 0.2)
        feat = self.middle(feat)
        for up, dec, skip in zip(self.ups, self.decoders, reversed(skips)):
            feat = F.leaky_relu(up(F.interpolate(feat, scale_factor=2.0, mode="nearest")), 0.2)
            feat = dec(feat, skip)
        return self.conv_last(feat) + (x[:, :3] if self.num_in_ch >= 3 else x[:, :1])

    def extra_repr(self) -> str:
        return f"num_in_ch={self.num_in_ch}, num_down={self.num_down}, block_type={self.block_type!r}"


class PatchDiscriminator(nn.Module):
    """pix2pix's PatchGAN ``NLayerDiscriminator`` (official keys ``model.{i}``); raw score map.

    Args:
        input_nc: input channels (3 for an image; a conditional D sees [input, image], e.g. 2 + 3).
        ndf: channels of the first conv.
        n_layers: number of stride-2 conv layers after the first (3 = the 70x70 PatchGAN).
        norm: ``'batch'`` (pix2pix default), ``'instance'`` (InstanceNorm2d without affine) or
            ``'none'`` (an ``Identity`` in the norm's slot, so the indices stay official). As in
            the official code, the convs after the first have a bias only with ``'instance'``.

    Input ``(N, input_nc, H, W)`` (H, W >= 32 for n_layers 3); output ``(N, 1, h, w)`` raw
    scores, one per overlapping 70x70 patch (no sigmoid: use ``GANLoss('lsgan')`` or
    ``'vanilla'``). Source: Isola et al., CVPR 2017; junyanz/pytorch-CycleGAN-and-pix2pix
    ``models/networks.py``; LSGAN: Mao et al., ICCV 2017.

    Raises ValueError for bad arguments or a wrong number of input channels.
    """

    def __init__(self, input_nc: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "batch") -> None:
        super().__init__()
        if not isinstance(input_nc, int) or input_nc < 1:
            raise ValueError(f"input_nc must be a positive int, got {input_nc!r}")
        if not isinstance(ndf, int) or ndf < 1:
            raise ValueError(f"ndf must be a positive int, got {ndf!r}")
        if not isinstance(n_layers, int) or n_layers < 1:
            raise ValueError(f"n_layers must be a positive int, got {n_layers!r}")
        if norm not in ("batch", "instance", "none"):
            raise ValueError(f"norm must be 'batch', 'instance' or 'none', got {norm!r}")
        self.input_nc = input_nc
        use_bias = norm == "instance"  # the official rule (also for 'none')

        def norm_layer(ch: int) -> list[nn.Module]:
            if norm == "batch":
                return [nn.BatchNorm2d(ch)]
            if norm == "instance":
                return [nn.InstanceNorm2d(ch)]
            return [nn.Identity()]

        layers: list[nn.Module] = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=use_bias),
                       *norm_layer(ndf * mult), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.input_nc:
            raise ValueError(f"PatchDiscriminator expects (N, {self.input_nc}, H, W), got {tuple(x.shape)}")
        return self.model(x)
