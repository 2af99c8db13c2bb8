"""NISQA: equal to torchmetrics' NISQA with the same weights, conformance, direction, errors.

Two checkpoints are given to both our metric and torchmetrics' NISQA (through its weight cache
folder, which must never download):

* a randomly initialised one in the official checkpoint's format, written by the tests, so the
  network and features are compared on every checkout;
* the official weights (CC BY-NC-SA: never copied into the repository), found through
  ``GENSR_BENCH_WEIGHTS_DIR`` or in ``../shared/weights/nisqa`` beside the checkout. Without
  them those tests skip (``gensr_bench.testing.require_weights``); under ``CI=true`` they fail.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
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
from gensr_bench.testing import (
    add_noise,
    check_metric_conformance,
    require_weights,
    voiced_signal,
)
from gensr_bench.weights import WEIGHTS_ENV, WeightsError, sha256_of
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

#: torchmetrics' output order (the checkpoint's head order) as our output names.
TORCHMETRICS_ORDER = HEAD_OUTPUTS

#: The settings of NISQA v2.0 that both implementations read from a checkpoint's ``args``,
#: with the official checkpoint's values and types (the official file holds 73 entries, the
#: others are training settings; test_random_checkpoint_has_the_official_format compares).
NISQA_V2_ARGS: dict[str, Any] = {
    "model": "NISQA_DIM",
    "dim": True,
    "double_ended": False,
    "ms_sr": None,
    "ms_fmax": 20000,
    "ms_n_fft": 4096,
    "ms_hop_length": 0.01,
    "ms_win_length": 0.02,
    "ms_n_mels": 48,
    "ms_seg_length": 15,
    "ms_seg_hop_length": 4,
    "ms_max_segments": 1300,
    "cnn_model": "adapt",
    "cnn_c_out_1": 16,
    "cnn_c_out_2": 32,
    "cnn_c_out_3": 64,
    "cnn_kernel_size": (3, 3),
    "cnn_dropout": 0.2,
    "cnn_pool_1": [24, 7],
    "cnn_pool_2": [12, 5],
    "cnn_pool_3": [6, 3],
    "td": "self_att",
    "td_sa_d_model": 64,
    "td_sa_nhead": 1,
    "td_sa_pos_enc": False,
    "td_sa_num_layers": 2,
    "td_sa_h": 64,
    "td_sa_dropout": 0.1,
    "td_2": "skip",
    "pool": "att",
    "pool_output_size": 1,
    "pool_att_h": 128,
    "pool_att_dropout": 0,
}


def nisqa_v2_shapes(args: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """The official ``model_state_dict``'s tensor names and shapes for these ``args``."""
    shapes: dict[str, tuple[int, ...]] = {}
    channels = [1, args["cnn_c_out_1"], args["cnn_c_out_2"]] + [args["cnn_c_out_3"]] * 4
    kernel = tuple(args["cnn_kernel_size"])
    for block in range(1, 7):
        c_in, c_out = channels[block - 1], channels[block]
        # The last kernel spans the time columns left after the third pooling.
        k = (kernel[0], args["cnn_pool_3"][1]) if block == 6 else kernel
        shapes[f"cnn.model.conv{block}.weight"] = (c_out, c_in, *k)
        shapes[f"cnn.model.conv{block}.bias"] = (c_out,)
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"cnn.model.bn{block}.{name}"] = (c_out,)
        shapes[f"cnn.model.bn{block}.num_batches_tracked"] = ()
    d, hidden = args["td_sa_d_model"], args["td_sa_h"]
    root = "time_dependency.model"
    shapes |= {f"{root}.norm1.weight": (d,), f"{root}.norm1.bias": (d,)}
    shapes[f"{root}.linear.weight"] = (d, args["cnn_c_out_3"] * args["cnn_pool_3"][0])
    shapes[f"{root}.linear.bias"] = (d,)
    for layer in range(args["td_sa_num_layers"]):
        p = f"{root}.layers.{layer}"
        shapes |= {
            f"{p}.self_attn.in_proj_weight": (3 * d, d),
            f"{p}.self_attn.in_proj_bias": (3 * d,),
            f"{p}.self_attn.out_proj.weight": (d, d),
            f"{p}.self_attn.out_proj.bias": (d,),
            f"{p}.linear1.weight": (hidden, d),
            f"{p}.linear1.bias": (hidden,),
            f"{p}.linear2.weight": (d, hidden),
            f"{p}.linear2.bias": (d,),
        }
        for norm in ("norm1", "norm2"):
            shapes |= {f"{p}.{norm}.weight": (d,), f"{p}.{norm}.bias": (d,)}
    for head in range(len(HEAD_OUTPUTS)):
        p = f"pool_layers.{head}.model"
        shapes |= {
            f"{p}.linear1.weight": (args["pool_att_h"], d),
            f"{p}.linear1.bias": (args["pool_att_h"],),
            f"{p}.linear2.weight": (1, args["pool_att_h"]),
            f"{p}.linear2.bias": (1,),
            f"{p}.linear3.weight": (1, d),
            f"{p}.linear3.bias": (1,),
        }
    return shapes


