"""Reading paired (degraded, clean) suite folders: metadata files, ``noisy/`` + ``clean/``
folders, and pairing by a key in file names.

Shared by the paired-data suites (``paired.py`` re-exports these names); registers nothing.
The layouts are described in ``gensr_bench_plugins.suites.paired``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gensr_bench.audio import audio_suffixes
from gensr_bench.errors import ConfigError

METADATA_FILES = ("metadata.jsonl", "metadata.csv")
_RESERVED = ("id", "noisy", "clean", "transcript")

GENERIC_LAYOUT = """\
  <suite folder>/metadata.jsonl   one JSON object a line: id, noisy, clean (optional),
                                  transcript (optional), any other keys -> meta
  or <suite folder>/metadata.csv  the same as CSV columns (paths relative to the folder)
  or <suite folder>/noisy/<name>.wav + <suite folder>/clean/<name>.wav (same relative names)"""


@dataclass(frozen=True)
class Pair:
    """One utterance of a paired suite; paths are relative to the suite folder (POSIX)."""

    uid: str
    noisy: str
    clean: str | None = None
    transcript: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Scan:
    """What a suite folder holds: its pairs plus what ``verify`` complains about."""

    pairs: list[Pair] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unpaired: list[str] = field(default_factory=list)
    #: Files besides the audio that define the suite (e.g. the metadata file), for fingerprint.
    extra_files: list[str] = field(default_factory=list)


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def audio_files(folder: Path) -> list[Path]:
    """Audio files under ``folder`` (recursive), sorted; hidden files and folders are skipped.

    Audio is a suffix in ``gensr_bench.audio.audio_suffixes()`` (MP3 where libsndfile reads it).
    """
    if not folder.is_dir():
        return []
    suffixes = audio_suffixes()
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix.lower() in suffixes
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def _unused_audio(root: Path, used: Iterable[str]) -> list[str]:
    taken = set(used)
    return [rel for rel in (_rel(p, root) for p in audio_files(root)) if rel not in taken]


def _check_ids(pairs: list[Pair], source: str) -> None:
    seen: set[str] = set()
    for pair in pairs:
        if pair.uid in seen:
            raise ConfigError(f"{source}: utterance id {pair.uid!r} appears more than once")
        seen.add(pair.uid)


def _pair_from_record(record: dict[str, Any], where: str) -> Pair:
    def text(key: str) -> str | None:
        value = record.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return str(value).strip() if key != "transcript" else str(value)

    uid, noisy = text("id"), text("noisy")
    if uid is None or noisy is None:
        raise ConfigError(f"{where}: every pair needs non-empty 'id' and 'noisy' (got {record})")
    meta = {k: v for k, v in record.items() if k not in _RESERVED and k is not None}
    return Pair(uid, noisy, text("clean"), text("transcript"), meta)


def read_metadata(path: Path) -> list[Pair]:
    """The pairs a ``metadata.jsonl`` or ``metadata.csv`` file names, in file order."""
    pairs: list[Pair] = []
    if path.suffix == ".jsonl":
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise ConfigError(f"{path}:{number}: not a JSON object ({exc})") from None
            if not isinstance(record, dict):
                raise ConfigError(f"{path}:{number}: expected a JSON object, got {record!r}")
            pairs.append(_pair_from_record(record, f"{path}:{number}"))
    else:
        with path.open(newline="", encoding="utf-8") as handle:
            for number, row in enumerate(csv.DictReader(handle), 2):
                pairs.append(_pair_from_record(dict(row), f"{path}:{number}"))
    _check_ids(pairs, str(path))
    return pairs


def scan_metadata(root: Path, path: Path) -> Scan:
    """A Scan of a folder described by a metadata file."""
    pairs = read_metadata(path)
    missing = []
    for pair in pairs:
        if not (root / pair.noisy).is_file():
            missing.append(f"{pair.uid}: {pair.noisy} (noisy) not found")
        if pair.clean is not None and not (root / pair.clean).is_file():
            missing.append(f"{pair.uid}: {pair.clean} (clean) not found")
    used = [p.noisy for p in pairs] + [p.clean for p in pairs if p.clean is not None]
    return Scan(pairs, missing, _unused_audio(root, used), [_rel(path, root)])


def scan_clean_noisy(root: Path) -> Scan:
    """A Scan of a ``noisy/`` (+ ``clean/``) folder pair matched by relative file name."""
    noisy_dir, clean_dir = root / "noisy", root / "clean"
    has_clean = clean_dir.is_dir()
    scan = Scan()
    for path in audio_files(noisy_dir):
        name = path.relative_to(noisy_dir)
        twin = clean_dir / name
        clean = _rel(twin, root) if twin.is_file() else None
        if has_clean and clean is None:
            scan.missing.append(f"{_rel(path, root)}: no clean/{name.as_posix()}")
        uid = "-".join(name.with_suffix("").parts)
        scan.pairs.append(Pair(uid, _rel(path, root), clean))
    _check_ids(scan.pairs, str(noisy_dir))
    used = [p.noisy for p in scan.pairs] + [p.clean for p in scan.pairs if p.clean]
    scan.unpaired = _unused_audio(root, used)
    return scan


def match_by_key(
    root: Path,
    degraded: Iterable[Path],
    references: Path,
    degraded_key: Callable[[str], str | None],
    reference_key: Callable[[str], str | None],
    uid: Callable[[Path], str],
    meta: dict[str, Any] | None = None,
) -> Scan:
    """Pair each degraded file with the reference in ``references`` of the same key.

    Keys come from file stems. A degraded file whose stem yields no key, or a key with no
    reference, is reported missing (and yielded without a reference); references nobody uses
    are reported unpaired.
    """
    by_key: dict[str, Path] = {}
    for path in audio_files(references):
        key = reference_key(path.stem)
        if key is not None:
            by_key.setdefault(key, path)
    scan = Scan()
    used: set[Path] = set()
    for path in degraded:
        key = degraded_key(path.stem)
        ref = by_key.get(key) if key is not None else None
        if ref is None:
            wanted = f"key {key!r}" if key else "no pairing key in the name"
            scan.missing.append(
                f"{_rel(path, root)}: no reference in {_rel(references, root)} ({wanted})"
            )
        else:
            used.add(ref)
        scan.pairs.append(
            Pair(
                uid(path),
                _rel(path, root),
                _rel(ref, root) if ref else None,
                None,
                dict(meta or {}),
            )
        )
    scan.unpaired = [_rel(p, root) for p in audio_files(references) if p not in used]
    return scan
