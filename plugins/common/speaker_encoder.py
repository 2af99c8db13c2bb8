"""resemblyzer's GE2E speaker encoder, and the cosine of two embeddings.

Used by the ``speaker-sim`` metric, the ``speaker`` feature and (the cosine) the
``speaker-sim-wavlm`` metric. Each signal goes through resemblyzer's own pipeline,
``preprocess_wav`` (volume normalised to -30 dBFS if quieter, long silences cut by WebRTC VAD)
then ``VoiceEncoder.embed_utterance`` (mean of L2-normalised 1.6-s partial embeddings,
renormalised), on the CPU with one torch thread (see the ``speaker_sim`` module for why).
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from gensr_bench.errors import AudioValidationError, GensrError
from gensr_bench_plugins.metrics._util import require_signal, torch_threads

__all__ = ["SAMPLE_RATE", "cosine_similarity", "load_encoder", "speaker_embedding", "weights_path"]

SAMPLE_RATE = 16000


def weights_path() -> Path:
    """resemblyzer's bundled GE2E weights, found without importing torch."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise GensrError(
            "the speaker-sim metric needs resemblyzer; install it with "
            "`pip install --no-deps resemblyzer webrtcvad-wheels librosa`"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"
    if not path.is_file():
        raise GensrError(f"resemblyzer's weights {path} are missing; reinstall resemblyzer")
    return path


def load_encoder() -> Any:
    """resemblyzer's VoiceEncoder on the CPU, quietly."""
    with warnings.catch_warnings():
        # resemblyzer imports binary_dilation from a deprecated scipy namespace.
        warnings.simplefilter("ignore", DeprecationWarning)
        from resemblyzer import VoiceEncoder
    return VoiceEncoder("cpu", verbose=False, weights_fpath=weights_path())


def speaker_embedding(samples: npt.ArrayLike, encoder: Any, what: str = "audio") -> np.ndarray:
    """The resemblyzer embedding of 16-kHz mono ``samples`` (``what`` names it in errors)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from resemblyzer import preprocess_wav

    audio = np.asarray(samples, dtype=np.float32)
    require_signal(audio, what, "speaker-sim")
    wav = preprocess_wav(audio)
    if wav.size == 0:
        raise AudioValidationError(
            f"speaker-sim: resemblyzer's voice activity detector found no speech in {what}, "
            "so it has no speaker embedding; the audio may be noise, music or near-silence"
        )
    with torch_threads():
        embedding = encoder.embed_utterance(wav)
    return np.asarray(embedding, dtype=np.float64)


def cosine_similarity(first: npt.ArrayLike, second: npt.ArrayLike) -> float:
    """Cosine of the angle between two vectors."""
    a = np.asarray(first, dtype=np.float64)
    b = np.asarray(second, dtype=np.float64)
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
