"""NISQA: equal to torchmetrics' NISQA with the same weights, conformance, direction, errors.

The official weights are read from the repository's sibling folder ``shared/weights/nisqa``
(never copied into the repository); torchmetrics gets the same file through a temporary copy
of its weight cache, and neither may download anything.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import gensr_bench.weights as weights_module
from gensr_bench.audio import resample
from gensr_bench.errors import AudioValidationError
from gensr_bench.records import Audio, Restoration, Utterance
from gensr_bench.testing import add_noise, check_metric_conformance, voiced_signal
from gensr_bench.weights import WEIGHTS_ENV, WeightsError
from gensr_bench_plugins.metrics import nisqa as nisqa_module
from gensr_bench_plugins.metrics.nisqa import (
    HEAD_OUTPUTS,
    WEIGHTS,
    Nisqa,
    NisqaCheckpointError,
    load_network,
    mel_filterbank,
    torch_threads,
)

#: The shared weights folder beside the repository (CI has it there too).
SHARED_WEIGHTS = Path(__file__).resolve().parents[3].parent / "shared" / "weights" / "nisqa"
#: torchmetrics' output order (the checkpoint's head order) as our output names.
TORCHMETRICS_ORDER = HEAD_OUTPUTS


def _require_shared_weights() -> None:
    # The shared folder sits beside every checkout, CI's included: its absence is a failure.
    assert (SHARED_WEIGHTS / WEIGHTS.filename).is_file(), (
        f"NISQA weights not found at {SHARED_WEIGHTS / WEIGHTS.filename}"
    )


@pytest.fixture
def shared_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    _require_shared_weights()
    monkeypatch.setenv(WEIGHTS_ENV, str(SHARED_WEIGHTS))


@pytest.fixture(scope="module")
def metric() -> Iterator[Nisqa]:
    _require_shared_weights()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(WEIGHTS_ENV, str(SHARED_WEIGHTS))
        instance = Nisqa()
        instance.setup()
    yield instance


@pytest.fixture(scope="module")
def torchmetrics_nisqa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """torchmetrics' functional NISQA, reading the shared weights from a temporary cache."""
    from torchmetrics.functional.audio import nisqa as reference

    _require_shared_weights()
    cache_dir = tmp_path_factory.mktemp("torchmetrics") / "NISQA"
    cache_dir.mkdir()
    (cache_dir / "nisqa.tar").symlink_to(SHARED_WEIGHTS / WEIGHTS.filename)

    def no_download() -> None:
        raise AssertionError("torchmetrics tried to download the NISQA weights")

    with pytest.MonkeyPatch.context() as patch:
        # torchmetrics expands NISQA_DIR when it loads and caches the model (lru_cache).
        patch.setattr(reference, "NISQA_DIR", str(cache_dir))
        patch.setattr(reference, "_download_weights", no_download)
        reference._load_nisqa_model.cache_clear()
        yield reference.non_intrusive_speech_quality_assessment
        reference._load_nisqa_model.cache_clear()


def _reverberant(clean: Audio, rt60: float, seed: int) -> Audio:
    """``clean`` convolved with exponentially decaying noise (a synthetic room response)."""
    from scipy.signal import fftconvolve

    rng = np.random.default_rng(seed)
    t = np.arange(round(rt60 * clean.sample_rate)) / clean.sample_rate
    response = rng.standard_normal(t.size) * np.exp(-6.9 * t / rt60)
    response[0] = 1.0
    wet = fftconvolve(clean.samples.astype(np.float64), response)[: len(clean.samples)]
    return Audio((0.5 * wet / np.max(np.abs(wet))).astype(np.float32), clean.sample_rate)


def _lowpassed(audio: Audio, cutoff_hz: float) -> Audio:
    from scipy.signal import butter, sosfiltfilt

    sos = butter(8, cutoff_hz, fs=audio.sample_rate, output="sos")
    return Audio(sosfiltfilt(sos, audio.samples).astype(np.float32), audio.sample_rate)


@cache
def varied_clips() -> dict[str, Audio]:
    """Espeak speech from the synthetic GSR suite plus synthetic voiced signals, 16 and 48 kHz."""
    from gensr_bench_plugins.suites.synth import SynthGSR

    utterances = list(SynthGSR(limit=4))  # 0: noise+clipping, 1: noise+bandwidth, 3: reverb
    speech = {
        "speech-clean": utterances[0].reference,
        "speech-noise-clipping": utterances[0].degraded,
        "speech-noise-bandwidth": utterances[1].degraded,
        "speech-reverb": utterances[3].degraded,
    }
    clips: dict[str, Audio] = {}
    for label, audio in speech.items():
        assert audio is not None
        clips[f"{label}-16k"] = audio
        clips[f"{label}-48k"] = resample(audio, 48000)
    voiced = voiced_signal(3.0, 48000, seed=5)
    clips["voiced-white-noise-0db-16k"] = add_noise(voiced_signal(3.0, 16000, seed=6), 0.0, 7)
    clips["voiced-white-noise-15db-48k"] = add_noise(voiced, 15.0, 8)
    clips["voiced-reverb-48k"] = _reverberant(voiced, rt60=0.6, seed=9)
    clips["voiced-noisy-lowpass-4k-48k"] = _lowpassed(add_noise(voiced, 10.0, 10), 4000.0)
    return clips


