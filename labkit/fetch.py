"""Download, verify and unpack dataset files: the machinery behind ``labkit data get`` (:mod:`labkit.catalog`).

- :func:`download`: a streaming download with ``urllib.request`` into ``<file>.part``, resumed with an HTTP
  ``Range: bytes=N-`` request when the connection drops (RFC 9110, section 14), renamed to its final name
  only when complete; a tqdm progress bar on stderr.
- :func:`verify`: the SHA-256 of a file against a pinned value (full digest or a prefix, as BasicSR file
  names carry the first 8 hex digits); where the source publishes none, the first complete download
  records its hash in the user's cache (:func:`hash_record_path`) and later downloads are checked
  against that record. A file that does not match is renamed ``<file>.bad`` and never used.
- :func:`safe_extract`: ``zipfile`` / ``tarfile`` extraction that first checks every member and refuses
  the whole archive (writing nothing) when one has an absolute path, a ``..`` component, a link that
  points outside the destination, or is a device; tar members then go through ``tarfile``'s ``'data'``
  filter (PEP 706) as a second guard.
- :func:`mirror_base` / :func:`source_url`: ``--mirror BASE_URL`` or ``$LABKIT_MIRROR`` fetches the same
  file names from another host (an institution's mirror, a lab server, the tests' local server); the
  hashes are checked all the same.

Errors: :class:`DownloadError` (the URL, how far it got, and that rerunning resumes),
:class:`ChecksumError` (the file, expected and actual digest, where the bad file was kept),
:class:`UnsafeArchiveError` (the archive and the offending member). All are :class:`labkit.errors.LabkitError`,
which ``labkit`` reports in one line.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import stat
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Callable

from tqdm import tqdm

from labkit.errors import LabkitError
from labkit.files import atomic_write_text
from labkit.weights import sha256_file

__all__ = ["DownloadError", "ChecksumError", "UnsafeArchiveError", "PART_SUFFIX", "BAD_SUFFIX", "mirror_base",
           "source_url", "download", "hash_record_path", "recorded_hashes", "verify", "safe_extract",
           "archive_kind"]

PART_SUFFIX = ".part"
BAD_SUFFIX = ".bad"
BLOCK = 1 << 20
#: errors of a connection that broke while reading: worth a resumed retry
_DROPPED = (http.client.IncompleteRead, ConnectionError, socket.timeout, TimeoutError, urllib.error.URLError,
            http.client.HTTPException)


class DownloadError(LabkitError):
    """A download that did not complete: the message names the URL, the bytes received and the ``.part`` file."""


class ChecksumError(LabkitError):
    """A file whose SHA-256 is not the pinned or recorded one: it was renamed ``<file>.bad`` and not used."""


class UnsafeArchiveError(LabkitError):
    """An archive with a member that would land outside the destination: nothing was extracted."""


# ----------------------------------------------------------------------------------------- where from


def mirror_base(mirror: str | None = None) -> str | None:
    """The mirror base URL: ``mirror`` if given, else ``$LABKIT_MIRROR``, else None (no mirror)."""
    base = mirror if mirror else os.environ.get("LABKIT_MIRROR", "").strip()
    return base.rstrip("/") if base else None


def source_url(url: str | None, filename: str, mirror: str | None) -> str | None:
    """The URL to fetch ``filename`` from: ``<mirror>/<filename>`` with a mirror, else ``url`` (may be None)."""
    return f"{mirror}/{filename}" if mirror else url


# ----------------------------------------------------------------------------------------- download


def _open(url: str, offset: int, timeout: float) -> http.client.HTTPResponse:
    headers = {"User-Agent": "labkit-data/1"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _resume_point(resp: http.client.HTTPResponse, offset: int) -> tuple[int, int | None]:
    """``(start, total size or None)`` of the body ``resp`` carries: a 206 continues at ``offset``, a 200 restarts."""
    if resp.status == 206:
        rng = resp.headers.get("Content-Range", "")          # bytes START-END/TOTAL
        try:
            span, _, total = rng.split(" ", 1)[1].partition("/")
            start = int(span.split("-")[0])
        except (IndexError, ValueError):
            start, total = -1, "*"
        if start == offset:
            return offset, (int(total) if total.isdigit() else None)
        raise DownloadError(f"{resp.url}: the server answered the range request with {rng!r}, not bytes {offset}-")
    length = resp.headers.get("Content-Length")
    return 0, (int(length) if length and length.isdigit() else None)


def _stream(resp: http.client.HTTPResponse, part: Path, start: int, total: int | None, progress: bool,
            desc: str) -> int:
    """Append (or, from 0, write) the body of ``resp`` to ``part``; return the size of ``part`` afterwards."""
    with open(part, "ab" if start else "wb") as f, tqdm(
            total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
            disable=not progress, file=sys.stderr, leave=False) as bar:
        while True:
            block = resp.read(BLOCK)
            if not block:
                break
            f.write(block)
            bar.update(len(block))
    return part.stat().st_size


def _attempt(url: str, part: Path, progress: bool, timeout: float) -> None:
    """One try: resume ``part`` from its size; raise DownloadError if the body ended short."""
    offset = part.stat().st_size if part.exists() else 0
    try:
        resp = _open(url, offset, timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:       # nothing left to send: the part is complete
            return
        raise DownloadError(f"could not download {url}: HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, OSError) as e:
        raise DownloadError(f"could not connect to {url}: {getattr(e, 'reason', e)}") from e
    with resp:
        start, total = _resume_point(resp, offset)
        try:
            size = _stream(resp, part, start, total, progress, part.name[: -len(PART_SUFFIX)])
        except _DROPPED as e:
            size = part.stat().st_size if part.exists() else 0
            raise DownloadError(f"connection to {url} dropped after {size} bytes ({type(e).__name__})") from e
    if total is not None and size < total:
        raise DownloadError(f"connection to {url} dropped after {size} of {total} bytes")


def download(url: str, dest: str | os.PathLike, *, progress: bool = True, retries: int = 3, timeout: float = 60.0,
             log: Callable[[str], None] = print) -> Path:
    """Download ``url`` to ``dest`` through ``dest + '.part'``, resuming with HTTP ranges.

    Args:
        url: an ``http(s)://`` (or ``file://``) URL.
        dest: the final file; its folder is created.
        progress: show a tqdm bar on stderr.
        retries: tries in all; each one after a dropped connection resumes where the last stopped.
        timeout: seconds without data before a try gives up.
        log: where the resume notes go.

    Returns: ``dest`` (renamed from the ``.part`` file only once complete).

    Raises:
        DownloadError: an HTTP error (status named), or the connection still broken after ``retries`` tries;
            the ``.part`` file is kept, so rerunning the same command resumes.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + PART_SUFFIX)
    for attempt in range(1, retries + 1):
        try:
            _attempt(url, part, progress, timeout)
            break
        except DownloadError as e:
            if attempt == retries or "dropped" not in str(e):
                kept = f"; the partial file is kept as {part}: rerun the same command to resume" if part.exists() else ""
                raise DownloadError(f"{e}{kept}") from e
            log(f"  {e}; resuming from byte {part.stat().st_size if part.exists() else 0} "
                f"(try {attempt + 1} of {retries})")
    os.replace(part, dest)
    return dest


