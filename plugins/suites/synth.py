"""Built-in offline suites: espeak speech under synthetic degradations, cached on disk.

Six suites, three recipes, each with a test set and a disjoint ``-train`` set (other sentences,
other voices):

``synth-gsr`` / ``synth-gsr-train``
    General speech restoration, after the VoiceFixer and AnyEnhance simulation recipes: every
    utterance gets a random chain of reverberation (p=0.5; RT60 0.1-1.0 s), additive noise
    (p=0.75; white, pink, brown, babble, mains hum or HVAC rumble at -5...20 dB SNR), clipping
    (p=0.35; at 0.06-0.9 of the peak) and band limitation (p=0.5; 1-6 kHz, Butterworth,
    Chebyshev-I, elliptic or Bessel of order 2-10, zero-phase or causal), applied in that
    order, at least one per utterance. The reference is the dry clean speech.
``synth-dns-no-reverb`` / ``synth-dns-no-reverb-train``
    As the DNS Challenge 2020 synthetic no-reverb test set: clean speech plus noise at
    0-19 dB SNR; the reference is the clean speech.
``synth-dns-with-reverb`` / ``synth-dns-with-reverb-train``
    As the DNS 2020 with-reverb set: reverberant speech (RT60 0.3-1.0 s) plus noise at
    0-19 dB SNR; the reference is the *reverberant* clean speech.

Test suites hold 150 utterances and train suites 1000 by default (option ``size``). Every
utterance is 3-8 s of one espeak voice reading sentences from ``sentences.txt``, 16 kHz
float32 mono, and is deterministic for (suite name, ``seed`` option, index): ``limit=N`` gives
the first N utterances of the full suite. Pairs are scaled together so the reference sits at a
random -35...-15 dBFS RMS (as in DNS) with both peaks at most 0.95.

Options (constructor keyword arguments): ``size`` (int), ``seed`` (int, default 0; another
seed draws another suite of the same recipe), ``cache`` (bool, default true).

Generated utterances are cached, one small ``.utt`` file each (layout next to
``encode_utterance``), under
``$GENSR_BENCH_CACHE_DIR/suites/<name>-<key>/`` (default: the platform's user cache folder
``gensr-bench``). ``key`` hashes everything that determines an utterance's content except
``size`` (which only decides how many there are), so suites of different sizes share files.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib import metadata
from typing import Any

import numpy as np
import numpy.typing as npt

from gensr_bench import Suite, hookimpl
from gensr_bench.records import Utterance

from .chains import (
    DEGRADATION_ORDER,
    DEGRADATION_PARAMETERS,
    NOISE_DETAILS,
    RECIPES,
    SAMPLE_RATE,
    apply_chain,
    draw_chain,
    integer,
)
from .espeak import ESPEAK_SAMPLE_RATE, EspeakError, EspeakSession, Voice, espeak_session
from .generated import (
    CACHE_SUFFIX,
    LEVEL_DBFS,
    MAX_SECONDS,
    MIN_SECONDS,
    PEAK_LIMIT,
    SPLITS,
    GeneratedSuite,
    Rendering,
    SuiteSpec,
    assemble_speech,
    cache_root,
    decode_utterance,
    encode_utterance,
    finish_rendering,
    scale_rendering,
    sentence_bank,
    sentences_sha256,
    split_sentences,
    talker_tracks,
)

# Names that moved to generated.py, importable from here as before.
__all__ = [
    "CACHE_SUFFIX",
    "DEGRADATION_ORDER",
    "DEGRADATION_PARAMETERS",
    "LEVEL_DBFS",
    "MAX_SECONDS",
    "MIN_SECONDS",
    "PEAK_LIMIT",
    "RECIPES",
    "SAMPLE_RATE",
    "SPLITS",
    "SUITES",
    "Rendering",
    "SuiteSpec",
    "SyntheticSuite",
    "apply_chain",
    "cache_root",
    "decode_utterance",
    "draw_chain",
    "encode_utterance",
    "generate_utterance",
    "render",
    "scale_rendering",
    "sentence_bank",
    "split_sentences",
    "split_voices",
]

#: Bump on any change to generation code: it is part of every fingerprint and cache key.
GENERATOR_VERSION = "1"

#: English language voices; both splits use all of them.
ACCENTS = (
    "en",
    "en-us",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-029",
    "en-us-nyc",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
)
#: Voice variants (the speaker): disjoint between the splits, so no voice is in both.
VARIANTS = {
    "test": ("m1", "m3", "m5", "m7", "f1", "f3", "f5", "Annie", "linda", "max"),
    "train": (
        "m2",
        "m4",
        "m6",
        "m8",
        "f2",
        "f4",
        "Andy",
        "Alex",
        "Andrea",
        "belinda",
        "shelby",
        "Lee",
    ),
}
RATE_WPM = (140, 200)
PITCH = (30, 70)
PITCH_RANGE = (30, 80)


# ----------------------------------------------------------------------------- voices


def split_voices(split: str) -> tuple[str, ...]:
    """Every voice (``accent+variant``) a split speaks with."""
    return tuple(f"{accent}+{variant}" for variant in VARIANTS[split] for accent in ACCENTS)


def _draw_voice(rng: np.random.Generator, variants: Sequence[str]) -> Voice:
    accent = ACCENTS[int(rng.integers(len(ACCENTS)))]
    variant = variants[int(rng.integers(len(variants)))]
    return Voice(
        f"{accent}+{variant}",
        rate=integer(rng, RATE_WPM),
        pitch=integer(rng, PITCH),
        pitch_range=integer(rng, PITCH_RANGE),
    )


def _speak(
    session: EspeakSession,
    sentences: Sequence[str],
    voice: Voice,
    rng: np.random.Generator,
) -> tuple[npt.NDArray[np.float32], list[str]]:
    """Sentences read by ``voice`` with short pauses, 3-8 s at 16 kHz (with margins)."""
    samples, spoken = assemble_speech(
        lambda text: session.synthesize(text, voice), ESPEAK_SAMPLE_RATE, sentences, rng
    )
    if not spoken:
        raise EspeakError(
            f"espeak spoke none of {len(sentences)} sentences with voice {voice.name!r}; "
            "check the espeakng-loader install (its voice data may be incomplete)"
        )
    return samples, spoken


def _babble_talkers(
    session: EspeakSession,
    sentences: Sequence[str],
    variants: Sequence[str],
    n_talkers: int,
    n_samples: int,
    rng: np.random.Generator,
) -> list[npt.NDArray[np.float32]]:
    """``n_talkers`` other espeak voices, each reading until it fills ``n_samples`` at 16 kHz."""

    def new_talker(talker_rng: np.random.Generator) -> Any:
        voice = _draw_voice(talker_rng, variants)
        return lambda text: session.synthesize(text, voice)

    return talker_tracks(new_talker, ESPEAK_SAMPLE_RATE, sentences, n_talkers, n_samples, rng)


# ----------------------------------------------------------------------------- generation


def render(spec: SuiteSpec, index: int) -> Rendering:
    """Generate utterance ``index`` of the suite ``spec`` (no cache involved)."""
    if spec.recipe not in RECIPES:
        raise ValueError(f"unknown recipe {spec.recipe!r}; expected one of {sorted(RECIPES)}")
    seed = spec.utterance_seed(index)
    # Independent streams, so e.g. a change in sentence picking leaves the chains alone.
    speech_rng, chain_rng, signal_rng, level_rng = (
        np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(4)
    )
    sentences = split_sentences(spec.split)
    variants = VARIANTS[spec.split]
    voice = _draw_voice(speech_rng, variants)
    stages, params = draw_chain(spec.recipe, chain_rng)

    with espeak_session(seed) as session:
        dry, spoken = _speak(session, sentences, voice, speech_rng)
        talkers: list[npt.NDArray[np.float32]] = []
        if params["noise_type"] == "babble":
            others = [v for v in variants if v != voice.name.partition("+")[2]]
            talkers = _babble_talkers(
                session, sentences, others, params["babble_talkers"], len(dry), speech_rng
            )

    clean = dry.astype(np.float64)
    reference, degraded = apply_chain(clean, stages, params, spec.recipe, signal_rng, talkers)

    return finish_rendering(
        spec,
        index,
        (clean, reference, degraded),
        level_rng,
        (stages, params),
        {
            "voice": voice.name,
            "rate": voice.rate,
            "pitch": voice.pitch,
            "pitch_range": voice.pitch_range,
        },
        spoken,
    )


def generate_utterance(spec: SuiteSpec, index: int) -> Utterance:
    """Utterance ``index`` of the suite ``spec``, generated afresh."""
    return render(spec, index).utterance()


# ----------------------------------------------------------------------------- suites


@cache
def _espeak_version() -> str:
    try:
        return metadata.version("espeakng-loader")
    except metadata.PackageNotFoundError:
        return "unknown"


class SyntheticSuite(GeneratedSuite):
    """Base of the built-in espeak suites; subclasses set name, recipe, split and size."""

    version = GENERATOR_VERSION

    def _content(self) -> dict[str, Any]:
        """Everything that determines the utterances' content (not how many there are)."""
        return {
            "generator_version": GENERATOR_VERSION,
            "name": self.name,
            "recipe": self.recipe,
            "split": self.split,
            "seed": self.seed,
            "sample_rate": SAMPLE_RATE,
            "sentences_sha256": sentences_sha256(),
            "accents": ACCENTS,
            "variants": VARIANTS[self.split],
            "voice_ranges": {"rate": RATE_WPM, "pitch": PITCH, "pitch_range": PITCH_RANGE},
            "recipe_ranges": RECIPES[self.recipe],
            "noise_details": NOISE_DETAILS,
            "durations": (MIN_SECONDS, MAX_SECONDS),
            "level": {"dbfs": LEVEL_DBFS, "peak_limit": PEAK_LIMIT},
            "espeakng_loader": _espeak_version(),
        }

    def generate(self, index: int) -> Utterance:
        return generate_utterance(self.spec, index)