def test_hook_registers_the_class() -> None:
    assert nisqa_module.gensr_register_metrics() == [Nisqa]


def test_declares_the_official_weights() -> None:
    assert Nisqa.weight_files == (WEIGHTS,)
    assert WEIGHTS.url is not None and "gabrielmittag/NISQA" in WEIGHTS.url
    assert WEIGHTS.url.endswith("/weights/nisqa.tar")
    assert "CC BY-NC-SA" in WEIGHTS.license


def test_conformance(shared_weights: None) -> None:
    scores = check_metric_conformance(Nisqa)
    for item in scores:
        assert -1.0 < item["nisqa_mos"] < 6.0


CLIP_NAMES = (
    "speech-clean-16k",
    "speech-clean-48k",
    "speech-noise-clipping-16k",
    "speech-noise-clipping-48k",
    "speech-noise-bandwidth-16k",
    "speech-noise-bandwidth-48k",
    "speech-reverb-16k",
    "speech-reverb-48k",
    "voiced-white-noise-0db-16k",
    "voiced-white-noise-15db-48k",
    "voiced-reverb-48k",
    "voiced-noisy-lowpass-4k-48k",
)


@pytest.mark.parametrize("clip", CLIP_NAMES)
def test_equals_torchmetrics(metric: Nisqa, torchmetrics_nisqa: Any, clip: str) -> None:
    import torch

    audio = varied_clips()[clip]
    ours = metric.score_batch(*_as_batch(clip, audio))[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # librosa: empty mel filters above Nyquist, as expected
        with torch_threads(1):  # as ours; on a busy machine more threads only wait
            theirs = torchmetrics_nisqa(torch.from_numpy(audio.samples), audio.sample_rate)
    for output, value in zip(TORCHMETRICS_ORDER, theirs.tolist(), strict=True):
        assert ours[output] == pytest.approx(value, abs=1e-4), output


def test_every_clip_is_compared() -> None:
    assert set(CLIP_NAMES) == set(varied_clips())


def _as_batch(uid: str, audio: Audio) -> tuple[list[Restoration], list[Utterance]]:
    return [Restoration(uid, audio, "test")], [Utterance(id=uid, degraded=audio)]


def test_clean_scores_higher_than_noisy(metric: Nisqa) -> None:
    clean = voiced_signal(3.0, 16000, seed=2)
    noisy = add_noise(clean, 5.0, seed=3)
    clean_mos = metric.score_batch(*_as_batch("clean", clean))[0]["nisqa_mos"]
    noisy_mos = metric.score_batch(*_as_batch("noisy", noisy))[0]["nisqa_mos"]
    assert clean_mos > noisy_mos + 0.2


def test_scores_at_the_native_rate() -> None:
    assert Nisqa.sample_rate is None  # the reference computes its features at the file's rate


def test_restores_the_callers_torch_threads(metric: Nisqa) -> None:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        metric.score_batch(*_as_batch("clip", voiced_signal(1.0, 16000)))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)


def test_missing_weights_name_file_url_and_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_download(weight: object, timeout: float = 60.0) -> Path:
        raise WeightsError("offline (test)")

    empty = tmp_path / "weights"
    empty.mkdir()
    monkeypatch.setattr(weights_module, "fetch", no_download)
    monkeypatch.setattr(weights_module, "_explicit_dir", None)
    monkeypatch.setenv(WEIGHTS_ENV, str(empty))
    monkeypatch.setenv("GENSR_BENCH_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(WeightsError) as caught:
        Nisqa().setup()
    message = str(caught.value)
    assert "nisqa.tar" in message
    assert str(WEIGHTS.url) in message
    assert WEIGHTS_ENV in message


def test_refuses_another_nisqa_architecture(tmp_path: Path) -> None:
    import torch

    _require_shared_weights()
    checkpoint = torch.load(SHARED_WEIGHTS / WEIGHTS.filename, map_location="cpu")
    checkpoint["args"]["model"] = "NISQA"  # the single-output NISQA (e.g. NISQA-TTS)
    path = tmp_path / "other.tar"
    torch.save(checkpoint, path)
    with pytest.raises(NisqaCheckpointError, match="NISQA_DIM"):
        load_network(path)


def test_too_short_and_too_long_audio_raise(metric: Nisqa) -> None:
    with pytest.raises(AudioValidationError, match="at least 15"):
        metric.score_batch(*_as_batch("short", voiced_signal(0.1, 16000)))
    with pytest.raises(AudioValidationError, match="at most 1300"):
        metric.score_batch(*_as_batch("long", voiced_signal(53.0, 8000)))


@pytest.mark.parametrize("sample_rate", [8000, 16000, 22050, 48000])
def test_mel_filterbank_equals_librosa(sample_rate: int) -> None:
    import librosa

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # empty filters above Nyquist below 40 kHz
        expected = librosa.filters.mel(
            sr=sample_rate, n_fft=4096, n_mels=48, fmin=0.0, fmax=20000.0, norm="slaney"
        )
    ours = mel_filterbank(sample_rate, 4096, 48, 0.0, 20000.0)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-8)
