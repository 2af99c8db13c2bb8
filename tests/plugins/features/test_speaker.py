"""speaker features: the speaker-sim metric is the cosine of two of these vectors."""

from __future__ import annotations

import numpy as np
import pytest

from gensr_bench.errors import AudioValidationError
from gensr_bench.records import Audio, Restoration
from gensr_bench.testing import noisy_utterance
from gensr_bench_plugins.features import speaker as speaker_module
from gensr_bench_plugins.features.speaker import SpeakerEmbedding
from gensr_bench_plugins.metrics.speaker_sim import SpeakerSim


def test_hook_registers_the_class() -> None:
    assert speaker_module.gensr_register_features() == [SpeakerEmbedding]


def test_cosine_of_features_is_the_speaker_sim_score() -> None:
    utt = noisy_utterance("u", seconds=1.5, snr_db=5.0, seed=3)
    assert utt.degraded is not None and utt.reference is not None
    extractor = SpeakerEmbedding()
    a = extractor.extract(utt.degraded.samples)
    b = extractor.extract(utt.reference.samples)
    assert a.shape == (256,) and np.linalg.norm(a) == pytest.approx(1.0, abs=1e-5)
    metric = SpeakerSim()
    metric.setup()
    score = metric.score_batch([Restoration("u", utt.degraded, "t")], [utt])[0]["speaker_sim"]
    assert float(a @ b) == pytest.approx(score, abs=1e-6)


def test_silence_raises_a_named_error() -> None:
    with pytest.raises(AudioValidationError, match="speaker-sim"):
        SpeakerEmbedding().extract(Audio(np.zeros(16000, np.float32), 16000).samples)
