"""Speaker similarity: cosine of WavLM x-vectors (``WavLMForXVector``) of output and reference.

The default model, ``microsoft/wavlm-base-plus-sv`` (WavLM Base+ fine-tuned on VoxCeleb1 for
speaker verification with an x-vector head; Chen et al., "WavLM: Large-scale self-supervised
pre-training for full stack speech processing", IEEE JSTSP 2022, arXiv:2110.13900), is used
the way its model card shows: the model's own feature extractor prepares each waveform, the
model returns an x-vector (``.embeddings``), and the score is the cosine similarity of the two
x-vectors (the card L2-normalises them first, which leaves the cosine unchanged). The score
lies in [-1, 1], is symmetric in output and reference, and is 1 for identical audio; the
card's same-speaker threshold is 0.86.

Each signal is embedded on its own (no padding: with a group-norm front end, padding changes
the numbers), at 16 kHz; output and reference may differ in length. Audio without sound
(digital silence, a constant, an isolated click: see ``require_sound``) has no speaker and
raises, as does audio shorter than ``min_duration`` (the x-vector head's TDNN needs about
0.3 s).

Options: ``model`` (hub id or a local folder written by ``save_pretrained`` that also holds
``preprocessor_config.json``; default ``microsoft/wavlm-base-plus-sv``; any checkpoint that
``AutoModelForAudioXVector`` loads works), ``revision`` (hub revision, optional). Where the hub
is unreachable, download the model elsewhere and pass the folder with
``--metric-option speaker-sim-wavlm.model=/path/to/dir``.

The model runs with one torch thread (the caller's setting is restored after): the runner
parallelises across worker processes, and one thread keeps scores bit-for-bit deterministic.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from gensr_bench import Metric, hookimpl
from gensr_bench.errors import AudioValidationError
from gensr_bench.records import Restoration, Utterance
from gensr_bench_plugins.common.hf_models import (
    ModelSource,
    import_transformers,
    load_pretrained,
    model_source,
    model_weight_hashes,
)
from gensr_bench_plugins.common.speaker_encoder import cosine_similarity

from ._util import (
    ReferenceCache,
    check_batch,
    output_and_reference,
    require_signal,
    torch_threads,
)

NAME = "speaker-sim-wavlm"
SAMPLE_RATE = 16000
DEFAULT_MODEL = "microsoft/wavlm-base-plus-sv"
#: The x-vector head's TDNN spans 15 frames of 20 ms (about 0.3 s); keep a margin.
MIN_DURATION = 0.5
#: Reference x-vectors kept per metric instance: the candidates of one input share a reference.
REFERENCE_CACHE_SIZE = 256


def xvector_embedding(
    samples: npt.ArrayLike, model: Any, feature_extractor: Any, what: str = "audio"
) -> np.ndarray:
    """The x-vector of 16-kHz mono ``samples`` (``what`` names the audio in errors).

    ``model`` is a loaded ``WavLMForXVector`` (or another ``AutoModelForAudioXVector``) in
    eval mode and ``feature_extractor`` its feature extractor. Uses one torch thread.
    """
    import torch

    audio = np.array(samples, dtype=np.float32, copy=True)
    require_signal(audio, what, NAME)
    if len(audio) < MIN_DURATION * SAMPLE_RATE:
        raise AudioValidationError(
            f"{NAME}: {what} lasts {len(audio) / SAMPLE_RATE:.3f} s; the x-vector model needs "
            f"at least {MIN_DURATION} s"
        )
    inputs = feature_extractor(audio, sampling_rate=SAMPLE_RATE, return_tensors="pt")
    device = next(model.parameters()).device  # the model's (cpu or cuda): inputs follow it
    inputs = {key: value.to(device) for key, value in inputs.items()}
    with torch_threads(), torch.inference_mode(), warnings.catch_warnings():
        # WavLM's attention mixes a boolean padding mask with a float bias; torch warns that
        # this is deprecated. The mask is all ones here (one unpadded signal).
        warnings.filterwarnings("ignore", message="Support for mismatched key_padding_mask")
        embedding = model(**inputs).embeddings[0]
    return embedding.to(torch.float64).cpu().numpy()


def wavlm_speaker_similarity(
    estimate: npt.ArrayLike, reference: npt.ArrayLike, model: Any, feature_extractor: Any
) -> float:
    """Cosine similarity of the x-vectors of ``estimate`` and ``reference`` (16 kHz)."""
    return cosine_similarity(
        xvector_embedding(estimate, model, feature_extractor, "the restoration"),
        xvector_embedding(reference, model, feature_extractor, "the reference"),
    )


class SpeakerSimWavlm(Metric):
    """Speaker similarity: cosine of WavLM-SV x-vectors of output and reference.

    Intrusive, higher is better, at 16 kHz, symmetric. Options ``model`` (hub id or
    ``save_pretrained`` folder with its feature extractor, default
    ``microsoft/wavlm-base-plus-sv``) and ``revision``.
    """

    name = NAME
    version = "1"
    higher_is_better = True
    requires_reference = True
    sample_rate = SAMPLE_RATE
    outputs = ("speaker_sim_wavlm",)
    min_duration = MIN_DURATION
    #: Not in a plain ``run``: its weights are not bundled and the hub is often unreachable.
    default = False
    accepted_options = ("model", "revision")
    supports_device = True

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.model_name = options.get("model", DEFAULT_MODEL)
        self.revision = options.get("revision")
        self._model: Any = None
        self._feature_extractor: Any = None
        self._source: ModelSource | None = None
        self._hashes: dict[str, str] | None = None
        self._reference_cache: ReferenceCache[np.ndarray] = ReferenceCache(REFERENCE_CACHE_SIZE)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the loaded model and cache: a worker process loads its own in
        ``setup`` (and a parametrized torch module cannot be pickled anyway)."""
        state = dict(self.__dict__)
        state.update(_model=None, _feature_extractor=None)
        state["_reference_cache"] = ReferenceCache(REFERENCE_CACHE_SIZE)
        return state

    def source(self) -> ModelSource:
        """Where the model comes from (resolved once)."""
        if self._source is None:
            self._source = model_source(self.model_name, self.revision, NAME, DEFAULT_MODEL)
        return self._source

    def setup(self) -> None:
        if self._model is not None:
            return
        transformers = import_transformers(NAME)
        source = self.source()
        feature_extractor = load_pretrained(
            transformers.AutoFeatureExtractor.from_pretrained,
            source,
            NAME,
            DEFAULT_MODEL,
            "feature extractor",
        )
        model = load_pretrained(
            transformers.AutoModelForAudioXVector.from_pretrained,
            source,
            NAME,
            DEFAULT_MODEL,
            "x-vector model",
        )
        self._feature_extractor = feature_extractor
        self._model = model.float().eval().to(self.device)

    def config(self) -> dict[str, Any]:
        config = super().config()
        config.update(model=self.source().label, revision=self.revision)
        return config

    def weights_sha256(self) -> dict[str, str]:
        if self._hashes is None:
            self._hashes = model_weight_hashes(self.source())
        return dict(self._hashes)

    def _reference_embedding(self, utterance: Utterance, samples: np.ndarray) -> np.ndarray:
        assert utterance.reference is not None
        return self._reference_cache.get_or_compute(
            utterance.reference.content_hash(),
            lambda: xvector_embedding(
                samples,
                self._model,
                self._feature_extractor,
                f"the reference of {utterance.id!r}",
            ),
        )

    def score_batch(
        self, restorations: Sequence[Restoration], utterances: Sequence[Utterance]
    ) -> list[dict[str, float]]:
        check_batch(self.name, restorations, utterances)
        self.setup()  # lazily, for callers that skip setup(); a no-op once loaded
        scores = []
        for restoration, utterance in zip(restorations, utterances, strict=True):
            estimate, reference = output_and_reference(restoration, utterance, SAMPLE_RATE, NAME)
            output = xvector_embedding(
                estimate,
                self._model,
                self._feature_extractor,
                f"the restoration of {utterance.id!r}",
            )
            similarity = cosine_similarity(output, self._reference_embedding(utterance, reference))
            scores.append({"speaker_sim_wavlm": similarity})
        return scores


@hookimpl
def gensr_register_metrics() -> list[type[Metric]]:
    return [SpeakerSimWavlm]
