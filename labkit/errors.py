"""The expected failures: what the command line reports in one or two lines, without a traceback.

:class:`LabkitError` is the base of labkit's own errors that are not a bad argument (those are
``ValueError`` / ``FileNotFoundError``, e.g. :class:`labkit.parameters.ParameterError`): a checkpoint
that cannot be read or does not fit (:class:`labkit.train.CheckpointError`), a weights file that is not
one (:class:`labkit.weights.WeightsError`). :func:`describe` turns any expected error, including the
operating system's (permission denied, disk full, a file where a folder should be), into the message
``labkit`` prints, with what to do in command-line terms.

No torch import here: ``labkit.cli`` uses it for every command.
"""

from __future__ import annotations

import errno

__all__ = ["LabkitError", "EXPECTED", "describe", "exit_status"]


class LabkitError(Exception):
    """An expected failure with a message for the user (it names the file or the setting, and the way on)."""


#: what ``labkit`` reports without a traceback (``--debug`` or ``LABKIT_DEBUG=1`` shows it anyway)
EXPECTED = (LabkitError, ValueError, LookupError, OSError)

_WRITE_HINT = "choose a folder you can write with --out DIR (or fix its permissions)"


def _describe_os_error(exc: OSError) -> str:
    where = exc.filename if exc.filename is not None else ""
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"permission denied: {where} ({exc.strerror}); {_WRITE_HINT}"
    if exc.errno == errno.ENOSPC:
        return f"no space left on the device while writing {where}: free some space or choose another --out DIR"
    if exc.errno in (errno.ENOTDIR, errno.EEXIST) and where:
        return f"{where}: {exc.strerror} (a file is in the way of a folder); choose another --out DIR"
    if exc.errno is not None and exc.strerror and where:
        return f"{where}: {exc.strerror}"
    return str(exc) or type(exc).__name__


def describe(exc: BaseException) -> str:
    """The message ``labkit`` prints for an expected error: labkit's own message, or the OS error in words."""
    if isinstance(exc, OSError) and exc.errno is not None:   # the system's; labkit's own carry a message
        return _describe_os_error(exc)
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    return str(exc) or type(exc).__name__


def exit_status(exc: BaseException) -> int:
    """2 for a bad argument, parameter or input file (``ValueError``, ``LookupError``, a missing file), else 1."""
    if isinstance(exc, (ValueError, LookupError, FileNotFoundError)) and not isinstance(exc, LabkitError):
        return 2
    return 1
