"""Speaker similarity: equals resemblyzer by hand, identical ~1, different less, errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from gensr_bench.errors import AudioValidationError
from gensr_bench.records import Audio, Restoration, Utterance
from gensr_bench.testing import (
    as_restorations,
    check_metric_conformance,
    noisy_utterance,
    tiny_utterances,
    voiced_signal,
)
from gensr_bench_plugins.metrics import speaker_sim as speaker_sim_module
from gensr_bench_plugins.metrics._util import torch_threads
from gensr_bench_plugins.metrics.speaker_sim import SpeakerSim


@pytest.fixture(scope="module")
def metric() -> SpeakerSim:
    instance = SpeakerSim()
    instance.setup()
    return instance


def _pair(reference: Audio, restoration: Audio) -> tuple[Restoration, Utterance]:
    return Restoration("u", restoration, "t"), Utterance("u", restoration, reference)


def test_hook_registers_the_class() -> None:
    assert speaker_sim_module.gensr_register_metrics() == [SpeakerSim]


def test_conformance() -> None:
    check_metric_conformance(SpeakerSim, tiny_utterances(2, 1.5))


def test_equals_resemblyzer_by_hand(metric: SpeakerSim) -> None:
    from resemblyzer import VoiceEncoder, preprocess_wav

    encoder = VoiceEncoder("cpu", verbose=False)
    utts = [noisy_utterance(f"u{i}", seconds=1.5, snr_db=5.0 * i, seed=i) for i in range(2)]
    scores = metric.score_batch(as_restorations(utts), utts)
    for utt, item in zip(utts, scores, strict=True):
        assert utt.reference is not None and utt.degraded is not None
        with torch_threads():  # only for speed on a busy machine; same numbers
            output = encoder.embed_utterance(preprocess_wav(utt.degraded.samples))
            reference = encoder.embed_utterance(preprocess_wav(utt.reference.samples))
        by_hand = float(np.dot(output, reference))  # both embeddings are unit-norm
        assert item["speaker_sim"] == pytest.approx(by_hand, abs=1e-6)


def test_identical_is_one_and_different_signals_less(metric: SpeakerSim) -> None:
    assert SpeakerSim.direction("speaker_sim") is True
    first, second = voiced_signal(1.5, seed=0), voiced_signal(1.5, seed=5)
    same_restoration, same_utt = _pair(first, first)
    same = metric.score_batch([same_restoration], [same_utt])[0]["speaker_sim"]
    other_restoration, other_utt = _pair(first, second)
    other = metric.score_batch([other_restoration], [other_utt])[0]["speaker_sim"]
    assert same == pytest.approx(1.0, abs=1e-6)
    assert other < same - 1e-3


def test_clean_scores_better_than_noisy(metric: SpeakerSim) -> None:
    import torch

    threads = torch.get_num_threads()
    utt = noisy_utterance(seconds=1.5, snr_db=0.0, seed=2)
    clean = metric.score_batch(as_restorations([utt], "reference"), [utt])[0]["speaker_sim"]
    noisy = metric.score_batch(as_restorations([utt], "degraded"), [utt])[0]["speaker_sim"]
    assert clean > noisy
    assert torch.get_num_threads() == threads  # the caller's setting is restored


def test_silence_raises(metric: SpeakerSim) -> None:
    clean = voiced_signal(1.5)
    silent = Audio(np.zeros(24000, np.float32), 16000)
    restoration, utt = _pair(clean, silent)
    with pytest.raises(AudioValidationError, match="digital silence"):
        metric.score_batch([restoration], [utt])


def test_no_voice_activity_raises(metric: SpeakerSim) -> None:
    # A steady faint hum: not silence, but WebRTC VAD (mode 3) finds no speech in it.
    t = np.arange(24000) / 16000
    hum = Audio((1e-4 * np.sin(2 * np.pi * 50 * t)).astype(np.float32), 16000)
    restoration, utt = _pair(voiced_signal(1.5), hum)
    with pytest.raises(AudioValidationError, match="found no speech"):
        metric.score_batch([restoration], [utt])


def test_weight_hash_is_resemblyzers_pretrained_file() -> None:
    import importlib.util

    spec = importlib.util.find_spec("resemblyzer")
    assert spec is not None and spec.submodule_search_locations
    path = Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    assert SpeakerSim().weights_sha256() == {"resemblyzer/pretrained.pt": expected}
