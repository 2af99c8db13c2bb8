"""Suites over local copies of paired (degraded, clean) data sets.

``PairedDirSuite`` is the reusable base. It reads a suite folder (``<DATA>/<suite name>``, see
``gensr_bench.data``; option ``root=PATH`` overrides) in one of two layouts:

``metadata.jsonl`` or ``metadata.csv`` (checked in that order)
    One pair per line/row with the keys/columns ``id`` (required, unique), ``noisy`` (required),
    ``clean`` (optional: the reference) and ``transcript`` (optional). Every other key goes to
    the utterance's ``meta``. Paths are relative to the suite folder; an empty CSV cell or a
    JSON ``null`` means "absent".
``noisy/`` (+ ``clean/``)
    Audio files (``.wav``, ``.flac``, ``.ogg``, and ``.mp3`` where the installed libsndfile
    decodes MP3, i.e. 1.1 or later; sub-folders allowed) paired by relative path.
    The utterance id is the path under ``noisy/`` without its suffix, ``/`` written ``-``.
    When ``clean/`` exists, a noisy file without its clean twin is reported missing by
    ``verify`` (and yielded without a reference); a clean file without a noisy twin is
    reported unpaired. Without ``clean/`` the suite has no references (non-intrusive metrics
    only).

Audio keeps its native sample rate (the runner resamples per model and metric from each
``Audio``'s own rate); ``sample_rate`` is the rate the set is published at when known. An
unreadable file does not stop a run: the utterance carries an ``error`` naming it. Hidden files
and folders (names starting with ``.``, e.g. macOS ``._name.wav``) and files of other types are
not read; ``ignored_files`` lists each with why (``suite verify`` and ``run`` print them).

Registered suites:

``librivox-gsr``, ``ccmusic-gsr``
    AnyEnhance's simulated GSR test sets (not public: obtain them from the AnyEnhance authors),
    in either layout above; ``meta["degradation"] = "gsr"``.
``voicefixer-gsr``, ``voicefixer-declip``, ``voicefixer-denoise``, ``voicefixer-sr``,
``voicefixer-derev``
    The VoiceFixer test sets (Zenodo record 5528144, 44.1 kHz), in the layout of the
    VoiceFixer authors' evaluation code (``voicefixer_main``, ``Config.refresh_lists``). Each
    looks in ``<DATA>/<suite name>``, then in ``<DATA>/voicefixer``, for the unpacked
    ``TestSets`` folder holding ``ALL_GSR/``, ``DECLI/``, ``DENOISE/``, ``SR/`` and ``DEREV/``;
    ``VOICEFIXER_LAYOUT`` spells out each task's pairing rule.

Reading the folders (metadata files, ``noisy/`` + ``clean/``, pairing by key) lives in
``paired_layout.py``; its names are importable from here too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from gensr_bench import Suite, hookimpl
from gensr_bench.audio import audio_suffixes, load_utterance, unread_files
from gensr_bench.data import (
    MissingDataError,
    VerifyReport,
    files_fingerprint,
    find_suite_dir,
    missing_data_message,
)
from gensr_bench.records import Utterance

from .paired_layout import GENERIC_LAYOUT as GENERIC_LAYOUT
from .paired_layout import METADATA_FILES as METADATA_FILES
from .paired_layout import Pair as Pair
from .paired_layout import Scan as Scan
from .paired_layout import audio_files as audio_files
from .paired_layout import match_by_key as match_by_key
from .paired_layout import read_metadata as read_metadata
from .paired_layout import scan_clean_noisy as scan_clean_noisy
from .paired_layout import scan_metadata as scan_metadata


class PairedDirSuite(Suite):
    """Paired degraded/clean audio from a local folder (metadata file or noisy/ + clean/).

    Subclasses set ``name``, ``published`` and optionally ``layout``, ``sample_rate``,
    ``degradation`` (added to every utterance's meta), and override ``data_folder_names`` (folder
    names to look for, default the suite name) or ``scan`` (for other layouts).
    """

    name = "paired"
    layout: ClassVar[str] = GENERIC_LAYOUT
    published: ClassVar[str] = "(no public source: your own data)"
    stand_in: ClassVar[str | None] = "synth-gsr"
    degradation: ClassVar[str | None] = None
    accepted_options: ClassVar[tuple[str, ...] | None] = ("root",)

    def __init__(self, limit: int | None = None, **options: Any) -> None:
        super().__init__(limit=limit, **options)
        self._root: Path | None = None
        self._scan: Scan | None = None
        self._fingerprint: str | None = None

    # ------------------------------------------------------------------ locating and scanning

    def root(self) -> Path:
        """The suite folder; raises MissingDataError naming the layout when it is absent."""
        if self._root is None:
            explicit = self.options.get("root")
            found = None
            for data_name in self.data_folder_names():
                found = find_suite_dir(data_name, explicit=explicit)
                if found is not None or explicit is not None:
                    break
            if found is None:
                raise MissingDataError(
                    missing_data_message(
                        self.name, self.layout, self.published, self.stand_in, explicit
                    )
                )
            self._root = found
        return self._root

    def data_folder_names(self) -> tuple[str, ...]:
        """Folder names to look for under each data root, in order (default: the suite name)."""
        return (self.name,)

    def scan(self, root: Path) -> Scan:
        """Find the pairs under ``root``: a metadata file if there is one, else noisy/ + clean/."""
        for file_name in METADATA_FILES:
            if (root / file_name).is_file():
                return scan_metadata(root, root / file_name)
        if (root / "noisy").is_dir():
            return scan_clean_noisy(root)
        raise MissingDataError(
            f"suite {self.name!r}: {root} holds neither {' nor '.join(METADATA_FILES)} nor a "
            f"noisy/ folder. Expected layout:\n{self.layout}\nThe set is published at "
            f"{self.published}."
        )

    def _scanned(self) -> Scan:
        if self._scan is None:
            self._scan = self.scan(self.root())
        return self._scan

    def pairs(self) -> list[Pair]:
        return self._scanned().pairs

    def scan_folders(self, root: Path) -> tuple[Path, ...]:
        """The folders whose every file the suite either reads or lists in ``ignored_files``
        (default: the whole suite folder)."""
        return (root,)

    # ------------------------------------------------------------------ the Suite interface

    def iter_utterances(self) -> Iterator[Utterance]:
        root = self.root()
        for pair in self.pairs():
            meta: dict[str, Any] = {}
            if self.degradation is not None:
                meta["degradation"] = self.degradation
            meta.update(pair.meta)
            meta["file"] = pair.noisy
            yield load_utterance(
                pair.uid,
                root / pair.noisy,
                root / pair.clean if pair.clean is not None else None,
                pair.transcript,
                meta,
            )

    def full_size(self) -> int:
        return len(self.pairs())

    def ignored_files(self) -> list[tuple[str, str]]:
        """Files under ``scan_folders`` that are neither in a pair, nor reported unpaired, nor
        the metadata file: ``(path relative to the suite folder, why)``."""
        root = self.root()
        scan = self._scanned()
        read = [*scan.extra_files, *scan.unpaired]
        for pair in scan.pairs:
            read += [pair.noisy] if pair.clean is None else [pair.noisy, pair.clean]
        return unread_files(
            self.scan_folders(root), {root / rel for rel in read}, root, audio_suffixes()
        )

    def verify(self) -> VerifyReport:
        """Pairs whose files are missing and audio files no pair uses, by name (no decoding)."""
        root = self.root()
        scan = self._scanned()
        complete = sum(
            (root / p.noisy).is_file() and (p.clean is None or (root / p.clean).is_file())
            for p in scan.pairs
        )
        return VerifyReport(
            self.name,
            str(root),
            len(scan.pairs),
            complete,
            missing=list(scan.missing),
            unpaired=list(scan.unpaired),
        )

    def fingerprint(self) -> str:
        """Hash of the sorted relative file list, sizes and content sha256 (plus name/version)."""
        if self._fingerprint is None:
            root = self.root()
            scan = self._scanned()
            files = set(scan.extra_files)
            for pair in scan.pairs:
                files.add(pair.noisy)
                if pair.clean is not None:
                    files.add(pair.clean)
            self._fingerprint = files_fingerprint(root, files, salt=f"{self.name}:{self.version}")
        return self._fingerprint


# ----------------------------------------------------------------------------- AnyEnhance

ANYENHANCE_PUBLISHED = "(not public: obtain it from the AnyEnhance authors, Zhang et al. 2025)"


class LibriVoxGSR(PairedDirSuite):
    """AnyEnhance's simulated LibriVox GSR test set (local copy; not public)."""

    name = "librivox-gsr"
    published = ANYENHANCE_PUBLISHED
    degradation = "gsr"


