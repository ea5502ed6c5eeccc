"""Read a file written by ``torch.save`` safely, with an error that says what a bad file is not.

:func:`read_torch_file` is the one reader of weights files and checkpoints in labkit: it always
loads with ``torch.load(..., weights_only=True)`` (tensors and plain containers only, no code from
pickles) and turns every failure into a :class:`WeightsError` (a ValueError) that names the file and
says what it is: missing, empty, not a PyTorch checkpoint at all (neither the zip archive
``torch.save`` writes since PyTorch 1.6 nor the legacy pickle file before it; an HTML page from a
failed download; a plain ``pickle.dump``), truncated or corrupt, or refused for safety (it holds
other Python objects). It never suggests ``weights_only=False``: torch's own message does, and that
runs whatever code the file carries.

Source: ``torch.serialization`` (the zip format's ``PK\\x03\\x04`` header, the legacy format's
pickled magic number ``0x1950a86a20f9469cfc6c``), ``torch._weights_only_unpickler``'s messages.
"""

from __future__ import annotations

import os
import re
import zipfile
from typing import Any

import torch

__all__ = ["WeightsError", "WeightsNotFoundError", "WeightsDownloadError", "read_torch_file", "torch_file_kind"]

#: First bytes of the zip archive ``torch.save`` writes (PyTorch >= 1.6).
ZIP_MAGIC = b"PK\x03\x04"
#: First bytes of a legacy ``torch.save`` file: pickle protocol 2, then the pickled long
#: ``0x1950a86a20f9469cfc6c`` (``torch.serialization.MAGIC_NUMBER``).
LEGACY_MAGIC = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")

_SAFE_HINT = ("re-save the state dict with torch.save(model.state_dict(), path) from code you trust")
_AGAIN_HINT = "delete it and download or save it again"


class WeightsError(ValueError):
    """A weights file or checkpoint that cannot be used; the message names the file and what to do.

    ``path`` is the file (or the name / URL asked for); ``kind`` says what went wrong: ``'missing'``,
    ``'unknown_name'``, ``'download'``, ``'empty'``, ``'not_checkpoint'``, ``'corrupt'``, ``'unsafe'``
    or ``'unreadable'``.
    """

    def __init__(self, message: str, path: str = "", kind: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.kind = kind


class WeightsNotFoundError(WeightsError, FileNotFoundError):
    """No such file (and, for :func:`labkit.weights.load_weights`, no such named weights): also a FileNotFoundError."""


class WeightsDownloadError(WeightsError, RuntimeError):
    """A download that failed (no network, no ``gdown``): also a RuntimeError, as before."""


def torch_file_kind(head: bytes) -> str:
    """What the first bytes of a file say it is: ``'zip'``, ``'legacy'``, ``'pickle'``, ``'html'`` or ``'other'``.

    ``head``: at least the first 14 bytes of the file (fewer for a shorter file).
    """
    if head.startswith(ZIP_MAGIC):
        return "zip"
    if head.startswith(LEGACY_MAGIC):
        return "legacy"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "pickle"
    if head.lstrip().lower().startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<!--")):
        return "html"
    return "other"


def _not_checkpoint(label: str, kind: str, head: bytes, again: str) -> WeightsError:
    what = {
        "pickle": "a plain Python pickle (pickle.dump), which labkit does not load; " + _SAFE_HINT,
        "html": "it starts like an HTML page: a failed or blocked download (Google Drive's warning page?); "
                "download the file again in a browser",
        "other": f"it starts with {head[:8]!r}: is it the right file? " + again,
    }[kind]
    return WeightsError(f"{label} is not a PyTorch checkpoint (neither a zip archive nor a legacy pickle "
                        f"file): {what}", kind="not_checkpoint")


def _zip_problem(path: str) -> str | None:
    """Why the zip archive at ``path`` is unusable (None when its directory reads fine)."""
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except zipfile.BadZipFile as e:
        return (f"zip archive without a readable end-of-archive directory ({e}): cut short by an "
                "interrupted download, copy or save")
    except (OSError, EOFError) as e:
        return f"zip archive: {type(e).__name__}: {e}"
    if not any(n.endswith("data.pkl") for n in names):
        return f"zip archive without a data.pkl record (entries: {names[:4]})"
    return None


def _classify_load_error(label: str, kind: str, e: BaseException, again: str) -> WeightsError:
    msg = str(e)
    refused = re.search(r"GLOBAL ([\w.]+)", msg) or re.search(r"Unsupported (?:global|class):? ?([\w.]+)", msg)
    if refused:
        name = refused.group(1)
        return WeightsError(
            f"{label} was refused for safety: it holds Python objects other than tensors and plain "
            f"containers (it names {name}; loaded with weights_only=True); {_SAFE_HINT}", kind="unsafe")
    fmt = "zip archive" if kind == "zip" else "legacy pickle file"
    first = next((ln.strip() for ln in msg.splitlines() if ln.strip()), "")
    if "Weights only load failed" in msg:  # a pickle stream the safe unpickler cannot parse: damaged
        first = next((ln.strip() for ln in msg.splitlines() if ln.strip().startswith("Unsupported")), "bad pickle data")
    return WeightsError(f"{label} is truncated or corrupt ({fmt}: {type(e).__name__}: {first[:200]}); {again}",
                        kind="corrupt")


def read_torch_file(path: str | os.PathLike, map_location: Any = "cpu", what: str = "weights file",
                    again: str = _AGAIN_HINT) -> Any:
    """``torch.load(path, map_location, weights_only=True)``, every failure a :class:`WeightsError`.

    Args:
        path: a file written by ``torch.save`` (zip archive or legacy format).
        map_location: as ``torch.load`` (default ``'cpu'``).
        what: how messages call the file (``'weights file'``, ``'training checkpoint'`` ...).
        again: what to do about an empty, truncated or corrupt file (default: delete it and download or save
            it again; a training checkpoint would say ``--no-resume``).

    Returns: what ``torch.load`` returns (tensors, dicts, lists, numbers, strings...).

    Raises:
        WeightsNotFoundError (also a FileNotFoundError): no such file (or a folder).
        WeightsError: the file is empty (0 bytes); is not a PyTorch checkpoint (neither a zip
            archive nor a legacy pickle file); is truncated or corrupt; was refused for safety
            (Python objects other than tensors and containers); or cannot be read (permissions).
            ``.kind`` tells which; the message names the file and never advises ``weights_only=False``.
    """
    path = os.fspath(path)
    label = f"{what} {path}"
    if not os.path.isfile(path):
        why = "is a folder, not a file" if os.path.isdir(path) else "not found"
        raise WeightsNotFoundError(f"{label}: {why}", path, "missing")
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(len(LEGACY_MAGIC))
    except OSError as e:
        raise WeightsError(f"{label} cannot be read ({type(e).__name__}: {e})", path, "unreadable") from e
    if size == 0:
        raise WeightsError(f"{label} is empty (0 bytes): an interrupted download or save; {again}",
                           path, "empty")
    kind = torch_file_kind(head)
    if kind not in ("zip", "legacy"):
        err = _not_checkpoint(label, kind, head, again)
        err.path = path
        raise err
    problem = _zip_problem(path) if kind == "zip" else None
    if problem:
        raise WeightsError(f"{label} is truncated or corrupt ({problem}); {again}", path, "corrupt")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # UnpicklingError, RuntimeError (unexpected EOF), OSError, EOFError, ...
        err = _classify_load_error(label, kind, e, again)
        err.path = path
        if "weights_only" in str(e):  # torch's text advises weights_only=False: not even in a --debug traceback
            raise err from None
        raise err from e
