"""``speaker``: resemblyzer's 256-d GE2E speaker embedding (the speaker-sim metric's encoder).

The same pipeline as the ``speaker-sim`` metric, from the shared module
``gensr_bench_plugins.common.speaker_encoder``: resemblyzer's ``preprocess_wav`` then
``VoiceEncoder.embed_utterance``. Differences of these vectors between
a preferred and a rejected output show how the preference moves the speaker identity.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gensr_bench import FeatureExtractor, hookimpl
from gensr_bench_plugins.common.speaker_encoder import SAMPLE_RATE, load_encoder, speaker_embedding


class SpeakerEmbedding(FeatureExtractor):
    """resemblyzer GE2E speaker embedding (256-d, unit length)."""

    name = "speaker"
    version = "1"
    sample_rate = SAMPLE_RATE
    accepted_options = ()

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._encoder: Any = None

    def setup(self) -> None:
        if self._encoder is None:
            self._encoder = load_encoder()

    def extract(self, samples: np.ndarray) -> np.ndarray:
        self.setup()
        return speaker_embedding(samples, self._encoder, "the signal")


@hookimpl
def gensr_register_features() -> list[type[FeatureExtractor]]:
    return [SpeakerEmbedding]