class CCMusicGSR(PairedDirSuite):
    """AnyEnhance's simulated CCMusic GSR test set (local copy; not public)."""

    name = "ccmusic-gsr"
    published = ANYENHANCE_PUBLISHED
    degradation = "gsr"


# ----------------------------------------------------------------------------- VoiceFixer

VOICEFIXER_PUBLISHED = (
    "https://zenodo.org/record/5528144 (VoiceFixer test sets; unpack the TestSets folder)"
)
VOICEFIXER_LAYOUT = """\
  <folder>/ALL_GSR/simulated/<N>_*.wav     -> ALL_GSR/target/<N>_clean.wav      (voicefixer-gsr)
  <folder>/DECLI/<ratio>/*<spk>_<utt>*.wav  -> DECLI/GroundTruth/<spk>_<utt>_mic1.wav
                                              (ratio 0.1, 0.25, 0.5; voicefixer-declip)
  <folder>/DENOISE/vd_test/noisy_testset_wav/<f>.wav -> DENOISE/vd_test/clean_testset_wav/<f>.wav
                                              (voicefixer-denoise)
  <folder>/SR/cheby1/<cutoff>/*<spk>_<utt>_mic1*.wav -> SR/GroundTruth/<spk>_<utt>_mic1.wav
                                              (cutoff 1000...12000 Hz; voicefixer-sr)
  <folder>/DEREV/Reverb_Speech/*<spk>_<utt>_mic1*.wav -> DEREV/GroundTruth/<spk>_<utt>_mic1.wav
                                              (voicefixer-derev)
  <folder> is <DATA>/<suite name> or <DATA>/voicefixer; all audio 44.1 kHz"""