# ----------------------------------------------------------------------------------------- checksums


def hash_record_path() -> Path:
    """The user's record of first-download hashes: ``$LABKIT_HASHES``, else ``$XDG_CACHE_HOME/labkit/hashes.json``
    (``~/.cache/labkit/hashes.json``)."""
    if os.environ.get("LABKIT_HASHES"):
        return Path(os.environ["LABKIT_HASHES"]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return cache / "labkit" / "hashes.json"


def recorded_hashes() -> dict[str, dict]:
    """``{file name: {'sha256', 'url'}}`` from :func:`hash_record_path` (empty when there is none).

    Raises ValueError naming the file when it is not a JSON object.
    """
    path = hash_record_path()
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e}); delete it to start a new record") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of file name -> hash; delete it to start a new record")
    return data


def _record(name: str, digest: str, url: str) -> None:
    data = recorded_hashes()
    data[name] = {"sha256": digest, "url": url}
    path = hash_record_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


def _refuse(path: Path, expected: str, got: str, where: str) -> ChecksumError:
    bad = path.with_name(path.name + BAD_SUFFIX)
    os.replace(path, bad)
    return ChecksumError(f"sha256 mismatch for {path.name}: expected {expected}{'...' if len(expected) < 64 else ''} "
                         f"({where}), got {got}; the file was not used (kept as {bad}). Delete it and download "
                         "again, or check the mirror")