def write_random_checkpoint(path: Path, seed: int = 0) -> Path:
    """A randomly initialised NISQA v2.0 checkpoint (``args`` + ``model_state_dict``) at ``path``.

    Every tensor is random, the batch-norm statistics and the norms' scales included, so a
    parameter read into the wrong place changes the scores: weights ~ N(0, 1/fan_in), biases
    ~ N(0, 0.01), scales ~ U(0.5, 1.5), running means ~ N(0, 1), running variances ~ U(0.5, 2).
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for key, shape in nisqa_v2_shapes(NISQA_V2_ARGS).items():
        leaf = key.rsplit(".", 1)[1]
        if leaf == "num_batches_tracked":
            state[key] = torch.zeros(shape, dtype=torch.int64)
        elif leaf == "running_var":
            state[key] = 0.5 + 1.5 * torch.rand(shape, generator=generator)
        elif leaf == "running_mean":
            state[key] = torch.randn(shape, generator=generator)
        elif leaf == "weight" and (".bn" in key or "norm" in key):
            state[key] = 0.5 + torch.rand(shape, generator=generator)
        elif leaf.endswith("bias"):
            state[key] = 0.1 * torch.randn(shape, generator=generator)
        else:
            fan_in = math.prod(shape[1:])
            state[key] = torch.randn(shape, generator=generator) / math.sqrt(fan_in)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"args": dict(NISQA_V2_ARGS), "model_state_dict": state}, path)
    return path


def official_weights() -> Path:
    """The official nisqa.tar (skips the calling test without it, fails it under CI=true)."""
    return require_weights(WEIGHTS, __file__, "nisqa")


@pytest.fixture
def shared_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WEIGHTS_ENV, str(official_weights().parent))


@pytest.fixture(scope="module")
def metric() -> Iterator[Nisqa]:
    """Our metric with the official weights."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(WEIGHTS_ENV, str(official_weights().parent))
        instance = Nisqa()
        instance.setup()
    yield instance


@pytest.fixture(scope="module")
def random_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Named nisqa.tar: our metric and torchmetrics both look for that file name.
    return write_random_checkpoint(tmp_path_factory.mktemp("random-nisqa") / "nisqa.tar")


