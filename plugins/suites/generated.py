"""What the generated suites share: recipes, sentences, degradation chains, the disk cache.

The espeak suites (``synth.py``) and the neural-voice suites (``piper.py``) differ only in the
voice that reads the sentences and in where their rooms come from; everything else lives here
so that both draw, degrade, scale and cache utterances the same way:

* the recipes (``RECIPES``: GSR, DNS 2020 no-reverb and with-reverb) and the draw of one
  utterance's degradation chain (:func:`draw_chain`), applied by :func:`apply_chain`; these
  live in ``chains.py`` and are importable from here too;
* the sentence bank (``sentences.txt``) and its test/train split;
* :func:`assemble_speech` (sentences read one after another, 3-8 s) and :func:`talker_tracks`
  (babble talkers), for any text-to-speech callable;
* :class:`GeneratedSuite`, the base class that iterates a suite through the ``.utt`` disk cache
  (``utt_cache.py``; its names are importable from here too).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import metadata, resources
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from gensr_bench import Suite
from gensr_bench.audio import resample
from gensr_bench.errors import ConfigError
from gensr_bench.records import Audio, Utterance

from . import degradations as dg
from .chains import DEGRADATION_ORDER as DEGRADATION_ORDER
from .chains import DEGRADATION_PARAMETERS as DEGRADATION_PARAMETERS
from .chains import NOISE_DETAILS as NOISE_DETAILS
from .chains import RECIPES as RECIPES
from .chains import SAMPLE_RATE as SAMPLE_RATE
from .chains import apply_chain as apply_chain
from .chains import draw_chain as draw_chain
from .chains import draw_noise as draw_noise
from .chains import draw_reverb as draw_reverb
from .chains import empty_meta as empty_meta
from .chains import integer as integer
from .chains import noise_signal as noise_signal
from .chains import uniform as uniform
from .utt_cache import CACHE_SUFFIX as CACHE_SUFFIX
from .utt_cache import cache_root as cache_root
from .utt_cache import decode_utterance as decode_utterance
from .utt_cache import encode_utterance as encode_utterance
from .utt_cache import read_cached as read_cached
from .utt_cache import write_atomic as write_atomic

#: Length and level of every generated utterance (its rate is ``chains.SAMPLE_RATE``).
MIN_SECONDS = 3.0
MAX_SECONDS = 8.0
PEAK_LIMIT = 0.95
LEVEL_DBFS = (-35.0, -15.0)

SPLITS = ("test", "train")


# ----------------------------------------------------------------------------- sentences


@cache
def _sentence_file() -> bytes:
    return resources.files(__package__).joinpath("sentences.txt").read_bytes()


def package_versions(*names: str) -> dict[str, str]:
    """The installed version of each distribution (``"missing"`` when absent), for fingerprints."""
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "missing"
    return found


def sentences_sha256() -> str:
    """SHA-256 of ``sentences.txt`` (part of every generated suite's fingerprint)."""
    return hashlib.sha256(_sentence_file()).hexdigest()


@cache
def sentence_bank() -> tuple[str, ...]:
    """Every sentence of ``sentences.txt``, in file order."""
    lines = _sentence_file().decode("utf-8").splitlines()
    return tuple(s.strip() for s in lines if s.strip() and not s.lstrip().startswith("#"))


def split_sentences(split: str) -> tuple[str, ...]:
    """The sentences of a split: every third sentence is a test sentence, the rest train."""
    bank = sentence_bank()
    if split == "test":
        return bank[0::3]
    if split == "train":
        return tuple(s for i, s in enumerate(bank) if i % 3 != 0)
    raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")


# ------------------------------------------------------------------- suites and renderings


@dataclass(frozen=True)
class SuiteSpec:
    """What determines a suite's utterances: its name, recipe, split and seed."""

    name: str
    recipe: str
    split: str
    seed: int = 0

    def utterance_seed(self, index: int) -> int:
        """The seed of utterance ``index``: a hash of the suite name, seed and index."""
        digest = hashlib.sha256(f"{self.name}/{self.seed}/{index}".encode()).digest()
        return int.from_bytes(digest[:8], "little") % 2**63


@dataclass(frozen=True)
class Rendering:
    """One generated utterance before packing, with the dry speech kept for inspection.

    All three signals are 16 kHz float32 and scaled by the same gain.
    """

    uid: str
    dry: npt.NDArray[np.float32]
    reference: npt.NDArray[np.float32]
    degraded: npt.NDArray[np.float32]
    transcript: str
    meta: dict[str, Any]

    def completed(self, transcript: str, meta: dict[str, Any]) -> Rendering:
        """This rendering with its transcript and meta, the meta made JSON-plain.

        A JSON round trip, so a freshly generated utterance equals one read from the cache.
        """
        plain = json.loads(json.dumps(meta))
        return dataclasses.replace(self, transcript=transcript, meta=plain)

    def utterance(self) -> Utterance:
        return Utterance(
            id=self.uid,
            degraded=Audio(self.degraded, SAMPLE_RATE),
            reference=Audio(self.reference, SAMPLE_RATE),
            transcript=self.transcript,
            meta=self.meta,
        )


# ----------------------------------------------------------------------------- speech


def trim_silence(samples: npt.NDArray[np.float32], rate: int) -> npt.NDArray[np.float32]:
    """Drop leading and trailing silence, keeping 10 ms before and 40 ms after."""
    loud = np.nonzero(np.abs(samples) > 1e-3)[0]
    if len(loud) == 0:
        return samples[:0]
    start = max(0, int(loud[0]) - int(0.010 * rate))
    stop = min(len(samples), int(loud[-1]) + int(0.040 * rate))
    return samples[start:stop]


#: Reads one sentence aloud: float32 samples at the synthesiser's rate.
Synthesize = Callable[[str], npt.NDArray[np.float32]]


def assemble_speech(
    synthesize: Synthesize,
    rate: int,
    sentences: Sequence[str],
    rng: np.random.Generator,
) -> tuple[npt.NDArray[np.float32], list[str]]:
    """Sentences read by ``synthesize`` (at ``rate``) with short pauses, 3-8 s at 16 kHz.

    Sentences are tried in a random order until the target length (3.5-7.5 s) is reached; one
    that would overrun 8 s is skipped. Returns the samples and the sentences spoken, which is
    empty when the synthesiser said nothing at all (the caller explains why).
    """
    target = int(rng.uniform(3.5, 7.5) * rate)
    lead, tail = (int(s * rate) for s in rng.uniform(0.1, 0.3, size=2))
    budget = int((MAX_SECONDS - 0.05) * rate) - lead - tail
    shortest = int((MIN_SECONDS + 0.05) * rate)
    parts: list[npt.NDArray[np.float32]] = []
    spoken: list[str] = []
    used = 0
    for index in rng.permutation(len(sentences))[:60]:
        speech = trim_silence(synthesize(sentences[int(index)]), rate)
        gap = int(rng.uniform(0.2, 0.5) * rate) if spoken else 0
        if len(speech) == 0 or used + gap + len(speech) > budget:
            if lead + used + tail >= shortest:
                break  # long enough already: stop rather than hunt for a shorter sentence
            continue  # too short yet: try another sentence
        if gap:
            parts.append(np.zeros(gap, dtype=np.float32))
        parts.append(speech)
        spoken.append(sentences[int(index)])
        used += gap + len(speech)
        if used + lead + tail >= target:
            break
    if not spoken:
        return np.zeros(0, dtype=np.float32), spoken
    total = max(lead + used + tail, shortest)
    signal = np.zeros(total, dtype=np.float32)
    body = np.concatenate(parts)
    signal[lead : lead + len(body)] = body
    audio = resample(Audio(signal, rate), SAMPLE_RATE)
    return audio.samples, spoken


def talker_tracks(
    new_talker: Callable[[np.random.Generator], Synthesize],
    rate: int,
    sentences: Sequence[str],
    n_talkers: int,
    n_samples: int,
    rng: np.random.Generator,
) -> list[npt.NDArray[np.float32]]:
    """``n_talkers`` babble talkers, each reading ``sentences`` until it fills ``n_samples``.

    ``new_talker(rng)`` draws one talker (a voice, a prosody) and returns its synthesiser, which
    speaks at ``rate``; the tracks are returned at 16 kHz.
    """
    needed = int(n_samples * rate / SAMPLE_RATE) + 1
    talkers = []
    for _ in range(n_talkers):
        synthesize = new_talker(rng)
        parts: list[npt.NDArray[np.float32]] = []
        length = 0
        while length < needed:
            speech = trim_silence(synthesize(sentences[int(rng.integers(len(sentences)))]), rate)
            gap = np.zeros(int(rng.uniform(0.05, 0.3) * rate), dtype=np.float32)
            parts += [speech, gap]
            length += len(speech) + len(gap)
        track = Audio(np.concatenate(parts), rate)
        talkers.append(resample(track, SAMPLE_RATE).samples)
    return talkers


def scale_rendering(
    uid: str,
    clean: dg.Signal,
    reference: dg.Signal,
    degraded: dg.Signal,
    level_rng: np.random.Generator,
) -> tuple[Rendering, bool]:
    """Scale the three signals by one gain (reference at -35...-15 dBFS, peaks <= 0.95).

    Returns a :class:`Rendering` without transcript or meta (filled by the caller) and whether
    the peak limit lowered the gain.
    """
    target_dbfs = uniform(level_rng, LEVEL_DBFS)
    gain = 10 ** (target_dbfs / 20) / math.sqrt(dg.power(reference) + 1e-20)
    top = gain * max(float(np.max(np.abs(reference))), float(np.max(np.abs(degraded))))
    gain_limited = top > PEAK_LIMIT
    if gain_limited:
        gain *= PEAK_LIMIT / top
    rendering = Rendering(
        uid=uid,
        dry=(clean * gain).astype(np.float32),
        reference=(reference * gain).astype(np.float32),
        degraded=(degraded * gain).astype(np.float32),
        transcript="",
        meta={},
    )
    return rendering, gain_limited


def finish_rendering(
    spec: SuiteSpec,
    index: int,
    signals: tuple[dg.Signal, dg.Signal, dg.Signal],
    level_rng: np.random.Generator,
    chain: tuple[Sequence[str], dict[str, Any]],
    voice: dict[str, Any],
    spoken: Sequence[str],
) -> Rendering:
    """Utterance ``index`` of ``spec``, scaled (:func:`scale_rendering`), with its transcript and
    the meta every generated suite records.

    ``signals`` are the clean, reference and degraded speech; ``chain`` the stages and
    parameters of :func:`draw_chain`; ``voice`` what read the sentences (recorded between the
    split and the sentence count).
    """
    clean, reference, degraded = signals
    stages, params = chain
    scaled, gain_limited = scale_rendering(
        f"{spec.name}-{index:04d}", clean, reference, degraded, level_rng
    )
    meta: dict[str, Any] = {
        "degradation": "+".join(d for d in DEGRADATION_ORDER if d in stages),
        "chain": ">".join(stages),
        "recipe": spec.recipe,
        "split": spec.split,
        **voice,
        "n_sentences": len(spoken),
        "duration_s": round(len(clean) / SAMPLE_RATE, 3),
        "level_dbfs": round(dg.rms_dbfs(scaled.reference), 2),
        "gain_limited": gain_limited,
        "reference_reverberant": spec.recipe == "dns-with-reverb",
        **params,
        "seed": spec.utterance_seed(index),
    }
    return scaled.completed(" ".join(spoken), meta)


# ----------------------------------------------------------------------------- suites


def as_int(name: str, value: Any, minimum: int | None = None) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"option {name}={value!r} must be an integer") from None
    if isinstance(value, float) and value != number:
        raise ConfigError(f"option {name}={value!r} must be an integer")
    if minimum is not None and number < minimum:
        raise ConfigError(f"option {name}={number} must be at least {minimum}")
    return number


