"""Run profiles: the one place where each notebook's ``smoke`` and ``full`` settings live.

``smoke`` runs on a laptop CPU in minutes on the bundled sample photos with small models (CI runs
it); ``full`` is the write-up's / paper's real configuration, meant for a GPU and a real dataset
(``data_root``). A notebook resolves its profile in its "derived" cell::

    cfg = profiles.get("02", profile, epochs=epochs)   # None overrides are ignored

Values are plain literals so that they print well and go into ``metrics.json`` unchanged.
"""

from __future__ import annotations

import ast

from copy import deepcopy
from typing import Any

from labkit.env import PROFILES as PROFILE_NAMES

#: 05: write-up 004's versions, the same in both profiles: architecture (``archs`` key); data 'arrays'
#: (the arrays with on-the-fly H/V flips), 'x12' (physical H/V flips x 2x2 patches, each patch resized back
#: to the array size as 004 did) or 'crop_2x2' (random crops of 2x the size from the full photos, split 2x2,
#: no resizing); dropout rate. :func:`get` returns a copy.
NAFNET_VARIANT_SPECS: dict[str, dict[str, Any]] = dict(
    baseline=dict(arch="gopro", data="arrays", drop_out_rate=0.0),
    arch=dict(arch="sidd", data="arrays", drop_out_rate=0.0),
    x12=dict(arch="gopro", data="x12", drop_out_rate=0.0),
    x12_dropout=dict(arch="gopro", data="x12", drop_out_rate=0.5),
    crop_2x2=dict(arch="gopro", data="crop_2x2", drop_out_rate=0.5),
)

#: 02: write-up 003's own SwinIR set-up (its README's table): x2, window 4, '3conv' residual connection,
#: drop / attn_drop / drop_path 0.1, mlp_ratio 4, embed 180, depths and heads [6]*4, batch 8, 64-px LR
#: patches (img_size 64). Smoke scales only the width and depth (embed 48, depths/heads [2, 2]/[4, 4],
#: mlp_ratio 2) and the patch (16-px LR, as the x4 trials), keeping the window, the residual connection,
#: the dropout and the classical 'pixelshuffle' upsampler; ``epochs x iters_per_epoch`` steps.
SWINIR_X2_FULL: dict[str, Any] = dict(
    scale=2, gt_size=128, batch_size=8, lr=2e-4, epochs=300, iters_per_epoch=1000,
    model=dict(window_size=4, embed_dim=180, depths=(6, 6, 6, 6), num_heads=(6, 6, 6, 6), mlp_ratio=4.0,
               drop_rate=0.1, attn_drop_rate=0.1, drop_path_rate=0.1, img_range=255.0, resi_connection="3conv",
               upsampler="pixelshuffle"))
SWINIR_X2_SMOKE: dict[str, Any] = dict(
    scale=2, gt_size=32, batch_size=16, lr=1e-3, epochs=5, iters_per_epoch=120,
    model=dict(window_size=4, embed_dim=48, depths=(2, 2), num_heads=(4, 4), mlp_ratio=2.0,
               drop_rate=0.1, attn_drop_rate=0.1, drop_path_rate=0.1, resi_connection="3conv",
               upsampler="pixelshuffle"))

PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    # 01: data and patching. Only sizes differ: full shows the write-ups' real sizes.
    "01": {
        "smoke": dict(scale=4, train_grid=4, test_patch=128, test_stride=64, flare_patch=256, flare_stride=128,
                      flare_larger=(512, 768), hsv_v_min=None, hsv_threshold=1000),
        "full": dict(scale=4, train_grid=4, test_patch=128, test_stride=64, flare_patch=256, flare_stride=128,
                     flare_larger=(512, 768, 1024), hsv_v_min=None, hsv_threshold=1000),
    },
    # 02: SR trials under one budget (the same number of optimizer steps for every model).
    # EDSR (Lim et al. 2017): L1, Adam (0.9, 0.999). SRGAN as BasicSR's train_SRGAN_x4: MSRResNet
    # pre-trained on L1, then L1 1e-2 + VGG19 conv5_4 perceptual 1.0 + vanilla GAN 5e-3, Adam 1e-4
    # for G and D. Without the VGG19 weights (offline smoke) the perceptual term is dropped and the
    # stage becomes the SRGAN paper's SRGAN-MSE variant (Ledig et al. 2017, eq. 3 with the MSE content
    # loss: MSE + 1e-3 adversarial): 1e-2 L1 + 5e-3 GAN alone lets the adversarial term (90 % of the
    # loss) pull the generator anywhere (measured: 22 to 28 dB PSNR-Y over seeds and machines), and
    # 1.0 L1 + 1e-3 GAN keeps training the pixel loss (PSNR rose over SRResNet's at seeds 42 and 0).
    # ``channels_last``: fit's NHWC option, ~20 % faster steps for EDSR / SRResNet on a 2-core CPU
    # (labkit bench --section cpu), nothing for SwinIR.
    # SwinIR full: write-up 003's architecture at x4 (window 4, embed 180, depths/heads [6]*4,
    # mlp_ratio 4, drop/attn_drop/drop_path 0.1, '3conv'); ``swinir_x2``: 003's own x2 set-up.
    "02": {
        "smoke": dict(scale=4, gt_size=64, batch_size=16, lr=5e-4, epochs=5, iters_per_epoch=120,
                      lr_step=3, lr_gamma=0.5, val_names=("rocket",), early_stopping=None, channels_last=True,
                      edsr=dict(num_feat=32, num_block=4),
                      srresnet=dict(num_feat=32, num_block=4),
                      # smoke SwinIR: the lightweight model's one-step upsampler ('pixelshuffledirect'),
                      # 3x cheaper per step on CPU than the classical one; lr 1e-3 (measured: 500 steps
                      # beat bicubic by ~0.3 dB on the held-out photos, 5e-4 did not in the same budget)
                      swinir=dict(window_size=8, embed_dim=48, depths=(2, 2), num_heads=(4, 4),
                                  mlp_ratio=2.0, resi_connection="1conv", upsampler="pixelshuffledirect"),
                      swinir_lr=1e-3,
                      gan=dict(epochs=2, iters_per_epoch=50, gt_size=128, batch_size=8, lr=1e-4,
                               d_num_feat=16, pixel_weight=1e-2,
                               perceptual_weight=1.0, gan_weight=5e-3, gan_type="vanilla",
                               without_vgg=dict(pixel_loss="mse", pixel_weight=1.0, gan_weight=1e-3)),
                      swinir_x2=SWINIR_X2_SMOKE),
        "full": dict(scale=4, gt_size=192, batch_size=16, lr=1e-4, epochs=300, iters_per_epoch=1000,
                     lr_step=200, lr_gamma=0.5, val_names=("rocket",), early_stopping=None, channels_last=True,
                     edsr=dict(num_feat=64, num_block=16),
                     srresnet=dict(num_feat=64, num_block=16),
                     swinir=dict(window_size=4, embed_dim=180, depths=(6, 6, 6, 6),
                                 num_heads=(6, 6, 6, 6), mlp_ratio=4.0, drop_rate=0.1, attn_drop_rate=0.1,
                                 drop_path_rate=0.1, img_range=255.0, resi_connection="3conv", upsampler="pixelshuffle"),
                     swinir_lr=2e-4,
                     gan=dict(epochs=400, iters_per_epoch=1000, gt_size=128, batch_size=16, lr=1e-4,
                              d_num_feat=64, pixel_weight=1e-2,
                              perceptual_weight=1.0, gan_weight=5e-3, gan_type="vanilla",
                              without_vgg=dict(pixel_loss="mse", pixel_weight=1.0, gan_weight=1e-3)),
                     swinir_x2=SWINIR_X2_FULL),
    },
    # 03: RRDB+ (write-up 000). full = the write-up's recipe exactly: fine-tune all of RRDB_PSNR_x4
    # (64 feat, 23 blocks, growth 32) on 16 non-overlapping patches per 512/2048 training pair,
    # Flip/Transpose/RandomRotate90/ShiftScaleRotate, loss 2*L1 + 1*L2, Adam lr 1e-4 betas (0.9, 0.99),
    # StepLR(3, 0.5), early stopping patience 2 on the validation loss, batch 4, 7 epochs, seed 42;
    # test inputs through 49 overlapping patches (128 px, stride 64 on a 512 input) and the x8
    # geometric self-ensemble. smoke: a miniature of the competition made from the bundled photos
    # (3 x 3 evenly spaced 256 px HR crops per photo -> 16 patches of 16/64 px each) and the same recipe.
    # Without the official weights a small RRDB (24 feat, 2 blocks, growth 12) is first *pretrained* on
    # random crops of the bundled training photos, the analogue of DF2K (L1, Adam 2e-3 with cosine decay,
    # batch 16, 1200 steps, the last weights kept: measured +0.8 dB PSNR-Y / +0.4 dB RGB over bicubic on the held-out
    # photos for seed 0), then fine-tuned with the
    # recipe; ``scratch``: a control runs the recipe from random weights for as many steps as both stages.
    # The pretraining ships as the course checkpoint ``03_rrdb_pretrain`` (``labkit course build 03_rrdb_pretrain``,
    # i.e. ``labkit train 03 -p net=pretrain``), which the smoke notebook loads instead of pretraining.
    # ``finetune_steps`` caps the fine-tuning of the official 16.7M-parameter model in smoke (a CPU).
    # ``patches``: 'grid' (000's 16 non-overlapping patches per pair) or 'random' (as many random crops, the control).
    # ``channels_last`` (smoke): the fine-tuning and the control in NHWC memory, measured 0.70x the step time of the
    # small RRDB at batch 4 on one thread of this 2-core CPU (labkit bench --section cpu: 0.80x at batch 8); the course
    # checkpoint's pretraining keeps the default layout, so ``labkit course build`` remakes the committed file.
    "03": {
        "smoke": dict(scale=4, hr_size=256, crops_per_side=3, grid=4, val_names=("rocket",), val_fraction=0.0,
                      pretrained="auto", model=dict(num_feat=24, num_block=2, num_grow_ch=12),
                      pretrain=dict(steps=1200, epochs=12, batch_size=16, gt_size=64, lr=2e-3, min_lr=2e-5, loss="l1"),
                      scratch=True,
                      batch_size=4, lr=1e-4, betas=(0.9, 0.99), epochs=7, lr_step=3, lr_gamma=0.5,
                      patience=2, loss={"l1": 2.0, "l2": 1.0}, finetune_steps=20,
                      test_grid=4, augment_p=0.5, patches="grid", channels_last=True),
        "full": dict(scale=4, hr_size=None, crops_per_side=None, grid=4, val_names=(), val_fraction=0.05,
                     pretrained="rrdb_psnr_x4", model=None, pretrain=None, scratch=False,
                     batch_size=4, lr=1e-4, betas=(0.9, 0.99), epochs=7, lr_step=3, lr_gamma=0.5,
                     patience=2, loss={"l1": 2.0, "l2": 1.0}, finetune_steps=None,
                     test_grid=4, augment_p=0.5, patches="grid", channels_last=False),
    },
    # 04: HINet flare removal (write-up 001). full = the 4th-place code's recipe (trainer_256.py):
    # HINet GoPro configuration (wf 64, depth 5, HIN at levels 3..4; it fine-tuned HINet-GoPro.pth),
    # 256/128 patches, HSV threshold 1000, larger 512/768/1024 patches resized to 256, 10 folds
    # (fold 0 validates), batch 16, Adam 5e-5 with cosine decay to 1e-7, grad clip 1,
    # augmentation from the 3rd epoch, early stopping patience 30, Charbonnier loss over both
    # stages (its extra 0.05 x edge loss is left out). smoke: a narrow HINet (wf 16, depth 3, HIN
    # at every level as the SIDD model) on 96/48 patches of flared sample photos, the official
    # HINet training's PSNR loss, 120 CPU steps; the threshold scales with the patch area
    # (1000 x (96/256)^2 = 140). Measured: 120 steps beat the flared input by ~0.9 dB on the held-out photos.
    "04": {
        "smoke": dict(patch_size=96, stride=48, hsv_threshold=140, larger_sizes=(192,), max_larger_per_image=6,
                      flares_per_photo=2, folds=3, valid_fold=0, process_num=2,
                      hinet=dict(wf=16, depth=3, hin_position_left=0, hin_position_right=2),
                      loss="psnr", batch_size=8, lr=2e-3, min_lr=1e-5, epochs=4, iters_per_epoch=30,
                      aug_start_epoch=2, grad_clip=1.0, early_stopping=None, val_patches=32,
                      infer_batch=8, timing_repeats=1, max_test_images=None,
                      # notebook 04 (issue 20): starts from the course checkpoint; its short runs (the fine-tune,
                      # the from-scratch control, every comparison) share one budget and seed
                      course="04_hinet", short=dict(epochs=2, iters_per_epoch=8, lr=1e-4, aug_start_epoch=1),
                      scratch_lr=2e-3, flare_threshold=0.1,
                      # the course checkpoint's windows (labkit.labs.lab04.flare_windows): None keeps the recipe's
                      flare_windows=None,
                      second=dict(patch_size=132, stride=66, hsv_threshold=265, larger_sizes=(264,))),
        "full": dict(patch_size=256, stride=128, hsv_threshold=1000, larger_sizes=(512, 768, 1024),
                     max_larger_per_image=None, flares_per_photo=1, folds=10, valid_fold=0, process_num=8,
                     hinet=dict(wf=64, depth=5, hin_position_left=3, hin_position_right=4),
                     loss="charbonnier", batch_size=16, lr=5e-5, min_lr=1e-7, epochs=500, iters_per_epoch=None,
                     aug_start_epoch=2, grad_clip=1.0, early_stopping=30, val_patches=256,
                     infer_batch=32, timing_repeats=1, max_test_images=20,
                     course=None, short=dict(epochs=20, iters_per_epoch=500, lr=5e-5, aug_start_epoch=2),
                     scratch_lr=5e-5, flare_threshold=0.1,
                     second=dict(patch_size=352, stride=176, hsv_threshold=1890, larger_sizes=(704, 1056, 1408))),
    },
    # 05: write-up 004's NAFNet study. The variants are the write-up's versions (v1 baseline, the
    # architecture change, x12 data = H/V flips + 2x2 patches, dropout 0.5, random crop then 2x2
    # patches instead of resizing); each trains under the same step budget. Denoising data are
    # SIDD's 256-px arrays (full, data_root) or SIDD-like arrays made from the bundled photos with
    # Poisson-Gaussian noise (smoke); deblurring is GoPro (full, gopro_root) or trajectory motion blur.
    # Optimizer: NAFNet's official AdamW, betas (0.9, 0.9), no weight decay; lr: 004's 1e-4 in full, 2e-3
    # in smoke (measured: 300 steps then beat the blurred input on the held-out photos, 1e-3 did not).
    "05": {
        "smoke": dict(
            sidd_size=64, crops_per_photo=6, sidd_counts=(24, 6, 6), crop_size=128,
            noise=dict(shot_noise=0.01, read_noise=0.02), blur_kernel=15, blur_margin=7,
            width=8,
            archs=dict(gopro=dict(enc_blk_nums=(1, 1, 1, 2), middle_blk_num=1, dec_blk_nums=(1, 1, 1, 1)),
                       sidd=dict(enc_blk_nums=(1, 1, 2, 2), middle_blk_num=2, dec_blk_nums=(1, 1, 1, 1))),
            variants=("baseline", "arch", "x12", "x12_dropout", "crop_2x2"),
            variant_specs=NAFNET_VARIANT_SPECS,
            batch_size=8, lr=2e-3, epochs=4, iters_per_epoch=25,
            # deblurring: width 8 keeps the course checkpoint 05_deblur (labkit/labs/lab05.py) under 2 MB;
            # the notebook fine-tunes it (and trains the from-scratch control) for epochs x iters_per_epoch steps
            deblur=dict(width=8, arch="gopro", gt_size=64, batch_size=8, lr=2e-3, epochs=2, iters_per_epoch=50),
            deblur_epochs=None,   # `labkit train 05 -p net=deblur -p deblur_epochs=N`: a longer run (the course checkpoint)
        ),
        "full": dict(
            sidd_size=256, crops_per_photo=20, sidd_counts=(128, 16, 16), crop_size=512,
            noise=dict(shot_noise=0.01, read_noise=0.02), blur_kernel=31, blur_margin=15,
            width=32,
            archs=dict(gopro=dict(enc_blk_nums=(1, 1, 1, 28), middle_blk_num=1, dec_blk_nums=(1, 1, 1, 1)),
                       sidd=dict(enc_blk_nums=(2, 2, 4, 8), middle_blk_num=12, dec_blk_nums=(2, 2, 2, 2))),
            variants=("baseline", "arch", "x12", "x12_dropout", "crop_2x2"),
            variant_specs=NAFNET_VARIANT_SPECS,
            batch_size=8, lr=1e-4, epochs=60, iters_per_epoch=200,
            deblur=dict(width=32, arch="gopro", gt_size=256, batch_size=8, lr=1e-4, epochs=100, iters_per_epoch=500),
            deblur_epochs=None,
        ),
    },
    # 06: inpainting + colorization GAN (write-up 002). G = adv + 50 L1 + 50 SSIM, D = real + fake +
    # lambda_gp * GP (per-sample WGAN-GP), AdamW, StepLR G every 10 epochs x0.5 and D every 15 x0.5
    # (smoke keeps the 2:3 ratio on its few epochs), 8:2 split, 10k / 3k limits. Three runs under
    # one budget: baseline (no D), full recipe (with GP), recipe without GP (the write-up's failure).
    "06": {
        "smoke": dict(patch_size=48, batch_size=8, mask_fraction=0.2, epochs=10, iters_per_epoch=10,
                      lr_g=1e-3, lr_d=1e-3, betas=(0.5, 0.999), weight_decay=1e-2,
                      g_step=4, d_step=6, lr_gamma=0.5,
                      pixel_weight=50.0, ssim_weight=50.0, adv_weight=1.0, lambda_gp=10.0, gp_reduction="sample",
                      generator=dict(num_feat=12, num_down=3, block_type="plain"),
                      discriminator=dict(ndf=12, n_layers=3, norm="instance"),
                      collapse_loss=1e-3, collapse_patience=50,
                      val_fraction=0.2, train_limit=None, val_limit=None, eval_max_side=256,
                      # the stated easier degradation of the smoke scale (issue 20): the input keeps a quarter of
                      # its colour (a faded photo), because colouring a gray photo is learned from 10k images,
                      # not from the six bundled ones; 0 is the write-up's gray input (the full profile's)
                      chroma_kept=0.25),
        "full": dict(patch_size=None, batch_size=16, mask_fraction=0.2, epochs=50, iters_per_epoch=None,
                     lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999), weight_decay=1e-2,
                     g_step=10, d_step=15, lr_gamma=0.5,
                     pixel_weight=50.0, ssim_weight=50.0, adv_weight=1.0, lambda_gp=10.0, gp_reduction="sample",
                     generator=dict(num_feat=64, num_down=3, block_type="plain"),
                     discriminator=dict(ndf=64, n_layers=3, norm="instance"),
                     collapse_loss=1e-3, collapse_patience=200,
                     val_fraction=0.2, train_limit=10000, val_limit=3000, eval_max_side=None, chroma_kept=0.0),
    },
}


