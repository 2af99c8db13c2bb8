"""Exceptions raised by gensr-bench library code.

Library code raises subclasses of :class:`GensrError`; only the ``cli`` package turns them into
messages and exit codes. Every message says what happened, what was expected and how to fix it.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gensr_bench.records import Restoration


class GensrError(Exception):
    """Base class of every error gensr-bench raises on purpose."""


def describe(exc: BaseException) -> str:
    """An exception as a one-line reason: our own messages as written, others with their type."""
    if isinstance(exc, GensrError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class PluginError(GensrError):
    """A plugin could not be loaded, is malformed, or clashes with another plugin."""


class UnknownNameError(GensrError):
    """A metric, model or suite name is not registered."""


class DuplicateNameError(PluginError):
    """Two plugins register the same name for the same kind of component."""


class AudioError(GensrError):
    """Audio could not be read, written or is unusable (empty, NaN/Inf, too short)."""


class AudioDecodeError(AudioError):
    """A file could not be decoded as audio."""


class AudioValidationError(AudioError):
    """Audio was decoded but is unusable for the step that needs it."""


class StoreError(GensrError):
    """The results store is missing, corrupt or belongs to another run configuration."""


class ConfigError(GensrError):
    """A command-line value or configuration value is invalid."""


class UnknownOptionError(ConfigError):
    """A component was given an option it does not take (a usage error, caught before any work)."""


class MetricError(GensrError):
    """A metric has no honest value for this input (e.g. no speech found, silent reference)."""


class MissingReferenceError(GensrError):
    """A component needs the clean reference and the utterance has none."""


class BatchRestorationError(GensrError):
    """A model restored some utterances of a batch and not others.

    ``outcomes`` holds one entry per utterance of the batch, in order: its ``Restoration``, or
    the reason (a string) it has none. The runner records each failed utterance's reason as its
    error and scores the others, without restoring the batch again (a model whose batch costs
    a whole external process, or a missing file, gains nothing from a retry).
    """

    def __init__(self, outcomes: Sequence[Restoration | str]) -> None:
        failed = [outcome for outcome in outcomes if isinstance(outcome, str)]
        super().__init__(list(outcomes))
        self.outcomes = list(outcomes)
        self.failed = failed

    def __str__(self) -> str:
        first = self.failed[0] if self.failed else "none failed"
        more = f" (and {len(self.failed) - 1} more)" if len(self.failed) > 1 else ""
        return f"{len(self.failed)} of {len(self.outcomes)} utterance(s) failed: {first}{more}"


#: What a disk-full message advises by default: a run's committed rows survive, so it continues.
RESUME_HINT = "rerun the same command with --resume to continue where it stopped"

#: ``errno`` values meaning "no room left": the device is full, or the user's quota is.
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
#: SQLite's result code for "database or disk is full" (``sqlite3.SQLITE_FULL``).
_SQLITE_FULL = 13


class DiskFullError(StoreError):
    """A write failed because the disk (or the quota) holding ``folder`` is full.

    Raised by the writers (run store, score cache, exports, saved audio) in place of the raw
    ``OSError`` / ``sqlite3.OperationalError``; whatever was committed before stays intact, so
    the message says how to continue once space is freed (``retry``).
    """

    def __init__(self, folder: str, detail: str, retry: str = RESUME_HINT) -> None:
        # The parts are the exception's args, so it pickles back from a worker process as is.
        super().__init__(folder, detail, retry)
        self.folder, self.detail, self.retry = folder, detail, retry

    def __str__(self) -> str:
        return (
            f"cannot write to {self.folder}: the disk is full ({self.detail}); what was saved "
            f"before is intact: free some space there, then {self.retry}"
        )


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is an operating-system or SQLite "no space left" failure."""
    if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
        return True
    return getattr(exc, "sqlite_errorcode", None) == _SQLITE_FULL or (
        type(exc).__module__ == "sqlite3" and "database or disk is full" in str(exc)
    )


@contextmanager
def disk_full_as_error(folder: str | os.PathLike[str], retry: str = RESUME_HINT) -> Iterator[None]:
    """Turn a "no space left" failure inside the block into :class:`DiskFullError` naming
    ``folder``; every other exception passes unchanged."""
    try:
        yield
    except DiskFullError:
        raise
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise DiskFullError(str(folder), detail, retry) from exc
