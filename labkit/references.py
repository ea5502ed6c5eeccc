"""Published numbers the notebooks compare against: value, metric convention, dataset and source.

The one home of every number the course quotes from a paper, an official repository or a write-up: a
notebook prints them from here (:func:`show`, :func:`value`), never types them, and the repository's
``docs/references.md`` is generated from this table (``labkit docs``; a test fails when it is stale).

Each entry names its metric convention (:data:`CONVENTIONS`), dataset and source.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass


#: The conventions behind the entries' ``metric`` fields (as in BasicSR and the SR papers).
CONVENTIONS = (
    "PSNR on 8-bit values, 10 log10(255^2 / MSE); \"Y\" is MATLAB's BT.601 studio-swing luma "
    "(16 + 65.481 R + 128.553 G + 24.966 B, RGB in [0, 1]) with crop_border = scale pixels removed from each edge; "
    "SSIM with an 11x11 Gaussian window (sigma 1.5). Restoration papers (NAFNet, HINet on SIDD / GoPro) report "
    "RGB PSNR / SSIM with no crop.")


@dataclass(frozen=True)
class Published:
    """One published number.

    Attributes:
        key: its name in this table (e.g. ``"RRDB (DF2K) x4 Set5 PSNR-Y"``).
        value: the number as published.
        unit: ``"dB"``, ``""`` (SSIM, scores), ``"s"`` (seconds) or ``"place"``.
        metric: what was measured and how (channel, crop, range).
        dataset: the test set and split.
        source: the paper (with venue and table), official repository file, or write-up.
    """

    key: str
    value: float
    unit: str
    metric: str
    dataset: str
    source: str


_Y_X4 = "PSNR on Y (BT.601 studio), crop = scale, 8-bit"
_SSIM_Y = "SSIM on Y, crop = scale, 11x11 Gaussian window"
_SR_SOURCES = {
    "bicubic": "the SR papers' bicubic row (as in Lim et al., EDSR, CVPRW 2017, Table 3; Liang et al., SwinIR, "
               "ICCVW 2021, Table 3)",
    "EDSR": "Lim et al., Enhanced Deep Residual Networks for Single Image Super-Resolution (EDSR), CVPRW 2017, "
            "Table 3",
    "RRDB (DF2K)": "Wang et al., ESRGAN, ECCVW 2018 (the PSNR-oriented RRDB); quoted in Liang et al., SwinIR, "
                   "ICCVW 2021, Table 3",
    "SwinIR (DF2K)": "Liang et al., SwinIR: Image Restoration Using Swin Transformer, ICCVW 2021, Table 3 "
                     "(classical SR, trained on DF2K)",
    "SwinIR+ (x8 self-ensemble)": "Liang et al., SwinIR, ICCVW 2021, Table 3 (SwinIR+: geometric self-ensemble)",
}
#: (method, scale): {set: (PSNR-Y dB, SSIM-Y)}
_SR_TABLE: dict[tuple[str, int], dict[str, tuple[float, float]]] = {
    ("bicubic", 2): {"Set5": (33.66, 0.9299), "Set14": (30.24, 0.8688), "B100": (29.56, 0.8431),
                     "Urban100": (26.88, 0.8403)},
    ("EDSR", 2): {"Set5": (38.11, 0.9601), "Set14": (33.92, 0.9195), "B100": (32.32, 0.9013),
                  "Urban100": (32.93, 0.9351)},
    ("SwinIR (DF2K)", 2): {"Set5": (38.42, 0.9623), "Set14": (34.46, 0.9250), "B100": (32.53, 0.9041),
                           "Urban100": (33.81, 0.9427)},
    ("bicubic", 4): {"Set5": (28.42, 0.8104), "Set14": (26.00, 0.7027), "B100": (25.96, 0.6675),
                     "Urban100": (23.14, 0.6577)},
    ("EDSR", 4): {"Set5": (32.46, 0.8968), "Set14": (28.80, 0.7876), "B100": (27.71, 0.7420),
                  "Urban100": (26.64, 0.8033)},
    ("RRDB (DF2K)", 4): {"Set5": (32.73, 0.9011), "Set14": (28.99, 0.7917), "B100": (27.85, 0.7455),
                         "Urban100": (27.03, 0.8153)},
    ("SwinIR (DF2K)", 4): {"Set5": (32.92, 0.9044), "Set14": (29.09, 0.7950), "B100": (27.92, 0.7489),
                           "Urban100": (27.45, 0.8254)},
    ("SwinIR+ (x8 self-ensemble)", 4): {"Set5": (32.93, 0.9043), "Set14": (29.15, 0.7958),
                                        "B100": (27.95, 0.7494), "Urban100": (27.56, 0.8273)},
}


def _sr_entries() -> list[Published]:
    out = []
    for (method, scale), sets in _SR_TABLE.items():
        for name, (psnr, ssim) in sets.items():
            data = f"{name}, x{scale} MATLAB-bicubic LR"
            out.append(Published(f"{method} x{scale} {name} PSNR-Y", psnr, "dB", _Y_X4, data, _SR_SOURCES[method]))
            out.append(Published(f"{method} x{scale} {name} SSIM-Y", ssim, "", _SSIM_Y, data, _SR_SOURCES[method]))
    return out


_RGB = "PSNR on RGB, no crop, 8-bit"
_NAFNET = "Chen et al., Simple Baselines for Image Restoration (NAFNet), ECCV 2022, Tables 1-2; megvii-research/NAFNet README"
_HINET = "Chen et al., HINet: Half Instance Normalization Network for Image Restoration, CVPRW 2021"
_W000 = ("write-up 000: DACON AI Yangjae Hub super-resolution (dacon.io/competitions/official/235977), the team's "
         "README")
_W001 = ("write-up 001: LG AI camera image quality (flare removal), 4th-place solution README "
         "(dacon.io/competitions/official/235746)")
_W002 = "write-up 002: DACON image colorization + missing-region restoration, the team's README (Dacon_restore)"
_W004 = "write-up 004: NAFNet study on SIDD / GoPro (the author's experiment log, v1..v5)"
_SIDD004 = "the write-up's SIDD split: 160 pairs of 256x256 arrays, 128 / 16 / 16, its test 16"

_OTHER: list[Published] = [
    Published("NAFNet width 64 SIDD PSNR", 40.30, "dB", _RGB, "SIDD validation (1280 crops of 256x256)", _NAFNET),
    Published("NAFNet width 64 SIDD SSIM", 0.961, "", "SSIM on RGB, no crop", "SIDD validation", _NAFNET),
    Published("NAFNet width 64 GoPro PSNR (TLC)", 33.71, "dB", _RGB + ", with the test-time local converter",
              "GoPro test (1111 pairs)", _NAFNET),
    Published("NAFNet width 64 GoPro SSIM (TLC)", 0.967, "", "SSIM on RGB, no crop, with TLC", "GoPro test", _NAFNET),
    Published("NAFNet width 64 GoPro PSNR (no TLC)", 33.08, "dB", _RGB + ", without TLC", "GoPro test",
              "megvii-research/NAFNet (the TLC ablation: NAFNet without the local converter)"),
    Published("HINet SIDD PSNR", 39.99, "dB", _RGB, "SIDD validation", _HINET + ", Table 2"),
    Published("HINet GoPro PSNR (paper)", 32.71, "dB", _RGB, "GoPro test", _HINET + ", Table 1"),
    Published("HINet GoPro PSNR (official repository)", 32.77, "dB", _RGB, "GoPro test",
              "megvii-model/HINet README (released GoPro model)"),
    Published("000 RRDB+ public score", 23.408, "dB",
              "the competition's score: PSNR on RGB over whole 2048x2048 images, no crop",
              "DACON public leaderboard (test inputs 512x512 -> 2048x2048, x4)", _W000),
    Published("000 final place", 38, "place", "leaderboard place", "DACON final leaderboard", _W000),
    Published("001 final place", 4, "place", "leaderboard place (of 228 teams)", "DACON final leaderboard", _W001),
    Published("001 inference without patch skipping", 1614, "s", "inference time of the test set",
              "the contest's test images, the team's GPU", _W001),
    Published("001 inference with patch skipping", 1117, "s", "inference time of the test set",
              "the contest's test images, the team's GPU", _W001),
    Published("002 private score before SSIM loss", 0.41, "", "the competition's combined score (higher is better)",
              "DACON private leaderboard", _W002),
    Published("002 private score final", 0.53, "", "the competition's combined score (higher is better)",
              "DACON private leaderboard", _W002),
    Published("004 SIDD baseline PSNR", 32.08, "dB", _RGB, _SIDD004, _W004 + " (v1: the baseline NAFNet)"),
    Published("004 SIDD x12 data PSNR", 36.53, "dB", _RGB, _SIDD004, _W004 + " (flips + 2x2 patches: x12 data)"),
    Published("004 SIDD x12 data SSIM", 0.936, "", "SSIM on RGB, no crop", _SIDD004, _W004),
    Published("004 SIDD baseline architecture PSNR", 32.98, "dB", _RGB, _SIDD004,
              _W004 + " (encoder [1,1,1,28], middle 1)"),
    Published("004 SIDD bigger architecture PSNR", 32.92, "dB", _RGB, _SIDD004,
              _W004 + " (encoder [2,2,4,8], middle 12)"),
    Published("004 SIDD dropout 0.5 PSNR", 37.55, "dB", _RGB, _SIDD004, _W004 + " (x12 data + dropout 0.5: its best)"),
    Published("004 SIDD dropout 0.5 SSIM", 0.945, "", "SSIM on RGB, no crop", _SIDD004, _W004),
    Published("004 SIDD crop then 2x2 PSNR", 37.74, "dB", _RGB, _SIDD004,
              _W004 + " (random crop 512 then 2x2 patches instead of resizing; lower SSIM)"),
    Published("004 v5 resized-everything PSNR", 49.3, "dB", _RGB,
              "its v5 split, with the validation and test images resized too", _W004 + " (v5; not comparable)"),
]

#: Every published number, by key.
PUBLISHED: dict[str, Published] = {p.key: p for p in [*_sr_entries(), *_OTHER]}


def get(key: str) -> Published:
    """The published entry ``key``.

    Raises:
        KeyError: no such key (the message suggests the closest ones).
    """
    try:
        return PUBLISHED[key]
    except KeyError:
        close = difflib.get_close_matches(key, PUBLISHED, n=3, cutoff=0.5)
        raise KeyError(f"no published number {key!r}" + (f"; did you mean {', '.join(map(repr, close))}?"
                                                            if close else "")) from None


def value(key: str) -> float:
    """The published value of ``key`` (:func:`get`)."""
    return get(key).value


def text(key: str) -> str:
    """``"32.73 dB (PSNR on Y ..., Set5 ...; source)"``: a number with everything needed to compare it."""
    p = get(key)
    return f"{p.value:g}{' ' + p.unit if p.unit else ''} ({p.metric}; {p.dataset}; {p.source})"


def show(keys: list[str]) -> None:
    """Print the entries ``keys`` as a table (key, value, metric, dataset), then their sources once each."""
    entries = [get(k) for k in keys]
    width = max(len(p.key) for p in entries)
    sources: list[str] = []
    for p in entries:
        if p.source not in sources:
            sources.append(p.source)
        value_text = f"{p.value:g}{' ' + p.unit if p.unit else ''}"
        print(f"{p.key.ljust(width)}  {value_text:>10}  [{sources.index(p.source) + 1}] {p.metric}; {p.dataset}")
    for i, source in enumerate(sources, 1):
        print(f"[{i}] {source}")


def markdown() -> str:
    """The whole table as Markdown: the content of ``docs/references.md``."""
    lines = ["# Published numbers the course compares against", "",
             "Generated from `labkit/references.py` by `labkit docs`; do not edit by hand. The notebooks print "
             "these numbers from that table (`references.show`), never from memory.", "",
             "Conventions: " + CONVENTIONS, "",
             "| key | value | metric | dataset | source |", "|---|---|---|---|---|"]
    for p in PUBLISHED.values():
        lines.append(f"| {p.key} | {p.value:g}{' ' + p.unit if p.unit else ''} | {p.metric} | {p.dataset} | {p.source} |")
    return "\n".join(lines) + "\n"