@contextlib.contextmanager
def _reading_random_weights(checkpoint: Path) -> Iterator[None]:
    """Our metric reads ``checkpoint`` as a user's weights: from GENSR_BENCH_WEIGHTS_DIR,
    verified against a digest, only the pinned digest swapped for the random file's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(WEIGHTS_ENV, str(checkpoint.parent))
        patch.setattr(
            nisqa_module, "WEIGHTS", dataclasses.replace(WEIGHTS, sha256=sha256_of(checkpoint))
        )
        yield


@pytest.fixture
def random_weights(random_checkpoint: Path) -> Iterator[None]:
    with _reading_random_weights(random_checkpoint):
        yield


@pytest.fixture(scope="module")
def random_metric(random_checkpoint: Path) -> Nisqa:
    """Our metric with the random weights (for tests of the code around the network)."""
    with _reading_random_weights(random_checkpoint):
        instance = Nisqa()
        instance.setup()
    return instance


def torchmetrics_nisqa(checkpoint: Path, audio: Audio) -> list[float]:
    """torchmetrics' functional NISQA of ``audio`` with the weights ``checkpoint``.

    torchmetrics reads ``<NISQA_DIR>/nisqa.tar`` and downloads it when absent: point NISQA_DIR
    at the checkpoint's folder and make a download attempt fail the test. Its model is kept in
    an lru_cache; it is emptied before and after so no other checkpoint's model is reused.
    """
    import torch
    from torchmetrics.functional.audio import nisqa as reference

    assert checkpoint.name == "nisqa.tar", "torchmetrics reads the file nisqa.tar"

    def no_download() -> None:
        raise AssertionError("torchmetrics tried to download the NISQA weights")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reference, "NISQA_DIR", str(checkpoint.parent))
        patch.setattr(reference, "_download_weights", no_download)
        reference._load_nisqa_model.cache_clear()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # librosa: empty mel filters above Nyquist
                with torch_threads(1):  # as ours; on a busy machine more threads only wait
                    scores = reference.non_intrusive_speech_quality_assessment(
                        torch.from_numpy(audio.samples), audio.sample_rate
                    )
        finally:
            reference._load_nisqa_model.cache_clear()
    return [float(value) for value in scores.tolist()]


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


def test_conformance_with_random_weights(random_weights: None) -> None:
    check_metric_conformance(Nisqa)


#: Short clips for the random-weights comparison: speech-like and noise, at four rates.
RANDOM_WEIGHT_CLIPS = {
    "voiced-16k": lambda: voiced_signal(2.0, 16000, seed=1),
    "voiced-noise-5db-48k": lambda: add_noise(voiced_signal(2.0, 48000, seed=2), 5.0, seed=3),
    "white-noise-8k": lambda: Audio(
        (0.3 * np.random.default_rng(4).standard_normal(12000)).astype(np.float32), 8000
    ),
    "voiced-noise-20db-22k": lambda: add_noise(voiced_signal(1.5, 22050, seed=5), 20.0, 6),
}
#: Both run the same float32 network on the same dB mel spectrogram (ours computed in float64,
#: torchmetrics' with librosa in float32, summed in another order): they differ by rounding,
#: measured at up to 5e-7 on scores of magnitude 0.01-5 with these weights. 1e-5 leaves 20x
#: room for other BLAS builds, while a parameter read into the wrong place moves scores by
#: 1e-2 or more (test_random_weight_scores_depend_on_the_audio shows the scale).
RANDOM_WEIGHTS_TOLERANCE = 1e-5


@pytest.mark.parametrize("clip", sorted(RANDOM_WEIGHT_CLIPS))
def test_random_weights_equal_torchmetrics(
    random_weights: None, random_checkpoint: Path, clip: str
) -> None:
    audio = RANDOM_WEIGHT_CLIPS[clip]()
    ours = Nisqa().score_batch(*_as_batch(clip, audio))[0]
    theirs = torchmetrics_nisqa(random_checkpoint, audio)
    for output, value in zip(TORCHMETRICS_ORDER, theirs, strict=True):
        assert ours[output] == pytest.approx(value, abs=RANDOM_WEIGHTS_TOLERANCE), output


def test_random_weight_scores_depend_on_the_audio(random_metric: Nisqa) -> None:
    # The comparison above means something only when the scores move with the input by far
    # more than its tolerance (random weights could also give a network that ignores it).
    clips = [RANDOM_WEIGHT_CLIPS[name]() for name in sorted(RANDOM_WEIGHT_CLIPS)]
    scores = [random_metric.score_batch(*_as_batch("clip", audio))[0] for audio in clips]
    for output in HEAD_OUTPUTS:
        values = [item[output] for item in scores]
        assert max(values) - min(values) > 1000 * RANDOM_WEIGHTS_TOLERANCE, (output, values)


def test_random_checkpoint_has_the_official_format(tmp_path: Path) -> None:
    import torch

    official = torch.load(official_weights(), map_location="cpu", weights_only=True)
    ours = torch.load(write_random_checkpoint(tmp_path / "nisqa.tar"), weights_only=True)
    assert set(ours) == set(official) == {"args", "model_state_dict"}
    for key, value in ours["args"].items():
        assert official["args"][key] == value, key
        assert type(official["args"][key]) is type(value), key
    expected = {k: (tuple(v.shape), v.dtype) for k, v in official["model_state_dict"].items()}
    actual = {k: (tuple(v.shape), v.dtype) for k, v in ours["model_state_dict"].items()}
    assert actual == expected


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
def test_equals_torchmetrics(metric: Nisqa, clip: str) -> None:
    audio = varied_clips()[clip]
    ours = metric.score_batch(*_as_batch(clip, audio))[0]
    theirs = torchmetrics_nisqa(official_weights(), audio)
    for output, value in zip(TORCHMETRICS_ORDER, theirs, strict=True):
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


def test_restores_the_callers_torch_threads(random_metric: Nisqa) -> None:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        random_metric.score_batch(*_as_batch("clip", voiced_signal(1.0, 16000)))
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


def test_refuses_another_nisqa_architecture(random_checkpoint: Path, tmp_path: Path) -> None:
    import torch

    checkpoint = torch.load(random_checkpoint, map_location="cpu", weights_only=True)
    checkpoint["args"]["model"] = "NISQA"  # the single-output NISQA (e.g. NISQA-TTS)
    path = tmp_path / "other.tar"
    torch.save(checkpoint, path)
    with pytest.raises(NisqaCheckpointError, match="NISQA_DIM"):
        load_network(path)


def test_too_short_and_too_long_audio_raise(random_metric: Nisqa) -> None:
    with pytest.raises(AudioValidationError, match="at least 15"):
        random_metric.score_batch(*_as_batch("short", voiced_signal(0.1, 16000)))
    with pytest.raises(AudioValidationError, match="at most 1300"):
        random_metric.score_batch(*_as_batch("long", voiced_signal(53.0, 8000)))


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
