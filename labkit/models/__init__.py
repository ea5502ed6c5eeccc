"""The architectures, one file each, with the official state-dict layouts.

``MODELS`` is a plain dict from name to class and ``build(name, **kwargs)`` makes one; the named
configurations in ``CONFIGS`` are the papers' / write-ups' settings (with their parameter counts
in REFERENCE.md).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from labkit.models.discriminator import VGGStyleDiscriminator
from labkit.models.edsr import EDSR
from labkit.models.rrdbnet import RRDBNet
from labkit.models.hinet import CONFIGS as HINET_CONFIGS
from labkit.models.hinet import HINet
from labkit.models.nafnet import CONFIGS as NAFNET_CONFIGS
from labkit.models.nafnet import NAFNet, NAFNetLocal
from labkit.models.srresnet import MSRResNet
from labkit.models.swinir import CONFIGS as SWINIR_CONFIGS
from labkit.models.swinir import SwinIR
from labkit.models.inpainting import InpaintingGenerator, PatchDiscriminator

#: SRResNet is BasicSR's MSRResNet (Ledig et al. 2017's generator without batch norm).
SRResNet = MSRResNet

MODELS: dict[str, type[nn.Module]] = {
    "edsr": EDSR,
    "msrresnet": MSRResNet,
    "srresnet": MSRResNet,
    "vgg_discriminator": VGGStyleDiscriminator,
    "swinir": SwinIR,
    "rrdbnet": RRDBNet,
    "inpainting_generator": InpaintingGenerator,
    "patch_discriminator": PatchDiscriminator,
    "hinet": HINet,
    "nafnet": NAFNet,
    "nafnet_local": NAFNetLocal,
}

#: Named configurations: name -> (model name, keyword arguments).
CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "edsr_baseline_x2": ("edsr", dict(num_feat=64, num_block=16, upscale=2)),
    "edsr_baseline_x3": ("edsr", dict(num_feat=64, num_block=16, upscale=3)),
    "edsr_baseline_x4": ("edsr", dict(num_feat=64, num_block=16, upscale=4)),
    "edsr_large_x2": ("edsr", dict(num_feat=256, num_block=32, upscale=2, res_scale=0.1)),
    "edsr_large_x4": ("edsr", dict(num_feat=256, num_block=32, upscale=4, res_scale=0.1)),
    "msrresnet_x4": ("msrresnet", dict(num_feat=64, num_block=16, upscale=4)),
    "vgg_discriminator_128": ("vgg_discriminator", dict(num_in_ch=3, num_feat=64, input_size=128)),
    # ESRGAN's generator (BasicSR layout): RRDB_PSNR_x4 / ESRGAN x4, and the pixel-unshuffle x2 / x1
    "rrdbnet_x4": ("rrdbnet", dict(num_feat=64, num_block=23, num_grow_ch=32, scale=4)),
    "rrdbnet_x2": ("rrdbnet", dict(num_feat=64, num_block=23, num_grow_ch=32, scale=2)),
    "rrdbnet_x1": ("rrdbnet", dict(num_feat=64, num_block=23, num_grow_ch=32, scale=1)),
    **{name: ("swinir", kwargs) for name, kwargs in SWINIR_CONFIGS.items()},
    # 002 write-up (notebook 06): U-Net generator gray+mask -> RGB; pix2pix's 70x70 PatchGAN
    # (conditional: it sees [gray, mask, RGB] = 5 channels), scored with LSGAN
    "inpainting_generator_002": ("inpainting_generator", dict(num_in_ch=2, num_out_ch=3, num_feat=64, num_down=3,
                                                              block_type="plain")),
    "patch_discriminator_002": ("patch_discriminator", dict(input_nc=5, ndf=64, n_layers=3, norm="batch")),
    "pix2pix_discriminator": ("patch_discriminator", dict(input_nc=6, ndf=64, n_layers=3, norm="batch")),
    **{name: ("hinet", kwargs) for name, kwargs in HINET_CONFIGS.items()},
    **{name: ("nafnet", kwargs) for name, kwargs in NAFNET_CONFIGS.items()},
}


def build(name: str, **kwargs: Any) -> nn.Module:
    """Build a model by architecture name (``MODELS``) or named configuration (``CONFIGS``).

    Keyword arguments override the configuration's. Raises ``KeyError`` listing the known names.
    """
    key = name.lower()
    if key in CONFIGS:
        arch, cfg = CONFIGS[key]
        return MODELS[arch](**{**cfg, **kwargs})
    if key in MODELS:
        return MODELS[key](**kwargs)
    raise KeyError(f"unknown model {name!r}; architectures: {sorted(MODELS)}, configurations: {sorted(CONFIGS)}")


__all__ = ["EDSR", "RRDBNet", "MSRResNet", "SRResNet", "VGGStyleDiscriminator", "SwinIR", "HINet", "NAFNet", "NAFNetLocal",
           "InpaintingGenerator", "PatchDiscriminator", "MODELS", "CONFIGS", "build"]