def get(notebook: str, profile: str, **overrides: Any) -> dict[str, Any]:
    """The settings of ``notebook`` (``"02"`` or ``"02_sr_trials..."``) under ``profile``.

    Keyword overrides replace settings; ``None`` values are ignored (a parameters cell's
    ``epochs = None`` means "the profile's").

    Raises:
        KeyError: unknown notebook or profile; an override names a setting the profile lacks.
    """
    key = notebook[:2]
    if key not in PROFILES:
        raise KeyError(f"no profiles for notebook {notebook!r}; known: {sorted(PROFILES)}")
    if profile not in PROFILES[key]:
        raise KeyError(f"unknown profile {profile!r} for notebook {key}; use one of {PROFILE_NAMES}")
    cfg = deepcopy(PROFILES[key][profile])
    for name, value in overrides.items():
        if value is None:
            continue
        if name not in cfg:
            raise KeyError(f"notebook {key} has no setting {name!r}; settings: {sorted(cfg)}")
        cfg[name] = value
    return cfg


def parse_parameter(text: str) -> tuple[str, Any]:
    """Parse one ``-p key=value`` (``labkit run``, ``labkit train``): the value is a Python literal if it parses as
    one, else a string (``true``/``false``/``none`` in any case are the constants).

    Raises:
        ValueError: no ``=`` or an empty key.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise ValueError(f"-p expects key=value with a Python identifier as key, got {text!r}")
    raw = raw.strip()
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = {"true": True, "false": False, "none": None}.get(raw.lower(), raw)
    return key, value
