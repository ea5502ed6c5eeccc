"""Every dataset of data/README.md (and the official checkpoints of :mod:`labkit.weights`) as data: ``labkit data``.

Each :class:`Entry` says where the data come from (the official page), its size, licence or terms, whether the
files download directly or need an account / a browser (Google Drive), the file names (the same on a mirror),
the SHA-256 where the source publishes one (and where it was published), how the archives unpack into the
layout the loaders expect, and a ``check`` that runs the real loader of :mod:`labkit.data` on the folder and
reports counts and image sizes.

- :func:`listing_rows` / :func:`format_listing`: the ``labkit data list`` table.
- :func:`get`: ``labkit data get NAME [--root DIR] [--mirror URL]``: download (resumed), verify, extract
  safely, place, check (:mod:`labkit.fetch`); for an entry behind an account or on Google Drive, print the
  exact steps, then check the folder.
- :func:`check`: ``labkit data check NAME DIR``.

Checksums are never made up: only the two checkpoints carry a pinned value (the first 8 hex digits of the
SHA-256 that BasicSR / Real-ESRGAN put in the released file names, as :data:`labkit.weights.NAMED_WEIGHTS`
holds them). No dataset page publishes a digest, so for the datasets the first complete download records its
hash in the user's cache (:func:`labkit.fetch.hash_record_path`) and later downloads are checked against it.
Sizes are approximate (the source pages' figures, or data/README.md's).
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from labkit import fetch
from labkit.data.dacon_sr import dacon_sr_paths
from labkit.data.flare import flare_pairs
from labkit.data.gopro import gopro_pairs
from labkit.data.inpainting import DaconInpaintingDataset
from labkit.data.pairing import PairedFolderDataset
from labkit.data.sidd import load_sidd_npy, sidd_medium_pairs
from labkit.data.sr import div2k_paths, sr_benchmark_paths
from labkit.errors import LabkitError
from labkit.io import image_size, list_images
from labkit.weights import NAMED_WEIGHTS, load_state_dict_file, sha256_file, unwrap_state_dict

__all__ = ["RemoteFile", "Entry", "CATALOG", "DOWNLOADS", "ManualStepsNeeded", "find", "default_root",
           "data_folder", "listing_rows", "format_listing", "check", "get", "size_summary"]

#: sub-folder of ``--root`` where archives are downloaded (kept, so a rerun verifies instead of downloading)
DOWNLOADS = "downloads"
DIRECT, DRIVE, ACCOUNT = "direct", "google-drive", "account"


class ManualStepsNeeded(LabkitError):
    """An entry that cannot be fetched directly and whose files are not there yet (the steps were printed)."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of an entry.

    Attributes:
        name: the file name, in ``--root``'s downloads and on a mirror (``<mirror>/<name>``).
        url: the direct URL, or None (Google Drive, an account: see the entry's ``steps``).
        sha256: the published SHA-256 (full or prefix), or None (recorded on first download).
        sha256_source: where ``sha256`` was published.
    """

    name: str
    url: str | None = None
    sha256: str | None = None
    sha256_source: str = ""


@dataclass(frozen=True)
class Entry:
    """A dataset (one section of data/README.md) or an official checkpoint.

    Attributes:
        name: the ``labkit data`` name. title: for people. anchor: the data/README.md section (``#anchor``).
        size, terms, source: approximate size, licence or terms of use, official page.
        access: ``'direct'``, ``'google-drive'`` (public, but through a browser or ``gdown``) or ``'account'``.
        files: the files to fetch. extract_to: where archives unpack, relative to the root (None: not archives).
        folder: the data folder relative to the root (a glob pattern allowed: the first match).
        check: ``folder -> report lines``, running the loader. place: after extraction, ``root -> lines``.
        steps: the manual steps (``{root}`` is filled in). kind: ``'dataset'`` or ``'weights'``.
    """

    name: str
    title: str
    anchor: str
    size: str
    terms: str
    source: str
    access: str
    folder: str
    check: Callable[[Path], list[str]]
    files: tuple[RemoteFile, ...] = ()
    extract_to: str | None = "."
    place: Callable[[Path], list[str]] | None = None
    steps: tuple[str, ...] = ()
    kind: str = "dataset"


# ----------------------------------------------------------------------------------------- checks (the loaders)


def size_summary(paths: list[Path], limit: int = 20) -> str:
    """``'2040x1356 .. 2040x2040'`` (width x height, smallest and largest area) over the first ``limit`` images."""
    if not paths:
        return "no images"
    sizes = sorted({image_size(p) for p in paths[:limit]}, key=lambda hw: (hw[0] * hw[1], hw))
    fmt = [f"{w}x{h}" for h, w in (sizes[0], sizes[-1])]
    span = fmt[0] if len(sizes) == 1 else f"{fmt[0]} .. {fmt[1]}"
    return span + (f" (first {limit} read)" if len(paths) > limit else "")


def _check_paired(lq: Path, gt: Path, scale: int, what: str) -> str:
    ds = PairedFolderDataset(lq, gt, scale=scale)
    ds[0]  # reads the first pair: a size that is not scale x the LR size stops here, named
    return (f"{what}: {len(ds.pairs)} pairs; HR {size_summary([p[1] for p in ds.pairs])}, "
            f"LR {size_summary([p[0] for p in ds.pairs])} ({gt}, {lq})")


def check_div2k(folder: Path) -> list[str]:
    """DIV2K / DF2K at x4 (:func:`labkit.data.sr.div2k_paths`, :class:`PairedFolderDataset`), both splits if present."""
    lines, first_error = [], None
    for split in ("train", "valid"):
        try:
            lr_hr = div2k_paths(folder, 4, split)
        except FileNotFoundError as e:
            first_error = first_error or e
            continue
        lines.append(_check_paired(lr_hr[1], lr_hr[0], 4, f"{split} x4"))
    if not lines:
        raise first_error
    return lines


def check_sr_benchmark(folder: Path) -> list[str]:
    """EDSR's benchmark pack (Set5, Set14, B100, Urban100; :func:`labkit.data.sr.sr_benchmark_paths`), or one set."""
    sets = [folder / s for s in ("Set5", "Set14", "B100", "Urban100") if (folder / s).is_dir()]
    lines = []
    for d in sets or [folder]:
        hr, lr = sr_benchmark_paths(d, 4)
        hr_files = list_images(hr)
        lr_note = f", LR x4 {len(list_images(lr))} ({size_summary(list_images(lr))})" if lr else ", no LR x4 folder"
        lines.append(f"{d.name}: HR {len(hr_files)} images ({size_summary(hr_files)}){lr_note}")
    return lines


def check_flare(folder: Path) -> list[str]:
    """Flare7K's real test pairs or the LG contest (:func:`labkit.data.flare.flare_pairs`)."""
    pairs = flare_pairs(folder)
    lines = [f"{len(pairs)} pairs; input {size_summary([p[1] for p in pairs])}, target {size_summary([p[2] for p in pairs])}"]
    for extra in ("mask", "test_input_img"):
        if (folder / extra).is_dir():
            lines.append(f"{extra}/: {len(list_images(folder / extra))} images")
    return lines


def check_dacon_sr(folder: Path) -> list[str]:
    """DACON SR (:func:`labkit.data.dacon_sr.dacon_sr_paths`): train lr/hr pairs, test lr."""
    paths = dacon_sr_paths(folder)
    lines = [_check_paired(paths["train_lr"], paths["train_hr"], 4, "train x4")]
    test = list_images(paths["test_lr"])
    return lines + [f"test/lr: {len(test)} images ({size_summary(test)})"
                    + (f", test/hr: {len(list_images(paths['test_hr']))}" if "test_hr" in paths else "")]


def check_sidd_npy(folder: Path) -> list[str]:
    """Write-up 004's SIDD arrays (:func:`labkit.data.sidd.load_sidd_npy`)."""
    noisy, gt = load_sidd_npy(folder)
    return [f"noisy {tuple(noisy.shape)} {noisy.dtype}, gt {tuple(gt.shape)} {gt.dtype} ({folder})"]


def check_sidd_medium(folder: Path) -> list[str]:
    """SIDD-Medium sRGB (:func:`labkit.data.sidd.sidd_medium_pairs`)."""
    pairs = sidd_medium_pairs(folder)
    scenes = {p[0].parent.name for p in pairs}
    return [f"{len(pairs)} noisy/GT pairs in {len(scenes)} scene folders; {size_summary([p[0] for p in pairs])}"]


def check_gopro(folder: Path) -> list[str]:
    """GoPro, official or flat layout (:func:`labkit.data.gopro.gopro_pairs`), train and test."""
    lines = []
    for split in ("train", "test"):
        pairs = gopro_pairs(folder, split)
        lines.append(f"{split}: {len(pairs)} blur/sharp pairs; {size_summary([p[1] for p in pairs])}")
    return lines


def check_dacon_inpainting(folder: Path) -> list[str]:
    """DACON colorization + inpainting (:class:`labkit.data.inpainting.DaconInpaintingDataset`), train.csv and test.csv."""
    train = DaconInpaintingDataset(folder, "all", with_mask=False)
    test = DaconInpaintingDataset(folder, "test", with_mask=False)
    inputs = list_images(folder / "train_input") if (folder / "train_input").is_dir() else []
    return [f"train.csv: {len(train)} pairs ({size_summary(inputs)}); test.csv: {len(test)} inputs"]


def _check_weights(entry_name: str) -> Callable[[Path], list[str]]:
    def run(folder: Path) -> list[str]:
        spec = find(entry_name).files[0]
        path = folder / spec.name if folder.is_dir() else folder
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file (expected the checkpoint {spec.name}; "
                                    f"`labkit data get {entry_name}`)")
        digest = sha256_file(path)
        if spec.sha256 and not digest.startswith(spec.sha256):
            raise ValueError(f"{path}: sha256 {digest} does not start with the pinned {spec.sha256} "
                             f"({spec.sha256_source})")
        state = unwrap_state_dict(load_state_dict_file(path), source=str(path))
        n = sum(int(v.numel()) for v in state.values() if hasattr(v, "numel"))
        return [f"{path.name}: {len(state)} tensors, {n / 1e6:.2f} M values; sha256 {digest[:16]}..."
                + (f" matches the pinned {spec.sha256}" if spec.sha256 else "")]
    return run


# ----------------------------------------------------------------------------------------- placement


def place_flickr2k(root: Path) -> list[str]:
    """DF2K: move ``Flickr2K/Flickr2K_HR/*.png`` into ``DIV2K/DIV2K_train_HR/`` and ``Flickr2K_LR_bicubic/X4/*``
    into ``DIV2K/DIV2K_train_LR_bicubic/X4/`` (data/README.md#div2k; the names do not clash with DIV2K's)."""
    moves = ((root / "Flickr2K" / "Flickr2K_HR", root / "DIV2K" / "DIV2K_train_HR"),
             (root / "Flickr2K" / "Flickr2K_LR_bicubic" / "X4", root / "DIV2K" / "DIV2K_train_LR_bicubic" / "X4"))
    lines = []
    for src, dst in moves:
        files = list_images(src) if src.is_dir() else []
        dst.mkdir(parents=True, exist_ok=True)
        for f in files:
            os.replace(f, dst / f.name)
        lines.append(f"moved {len(files)} files from {src} into {dst}")
    return lines


# ----------------------------------------------------------------------------------------- the catalog


def _weights_file(name: str, kind: str) -> RemoteFile:
    src = NAMED_WEIGHTS[name]
    filename = src[2] if len(src) > 2 and src[2] else src[0].rsplit("/", 1)[-1]
    return RemoteFile(filename, src[0] if kind == DIRECT else None, src[1],
                      "the release file name's SHA-256 prefix, as labkit.weights.NAMED_WEIGHTS holds it")


_DIV2K = "http://data.vision.ee.ethz.ch/cvl/DIV2K/"
_EDSR = "https://cv.snu.ac.kr/research/EDSR/"


def _dacon_steps(competition: str, layout: str, folder: str) -> tuple[str, ...]:
    return (f"Sign in at https://dacon.io and open {competition}; accept its rules on the data tab.",
            "Download the data zip in the browser (an account is needed; the files are not redistributable).",
            f"unzip -q <the downloaded zip> -d {{root}}/{folder}   # so that {layout}",
            f"labkit data check {{name}} {{root}}/{folder}")


def _drive_steps(page: str, link: str, filename: str) -> tuple[str, ...]:
    url = link if link.startswith("https://") else "<that link>"
    return (f"Open {page} and follow its Google Drive link ({link}).",
            f"pip install gdown; gdown --fuzzy '{url}' -O {{root}}/{DOWNLOADS}/{filename}   "
            "# or save it there from the browser",
            "labkit data get {name} --root {root}   # again: verifies, records the hash, extracts, checks")


CATALOG: tuple[Entry, ...] = (
    Entry("div2k", "DIV2K (800 train + 100 valid, HR + bicubic x4 LR)", "div2k", "4 zips (HR train / valid, LR x4 train / valid); size not stated here",
          "research use (NTIRE 2017 challenge data; terms on the page)", _DIV2K, DIRECT, "DIV2K", check_div2k,
          tuple(RemoteFile(f"{n}.zip", f"{_DIV2K}{n}.zip") for n in
                ("DIV2K_train_HR", "DIV2K_train_LR_bicubic_X4", "DIV2K_valid_HR", "DIV2K_valid_LR_bicubic_X4")),
          extract_to="DIV2K"),
    Entry("flickr2k", "Flickr2K (DF2K = DIV2K + Flickr2K, 2650 images)", "div2k", "2650 2K photos + LR x4 (one tar); size not stated here",
          "Flickr photos collected by the EDSR authors; research use", f"{_EDSR} (EDSR-PyTorch)", DIRECT, "DIV2K",
          check_div2k, (RemoteFile("Flickr2K.tar", f"{_EDSR}Flickr2K.tar"),), place=place_flickr2k),
    Entry("sr-benchmark", "Set5 / Set14 / B100 / Urban100 (EDSR's benchmark pack)", "sr-benchmarks",
          "~250 MB (EDSR-PyTorch README)", "the sets' original terms (research use)", f"{_EDSR} (EDSR-PyTorch)",
          DIRECT, "benchmark", check_sr_benchmark, (RemoteFile("benchmark.tar", f"{_EDSR}benchmark.tar"),)),
    Entry("dacon-sr", "DACON AI Yangjae Hub SR (512 -> 2048)", "dacon-sr", "not published (2048 px PNGs)",
          "DACON competition rules (account; no redistribution)", "https://dacon.io/competitions/official/235977/data",
          ACCOUNT, "dacon_sr", check_dacon_sr,
          steps=_dacon_steps("competition 235977 (https://dacon.io/competitions/official/235977/data)",
                             "train/lr, train/hr and test/lr sit directly inside", "dacon_sr")),
    Entry("lg-flare", "LG camera image quality / light scatter (DACON 2021)", "lg-flare-contest",
          "not published (3264 x 2448 PNGs)", "DACON competition rules (account; no redistribution)",
          "https://dacon.io/competitions/official/235746/data", ACCOUNT, "dacon_lg", check_flare,
          steps=_dacon_steps("competition 235746 (https://dacon.io/competitions/official/235746/data)",
                             "train.csv sits directly inside", "dacon_lg")),
    Entry("flare7k", "Flare7K++ (test_data/real pairs)", "flare7k", "one zip (Flare7K++); size not stated here",
          "the repository's licence section (check it before use)", "https://github.com/ykdai/Flare7K", DRIVE,
          "Flare7K/**/test_data/real", check_flare, (RemoteFile("Flare7Kpp.zip"),), extract_to="Flare7K",
          steps=_drive_steps("https://github.com/ykdai/Flare7K (Data Download, Flare7K++)",
                             "https://drive.google.com/file/d/1PPXWxn7gYvqwHX301SuWmjI7IUUtqxab/view",
                             "Flare7Kpp.zip")),
    Entry("sidd-arrays", "SIDD arrays of write-up 004 (256 px, .npy)", "sidd-arrays", "~60 MB (N = 160)",
          "SIDD's terms (via DACON 236006's data; account)", "https://dacon.io/competitions/official/236006/data",
          ACCOUNT, "SIDD", check_sidd_npy,
          steps=("The arrays are write-up 004's preprocessing of SIDD (DACON 236006's data, an account is needed); "
                 "they are not published as files.",
                 "Copy noisy_images_256.npy and gt_images_256.npy into {root}/SIDD (e.g. from your Drive: "
                 "cp /content/drive/MyDrive/SIDD/*.npy {root}/SIDD/).",
                 "labkit data check {name} {root}/SIDD")),
    Entry("sidd-medium", "SIDD-Medium sRGB", "sidd-medium", "~12 GB", "SIDD's terms (research use; see the site)",
          "https://abdokamel.github.io/sidd/", DRIVE, "SIDD_Medium_Srgb", check_sidd_medium,
          (RemoteFile("SIDD_Medium_Srgb.zip"),),
          steps=_drive_steps("https://abdokamel.github.io/sidd/", "the SIDD-Medium sRGB link on that page",
                             "SIDD_Medium_Srgb.zip")),
    Entry("gopro", "GoPro deblurring (GOPRO_Large, 2103 + 1111 pairs)", "gopro", "~9 GB",
          "terms on the project page (research use)", "https://seungjunnah.github.io/Datasets/gopro", DRIVE,
          "GOPRO_Large", check_gopro, (RemoteFile("GOPRO_Large.zip"),),
          steps=_drive_steps("https://seungjunnah.github.io/Datasets/gopro", "the GOPRO_Large.zip link on that page",
                             "GOPRO_Large.zip")
          + ("Or the flat Kaggle 'DBlur' copy (the kaggle CLI and your API token ~/.kaggle/kaggle.json), unzipped "
             "into {root}/DBlur: labkit data check {name} {root}/DBlur",)),
    Entry("dacon-inpainting", "DACON colorization + missing-region restoration", "dacon-inpainting", "not published",
          "DACON competition rules (account; no redistribution)", "https://dacon.io (write-up 002's competition)",
          ACCOUNT, "dacon_colorization", check_dacon_inpainting,
          steps=_dacon_steps("the image colorization + missing-region restoration competition (write-up 002)",
                             "train.csv sits directly inside", "dacon_colorization")),
    Entry("rrdb_psnr_x4", "RRDB_PSNR_x4 (BasicSR's ESRGAN_PSNR_SRx4_DF2K_official)", "rrdb_psnr_x4-lab-03",
          "~67 MB (16.7M fp32 parameters)", "BasicSR's licence (Apache-2.0)", "https://github.com/XPixelGroup/BasicSR (model zoo, Google Drive)",
          DRIVE, ".", _check_weights("rrdb_psnr_x4"), (_weights_file("rrdb_psnr_x4", DRIVE),), extract_to=None,
          kind="weights",
          steps=("pip install gdown; gdown '" + NAMED_WEIGHTS["rrdb_psnr_x4"][0] + "' -O {root}/"
                 + _weights_file("rrdb_psnr_x4", DRIVE).name,
                 "labkit data get {name} --root {root}   # again: checks the pinned sha256 prefix")),
    Entry("esrgan_x4", "ESRGAN x4 generator (DF2K + OST)", "rrdb_psnr_x4-lab-03", "~67 MB (16.7M fp32 parameters)",
          "Real-ESRGAN's licence (BSD-3-Clause)", "https://github.com/xinntao/Real-ESRGAN/releases/tag/v0.1.0", DIRECT,
          ".", _check_weights("esrgan_x4"), (_weights_file("esrgan_x4", DIRECT),), extract_to=None, kind="weights"),
)


def find(name: str) -> Entry:
    """The entry called ``name`` (case-insensitive). Raises LookupError listing the names and the closest one."""
    for entry in CATALOG:
        if entry.name == name.lower():
            return entry
    names = [e.name for e in CATALOG]
    close = difflib.get_close_matches(name.lower(), names, n=1)
    raise LookupError(f"no dataset {name!r} ({'did you mean ' + repr(close[0]) + '? ' if close else ''}"
                      f"known: {', '.join(names)}; see `labkit data list`)")


def default_root(entry: Entry) -> Path:
    """Where ``labkit data get`` puts an entry without ``--root``: the data folder (``$LABKIT_DATA``, data/) for a
    dataset, torch's hub cache ``checkpoints/`` (where :func:`labkit.weights.load_weights` looks) for weights."""
    if entry.kind == "weights":
        import torch  # noqa: PLC0415

        return Path(torch.hub.get_dir()) / "checkpoints"
    from labkit import env  # noqa: PLC0415

    return env.data_dir()


def data_folder(entry: Entry, root: Path) -> Path:
    """The folder the loaders read under ``root`` (the first match of a glob pattern, else its fixed part)."""
    if "*" not in entry.folder:
        return root / entry.folder
    matches = sorted(root.glob(entry.folder))
    return matches[0] if matches else root / entry.folder.split("*")[0].rstrip("/")


# ----------------------------------------------------------------------------------------- list


def _checksum_note(entry: Entry) -> str:
    pinned = [f for f in entry.files if f.sha256]
    if pinned:
        return f"pinned {pinned[0].sha256} (source: {pinned[0].sha256_source})"
    return "recorded on first download" if entry.files else "none (manual download; layout check)"


def listing_rows() -> list[dict[str, str]]:
    """One row per entry: name, kind, access, size, checksum, terms, source, readme section."""
    return [{"name": e.name, "kind": e.kind, "access": e.access, "size": e.size, "checksum": _checksum_note(e),
             "terms": e.terms, "source": e.source, "section": f"data/README.md#{e.anchor}"} for e in CATALOG]


def format_listing(rows: list[dict[str, str]] | None = None) -> str:
    """The ``labkit data list`` table (fixed columns), then each entry's source page and README section."""
    rows = listing_rows() if rows is None else rows
    cols = ("name", "access", "size", "checksum", "terms")
    short = [{**r, "checksum": r["checksum"].split(" (source")[0]} for r in rows]
    width = {c: max(len(c), *(len(r[c]) for r in short)) for c in cols}
    line = lambda r: "  ".join(r[c].ljust(width[c]) for c in cols).rstrip()  # noqa: E731
    out = [line({c: c for c in cols}), line({c: "-" * width[c] for c in cols})] + [line(r) for r in short]
    out.append("\nsources (pinned checksums: where published):")
    out += [f"  {r['name']:<17} {r['source']}  [{r['section']}]"
            + (f"\n  {'':<17} checksum {r['checksum']}" if "source:" in r["checksum"] else "") for r in rows]
    out.append("\n`labkit data get NAME [--root DIR] [--mirror URL]` fetches a 'direct' entry (a mirror serves any "
               "entry with file names); the others print their steps, then check the folder.")
    return "\n".join(out)


# ----------------------------------------------------------------------------------------- check and get


def check(name: str, folder: str | os.PathLike) -> list[str]:
    """Run entry ``name``'s loader on ``folder``; return the report lines (counts, image sizes).

    Raises:
        LookupError: unknown name. FileNotFoundError: ``folder`` missing (named). The loader's own
        FileNotFoundError / ValueError: a wrong layout (naming the folder, what was expected, the README section).
    """
    entry = find(name)
    folder = Path(folder).expanduser()
    if not folder.exists():
        raise FileNotFoundError(f"{folder}: no such folder (expected {entry.title}'s layout; "
                                f"see data/README.md#{entry.anchor})")
    return entry.check(folder)


def _print_steps(entry: Entry, root: Path, log: Callable[[str], None]) -> None:
    why = "needs an account" if entry.access == ACCOUNT else "is on Google Drive (no direct link)"
    log(f"{entry.title} {why}. Source: {entry.source}. Terms: {entry.terms}. Steps:")
    for i, step in enumerate(entry.steps, start=1):
        log(f"  {i}. {step.format(root=root, name=entry.name)}")


def _fetch_file(spec: RemoteFile, dest: Path, mirror: str | None, pins: dict[str, str], progress: bool,
                log: Callable[[str], None]) -> None:
    url = fetch.source_url(spec.url, spec.name, mirror)
    if not dest.is_file():
        log(f"downloading {spec.name} from {url}")
        try:
            fetch.download(url, dest, progress=progress, log=log)
        except fetch.DownloadError as e:
            raise fetch.DownloadError(f"{e}. Other ways: download {spec.name} by hand into {dest.parent} and rerun "
                                      "(it is then verified and used), or fetch it from another host with "
                                      "--mirror BASE_URL / $LABKIT_MIRROR") from e
    pinned = pins.get(spec.name, spec.sha256)
    where = "override passed to labkit.catalog.get" if spec.name in pins else spec.sha256_source
    log(f"  {spec.name}: {fetch.verify(dest, pinned, where, url or '')}")


def _extract(entry: Entry, archive: Path, root: Path, log: Callable[[str], None]) -> None:
    marker = archive.with_name(archive.name + ".extracted")
    digest = sha256_file(archive)
    if marker.is_file() and marker.read_text(encoding="utf-8").strip() == digest:
        log(f"  {archive.name}: already extracted (remove {marker} to extract again)")
        return
    n = fetch.safe_extract(archive, root / entry.extract_to)
    marker.write_text(digest + "\n", encoding="utf-8")
    log(f"  {archive.name}: {n} members extracted into {root / entry.extract_to}")


def get(name: str, root: str | os.PathLike | None = None, *, mirror: str | None = None,
        pins: dict[str, str] | None = None, progress: bool = True, delete_archives: bool = False,
        log: Callable[[str], None] = print) -> list[str]:
    """``labkit data get``: fetch, verify, extract and check entry ``name`` under ``root``.

    Args:
        name: a :data:`CATALOG` name. root: the folder (default :func:`default_root`); archives go to
            ``root/downloads/``, the data to :func:`data_folder`.
        mirror: a base URL serving the same file names (default ``$LABKIT_MIRROR``).
        pins: ``{file name: sha256}`` replacing the pinned values (tests; a lab's own archive of a file).
        progress: progress bars. delete_archives: remove each archive once extracted.
        log: where the steps are reported.

    Returns: the check's report lines.

    Raises:
        ManualStepsNeeded: an account / Google Drive entry whose files are neither downloaded by hand nor
            reachable through a mirror, and whose folder is not there (the steps were logged first).
        DownloadError, ChecksumError, UnsafeArchiveError (:mod:`labkit.fetch`); the loader's errors from the check.
    """
    entry, base = find(name), fetch.mirror_base(mirror)
    root = Path(root).expanduser() if root else default_root(entry)
    store = root / DOWNLOADS if entry.extract_to is not None else root
    missing = [f for f in entry.files if not (store / f.name).is_file()]
    if entry.access != DIRECT and base is None and (missing or not entry.files):
        _print_steps(entry, root, log)
        if not data_folder(entry, root).exists():
            raise ManualStepsNeeded(f"{entry.name}: follow the steps above, then run them again "
                                    f"(nothing at {data_folder(entry, root)} yet)")
    else:
        for spec in entry.files:
            _fetch_file(spec, store / spec.name, base, pins or {}, progress, log)
        for spec in entry.files if entry.extract_to is not None else ():
            _extract(entry, store / spec.name, root, log)
            if delete_archives:
                (store / spec.name).unlink()
        for line in entry.place(root) if entry.place else ():
            log(f"  {line}")
    folder = data_folder(entry, root)
    lines = check(entry.name, folder)
    log(f"{entry.name}: layout check of {folder}")
    for line in lines:
        log(f"  {line}")
    return lines

