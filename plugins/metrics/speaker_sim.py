"""Speaker similarity: cosine of GE2E speaker embeddings (resemblyzer) of output and reference.

Each signal goes through resemblyzer's own pipeline, ``preprocess_wav`` (volume normalised to
-30 dBFS if quieter, long silences cut by WebRTC VAD) then ``VoiceEncoder.embed_utterance``
(mean of L2-normalised 1.6-s partial embeddings, renormalised); the score is the cosine of the
two 256-d embeddings, in [-1, 1] and in practice [0, 1] (the embeddings are non-negative).
Audio in which the VAD finds no voice cannot be embedded and raises.

The encoder runs with one torch thread (restored afterwards): the batches are a few 1.6-s
partials, for which a second thread only adds synchronisation, and on a busy 2-core machine
spin-waiting OpenMP threads made an embedding 8-14 times slower. The runner parallelises across
worker processes instead. The encoder and the cosine live in the shared module
``gensr_bench_plugins.common.speaker_encoder`` (the ``speaker`` feature uses them too).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from gensr_bench import Metric, hookimpl
from gensr_bench.records import Restoration, Utterance
from gensr_bench.weights import sha256_of
from gensr_bench_plugins.common.speaker_encoder import SAMPLE_RATE as SAMPLE_RATE
from gensr_bench_plugins.common.speaker_encoder import cosine_similarity as cosine_similarity
from gensr_bench_plugins.common.speaker_encoder import load_encoder as load_encoder
from gensr_bench_plugins.common.speaker_encoder import speaker_embedding as speaker_embedding
from gensr_bench_plugins.common.speaker_encoder import weights_path as weights_path

from ._util import PairwiseMetric

#: Reference embeddings kept per metric instance: candidates of one input share a reference.
REFERENCE_CACHE_SIZE = 256


def speaker_similarity(estimate: npt.ArrayLike, reference: npt.ArrayLike, encoder: Any) -> float:
    """Cosine similarity of the speaker embeddings of ``estimate`` and ``reference``."""
    return cosine_similarity(
        speaker_embedding(estimate, encoder, "the restoration"),
        speaker_embedding(reference, encoder, "the reference"),
    )


class SpeakerSim(PairwiseMetric):
    """Speaker similarity: cosine of resemblyzer GE2E embeddings of output and reference."""

    name = "speaker-sim"
    version = "1"
    higher_is_better = True
    sample_rate = SAMPLE_RATE
    outputs = ("speaker_sim",)
    #: GE2E embeds 1.6-s partials; below 1 s a partial is mostly zero padding.
    min_duration = 1.0
    #: A signal without sound has no speaker (resemblyzer's voice detector agrees).
    needs_sound = True

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._encoder: Any = None
        self._reference_cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def setup(self) -> None:
        if self._encoder is None:
            self._encoder = load_encoder()

    def _reference_embedding(self, utterance: Utterance, samples: np.ndarray) -> np.ndarray:
        assert utterance.reference is not None
        key = utterance.reference.content_hash()
        if key in self._reference_cache:
            self._reference_cache.move_to_end(key)
            return self._reference_cache[key]
        embedding = speaker_embedding(samples, self._encoder, f"the reference of {utterance.id!r}")
        self._reference_cache[key] = embedding
        if len(self._reference_cache) > REFERENCE_CACHE_SIZE:
            self._reference_cache.popitem(last=False)
        return embedding

    def score_batch(
        self, restorations: Sequence[Restoration], utterances: Sequence[Utterance]
    ) -> list[dict[str, float]]:
        self.setup()  # lazily, for callers that skip setup(); a no-op once the encoder is loaded
        return super().score_batch(restorations, utterances)

    def score_pair(
        self, estimate: np.ndarray, reference: np.ndarray, utterance: Utterance
    ) -> dict[str, float]:
        reference_embedding = self._reference_embedding(utterance, reference)
        output = speaker_embedding(estimate, self._encoder, f"the restoration of {utterance.id!r}")
        return {"speaker_sim": cosine_similarity(output, reference_embedding)}

    def weights_sha256(self) -> dict[str, str]:
        return {"resemblyzer/pretrained.pt": sha256_of(weights_path())}


@hookimpl
def gensr_register_metrics() -> list[type[Metric]]:
    return [SpeakerSim]