def as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"option {name}={value!r} must be true or false")


class GeneratedSuite(Suite):
    """Base of the generated suites: options, fingerprint and the cached iteration.

    Subclasses set ``name``, ``recipe``, ``split`` and ``default_size`` and implement
    :meth:`content` (everything that determines an utterance) and :meth:`generate`.
    """

    recipe: ClassVar[str]
    split: ClassVar[str]
    default_size: ClassVar[int]
    accepted_options: ClassVar[tuple[str, ...] | None] = ("size", "seed", "cache")

    def __init__(self, limit: int | None = None, **options: Any) -> None:
        parsed: dict[str, Any] = {}
        if "size" in options:
            parsed["size"] = as_int("size", options["size"], minimum=1)
        if "seed" in options:
            parsed["seed"] = as_int("seed", options["seed"])
        if "cache" in options:
            parsed["cache"] = as_bool("cache", options["cache"])
        super().__init__(limit=limit, **{**options, **parsed})  # the core refuses unknowns
        self.size: int = parsed.get("size", self.default_size)
        self.seed: int = parsed.get("seed", 0)
        self.use_cache: bool = parsed.get("cache", True)
        self.spec = SuiteSpec(self.name, self.recipe, self.split, self.seed)

    def full_size(self) -> int:
        return self.size

    def _content(self) -> dict[str, Any]:
        """Everything that determines the utterances' content (not how many there are)."""
        raise NotImplementedError

    def generate(self, index: int) -> Utterance:
        """Utterance ``index``, generated afresh (no cache involved)."""
        raise NotImplementedError

    @staticmethod
    def _hash(payload: dict[str, Any]) -> str:
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def fingerprint(self) -> str:
        """Hash of the generation parameters, GENERATOR_VERSION, sentence bank and size."""
        return self._hash({**self._content(), "size": self.size})

    def cache_key(self) -> str:
        """Hash of the content alone: suites that differ only in ``size`` share cached files."""
        return self._hash(self._content())

    def cache_dir(self) -> Path:
        """Where this suite's utterances are cached."""
        return cache_root() / "suites" / f"{self.name}-{self.cache_key()}"

    def iter_utterances(self) -> Iterator[Utterance]:
        folder = self.cache_dir() if self.use_cache else None
        for index in range(self.size):
            path = folder / f"{self.name}-{index:04d}{CACHE_SUFFIX}" if folder else None
            cached = read_cached(path) if path else None
            if cached is not None:
                yield cached
                continue
            utterance = self.generate(index)
            if path is not None and folder is not None:
                try:
                    write_atomic(path, encode_utterance(utterance))
                except OSError as exc:
                    warnings.warn(
                        f"cannot write the suite cache in {folder} ({exc}); going on without "
                        "it. Point GENSR_BENCH_CACHE_DIR at a writable folder to cache.",
                        stacklevel=2,
                    )
                    folder = None
            yield utterance