_VCTK_ID = re.compile(r"[sp]\d+_\d+")
_GSR_ID = re.compile(r"(\d+)_")


def _search(pattern: re.Pattern[str], group: int = 0) -> Callable[[str], str | None]:
    def key(stem: str) -> str | None:
        found = pattern.search(stem)
        return found.group(group) if found else None

    return key


def _numeric_dirs(folder: Path) -> list[tuple[float, Path]]:
    """Sub-folders of ``folder`` named by a number, sorted by that number."""
    out = []
    for path in folder.iterdir() if folder.is_dir() else []:
        try:
            out.append((float(path.name), path))
        except ValueError:
            continue
    return sorted(out)


def _merge(scans: Iterable[Scan]) -> Scan:
    merged = Scan()
    unpaired: dict[str, None] = {}
    used: set[str] = set()
    for scan in scans:
        merged.pairs += scan.pairs
        merged.missing += scan.missing
        unpaired.update(dict.fromkeys(scan.unpaired))
        used.update(p.clean for p in scan.pairs if p.clean)
    # A shared GroundTruth folder: a reference is unpaired only when no part uses it.
    merged.unpaired = [rel for rel in unpaired if rel not in used]
    return merged


class VoiceFixerSuite(PairedDirSuite):
    """Base of the VoiceFixer test-set suites (44.1 kHz; layout in VOICEFIXER_LAYOUT)."""

    name = "voicefixer"
    sample_rate = 44100
    layout = VOICEFIXER_LAYOUT
    published = VOICEFIXER_PUBLISHED
    stand_in = "synth-gsr"
    task: ClassVar[str] = ""
    #: The top folder of the task in the VoiceFixer test sets (e.g. ``DECLI``).
    task_folder: ClassVar[str] = ""

    def data_folder_names(self) -> tuple[str, ...]:
        return (self.name, "voicefixer")

    def _need(self, root: Path, *parts: str) -> Path:
        folder = root.joinpath(*parts)
        if not folder.is_dir():
            raise MissingDataError(
                f"suite {self.name!r}: {folder} not found in the VoiceFixer test-set copy "
                f"{root}. Expected layout:\n{self.layout}\nThe set is published at "
                f"{self.published}."
            )
        return folder

    def _meta(self, **extra: Any) -> dict[str, Any]:
        return {"task": self.task, **extra}

    def scan_folders(self, root: Path) -> tuple[Path, ...]:
        # The task's own folder (e.g. DECLI/): the other tasks' folders belong to other suites.
        return (root / self.task_folder,)


