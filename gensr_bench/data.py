"""Where suites find users' local copies of official data sets.

A suite named NAME looks in ``<root>/NAME`` for each root, in order: the folder given with
``--data-dir`` (``set_data_dir``), then ``GENSR_BENCH_DATA`` (an os.pathsep-separated list of
folders, one sub-folder per suite). A suite option ``root=PATH`` overrides both. A missing set
raises MissingDataError naming the expected layout, where the set is published and the
built-in synthetic stand-in to use meanwhile.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from gensr_bench.errors import GensrError

DATA_ENV = "GENSR_BENCH_DATA"
_explicit_root: Path | None = None


class MissingDataError(GensrError):
    """A suite's data set is not where the suite looks for it."""


def set_data_dir(path: str | Path | None) -> None:
    """Look in ``path`` first (the CLI's ``--data-dir``); inherited by worker processes."""
    global _explicit_root
    _explicit_root = Path(path) if path else None
    if _explicit_root is not None:
        existing = os.environ.get(DATA_ENV, "")
        os.environ[DATA_ENV] = os.pathsep.join(
            p for p in [str(_explicit_root.resolve()), existing] if p
        )


def data_roots() -> list[Path]:
    """The folders searched for suite data, in order."""
    roots = [] if _explicit_root is None else [_explicit_root]
    roots += [Path(p) for p in os.environ.get(DATA_ENV, "").split(os.pathsep) if p]
    unique: list[Path] = []
    for root in roots:
        if root not in unique:
            unique.append(root)
    return unique


def find_suite_dir(name: str, explicit: str | Path | None = None) -> Path | None:
    """``explicit`` if given and existing, else the first ``<root>/<name>`` that exists."""
    if explicit is not None:
        path = Path(explicit)
        return path if path.is_dir() else None
    for root in data_roots():
        if (root / name).is_dir():
            return root / name
    return None


def missing_data_message(
    name: str, layout: str, published: str, stand_in: str | None, explicit: str | Path | None
) -> str:
    """The error text for a suite whose data is missing."""
    looked = (
        [str(explicit)] if explicit is not None else [str(r / name) for r in data_roots()]
    ) or [f"(no data folder configured: set {DATA_ENV} or pass --data-dir)"]
    text = (
        f"suite {name!r} needs a local copy of its data set, not found in: {', '.join(looked)}. "
        f"Expected layout:\n{layout}\nThe set is published at {published}. Put it in "
        f"<DATA>/{name} and pass --data-dir DATA (or set {DATA_ENV}=DATA), or give "
        f"--suite-option root=PATH."
    )
    if stand_in:
        text += f" Meanwhile the built-in synthetic stand-in is --suite {stand_in}."
    return text


def files_fingerprint(root: Path, relative_paths: Iterable[str], salt: str = "") -> str:
    """sha256 over ``salt`` and the sorted relative paths with sizes and content sha256.

    What official-set suites use as their fingerprint: two runs compare equal exactly when
    they read the same files. A listed file that is absent is hashed as missing.
    """
    from gensr_bench.weights import sha256_of

    digest = hashlib.sha256(f"{salt}\0".encode())
    for rel in sorted(set(relative_paths)):
        path = root / rel
        if path.is_file():
            digest.update(f"{rel}\0{path.stat().st_size}\0{sha256_of(path)}\n".encode())
        else:
            digest.update(f"{rel}\0missing\n".encode())
    return digest.hexdigest()[:16]


@dataclass
class VerifyReport:
    """What ``gensr-bench suite verify`` prints: completeness of a local data set."""

    suite: str
    root: str
    expected: int | None
    found: int
    missing: list[str] = field(default_factory=list)
    unpaired: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        complete = self.expected is None or self.found >= self.expected
        return complete and not self.missing and not self.unpaired
