"""Exceptions raised by gensr-bench library code.

Library code raises subclasses of :class:`GensrError`; only ``cli.py`` turns them into
messages and exit codes. Every message says what happened, what was expected and how to fix it.
"""

from __future__ import annotations


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


class MetricError(GensrError):
    """A metric has no honest value for this input (e.g. no speech found, silent reference)."""


class MissingReferenceError(GensrError):
    """A component needs the clean reference and the utterance has none."""
