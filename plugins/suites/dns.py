"""The DNS Challenge 2020 (Interspeech 2020) test set, read from a local copy.

One data folder named ``dns`` holds the DNS-Challenge repository tree (branch
``interspeech2020/master``) and serves every suite here:

* ``dns-no-reverb``, ``dns-with-reverb``: the synthetic pairs of
  ``datasets/test_set/synthetic/{no_reverb,with_reverb}/{clean,noisy}/`` (150 each, 16 kHz).
  Clean and noisy files are paired by their trailing ``fileid_<K>``; official names look like
  ``clean_fileid_158.wav`` and ``clnsp1_train_69005_1_snr15_tl-21_fileid_158.wav``. In the
  with-reverb set the clean reference is itself reverberant, as published.
* ``dns``: both synthetic subsets, reported separately by ``run``.
* ``dns-real``: ``datasets/test_set/real_recordings/*.wav``, noisy recordings without reference.

Only ``.wav`` files are read, hidden ones (``.name.wav``, e.g. macOS ``._`` forks) excepted;
``ignored_files`` lists every other file in a suite's folder with why (``suite verify`` and
``run`` print them).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from gensr_bench import Suite, hookimpl
from gensr_bench.audio import load_utterance, resample, unread_files
from gensr_bench.data import (
    MissingDataError,
    VerifyReport,
    files_fingerprint,
    find_suite_dir,
    missing_data_message,
)
from gensr_bench.records import Utterance

DATA_NAME = "dns"
PUBLISHED = (
    "https://github.com/microsoft/DNS-Challenge (branch interspeech2020/master, folder "
    "datasets/test_set; the audio is stored with Git LFS: `git lfs pull`)"
)
LAYOUT = """<DATA>/dns/                      (a clone of the DNS-Challenge repository)
  datasets/test_set/synthetic/no_reverb/clean/clean_fileid_<K>.wav
  datasets/test_set/synthetic/no_reverb/noisy/<clnspN_noise>_snr<S>_tl<L>_fileid_<K>.wav
  datasets/test_set/synthetic/with_reverb/clean/clean_fileid_<K>.wav
  datasets/test_set/synthetic/with_reverb/noisy/<clnspN_noise>_snr<S>_tl<L>_fileid_<K>.wav
  datasets/test_set/real_recordings/<name>.wav"""
TEST_SET = Path("datasets") / "test_set"
OFFICIAL_PAIRS = 150

_FILEID = re.compile(r"fileid_(\d+)$", re.IGNORECASE)
_SNR = re.compile(r"(?:^|_)snr(-?\d+(?:\.\d+)?)(?=_|$)", re.IGNORECASE)
_TL = re.compile(r"(?:^|_)tl(-?\d+(?:\.\d+)?)(?=_|$)", re.IGNORECASE)
_CLNSP = re.compile(r"^clnsp\d+_?", re.IGNORECASE)
#: The only audio the DNS layout holds.
SUFFIXES = (".wav",)


def _number(match: re.Match[str] | None) -> float | int | None:
    if match is None:
        return None
    value = float(match.group(1))
    return int(value) if value.is_integer() else value


def parse_noisy_name(stem: str) -> dict[str, Any]:
    """Metadata in a DNS noisy file's name (without ``.wav``); absent parts are ``None``.

    ``clnsp1_train_69005_1_snr15_tl-21_fileid_158`` gives snr_db 15, target_level_db -21,
    noise ``train_69005_1`` (the noise clip) and noise_class ``train`` (its leading words, up to
    the first number). A name without ``_snr`` has no noise.
    """
    fileid = _FILEID.search(stem)
    snr = _SNR.search(stem)
    noise: str | None = None
    noise_class: str | None = None
    if snr is not None:
        noise = _CLNSP.sub("", stem[: snr.start()]) or None
        if noise is not None:
            words: list[str] = []
            for word in noise.split("_"):
                if word.isdigit():
                    break
                words.append(word)
            noise_class = "_".join(words) or None
    return {
        "fileid": int(fileid.group(1)) if fileid else None,
        "snr_db": _number(snr),
        "target_level_db": _number(_TL.search(stem)),
        "noise": noise,
        "noise_class": noise_class,
    }


def _fileid(path: Path) -> int | None:
    match = _FILEID.search(path.stem)
    return int(match.group(1)) if match else None


def _wavs(folder: Path) -> list[Path]:
    """The ``.wav`` files directly in ``folder``, sorted; hidden files are skipped."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in SUFFIXES and not p.name.startswith(".")
    )


@dataclass
class _Scan:
    """Clean/noisy files of one synthetic subset, paired by fileid."""

    pairs: list[tuple[int, Path, Path]]
    missing: list[str]
    unpaired: list[str]


