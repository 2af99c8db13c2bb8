"""The ctypes driver for libespeak-ng: synthesis, determinism, voices, errors, threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from gensr_bench_plugins.suites.espeak import (
    ESPEAK_SAMPLE_RATE,
    EspeakError,
    Voice,
    check_voice,
    espeak_session,
    synthesize,
    variant_names,
)
from gensr_bench_plugins.suites.synth import ACCENTS, VARIANTS

TEXT = "The quick brown fox jumps over the lazy dog."


def test_synthesize_returns_speech_at_22k() -> None:
    samples = synthesize(TEXT, Voice("en-us"))
    assert ESPEAK_SAMPLE_RATE == 22050
    assert samples.dtype == np.float32 and samples.ndim == 1
    seconds = len(samples) / ESPEAK_SAMPLE_RATE
    assert 1.5 < seconds < 6.0
    assert 0.05 < np.max(np.abs(samples)) < 1.0


def test_same_seed_same_samples_even_after_other_synthesis() -> None:
    # libespeak-ng keeps static state between calls; sessions must start from scratch.
    voice = Voice("en-us+f5", rate=160, pitch=40)
    first = synthesize(TEXT, voice, seed=3)
    synthesize("Something else entirely, to disturb any leftover state.", Voice("en+m3"))
    with espeak_session(3) as session:
        again = session.synthesize(TEXT, voice)
    np.testing.assert_array_equal(first, again)


def test_rate_and_pitch_change_the_speech() -> None:
    slow = synthesize(TEXT, Voice("en-us", rate=120))
    fast = synthesize(TEXT, Voice("en-us", rate=240))
    assert len(slow) > 1.5 * len(fast)
    low = synthesize(TEXT, Voice("en-us", pitch=10))
    high = synthesize(TEXT, Voice("en-us", pitch=90))
    assert not np.array_equal(low, high)


def test_every_suite_voice_variant_exists_and_changes_the_voice() -> None:
    # espeak silently falls back to the plain voice for an unknown variant: check both ways.
    variants = VARIANTS["test"] + VARIANTS["train"]
    assert set(variants) <= set(variant_names())
    with espeak_session(0) as session:
        plain = session.synthesize(TEXT, Voice("en-us"))
        for variant in variants:
            varied = session.synthesize(TEXT, Voice(f"en-us+{variant}"))
            assert len(varied) > 0
            assert len(varied) != len(plain) or not np.allclose(varied, plain), variant


def test_every_suite_accent_loads() -> None:
    for accent in ACCENTS:
        check_voice(f"{accent}+m3")


def test_unknown_variant_and_language_are_errors() -> None:
    with pytest.raises(EspeakError, match="unknown espeak voice variant 'nonesuch'"):
        check_voice("en-us+nonesuch")
    with pytest.raises(EspeakError, match="no voice 'xx-nowhere'"):
        check_voice("xx-nowhere")


def test_voice_parameters_are_validated() -> None:
    with pytest.raises(EspeakError, match="rate"):
        Voice("en", rate=20)
    with pytest.raises(EspeakError, match="pitch"):
        Voice("en", pitch=140)


def test_sessions_are_thread_safe() -> None:
    voices = [Voice(f"en-us+{v}", rate=150 + 10 * i) for i, v in enumerate(VARIANTS["test"][:4])]
    expected = [synthesize(TEXT, voice, seed=i) for i, voice in enumerate(voices)]
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        for _ in range(3):
            results[i] = synthesize(TEXT, voices[i], seed=i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(voices))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i, samples in enumerate(expected):
        np.testing.assert_array_equal(results[i], samples)


def test_other_users_of_the_wheel_library_do_not_disturb_sessions() -> None:
    # A phonemiser in the same process may load the wheel's libespeak-ng and change its voice
    # and state; sessions run on a private copy of the library, so they give the same samples.
    import espeakng_loader

    voice = Voice("en-gb-scotland+m3", rate=150)
    before = synthesize(TEXT, voice, seed=11)
    shared = espeakng_loader.load_library()
    assert shared is not None
    shared.espeak_Initialize(2, 0, espeakng_loader.get_data_path().encode(), 0x8000)
    shared.espeak_SetVoiceByName(b"en-us+f4")
    np.testing.assert_array_equal(synthesize(TEXT, voice, seed=11), before)