class SynthGSR(SyntheticSuite):
    """Espeak speech under random noise, reverb, clipping and band-limit chains (150 utterances).

    The reference is the dry clean speech; the module docstring describes the recipe.
    """

    name = "synth-gsr"
    recipe = "gsr"
    split = "test"
    default_size = 150


class SynthGSRTrain(SyntheticSuite):
    """Training counterpart of synth-gsr: other sentences and voices (1000 utterances)."""

    name = "synth-gsr-train"
    recipe = "gsr"
    split = "train"
    default_size = 1000


class SynthDNSNoReverb(SyntheticSuite):
    """Espeak speech plus synthetic noise at 0-19 dB SNR, as DNS 2020 no-reverb (150 utterances)."""

    name = "synth-dns-no-reverb"
    recipe = "dns-no-reverb"
    split = "test"
    default_size = 150


class SynthDNSNoReverbTrain(SyntheticSuite):
    """Training counterpart of synth-dns-no-reverb: other sentences, voices (1000 utterances)."""

    name = "synth-dns-no-reverb-train"
    recipe = "dns-no-reverb"
    split = "train"
    default_size = 1000


class SynthDNSWithReverb(SyntheticSuite):
    """Reverberant espeak speech plus noise at 0-19 dB SNR, as DNS 2020 with-reverb (150 utts).

    The reference is the reverberant clean speech, as in the DNS 2020 with-reverb test set.
    """

    name = "synth-dns-with-reverb"
    recipe = "dns-with-reverb"
    split = "test"
    default_size = 150


class SynthDNSWithReverbTrain(SyntheticSuite):
    """Training counterpart of synth-dns-with-reverb: other sentences, voices (1000 utterances)."""

    name = "synth-dns-with-reverb-train"
    recipe = "dns-with-reverb"
    split = "train"
    default_size = 1000


SUITES: tuple[type[SyntheticSuite], ...] = (
    SynthGSR,
    SynthGSRTrain,
    SynthDNSNoReverb,
    SynthDNSNoReverbTrain,
    SynthDNSWithReverb,
    SynthDNSWithReverbTrain,
)


@hookimpl
def gensr_register_suites() -> list[type[Suite]]:
    return list(SUITES)