def _by_fileid(files: list[Path], label: str, unpaired: list[str]) -> dict[int, Path]:
    found: dict[int, Path] = {}
    for path in files:
        key = _fileid(path)
        if key is None:
            unpaired.append(f"{label}/{path.name} (no fileid_<K> in the name)")
        elif key in found:
            unpaired.append(f"{label}/{path.name} (fileid_{key} again; kept {found[key].name})")
        else:
            found[key] = path
    return found


def scan_pairs(folder: Path) -> _Scan:
    """Pair ``folder/clean/*.wav`` with ``folder/noisy/*.wav`` by their trailing fileid."""
    unpaired: list[str] = []
    clean = _by_fileid(_wavs(folder / "clean"), "clean", unpaired)
    noisy = _by_fileid(_wavs(folder / "noisy"), "noisy", unpaired)
    missing: list[str] = []
    for key in sorted(set(clean) - set(noisy)):
        missing.append(f"noisy/*_fileid_{key}.wav (partner of clean/{clean[key].name})")
        unpaired.append(f"clean/{clean[key].name}")
    for key in sorted(set(noisy) - set(clean)):
        missing.append(f"clean/clean_fileid_{key}.wav (partner of noisy/{noisy[key].name})")
        unpaired.append(f"noisy/{noisy[key].name}")
    pairs = [(key, clean[key], noisy[key]) for key in sorted(set(clean) & set(noisy))]
    return _Scan(pairs, missing, unpaired)


class _DNSBase(Suite):
    """Shared option handling and data-folder lookup of the DNS suites."""

    version = "1"
    stand_in: ClassVar[str | None] = None
    #: The folder (relative to the dns data folder) the suite reads.
    folder: ClassVar[Path]
    accepted_options: ClassVar[tuple[str, ...] | None] = ("root",)

    def __init__(self, limit: int | None = None, **options: Any) -> None:
        super().__init__(limit=limit, **options)

    def data_dir(self) -> Path:
        """The ``dns`` data folder, or MissingDataError naming the layout and the stand-in."""
        explicit = self.options.get("root")
        root = find_suite_dir(DATA_NAME, explicit=explicit)
        if root is not None and (root / self.folder).is_dir():
            return root
        where = explicit if root is None else root / self.folder
        message = missing_data_message(DATA_NAME, LAYOUT, PUBLISHED, self.stand_in, where)
        raise MissingDataError(f"{self.name}: {message}")


class _DNSSynthetic(_DNSBase):
    """Base of the synthetic DNS 2020 subsets."""

    subset: ClassVar[str]
    degradation: ClassVar[str]

    def _scan(self) -> tuple[Path, _Scan]:
        root = self.data_dir()
        return root, scan_pairs(root / self.folder)

    def ignored_files(self) -> list[tuple[str, str]]:
        """Files under the subset's folder other than the ``.wav`` files of ``clean/`` and
        ``noisy/`` (which are paired or reported unpaired), relative to that folder."""
        folder = self.data_dir() / self.folder
        read = _wavs(folder / "clean") + _wavs(folder / "noisy")
        return unread_files(
            [folder], set(read), folder, SUFFIXES, elsewhere="not in clean/ or noisy/"
        )

    def full_size(self) -> int:
        return len(self._scan()[1].pairs)

    def iter_utterances(self) -> Iterator[Utterance]:
        root, scan = self._scan()
        for key, clean, noisy in scan.pairs:
            meta: dict[str, Any] = {
                **parse_noisy_name(noisy.stem),
                "fileid": key,
                "subset": self.subset,
                "degradation": self.degradation,
                "reference_reverberant": self.subset == "with_reverb",
                "noisy_file": noisy.relative_to(root).as_posix(),
                "clean_file": clean.relative_to(root).as_posix(),
            }
            utt = load_utterance(f"{self.name}-fileid_{key}", noisy, clean, meta=meta)
            yield _at_rate(utt, self.sample_rate)

    def verify(self) -> VerifyReport:
        import soundfile

        root, scan = self._scan()
        report = VerifyReport(
            self.name,
            str(root / self.folder),
            OFFICIAL_PAIRS,
            len(scan.pairs),
            missing=list(scan.missing),
            unpaired=list(scan.unpaired),
        )
        for _, clean, noisy in scan.pairs:
            for path in (clean, noisy):
                rel = path.relative_to(root / self.folder).as_posix()
                try:
                    info = soundfile.info(str(path))
                except (RuntimeError, soundfile.LibsndfileError, ValueError) as exc:
                    report.missing.append(f"{rel} (unreadable: {exc})")
                    continue
                if info.samplerate != self.sample_rate:
                    report.notes.append(
                        f"{rel} is at {info.samplerate} Hz; it is resampled to "
                        f"{self.sample_rate} Hz when loaded"
                    )
        return report

    def fingerprint(self) -> str:
        """Hash of the sorted relative file list with sizes and content sha256."""
        root, scan = self._scan()
        files = [p for _, clean, noisy in scan.pairs for p in (clean, noisy)]
        relative = [p.relative_to(root).as_posix() for p in files]
        return files_fingerprint(root, relative, salt=f"{self.name}:{self.version}")


