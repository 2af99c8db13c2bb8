"""log-mel features against librosa's mel spectrogram with the same settings."""

from __future__ import annotations

import numpy as np
import pytest

from gensr_bench.errors import ConfigError
from gensr_bench.testing import voiced_signal
from gensr_bench_plugins.features import log_mel as log_mel_module
from gensr_bench_plugins.features.log_mel import LogMel


def test_hook_registers_the_class() -> None:
    assert log_mel_module.gensr_register_features() == [LogMel]


@pytest.mark.parametrize("n_mels", [40, 64])
def test_equals_librosa(n_mels: int) -> None:
    import librosa

    samples = voiced_signal(1.3, seed=2).samples
    mel = librosa.feature.melspectrogram(
        y=samples.astype(np.float64),
        sr=16000,
        n_fft=512,
        hop_length=160,
        win_length=400,
        window="hann",
        center=False,
        power=2.0,
        n_mels=n_mels,
        fmin=0.0,
        fmax=8000.0,
        htk=False,
        norm="slaney",
    )
    db = np.maximum(10.0 * np.log10(np.maximum(mel, 1e-30)), -100.0)
    extractor = LogMel(n_mels=str(n_mels), with_std="true")
    vector = extractor.extract(samples)
    assert vector.shape == (2 * n_mels,)
    np.testing.assert_allclose(vector[:n_mels], db.mean(axis=1), atol=1e-6)
    np.testing.assert_allclose(vector[n_mels:], db.std(axis=1), atol=1e-6)


def test_length_does_not_depend_on_duration_and_short_signals_are_padded() -> None:
    extractor = LogMel()
    assert extractor.extract(voiced_signal(0.01).samples).shape == (64,)
    assert extractor.extract(voiced_signal(2.0).samples).shape == (64,)


def test_louder_signal_moves_every_band_up_by_its_gain_in_db() -> None:
    # White noise: no band reaches the -100 dB floor, so every band moves by exactly 6.02 dB.
    samples = np.random.default_rng(0).normal(scale=0.1, size=16000).astype(np.float32)
    extractor = LogMel()
    difference = extractor.extract(samples * 2.0) - extractor.extract(samples)
    np.testing.assert_allclose(difference, 20 * np.log10(2.0), atol=1e-5)


@pytest.mark.parametrize(
    ("options", "message"),
    [({"n_mels": "0"}, "1-256"), ({"n_mels": "x"}, "integer"), ({"with_std": "maybe"}, "true")],
)
def test_bad_options_are_named(options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        LogMel(**options)
