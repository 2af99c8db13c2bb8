"""A folder of restored audio read back by utterance: what the ``outputs:DIR`` and ``command``
models share.

A file serves an utterance when its path relative to the folder, without its suffix, is one of
the utterance's *names*, tried in this order (the first name with a file wins):

1. the file name ``run --save-audio`` gives the utterance (``audio_file_name(id)``: the id
   itself when it is a safe file name, e.g. ``synth-gsr-0003``);
2. the id itself, when it is a relative path (``speaker1/utt3``);
3. the degraded file the suite read, as the utterance's meta names it (``file`` for folder
   suites, ``noisy_file`` for DNS): its relative path, then its bare name.

Any suffix of a format libsndfile reads is accepted (``.wav``, ``.flac``, ``.ogg``, ...), at any
sample rate. Two files for one name (``a.wav`` and ``a.flac``) are an error for that utterance,
never a guess.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from gensr_bench.audio import audio_suffixes, read_audio
from gensr_bench.errors import GensrError
from gensr_bench.execution import audio_file_name
from gensr_bench.records import Audio

#: Utterance meta keys that name the degraded file a suite read (relative to its folder).
SOURCE_FILE_KEYS = ("file", "noisy_file")


class OutputFileError(GensrError):
    """An utterance's output file is missing, ambiguous or unreadable."""


def readable_suffixes() -> frozenset[str]:
    """Lower-case suffixes of every audio format the installed libsndfile reads."""
    import soundfile

    formats = {f".{fmt.lower()}" for fmt in soundfile.available_formats()}
    return frozenset({*audio_suffixes(), *formats, ".aif", ".oga"})


def utterance_names(uid: str, meta: Mapping[str, Any]) -> list[str]:
    """The names (relative paths without suffix) a file may have to serve utterance ``uid``."""
    names = [PurePosixPath(audio_file_name(uid)).stem]
    as_path = PurePosixPath(uid)
    if not as_path.is_absolute() and ".." not in as_path.parts and uid not in names:
        names.append(uid)
    for key in SOURCE_FILE_KEYS:
        source = meta.get(key)
        if isinstance(source, str) and source:
            path = PurePosixPath(source.replace("\\", "/"))
            for name in (path.with_suffix("").as_posix(), path.stem):
                if name and not name.startswith("/") and name not in names:
                    names.append(name)
    return names


@dataclass
class OutputFolder:
    """The audio files under ``root``, by name (relative path without suffix), and the other
    files there (hidden, or not audio), each with why it is not read."""

    root: Path
    by_name: dict[str, list[str]] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def scan(cls, root: str | Path) -> OutputFolder:
        """Every file under ``root`` (linked folders are not followed, hidden ones skipped)."""
        folder = cls(Path(root))
        suffixes = readable_suffixes()
        for current, dirs, files in os.walk(folder.root):
            here = Path(current)
            for child in sorted(dirs):
                if child.startswith("."):
                    folder.skipped.append((folder.relative(here / child) + "/", "hidden folder"))
                    dirs.remove(child)
            dirs.sort()
            for file_name in sorted(files):
                rel = folder.relative(here / file_name)
                suffix = Path(file_name).suffix.lower()
                if file_name.startswith("."):
                    folder.skipped.append((rel, "hidden file"))
                elif suffix not in suffixes:
                    folder.skipped.append((rel, "not an audio file libsndfile reads"))
                else:
                    name = PurePosixPath(rel).with_suffix("").as_posix()
                    folder.by_name.setdefault(name, []).append(rel)
        return folder

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def audio_files(self) -> list[str]:
        """Every audio file, relative to ``root``, sorted."""
        return sorted(rel for paths in self.by_name.values() for rel in paths)

    def find(self, uid: str, meta: Mapping[str, Any]) -> str | None:
        """The file (relative to ``root``) that serves ``uid``; None when none does.

        Raises OutputFileError when two files share the first name that has any.
        """
        for name in utterance_names(uid, meta):
            found = self.by_name.get(name)
            if found is None:
                continue
            if len(found) > 1:
                raise OutputFileError(
                    f"{len(found)} files could be the output of utterance {uid!r}: "
                    f"{', '.join(str(self.root / rel) for rel in found)}; keep one of them"
                )
            return found[0]
        return None

    def expected(self, uid: str, meta: Mapping[str, Any]) -> str:
        """Where the output of ``uid`` was looked for, for an error message."""
        first, *others = utterance_names(uid, meta)
        text = str(self.root / f"{first}.wav")
        if others:
            text += f" (or {', '.join(str(self.root / o) for o in others)}, each"
            text += " with any audio suffix)"
        else:
            text += " (or another audio suffix)"
        return text

    def read(self, uid: str, meta: Mapping[str, Any]) -> tuple[Audio, str]:
        """The output audio of ``uid`` at the file's own rate, and its file (relative).

        Raises OutputFileError naming the expected file when there is none, and the decode
        error (naming the file) when it cannot be read.
        """
        rel = self.find(uid, meta)
        if rel is None:
            raise OutputFileError(
                f"no output file for utterance {uid!r}: expected {self.expected(uid, meta)}"
            )
        return read_audio(self.root / rel), rel

    def unmatched(
        self, utterances: Iterable[tuple[str, Mapping[str, Any]]]
    ) -> list[tuple[str, str]]:
        """Every file no utterance of ``utterances`` (``(id, meta)``) used, with why."""
        used: set[str] = set()
        for uid, meta in utterances:
            try:
                rel = self.find(uid, meta)
            except OutputFileError:
                continue  # that utterance failed with the ambiguity: its files are not "used"
            if rel is not None:
                used.add(rel)
        why = "matches no utterance of this run (by id or degraded file name)"
        extra = [(rel, why) for rel in self.audio_files() if rel not in used]
        return sorted([*extra, *self.skipped])

    def sample_rates(self) -> dict[int, int]:
        """Sample rate -> number of audio files at it (from the file headers; unreadable
        files are left out: they fail when their utterance is restored)."""
        import soundfile

        rates: dict[int, int] = {}
        for rel in self.audio_files():
            try:
                rate = int(soundfile.info(str(self.root / rel)).samplerate)
            except (RuntimeError, soundfile.LibsndfileError, ValueError):
                continue
            rates[rate] = rates.get(rate, 0) + 1
        return rates

    def sha256(self) -> str:
        """sha256 of every audio file's relative path and content: any change to the files
        the folder can serve changes it."""
        digest = hashlib.sha256()
        for rel in self.audio_files():
            with (self.root / rel).open("rb") as handle:
                content = hashlib.file_digest(handle, "sha256").hexdigest()
            digest.update(f"{rel}\0{content}\n".encode())
        return digest.hexdigest()