def _at_rate(utt: Utterance, rate: int) -> Utterance:
    """``utt`` with its audio resampled to ``rate`` where it differs."""
    changes: dict[str, Any] = {}
    for field_name in ("degraded", "reference"):
        audio = getattr(utt, field_name)
        if audio is not None and audio.sample_rate != rate:
            changes[field_name] = resample(audio, rate)
    return dataclasses.replace(utt, **changes) if changes else utt


class DNSNoReverb(_DNSSynthetic):
    """DNS Challenge 2020 synthetic test set without reverb: 150 noisy/clean pairs (local data)."""

    name = "dns-no-reverb"
    subset = "no_reverb"
    degradation = "noise"
    folder = TEST_SET / "synthetic" / "no_reverb"
    stand_in = "synth-dns-no-reverb"


class DNSWithReverb(_DNSSynthetic):
    """DNS Challenge 2020 synthetic test set with reverb: 150 pairs, reverberant reference.

    The clean reference is the reverberant clean speech, as published.
    """

    name = "dns-with-reverb"
    subset = "with_reverb"
    degradation = "noise+reverb"
    folder = TEST_SET / "synthetic" / "with_reverb"
    stand_in = "synth-dns-with-reverb"


class DNS(_DNSBase):
    """DNS Challenge 2020 synthetic test set: dns-no-reverb and dns-with-reverb, reported apart."""

    name = "dns"
    subsets = ("dns-no-reverb", "dns-with-reverb")
    folder = TEST_SET / "synthetic"
    stand_in = "synth-dns-no-reverb / synth-dns-with-reverb"

    def _parts(self) -> list[_DNSSynthetic]:
        return [DNSNoReverb(**self.options), DNSWithReverb(**self.options)]

    def full_size(self) -> int:
        return sum(part.full_size() for part in self._parts())

    def iter_utterances(self) -> Iterator[Utterance]:
        for part in self._parts():
            yield from part.iter_utterances()

    def verify(self) -> VerifyReport:
        reports = [part.verify() for part in self._parts()]
        return VerifyReport(
            self.name,
            str(self.data_dir() / self.folder),
            sum(r.expected or 0 for r in reports),
            sum(r.found for r in reports),
            missing=[f"{r.suite}: {m}" for r in reports for m in r.missing],
            unpaired=[f"{r.suite}: {u}" for r in reports for u in r.unpaired],
            notes=[f"{r.suite}: {n}" for r in reports for n in r.notes],
        )

    def ignored_files(self) -> list[tuple[str, str]]:
        """Both subsets' ignored files, relative to the ``synthetic`` folder."""
        return [
            (f"{part.folder.name}/{path}", why)
            for part in self._parts()
            for path, why in part.ignored_files()
        ]

    def fingerprint(self) -> str:
        payload = ":".join([self.name, self.version, *(p.fingerprint() for p in self._parts())])
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


class DNSReal(_DNSBase):
    """DNS Challenge 2020 real recordings: noisy speech without a reference (local data)."""

    name = "dns-real"
    folder = TEST_SET / "real_recordings"

    def _files(self) -> tuple[Path, list[Path]]:
        root = self.data_dir()
        return root, _wavs(root / self.folder)

    def full_size(self) -> int:
        return len(self._files()[1])

    def iter_utterances(self) -> Iterator[Utterance]:
        root, files = self._files()
        for path in files:
            meta = {
                "subset": "real_recordings",
                "degradation": "real",
                "real": True,
                "file": path.relative_to(root).as_posix(),
            }
            utt = load_utterance(f"{self.name}-{path.stem}", path, None, meta=meta)
            yield _at_rate(utt, self.sample_rate)

    def ignored_files(self) -> list[tuple[str, str]]:
        """Files in ``real_recordings`` other than its ``.wav`` files, relative to it."""
        root, files = self._files()
        folder = root / self.folder
        elsewhere = "in a sub-folder (the recordings are read from real_recordings/ itself)"
        return unread_files([folder], set(files), folder, SUFFIXES, elsewhere=elsewhere)

    def verify(self) -> VerifyReport:
        root, files = self._files()
        report = VerifyReport(self.name, str(root / self.folder), None, len(files))
        if not files:
            report.missing.append("no .wav files in real_recordings")
        return report

    def fingerprint(self) -> str:
        root, files = self._files()
        relative = [p.relative_to(root).as_posix() for p in files]
        return files_fingerprint(root, relative, salt=f"{self.name}:{self.version}")


SUITES: tuple[type[Suite], ...] = (DNSNoReverb, DNSWithReverb, DNS, DNSReal)


@hookimpl
def gensr_register_suites() -> list[type[Suite]]:
    return list(SUITES)
