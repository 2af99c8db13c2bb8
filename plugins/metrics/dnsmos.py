"""DNSMOS P.835 (SIG, BAK, OVRL) and P.808 MOS: a non-intrusive quality estimate.

Runs the ONNX models shipped inside the ``speechmos`` wheel with the procedure of
``speechmos.dnsmos.run`` (Microsoft's reference ``dnsmos_local.py``), and matches its numbers:

* a clip shorter than 9.01 s is doubled (appended to itself) until it is at least 9.01 s long;
* the P.835 model scores every 9.01-s window at a 1-s hop (input: the raw waveform), the P.808
  model the same windows (input: a 120-band log-mel spectrogram of the window minus its last
  10 ms); raw P.835 outputs go through the published calibration polynomials;
* each output is the mean over windows.

Agreement with ``speechmos.dnsmos.run`` is within 2e-7 (bit-identical when ONNX Runtime uses the
same thread count; see ``load_models``).

Two details are kept for parity although they look accidental: the window end is computed as
``int((i + 9.01) * 16000)``, which floating point rounds down one sample for some ``i`` (7 to 23,
119 to 121, ...), and such a one-sample-short window is skipped, as the reference does.

Looping a short clip makes windows repeat: a window starting at ``s`` holds the same samples as
one starting at ``s + len(clip)``. Each distinct window is scored once and its value reused, which
gives identical numbers at a fraction of the cost (a 2-s clip needs 2 windows instead of 7).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from gensr_bench import Metric, hookimpl
from gensr_bench.devices import onnx_providers
from gensr_bench.errors import AudioValidationError, GensrError
from gensr_bench.records import Restoration, Utterance
from gensr_bench.weights import sha256_of

from ._util import check_batch, samples_at

SAMPLE_RATE = 16000
#: Window length of the reference procedure, in seconds (speechmos ``INPUT_LENGTH``).
WINDOW_SECONDS = 9.01
WINDOW_SAMPLES = int(WINDOW_SECONDS * SAMPLE_RATE)
HOP_SAMPLES = SAMPLE_RATE
#: P.835 model (raw waveform -> SIG, BAK, OVRL) and P.808 model (log-mel -> MOS).
PRIMARY_MODEL = "sig_bak_ovr.onnx"
P808_MODEL = "model_v8.onnx"
#: Calibration polynomials of the (non-personalised) P.835 outputs, highest power first.
SIG_POLY = np.poly1d([-0.08397278, 1.22083953, 0.0052439])
BAK_POLY = np.poly1d([-0.13166888, 1.60915514, -0.39604546])
OVRL_POLY = np.poly1d([-0.06766283, 1.11546468, 0.04602535])


@dataclass(frozen=True)
class DnsmosModels:
    """The two ONNX Runtime sessions DNSMOS needs."""

    primary: Any  # onnxruntime.InferenceSession, P.835
    p808: Any  # onnxruntime.InferenceSession, P.808


def model_dir() -> Path:
    """The folder of speechmos's DNSMOS ONNX files (found without importing onnxruntime)."""
    spec = importlib.util.find_spec("speechmos")
    if spec is None or not spec.submodule_search_locations:
        raise GensrError(
            "the dnsmos metric needs the 'speechmos' package (its ONNX models); "
            "install it with `pip install speechmos onnxruntime`"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "dnsmos_models"


def model_files() -> list[Path]:
    """Paths of the two ONNX files, checked to exist."""
    files = [model_dir() / PRIMARY_MODEL, model_dir() / P808_MODEL]
    for path in files:
        if not path.is_file():
            raise GensrError(
                f"DNSMOS model file {path} is missing; reinstall speechmos "
                "(`pip install --force-reinstall speechmos`)"
            )
    return files


def load_models(threads: int = 1, device: str = "cpu") -> DnsmosModels:
    """Open ONNX Runtime sessions for both models, ``threads`` threads each, on the CPU (or
    with the CUDA provider first on ``device="cuda"`` where ``onnxruntime-gpu`` has it).

    The metric uses one thread (option ``threads`` overrides) so that its numbers do not depend
    on the thread count: multi-threaded reductions differ in the last float32 bit, which moves a
    score by up to ~2e-7 (speechmos, which uses ONNX Runtime's default, differs from this metric
    by that much at most), and ``--workers 2`` must give exactly the scores of ``--workers 1``.
    Parallelism comes from the runner's worker processes instead. Spin-waiting is off: on a
    busy 2-core machine it made every call slower.
    """
    try:
        import onnxruntime
    except ImportError as exc:
        raise GensrError(
            "the dnsmos metric needs onnxruntime; install it with `pip install onnxruntime`"
        ) from exc
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    primary, p808 = model_files()
    providers = onnx_providers(device)
    return DnsmosModels(
        primary=onnxruntime.InferenceSession(str(primary), options, providers=providers),
        p808=onnxruntime.InferenceSession(str(p808), options, providers=providers),
    )


def window_plan(n_samples: int) -> tuple[int, list[int]]:
    """Length of the looped clip and the start of every window the reference scores."""
    length = n_samples
    while length < WINDOW_SAMPLES:
        length *= 2
    num_hops = int(np.floor(length / SAMPLE_RATE) - WINDOW_SECONDS) + 1
    starts = []
    for idx in range(num_hops):
        start = int(idx * HOP_SAMPLES)
        end = min(int((idx + WINDOW_SECONDS) * HOP_SAMPLES), length)
        if end - start >= WINDOW_SAMPLES:  # the reference skips one-sample-short windows
            starts.append(start)
    return length, starts


def p808_features(window: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The P.808 model input for one window: (frames, 120) scaled log-mel, as the reference."""
    import librosa

    mel = librosa.feature.melspectrogram(
        y=window[:-160], sr=SAMPLE_RATE, n_fft=321, hop_length=160, n_mels=120
    )
    scaled = (librosa.power_to_db(mel, ref=np.max) + 40) / 40
    return np.asarray(scaled.T, dtype=np.float32)


def dnsmos(samples: npt.ArrayLike, models: DnsmosModels) -> dict[str, float]:
    """DNSMOS of a 16-kHz mono clip with samples in [-1, 1]: SIG, BAK, OVRL and P.808."""
    audio = np.asarray(samples, dtype=np.float32)
    if audio.ndim != 1 or audio.size == 0:
        raise AudioValidationError(
            f"DNSMOS needs non-empty mono audio, got an array of shape {audio.shape}"
        )
    top = float(np.max(np.abs(audio)))
    if not top <= 1.0:
        raise AudioValidationError(
            f"DNSMOS needs samples within [-1, 1], got a peak of {top:.4g}; scale the audio "
            "down first (gensr_bench.audio.limit_peak)"
        )
    n = audio.size
    length, starts = window_plan(n)
    looped = np.tile(audio, length // n)
    # Windows equal modulo the clip length hold identical samples (see the module docstring).
    offsets = [start % n for start in starts]
    distinct = sorted(set(offsets))
    raw_parts, p808_parts = [], []
    # One window per ONNX call: on the CPU, batching windows was measured to be slower.
    for offset in distinct:
        window = looped[offset : offset + WINDOW_SAMPLES]
        raw_parts.append(models.primary.run(None, {"input_1": window[np.newaxis]})[0])
        features = p808_features(window)[np.newaxis]
        p808_parts.append(models.p808.run(None, {"input_1": features})[0])
    position = {offset: i for i, offset in enumerate(distinct)}
    order = [position[offset] for offset in offsets]
    raw = np.concatenate(raw_parts)[order]  # (windows, 3) float32: SIG, BAK, OVRL
    p808 = np.concatenate(p808_parts)[order, 0]
    # Same dtypes and reductions as the reference: equal model outputs give equal means.
    return {
        "dnsmos_sig": float(np.mean(SIG_POLY(raw[:, 0]))),
        "dnsmos_bak": float(np.mean(BAK_POLY(raw[:, 1]))),
        "dnsmos_ovrl": float(np.mean(OVRL_POLY(raw[:, 2]))),
        "dnsmos_p808": float(np.mean(p808)),
    }


class Dnsmos(Metric):
    """DNSMOS P.835 SIG/BAK/OVRL and P.808 MOS (non-intrusive, speechmos ONNX models)."""

    name = "dnsmos"
    version = "1"
    higher_is_better = True
    requires_reference = False
    sample_rate = SAMPLE_RATE
    outputs = ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808")
    #: Below 1 s a 9.01-s window holds more than nine copies of the clip: the score then
    #: describes a loop more than the speech.
    min_duration = 1.0
    # No sound check: DNSMOS is a learned rating of any signal, and silence, a constant or a
    # click gets the model's own (low: OVRL 1.6-2.0) rating, no 0/0 or epsilon involved.
    #: ``threads``: onnxruntime intra-op threads per session (default 1).
    accepted_options = ("threads",)
    supports_device = True

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._models: DnsmosModels | None = None

    def setup(self) -> None:
        if self._models is None:
            self._models = load_models(int(self.options.get("threads", 1)), self.device)

    def score_batch(
        self, restorations: Sequence[Restoration], utterances: Sequence[Utterance]
    ) -> list[dict[str, float]]:
        check_batch(self.name, restorations, utterances)
        self.setup()
        assert self._models is not None
        return [
            dnsmos(
                samples_at(r.audio, SAMPLE_RATE, f"the restoration of {u.id!r}", self.name),
                self._models,
            )
            for r, u in zip(restorations, utterances, strict=True)
        ]

    def weights_sha256(self) -> dict[str, str]:
        return {f"speechmos/dnsmos_models/{path.name}": sha256_of(path) for path in model_files()}


@hookimpl
def gensr_register_metrics() -> list[type[Metric]]:
    return [Dnsmos]
