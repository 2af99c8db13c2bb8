"""SpeechBERTScore: BERTScore on self-supervised speech features of output and reference.

Definition (Saeki, Maiti, Li, Watanabe, Takamichi, Saruwatari, "SpeechBERTScore:
Reference-aware automatic evaluation of speech generation leveraging NLP evaluation metrics",
Interspeech 2024, arXiv:2401.16812; reference implementation ``discrete_speech_metrics``,
https://github.com/Takaaki-Saeki/DiscreteSpeechMetrics, ``speechbertscore.py``): both signals
go through a self-supervised speech encoder and the frame features of one hidden layer are
kept, ``g_1..g_N`` for the generated (restored) speech and ``r_1..r_M`` for the reference.
With ``s_ij`` the cosine similarity of ``g_i`` and ``r_j``, greedy matching as in BERTScore
gives::

    precision = mean_i max_j s_ij      recall = mean_j max_i s_ij      F1 = 2PR / (P + R)

The paper reports the precision as *the* SpeechBERTScore, and its best setting (the one the
reference implementation's README gives) is WavLM-Large, ``microsoft/wavlm-large``, hidden
layer 14; those are this metric's defaults. Output ``speechbertscore`` is the precision;
``speechbertscore_recall`` and ``speechbertscore_f1`` are reported beside it. Swapping output
and reference swaps precision and recall and leaves F1 unchanged. Frames are matched without
alignment, so output and reference may differ in length.

As in the reference implementation, each waveform goes into the encoder on its own, as is
(16 kHz float, no zero-mean/unit-variance normalisation, no padding or attention mask).
Layer ``k >= 1`` is the output of the k-th transformer layer and layer 0 the input of the
first (``hidden_states[k]`` in transformers' numbering). The encoder stops after layer ``k``,
which gives the same features as a full forward pass with fewer layers run. Note: for
WavLM-Large's last layer, transformers 5 reports the output before the final LayerNorm where
transformers 4 applied it; that layer is not the default.

Options: ``model`` (hub id or a local folder written by ``save_pretrained``; default
``microsoft/wavlm-large``), ``layer`` (default 14), ``revision`` (hub revision, optional).
The machine learning hub is often unreachable: download the model where it is reachable and
pass the folder with ``--metric-option speechbertscore.model=/path/to/dir``.

The encoder runs with one torch thread (the caller's setting is restored after): the runner
parallelises across worker processes, and one thread keeps scores bit-for-bit deterministic.

The helpers it shares with ``speaker_sim_wavlm`` live in shared modules:
``gensr_bench_plugins.common.hf_models`` (``model_source``, ``load_pretrained``,
``model_weight_hashes``) and ``gensr_bench_plugins.metrics._util`` (``ReferenceCache``,
``output_and_reference``); they stay importable from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from gensr_bench import Metric, hookimpl
from gensr_bench.errors import ConfigError, MetricError
from gensr_bench.records import Restoration, Utterance

# The helpers shared with speaker_sim_wavlm live in shared modules; re-exported for old callers.
from gensr_bench_plugins.common.hf_models import WEIGHT_FILE_PATTERNS as WEIGHT_FILE_PATTERNS
from gensr_bench_plugins.common.hf_models import ModelSource as ModelSource
from gensr_bench_plugins.common.hf_models import how_to_provide as how_to_provide
from gensr_bench_plugins.common.hf_models import hub_offline as hub_offline
from gensr_bench_plugins.common.hf_models import import_transformers as import_transformers
from gensr_bench_plugins.common.hf_models import load_pretrained as load_pretrained
from gensr_bench_plugins.common.hf_models import model_source as model_source
from gensr_bench_plugins.common.hf_models import model_weight_hashes as model_weight_hashes
from gensr_bench_plugins.common.hf_models import quiet_progress_bars as quiet_progress_bars
from gensr_bench_plugins.common.hf_models import weight_files_in as weight_files_in

from ._util import ReferenceCache as ReferenceCache
from ._util import check_batch, torch_threads
from ._util import output_and_reference as output_and_reference

SAMPLE_RATE = 16000
DEFAULT_MODEL = "microsoft/wavlm-large"
DEFAULT_LAYER = 14
#: Reference features kept per metric instance: the candidates of one input share a reference.
REFERENCE_CACHE_SIZE = 32


def waveform_tensor(samples: npt.ArrayLike) -> Any:
    """A (1, T) float32 torch tensor holding a copy of ``samples``."""
    import torch

    return torch.from_numpy(np.array(samples, dtype=np.float32, copy=True).reshape(1, -1))


# --- SpeechBERTScore ------------------------------------------------------------------------


class _StopForward(Exception):
    """Raised by a hook to end the forward pass once the wanted layer's features exist."""

    def __init__(self, hidden: Any) -> None:
        super().__init__("stopped after the wanted layer")
        self.hidden = hidden


