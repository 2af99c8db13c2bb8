"""What the generated suites share: speech assembly, babble talkers, chains, scaling, re-exports."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from gensr_bench_plugins.suites import chains, generated, synth
from gensr_bench_plugins.suites import degradations as dg
from gensr_bench_plugins.suites.chains import (
    RECIPES,
    SAMPLE_RATE,
    apply_chain,
    draw_chain,
    empty_meta,
)
from gensr_bench_plugins.suites.generated import (
    SuiteSpec,
    assemble_speech,
    scale_rendering,
    talker_tracks,
    trim_silence,
)

#: The rate of the fake synthesisers (espeak's and Piper's).
TTS_RATE = 22050
SENTENCES = tuple(f"Sentence number {k} says something." for k in range(30))


class ToneVoice:
    """A fake synthesiser: a 440 Hz tone of ``seconds(text)`` per sentence; records its calls."""

    def __init__(self, seconds: Callable[[str], float] = lambda text: 1.0) -> None:
        self.seconds = seconds
        self.calls: list[str] = []

    def __call__(self, text: str) -> np.ndarray:
        self.calls.append(text)
        t = np.arange(int(self.seconds(text) * TTS_RATE)) / TTS_RATE
        return (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def loud_runs(samples: np.ndarray, rate: int = SAMPLE_RATE) -> int:
    """How many stretches of sound are separated by at least 100 ms of silence."""
    window = int(0.005 * rate)
    padded = np.pad(np.abs(samples), (window, window))
    envelope = np.max(np.lib.stride_tricks.sliding_window_view(padded, 2 * window + 1), axis=1)
    loud = envelope > 0.05
    edges = np.flatnonzero(np.diff(loud.astype(np.int8)) == 1)
    return int(loud[0]) + len(edges)


def reverb_params(rng: np.random.Generator) -> dict:
    params = empty_meta()
    params.update(chains.draw_reverb(rng, (0.4, 0.6), (0.0, 4.0)))
    return params


# ----------------------------------------------------------------------------- speech


@pytest.mark.parametrize("seed", range(8))
def test_assemble_speech_gives_3_to_8_seconds_and_the_sentences_spoken(seed: int) -> None:
    voice = ToneVoice(lambda text: 0.6 + 0.05 * int(text.split()[2]))  # 0.6-2.05 s
    samples, spoken = assemble_speech(voice, TTS_RATE, SENTENCES, np.random.default_rng(seed))
    assert samples.dtype == np.float32
    assert 3.0 <= len(samples) / SAMPLE_RATE <= 8.0  # resampled to 16 kHz
    assert spoken and len(set(spoken)) == len(spoken) and set(spoken) <= set(SENTENCES)
    # The sentences spoken are those read aloud, in order; a read one may be skipped (too long).
    assert spoken == [text for text in voice.calls if text in spoken]
    assert loud_runs(samples) == len(spoken)
    spoken_seconds = sum(voice.seconds(text) for text in spoken)
    assert np.sum(np.abs(samples) > 0.05) / SAMPLE_RATE == pytest.approx(
        spoken_seconds * 0.9, rel=0.12
    )  # a sine is above 0.1 of its peak 94 % of the time


def test_assemble_speech_is_deterministic_for_a_seed() -> None:
    first = assemble_speech(ToneVoice(), TTS_RATE, SENTENCES, np.random.default_rng(3))
    again = assemble_speech(ToneVoice(), TTS_RATE, SENTENCES, np.random.default_rng(3))
    other = assemble_speech(ToneVoice(), TTS_RATE, SENTENCES, np.random.default_rng(4))
    np.testing.assert_array_equal(first[0], again[0])
    assert first[1] == again[1] and first[1] != other[1]


def test_assemble_speech_skips_a_sentence_too_long_for_8_seconds() -> None:
    long = SENTENCES[0]
    sentences = (long, SENTENCES[1], SENTENCES[2], SENTENCES[3], SENTENCES[4])
    tried = 0
    for seed in range(6):
        voice = ToneVoice(lambda text: 9.0 if text == long else 1.0)
        samples, spoken = assemble_speech(voice, TTS_RATE, sentences, np.random.default_rng(seed))
        tried += long in voice.calls
        assert long not in spoken and spoken
        assert 3.0 <= len(samples) / SAMPLE_RATE <= 8.0
    assert tried >= 2  # the long sentence was read, and dropped


def test_assemble_speech_pads_short_speech_to_3_seconds() -> None:
    voice = ToneVoice(lambda text: 0.4)
    samples, spoken = assemble_speech(voice, TTS_RATE, SENTENCES[:2], np.random.default_rng(0))
    assert len(spoken) == 2
    assert len(samples) / SAMPLE_RATE == pytest.approx(3.05, abs=0.01)


@pytest.mark.parametrize(
    "say", [lambda text: np.zeros(0, np.float32), lambda text: np.zeros(TTS_RATE, np.float32)]
)
def test_a_silent_synthesiser_gives_nothing(say: Callable[[str], np.ndarray]) -> None:
    samples, spoken = assemble_speech(say, TTS_RATE, SENTENCES, np.random.default_rng(0))
    assert len(samples) == 0 and samples.dtype == np.float32
    assert spoken == []


def test_trim_silence_keeps_10ms_before_and_40ms_after() -> None:
    samples = np.zeros(16000, np.float32)
    samples[4000:6000] = 0.5
    trimmed = trim_silence(samples, 16000)
    assert len(trimmed) == 2000 - 1 + 160 + 640
    assert len(trim_silence(np.full(100, 1e-4, np.float32), 16000)) == 0


def test_talker_tracks_gives_n_tracks_of_at_least_n_samples() -> None:
    talkers: list[ToneVoice] = []

    def new_talker(rng: np.random.Generator) -> ToneVoice:
        talkers.append(ToneVoice(lambda text: float(rng.uniform(0.3, 0.8))))
        return talkers[-1]

    n_samples = int(4.2 * SAMPLE_RATE)
    tracks = talker_tracks(new_talker, TTS_RATE, SENTENCES, 3, n_samples, np.random.default_rng(0))
    assert len(tracks) == len(talkers) == 3
    for track, talker in zip(tracks, talkers, strict=True):
        assert track.dtype == np.float32 and len(track) >= n_samples
        assert len(track) <= n_samples + 0.9 * SAMPLE_RATE  # stops once full
        assert talker.calls and set(talker.calls) <= set(SENTENCES)
        assert loud_runs(track) == len(talker.calls)
    assert not np.array_equal(tracks[0][:n_samples], tracks[1][:n_samples])


# ----------------------------------------------------------------------------- chains


def test_draw_chain_uses_given_ranges() -> None:
    ranges = {
        **RECIPES["gsr"],
        **{f"p_{stage}": 1.0 for stage in ("reverb", "noise", "clipping", "bandwidth")},
        "snr_db": (30.0, 31.0),
        "rt60": (2.0, 2.5),
        "drr_db": (10.0, 11.0),
        "clip_threshold": (0.95, 0.96),
        "cutoff_hz": (7000, 7100),
        "filter_order": (12, 13),
    }
    for seed in range(50):
        stages, params = draw_chain("gsr", np.random.default_rng(seed), ranges)
        assert stages == ["reverb", "noise", "clipping", "bandwidth"]
        assert 30.0 <= params["snr_db"] <= 31.0 and 2.0 <= params["rt60"] <= 2.5
        assert 10.0 <= params["drr_db"] <= 11.0 and 0.95 <= params["clip_threshold"] <= 0.96
        assert 7000 <= params["cutoff_hz"] <= 7100 and params["filter_order"] in (12, 13)
    for seed in range(20):
        _, params = draw_chain("dns-no-reverb", np.random.default_rng(seed), {"snr_db": (40, 41)})
        assert 40 <= params["snr_db"] <= 41
        stages, params = draw_chain(
            "dns-with-reverb",
            np.random.default_rng(seed),
            {"snr_db": (0, 1), "rt60": (3.0, 3.5), "drr_db": (-1.0, 0.0)},
        )
        assert stages == ["reverb", "noise"] and 3.0 <= params["rt60"] <= 3.5


def test_draw_chain_defaults_to_the_recipe_ranges() -> None:
    for recipe in RECIPES:
        for seed in range(20):
            default = draw_chain(recipe, np.random.default_rng(seed))
            explicit = draw_chain(recipe, np.random.default_rng(seed), RECIPES[recipe])
            assert default == explicit
    with pytest.raises(ValueError, match="unknown recipe 'nope'"):
        draw_chain("nope", np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown recipe 'nope'"):
        draw_chain("nope", np.random.default_rng(0), RECIPES["gsr"])


def test_apply_chain_reverberates_with_the_given_response() -> None:
    clean = np.random.default_rng(0).standard_normal(8000)
    params = reverb_params(np.random.default_rng(1))
    unit = np.array([1.0])
    reference, degraded = apply_chain(
        clean, ["reverb"], params, "gsr", np.random.default_rng(2), rir=unit
    )
    np.testing.assert_allclose(degraded, clean, atol=1e-12)  # a unit response: no reverb
    np.testing.assert_array_equal(reference, clean)
    delay = np.zeros(41)
    delay[40] = 0.5
    _, delayed = apply_chain(clean, ["reverb"], params, "gsr", np.random.default_rng(2), rir=delay)
    assert len(delayed) == len(clean)
    np.testing.assert_allclose(delayed[40:], 0.5 * clean[:-40], atol=1e-12)
    np.testing.assert_allclose(delayed[:40], 0.0, atol=1e-12)


def test_apply_chain_with_reverb_reference_uses_the_given_response() -> None:
    clean = np.random.default_rng(0).standard_normal(8000)
    params = {**reverb_params(np.random.default_rng(1)), "noise_type": "white", "snr_db": 10.0}
    room = np.exp(-np.arange(800) / 100.0) * np.random.default_rng(3).standard_normal(800)
    room[0] = 1.0
    reference, degraded = apply_chain(
        clean, ["reverb", "noise"], params, "dns-with-reverb", np.random.default_rng(2), rir=room
    )
    np.testing.assert_allclose(reference, dg.reverberate(clean, room), atol=1e-9)
    assert dg.measure_snr_db(reference, degraded) == pytest.approx(10.0, abs=0.05)


def test_apply_chain_without_a_response_draws_one_from_the_parameters() -> None:
    clean = np.random.default_rng(0).standard_normal(8000)
    params = reverb_params(np.random.default_rng(1))
    _, drawn = apply_chain(clean, ["reverb"], params, "gsr", np.random.default_rng(2))
    rir = dg.synthetic_rir(
        params["rt60"],
        SAMPLE_RATE,
        np.random.default_rng(2),
        drr_db=params["drr_db"],
        absorption_cutoff_hz=params["absorption_cutoff_hz"],
    )
    np.testing.assert_array_equal(drawn, dg.reverberate(clean, rir))
    assert not np.allclose(drawn, clean)


def test_apply_chain_refuses_an_unknown_stage() -> None:
    with pytest.raises(ValueError, match="unknown degradation stage 'echo'"):
        apply_chain(np.ones(100), ["echo"], empty_meta(), "gsr", np.random.default_rng(0))


# ----------------------------------------------------------------------------- seeds and levels


def test_utterance_seeds_depend_on_name_seed_and_index() -> None:
    spec = SuiteSpec("piper-gsr", "gsr", "test")
    seeds = {spec.utterance_seed(i) for i in range(100)}
    assert len(seeds) == 100 and all(0 <= s < 2**63 for s in seeds)
    assert spec.utterance_seed(0) == SuiteSpec("piper-gsr", "gsr", "test").utterance_seed(0)
    assert spec.utterance_seed(0) != SuiteSpec("piper-gsr", "gsr", "test", 1).utterance_seed(0)
    assert spec.utterance_seed(0) != SuiteSpec("synth-gsr", "gsr", "test").utterance_seed(0)


def test_scale_rendering_sets_the_level_and_limits_peaks() -> None:
    clean = 0.1 * np.random.default_rng(0).standard_normal(16000)
    limited = 0
    for seed in range(40):
        loud = clean * 20.0  # a degraded signal far louder than its reference
        rendering, gain_limited = scale_rendering(
            "u", clean, clean, loud if seed % 2 else clean, np.random.default_rng(seed)
        )
        level = dg.rms_dbfs(rendering.reference)
        assert max(np.max(np.abs(rendering.degraded)), np.max(np.abs(rendering.reference))) <= (
            generated.PEAK_LIMIT + 1e-6
        )
        if gain_limited:
            limited += 1
            assert level < generated.LEVEL_DBFS[1]
        else:
            assert generated.LEVEL_DBFS[0] - 0.01 <= level <= generated.LEVEL_DBFS[1] + 0.01
        np.testing.assert_array_equal(rendering.dry, rendering.reference)
        assert rendering.dry.dtype == np.float32
    assert 0 < limited < 40


# ----------------------------------------------------------------------------- synth re-exports

MOVED = (
    "CACHE_SUFFIX",
    "DEGRADATION_ORDER",
    "DEGRADATION_PARAMETERS",
    "LEVEL_DBFS",
    "MAX_SECONDS",
    "MIN_SECONDS",
    "NOISE_DETAILS",
    "PEAK_LIMIT",
    "RECIPES",
    "SAMPLE_RATE",
    "SPLITS",
    "GeneratedSuite",
    "Rendering",
    "SuiteSpec",
    "apply_chain",
    "assemble_speech",
    "cache_root",
    "decode_utterance",
    "draw_chain",
    "encode_utterance",
    "scale_rendering",
    "sentence_bank",
    "split_sentences",
    "talker_tracks",
)


@pytest.mark.parametrize("name", MOVED)
def test_synth_reexports_the_moved_names(name: str) -> None:
    assert getattr(synth, name) is getattr(generated, name)


def test_synth_keeps_its_public_names() -> None:
    for name in synth.__all__:
        assert hasattr(synth, name), name
    for name in ("render", "generate_utterance", "split_voices", "SUITES", "SyntheticSuite"):
        assert name in synth.__all__
    assert callable(synth.render) and issubclass(synth.SyntheticSuite, generated.GeneratedSuite)
    namespace: dict[str, object] = {}
    exec("from gensr_bench_plugins.suites.synth import *", namespace)
    assert {"SuiteSpec", "render", "draw_chain", "apply_chain", "decode_utterance"} <= set(
        namespace
    )