def verify(path: str | os.PathLike, pinned: str | None, pin_source: str, url: str = "") -> str:
    """Check ``path``'s SHA-256: against ``pinned`` if given, else against the user's record (recording it if new).

    Args:
        path: the complete file; its name is the record's key.
        pinned: the published digest, full or a prefix (case-insensitive), or None.
        pin_source: where ``pinned`` was published (for the messages).
        url: where the file came from (kept in the record).

    Returns: how it was checked, for the log (``'sha256 ... matches the pinned value (source: ...)'``...).

    Raises:
        ChecksumError: a mismatch; the file is renamed ``<name>.bad`` first, so it is never used.
    """
    path = Path(path)
    got = sha256_file(path)
    if pinned:
        if not got.startswith(pinned.lower()):
            raise _refuse(path, pinned.lower(), got, f"pinned, source: {pin_source}")
        return f"sha256 {got[:16]}... matches the pinned {pinned} (source: {pin_source})"
    known = recorded_hashes().get(path.name)
    if known is None:
        _record(path.name, got, url)
        return f"sha256 {got[:16]}... recorded on first download in {hash_record_path()}"
    if known.get("sha256") != got:
        raise _refuse(path, str(known.get("sha256")), got, f"recorded on first download in {hash_record_path()}")
    return f"sha256 {got[:16]}... matches the hash recorded on first download ({hash_record_path()})"


# ----------------------------------------------------------------------------------------- extraction


def archive_kind(path: str | os.PathLike) -> str | None:
    """``'zip'``, ``'tar'`` or None (not an archive), from the file name."""
    name = Path(path).name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
        return "tar"
    return None


def _inside(dest: Path, name: str) -> str | None:
    """Why the member ``name`` would land outside ``dest`` (None when it is safe)."""
    if not name or name.startswith(("/", "\\")) or PureWindowsPath(name).drive:
        return "has an absolute path"
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return "has a '..' component"
    target = (dest / name).resolve()
    if target != dest and dest not in target.parents:
        return "resolves outside the destination"
    return None


def _zip_problems(zf: zipfile.ZipFile, dest: Path) -> list[str]:
    out = []
    for info in zf.infolist():
        why = _inside(dest, info.filename)
        if why is None and stat.S_ISLNK(info.external_attr >> 16):
            why = "is a symbolic link"
        if why:
            out.append(f"member {info.filename!r} {why}")
    return out


def _tar_problems(tf: tarfile.TarFile, dest: Path) -> list[str]:
    out = []
    for m in tf.getmembers():
        why = _inside(dest, m.name)
        if why is None and (m.isdev() or m.isfifo()):
            why = "is a device or FIFO"
        if why is None and (m.issym() or m.islnk()):
            base = PurePosixPath(m.name).parent if m.issym() else PurePosixPath(".")
            if _inside(dest, str(base / m.linkname)) is not None or m.linkname.startswith("/"):
                why = f"is a link to {m.linkname!r}, outside the destination"
        if why:
            out.append(f"member {m.name!r} {why}")
    return out


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike) -> int:
    """Extract a zip or tar archive into ``dest`` after checking every member; return the number of members.

    Raises:
        UnsafeArchiveError: a member with an absolute path, a ``..`` component, a link outside ``dest``, a
            device (the first few named); nothing is written.
        ValueError: not a zip / tar file (named).
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    kind = archive_kind(archive)
    if kind == "zip":
        with zipfile.ZipFile(archive) as zf:
            problems = _zip_problems(zf, root)
            if not problems:
                zf.extractall(root)
            count = len(zf.infolist())
    elif kind == "tar":
        with tarfile.open(archive) as tf:
            problems = _tar_problems(tf, root)
            if not problems:
                tf.extractall(root, filter="data")
            count = len(tf.getmembers())
    else:
        raise ValueError(f"{archive}: not a .zip or .tar archive")
    if problems:
        raise UnsafeArchiveError(f"unsafe archive {archive}: " + "; ".join(problems[:3])
                                 + f"{' ...' if len(problems) > 3 else ''}; nothing was extracted into {dest}")
    return count