def encoder_layer_count(model: Any) -> int:
    """The number of transformer layers of a wav2vec2-style encoder (WavLM, HuBERT, ...)."""
    layers = getattr(getattr(model, "encoder", None), "layers", None)
    if layers is None:
        raise ConfigError(
            f"speechbertscore needs a wav2vec2-style encoder with encoder.layers (WavLM, "
            f"HuBERT, wav2vec 2.0); {type(model).__name__} has none"
        )
    return len(layers)


def ssl_features(samples: npt.ArrayLike, model: Any, layer: int) -> np.ndarray:
    """Frame features ``(frames, dim)`` of 16-kHz mono ``samples`` at hidden layer ``layer``.

    ``layer`` 0 is the input of the first transformer layer, ``k >= 1`` the output of the
    k-th (``hidden_states[k]``). The forward pass stops there (a hook raises), so the layers
    above are not run. Uses one torch thread and no autograd.
    """
    import torch

    count = encoder_layer_count(model)
    if not 0 <= layer <= count:
        raise ConfigError(f"speechbertscore: layer {layer} is out of range 0..{count}")
    layers = model.encoder.layers

    def stop_before(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        raise _StopForward(args[0] if args else kwargs["hidden_states"])

    def stop_after(module: Any, args: tuple[Any, ...], output: Any) -> None:
        raise _StopForward(output[0] if isinstance(output, tuple) else output)

    if layer == 0:
        handle = layers[0].register_forward_pre_hook(stop_before, with_kwargs=True)
    else:
        handle = layers[layer - 1].register_forward_hook(stop_after)
    try:
        with torch_threads(), torch.inference_mode():
            model(waveform_tensor(samples).to(next(model.parameters()).device))
    except _StopForward as stopped:
        return stopped.hidden[0].to(torch.float64).cpu().numpy()
    finally:
        handle.remove()
    raise MetricError(f"speechbertscore: the encoder never reached layer {layer}")


def unit_rows(features: np.ndarray, what: str) -> np.ndarray:
    """``features`` with every row scaled to unit length (for cosine similarities)."""
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    if features.shape[0] == 0 or not np.all(norms > 0):
        raise MetricError(
            f"speechbertscore: {what} has no frames or a frame with an all-zero feature "
            "vector, whose cosine similarity is undefined"
        )
    return features / norms


def bert_score(generated: np.ndarray, reference: np.ndarray) -> tuple[float, float, float]:
    """BERTScore precision, recall and F1 of two feature sequences ``(frames, dim)``.

    Greedy matching on cosine similarity: precision averages, over generated frames, the best
    similarity to any reference frame; recall the same from the reference side.
    """
    similarity = unit_rows(generated, "the output") @ unit_rows(reference, "the reference").T
    precision = float(similarity.max(axis=1).mean())
    recall = float(similarity.max(axis=0).mean())
    if precision + recall == 0:
        raise MetricError("speechbertscore: precision and recall are both 0; F1 is undefined")
    return precision, recall, 2 * precision * recall / (precision + recall)


def speech_bert_score(
    estimate: npt.ArrayLike, reference: npt.ArrayLike, model: Any, layer: int = DEFAULT_LAYER
) -> tuple[float, float, float]:
    """SpeechBERTScore (precision, recall, F1) of 16-kHz ``estimate`` against ``reference``.

    ``model`` is a loaded transformers speech encoder (``WavLMModel`` or alike, eval mode).
    The paper's SpeechBERTScore is the precision.
    """
    return bert_score(ssl_features(estimate, model, layer), ssl_features(reference, model, layer))


class SpeechBertScore(Metric):
    """SpeechBERTScore (Saeki et al. 2024): BERTScore of WavLM-Large layer-14 features.

    Intrusive, higher is better, at 16 kHz. ``speechbertscore`` is the precision the paper
    reports; recall and F1 come alongside. Options ``model`` (hub id or ``save_pretrained``
    folder, default ``microsoft/wavlm-large``), ``layer`` (default 14), ``revision``.
    """

    name = "speechbertscore"
    version = "1"
    higher_is_better = True
    requires_reference = True
    sample_rate = SAMPLE_RATE
    outputs = ("speechbertscore", "speechbertscore_recall", "speechbertscore_f1")
    #: A few 20-ms frames; the encoder's front end needs at least 400 samples for one.
    min_duration = 0.1
    #: Not in a plain ``run``: its weights are not bundled and the hub is often unreachable.
    default = False
    accepted_options = ("model", "layer", "revision")
    supports_device = True

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.model_name = options.get("model", DEFAULT_MODEL)
        self.revision = options.get("revision")
        layer = options.get("layer", DEFAULT_LAYER)
        if isinstance(layer, bool) or not isinstance(layer, int | str):
            raise ConfigError(f"speechbertscore: option layer must be an integer, got {layer!r}")
        try:
            self.layer = int(layer)
        except ValueError as exc:
            raise ConfigError(
                f"speechbertscore: option layer must be an integer, got {layer!r}"
            ) from exc
        if self.layer < 0:
            raise ConfigError(f"speechbertscore: option layer must be >= 0, got {self.layer}")
        self._model: Any = None
        self._source: ModelSource | None = None
        self._hashes: dict[str, str] | None = None
        self._reference_cache: ReferenceCache[np.ndarray] = ReferenceCache(REFERENCE_CACHE_SIZE)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the loaded encoder and cache: a worker process loads its own in
        ``setup`` (and a parametrized torch module cannot be pickled anyway)."""
        state = dict(self.__dict__)
        state["_model"] = None
        state["_reference_cache"] = ReferenceCache(REFERENCE_CACHE_SIZE)
        return state

    def source(self) -> ModelSource:
        """Where the encoder comes from (resolved once)."""
        if self._source is None:
            self._source = model_source(self.model_name, self.revision, self.name, DEFAULT_MODEL)
        return self._source

    def setup(self) -> None:
        if self._model is not None:
            return
        transformers = import_transformers(self.name)
        source = self.source()
        model = load_pretrained(
            transformers.AutoModel.from_pretrained, source, self.name, DEFAULT_MODEL
        )
        count = encoder_layer_count(model)
        if self.layer > count:
            raise ConfigError(
                f"speechbertscore: layer {self.layer} is out of range for {source.label}, "
                f"which has {count} transformer layers; choose 0..{count} with "
                f"--metric-option speechbertscore.layer=K"
            )
        # float32 on the CPU, as the reference implementation runs it.
        self._model = model.float().eval().to(self.device)

    def config(self) -> dict[str, Any]:
        config = super().config()
        config.update(
            model=self.source().label, layer=self.layer, revision=self.revision, score="precision"
        )
        return config

    def weights_sha256(self) -> dict[str, str]:
        if self._hashes is None:
            self._hashes = model_weight_hashes(self.source())
        return dict(self._hashes)

    def _reference_features(self, utterance: Utterance, samples: np.ndarray) -> np.ndarray:
        assert utterance.reference is not None
        return self._reference_cache.get_or_compute(
            utterance.reference.content_hash(),
            lambda: ssl_features(samples, self._model, self.layer),
        )

    def score_batch(
        self, restorations: Sequence[Restoration], utterances: Sequence[Utterance]
    ) -> list[dict[str, float]]:
        check_batch(self.name, restorations, utterances)
        self.setup()  # lazily, for callers that skip setup(); a no-op once loaded
        scores = []
        for restoration, utterance in zip(restorations, utterances, strict=True):
            estimate, reference = output_and_reference(
                restoration, utterance, SAMPLE_RATE, self.name
            )
            precision, recall, f1 = bert_score(
                ssl_features(estimate, self._model, self.layer),
                self._reference_features(utterance, reference),
            )
            scores.append(
                {
                    "speechbertscore": precision,
                    "speechbertscore_recall": recall,
                    "speechbertscore_f1": f1,
                }
            )
        return scores


@hookimpl
def gensr_register_metrics() -> list[type[Metric]]:
    return [SpeechBertScore]