class VoiceFixerGSR(VoiceFixerSuite):
    """VoiceFixer general speech restoration test set (ALL_GSR, 44.1 kHz, local copy)."""

    name = "voicefixer-gsr"
    task = "gsr"
    task_folder = "ALL_GSR"
    degradation = "gsr"

    def scan(self, root: Path) -> Scan:
        simulated = self._need(root, "ALL_GSR", "simulated")
        target = self._need(root, "ALL_GSR", "target")
        return match_by_key(
            root,
            audio_files(simulated),
            target,
            _search(_GSR_ID, 1),
            lambda stem: m.group(1) if (m := re.fullmatch(r"(\d+)_clean", stem)) else None,
            lambda path: path.stem,
            self._meta(),
        )


class VoiceFixerDeclip(VoiceFixerSuite):
    """VoiceFixer declipping test sets at clipping ratios 0.1, 0.25, 0.5 (44.1 kHz)."""

    name = "voicefixer-declip"
    task = "declip"
    task_folder = "DECLI"
    degradation = "clipping"

    def scan(self, root: Path) -> Scan:
        base = self._need(root, "DECLI")
        truth = self._need(root, "DECLI", "GroundTruth")
        parts = []
        for ratio, folder in _numeric_dirs(base):
            parts.append(
                match_by_key(
                    root,
                    audio_files(folder),
                    truth,
                    _search(_VCTK_ID),
                    _search(_VCTK_ID),
                    lambda path: f"{path.parent.name}-{path.stem}",
                    self._meta(clip_ratio=ratio),
                )
            )
        if not parts:
            raise MissingDataError(
                f"suite {self.name!r}: no clipping-ratio folders (e.g. DECLI/0.1) in {base}. "
                f"Expected layout:\n{self.layout}"
            )
        return _merge(parts)


class VoiceFixerDenoise(VoiceFixerSuite):
    """VoiceFixer denoising test set: VCTK-DEMAND test (vd_test, 44.1 kHz)."""

    name = "voicefixer-denoise"
    task = "denoise"
    task_folder = "DENOISE"
    degradation = "noise"

    def scan(self, root: Path) -> Scan:
        noisy = self._need(root, "DENOISE", "vd_test", "noisy_testset_wav")
        clean = self._need(root, "DENOISE", "vd_test", "clean_testset_wav")
        return match_by_key(
            root,
            audio_files(noisy),
            clean,
            lambda stem: stem,
            lambda stem: stem,
            lambda path: path.stem,
            self._meta(),
        )


class VoiceFixerSR(VoiceFixerSuite):
    """VoiceFixer super-resolution test sets: Chebyshev-I low-pass at 1-12 kHz (44.1 kHz)."""

    name = "voicefixer-sr"
    task = "sr"
    task_folder = "SR"
    degradation = "bandwidth"

    def scan(self, root: Path) -> Scan:
        base = self._need(root, "SR", "cheby1")
        truth = self._need(root, "SR", "GroundTruth")
        key = _search(re.compile(_VCTK_ID.pattern + "_mic1"))
        parts = [
            match_by_key(
                root,
                audio_files(folder),
                truth,
                key,
                key,
                lambda path: f"{path.parent.name}-{path.stem}",
                self._meta(filter="cheby1", cutoff_hz=int(cutoff)),
            )
            for cutoff, folder in _numeric_dirs(base)
        ]
        if not parts:
            raise MissingDataError(
                f"suite {self.name!r}: no cutoff folders (e.g. SR/cheby1/4000) in {base}. "
                f"Expected layout:\n{self.layout}"
            )
        return _merge(parts)


class VoiceFixerDerev(VoiceFixerSuite):
    """VoiceFixer dereverberation test set (reverberant VCTK, 44.1 kHz)."""

    name = "voicefixer-derev"
    task = "derev"
    task_folder = "DEREV"
    degradation = "reverb"

    def scan(self, root: Path) -> Scan:
        reverb = self._need(root, "DEREV", "Reverb_Speech")
        truth = self._need(root, "DEREV", "GroundTruth")
        key = _search(re.compile(_VCTK_ID.pattern + "_mic1"))
        return match_by_key(
            root, audio_files(reverb), truth, key, key, lambda path: path.stem, self._meta()
        )


SUITES: tuple[type[PairedDirSuite], ...] = (
    PairedDirSuite,
    LibriVoxGSR,
    CCMusicGSR,
    VoiceFixerGSR,
    VoiceFixerDeclip,
    VoiceFixerDenoise,
    VoiceFixerSR,
    VoiceFixerDerev,
)


@hookimpl
def gensr_register_suites() -> list[type[Suite]]:
    return list(SUITES)
