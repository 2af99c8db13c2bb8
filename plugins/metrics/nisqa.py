"""NISQA v2.0: non-intrusive speech quality, overall MOS and four quality dimensions.

Our implementation of the model of Mittag, Naderi, Chehadi and Möller, "NISQA: A Deep
CNN-Self-Attention Model for Multidimensional Speech Quality Prediction with Crowdsourced
Datasets" (Interspeech 2021), running the authors' published weights ``nisqa.tar``
(CC BY-NC-SA 4.0: non-commercial use only; fetched at first use, never shipped).

Feature pipeline (the reference's, with the settings stored in the checkpoint's ``args``):

1. **No resampling.** The checkpoint has ``ms_sr = None``: the reference computes the features
   at the file's own rate; the mel filters are defined in Hz (0-20 kHz), so the model sees every
   rate on the same frequency axis, and a band-limited signal shows as empty upper bands. The
   metric therefore declares ``sample_rate = None``: the runner hands it the audio at the
   suite's native rate (a 48-kHz output on a 16-kHz suite is scored at 16 kHz). Resampling to
   48 kHz first would *not* give the reference's numbers for 16-kHz input: the STFT would be
   taken with other sample counts (4096-point FFT of a 20-ms window), which moves the scores.
2. **Mel spectrogram**, as ``librosa.feature.melspectrogram(power=1)``: frames every
   ``int(0.01 * rate)`` samples, centred (the signal is reflect-padded by ``n_fft // 2`` on both
   ends), a periodic Hann window of ``int(0.02 * rate)`` samples centred in a 4096-point FFT,
   *magnitude* (not power) spectrum, 48 Slaney-style mel filters (area-normalised triangles on
   the Slaney mel scale) from 0 to 20 kHz; filters above the Nyquist frequency are all zero.
3. **Decibels**, as ``librosa.amplitude_to_db(ref=1, amin=1e-4, top_db=80)``:
   ``20 log10(max(mel, 1e-4))``, floored at 80 dB below the clip's maximum.
4. **Segments**: windows of 15 frames (150 ms) every 4 frames (40 ms), i.e.
   ``ceil((frames - 14) / 4)`` segments of shape (48 mels, 15 frames); the reference accepts at
   most 1300 segments (about 52 s) and so does this metric.

Network (weights' names in parentheses):

* framewise CNN (``cnn``): six 3x3 conv + batch-norm + ReLU blocks with adaptive max pooling to
  24x7 after the first, 12x5 after the second and 6x3 after the fourth; the last conv (3x3,
  no frequency padding) leaves 64 channels x 6 bands: a 384-d vector per segment;
* time dependency (``time_dependency``): a linear map to 64-d, layer norm, then two post-norm
  transformer encoder layers (single-head self-attention, ReLU feed-forward of width 64), with
  no positional encoding;
* five attention-pooling heads (``pool_layers``): a 128-unit ReLU MLP gives each segment a
  weight, softmax over time, and a linear map of the weighted mean gives one number. The heads
  are, in the checkpoint's order: MOS, noisiness, discontinuity, coloration, loudness.

Each clip runs on its own, so no padding or masks are needed (the reference pads every clip to
1300 segments and masks the padding out; with no positional encoding the numbers are the same).
Dropout layers are inactive at inference and are left out.

Agreement with torchmetrics' ``non_intrusive_speech_quality_assessment`` with the same weights
is within 1e-6 on clean, noisy, clipped, reverberant and band-limited clips at 16 and 48 kHz
(tests/plugins/metrics/test_nisqa.py asserts 1e-4); the mel filters equal librosa's to 1e-9.
The network runs on one torch thread (restored afterwards; option ``threads`` overrides):
scores then do not depend on the machine's core count, and the runner parallelises across
worker processes instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from gensr_bench import Metric, hookimpl
from gensr_bench.errors import AudioValidationError, ConfigError
from gensr_bench.records import Restoration, Utterance
from gensr_bench.weights import WeightFile, WeightsError, locate
from gensr_bench_plugins.common.mel import hz_to_slaney_mel as hz_to_slaney_mel
from gensr_bench_plugins.common.mel import mel_filterbank as mel_filterbank
from gensr_bench_plugins.common.mel import slaney_mel_to_hz as slaney_mel_to_hz

from ._util import check_batch, torch_threads

if TYPE_CHECKING:
    import torch

WEIGHTS = WeightFile(
    "nisqa.tar",
    sha256="7ec4cf937514dd3f8860b21e66fabd8ca87a168572675ef8d979c4c4ad2e805c",
    url="https://raw.githubusercontent.com/gabrielmittag/NISQA/master/weights/nisqa.tar",
    license="CC BY-NC-SA 4.0 (non-commercial)",
    description="NISQA v2.0 (MOS + noisiness, coloration, discontinuity, loudness)",
)

#: Our output names, in the order of the checkpoint's five pooling heads.
HEAD_OUTPUTS = (
    "nisqa_mos",
    "nisqa_noisiness",
    "nisqa_discontinuity",
    "nisqa_coloration",
    "nisqa_loudness",
)
#: The floor and dynamic range of the dB mel spectrogram (librosa.amplitude_to_db's amin, top_db).
AMPLITUDE_FLOOR = 1e-4
TOP_DB = 80.0
#: Frames transformed at once: bounds memory on long audio, does not change the result.
FRAMES_PER_CHUNK = 512
_ATTENTION_PREFIX = "time_dependency.model.layers."
EPS = 1e-5  # batch-norm and layer-norm epsilon (torch's default, used in training)


class NisqaCheckpointError(WeightsError):
    """The weights file is not a NISQA v2.0 (NISQA_DIM) checkpoint this metric can run."""


@dataclass(frozen=True)
class NisqaConfig:
    """The feature and network settings stored in the checkpoint's ``args``."""

    n_fft: int
    hop_seconds: float
    win_seconds: float
    n_mels: int
    fmax: float
    segment_frames: int
    segment_hop: int
    max_segments: int
    kernel_size: tuple[int, int]
    pool_sizes: tuple[tuple[int, int], tuple[int, int], tuple[int, int]]
    attention_heads: int

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> NisqaConfig:
        """Read the settings, refusing checkpoints of other NISQA architectures."""
        expected = {
            "model": "NISQA_DIM",
            "cnn_model": "adapt",
            "td": "self_att",
            "td_2": "skip",
            "pool": "att",
            "td_sa_pos_enc": False,
            "ms_sr": None,
            "double_ended": False,
        }
        for key, value in expected.items():
            if args.get(key) != value:
                raise NisqaCheckpointError(
                    f"nisqa: the checkpoint has {key}={args.get(key)!r} but this metric runs the "
                    f"NISQA v2.0 model ({key}={value!r}); use the official weights/nisqa.tar "
                    f"({WEIGHTS.url})"
                )
        pools = [args["cnn_pool_1"], args["cnn_pool_2"], args["cnn_pool_3"]]
        p1, p2, p3 = (_pair(p) for p in pools)
        return cls(
            n_fft=int(args["ms_n_fft"]),
            hop_seconds=float(args["ms_hop_length"]),
            win_seconds=float(args["ms_win_length"]),
            n_mels=int(args["ms_n_mels"]),
            fmax=float(args["ms_fmax"]),
            segment_frames=int(args["ms_seg_length"]),
            segment_hop=int(args["ms_seg_hop_length"]),
            max_segments=int(args["ms_max_segments"]),
            kernel_size=_pair(args["cnn_kernel_size"]),
            pool_sizes=(p1, p2, p3),
            attention_heads=int(args["td_sa_nhead"]),
        )

    def frame_lengths(self, sample_rate: int) -> tuple[int, int]:
        """Hop and window length in samples at ``sample_rate`` (truncated, as the reference)."""
        return int(sample_rate * self.hop_seconds), int(sample_rate * self.win_seconds)


def _pair(value: Sequence[int]) -> tuple[int, int]:
    first, second = value
    return int(first), int(second)


def mel_spectrogram_db(
    samples: npt.ArrayLike, sample_rate: int, config: NisqaConfig
) -> npt.NDArray[np.float32]:
    """The (n_mels, frames) dB mel spectrogram NISQA takes, at the clip's own rate."""
    hop, win = config.frame_lengths(sample_rate)
    n_fft = config.n_fft
    if not 0 < win <= n_fft or hop < 1:
        raise AudioValidationError(
            f"nisqa: at {sample_rate} Hz the 20-ms analysis window has {win} samples, but the "
            f"model's FFT has {n_fft}; resample the audio to 8-48 kHz first"
        )
    signal = np.asarray(samples, dtype=np.float64)
    # Centred frames (reflect padding), as librosa's stft(center=True).
    padded = np.pad(signal, n_fft // 2, mode="reflect")
    n_frames = 1 + (len(padded) - n_fft) // hop
    # The window is zero outside its central ``win`` samples of each n_fft frame: transform just
    # those, zero-padded to n_fft. The offset only changes the phase, not the magnitude.
    offset = (n_fft - win) // 2
    frames = np.lib.stride_tricks.sliding_window_view(padded[offset:], win)[::hop][:n_frames]
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(win) / win)  # periodic Hann
    filters = mel_filterbank(sample_rate, n_fft, config.n_mels, 0.0, config.fmax).T
    mel = np.empty((n_frames, config.n_mels))
    for start in range(0, n_frames, FRAMES_PER_CHUNK):
        chunk = frames[start : start + FRAMES_PER_CHUNK] * window
        mel[start : start + len(chunk)] = np.abs(np.fft.rfft(chunk, n=n_fft, axis=-1)) @ filters
    db = 20.0 * np.log10(np.maximum(mel, AMPLITUDE_FLOOR))
    db = np.maximum(db, db.max() - TOP_DB)
    return np.ascontiguousarray(db.T, dtype=np.float32)


def segment(mel_db: npt.NDArray[np.float32], config: NisqaConfig) -> npt.NDArray[np.float32]:
    """(segments, n_mels, segment_frames): windows of 15 frames starting every 4 frames."""
    n_frames = mel_db.shape[1]
    if n_frames < config.segment_frames:
        raise AudioValidationError(
            f"nisqa: the clip has {n_frames} spectrogram frames but the model needs at least "
            f"{config.segment_frames} ({config.segment_frames * config.hop_seconds:.2f} s)"
        )
    windows = np.lib.stride_tricks.sliding_window_view(mel_db, config.segment_frames, axis=1)
    segments = windows[:, :: config.segment_hop]
    if segments.shape[1] > config.max_segments:
        longest = (config.max_segments * config.segment_hop + config.segment_frames - 2) * (
            config.hop_seconds
        )
        raise AudioValidationError(
            f"nisqa: the clip gives {segments.shape[1]} segments but the model takes at most "
            f"{config.max_segments} (about {longest:.0f} s of audio); score shorter clips"
        )
    return np.ascontiguousarray(segments.transpose(1, 0, 2))


class NisqaNetwork:
    """The NISQA v2.0 network as a pure function of the checkpoint's tensors (inference, on
    ``device``: ``cpu`` or ``cuda``)."""

    def __init__(
        self, state: Mapping[str, torch.Tensor], config: NisqaConfig, device: str = "cpu"
    ) -> None:
        self.config = config
        self.device = device
        self.state = {
            key: value.float().to(device)
            for key, value in state.items()
            if value.is_floating_point()
        }
        missing = [key for key in self._required_keys() if key not in self.state]
        if missing:
            raise NisqaCheckpointError(
                f"nisqa: the checkpoint lacks {len(missing)} tensors of the NISQA v2.0 network "
                f"(first: {missing[0]!r}); use the official weights/nisqa.tar ({WEIGHTS.url})"
            )
        self.attention_layers = sorted(
            {int(key.split(".")[3]) for key in self.state if key.startswith(_ATTENTION_PREFIX)}
        )
        self.heads = sorted(
            {int(key.split(".")[1]) for key in self.state if key.startswith("pool_layers.")}
        )
        if len(self.heads) != len(HEAD_OUTPUTS) or not self.attention_layers:
            raise NisqaCheckpointError(
                f"nisqa: the checkpoint has {len(self.heads)} pooling heads and "
                f"{len(self.attention_layers)} attention layers; NISQA v2.0 has "
                f"{len(HEAD_OUTPUTS)} heads and at least one layer"
            )

    @staticmethod
    def _required_keys() -> list[str]:
        keys = []
        for block in range(1, 7):
            keys += [f"cnn.model.conv{block}.{p}" for p in ("weight", "bias")]
            keys += [
                f"cnn.model.bn{block}.{p}"
                for p in ("weight", "bias", "running_mean", "running_var")
            ]
        keys += [f"time_dependency.model.{p}" for p in ("linear.weight", "norm1.weight")]
        return keys

    def _p(self, key: str) -> torch.Tensor:
        return self.state[key]

    def _conv_block(self, x: torch.Tensor, block: int, padding: tuple[int, int]) -> torch.Tensor:
        import torch.nn.functional as F

        conv, norm = f"cnn.model.conv{block}", f"cnn.model.bn{block}"
        x = F.conv2d(x, self._p(f"{conv}.weight"), self._p(f"{conv}.bias"), padding=padding)
        x = F.batch_norm(
            x,
            self._p(f"{norm}.running_mean"),
            self._p(f"{norm}.running_var"),
            self._p(f"{norm}.weight"),
            self._p(f"{norm}.bias"),
            training=False,
            eps=EPS,
        )
        return F.relu(x)

    def framewise_cnn(self, segments: torch.Tensor) -> torch.Tensor:
        """(S, n_mels, frames) segments -> (S, 384) features."""
        import torch.nn.functional as F

        pool_1, pool_2, pool_3 = self.config.pool_sizes
        same = (1, 0) if self.config.kernel_size[0] == 1 else (1, 1)
        x = segments.unsqueeze(1)
        x = F.adaptive_max_pool2d(self._conv_block(x, 1, same), pool_1)
        x = F.adaptive_max_pool2d(self._conv_block(x, 2, same), pool_2)
        x = self._conv_block(x, 3, same)
        x = F.adaptive_max_pool2d(self._conv_block(x, 4, same), pool_3)
        x = self._conv_block(x, 5, same)
        # The last kernel spans the remaining time columns, which leaves one per band.
        x = self._conv_block(x, 6, (1, 0))
        return x.flatten(1)

    def _self_attention(self, x: torch.Tensor, prefix: str) -> torch.Tensor:
        import torch.nn.functional as F

        heads = self.config.attention_heads
        length, width = x.shape
        packed = F.linear(x, self._p(f"{prefix}.in_proj_weight"), self._p(f"{prefix}.in_proj_bias"))
        q, k, v = (
            t.reshape(length, heads, width // heads).transpose(0, 1) for t in packed.chunk(3, -1)
        )
        weights = (q @ k.transpose(1, 2) / math.sqrt(width // heads)).softmax(dim=-1)
        mixed = (weights @ v).transpose(0, 1).reshape(length, width)
        return F.linear(
            mixed, self._p(f"{prefix}.out_proj.weight"), self._p(f"{prefix}.out_proj.bias")
        )

    def time_dependency(self, features: torch.Tensor) -> torch.Tensor:
        """(S, 384) -> (S, d_model): projection, layer norm, post-norm encoder layers."""
        import torch.nn.functional as F

        root = "time_dependency.model"
        x = F.linear(features, self._p(f"{root}.linear.weight"), self._p(f"{root}.linear.bias"))
        x = self._layer_norm(x, f"{root}.norm1")
        for index in self.attention_layers:
            layer = f"{_ATTENTION_PREFIX}{index}"
            x = self._layer_norm(
                x + self._self_attention(x, f"{layer}.self_attn"), f"{layer}.norm1"
            )
            hidden = F.relu(self._linear(x, f"{layer}.linear1"))
            x = self._layer_norm(x + self._linear(hidden, f"{layer}.linear2"), f"{layer}.norm2")
        return x

    def pooled_scores(self, x: torch.Tensor) -> list[float]:
        """One number per head: a linear map of the attention-weighted mean over segments."""
        import torch.nn.functional as F

        scores = []
        for head in self.heads:
            prefix = f"pool_layers.{head}.model"
            logits = self._linear(F.relu(self._linear(x, f"{prefix}.linear1")), f"{prefix}.linear2")
            weights = logits.squeeze(-1).softmax(dim=0)
            scores.append(float(self._linear(weights @ x, f"{prefix}.linear3")))
        return scores

    def _linear(self, x: torch.Tensor, prefix: str) -> torch.Tensor:
        import torch.nn.functional as F

        return F.linear(x, self._p(f"{prefix}.weight"), self._p(f"{prefix}.bias"))

    def _layer_norm(self, x: torch.Tensor, prefix: str) -> torch.Tensor:
        import torch.nn.functional as F

        weight, bias = self._p(f"{prefix}.weight"), self._p(f"{prefix}.bias")
        return F.layer_norm(x, weight.shape, weight, bias, eps=EPS)

    def __call__(self, segments: npt.NDArray[np.float32]) -> dict[str, float]:
        """The five scores of one clip's segments, by output name."""
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(segments, dtype=np.float32))
            x = x.to(self.device)
            values = self.pooled_scores(self.time_dependency(self.framewise_cnn(x)))
        return dict(zip(HEAD_OUTPUTS, values, strict=True))


def load_network(path: str | Path, device: str = "cpu") -> NisqaNetwork:
    """Read a NISQA checkpoint (``args`` + ``model_state_dict``) into a ``NisqaNetwork`` on
    ``device``."""
    import torch

    try:
        # weights_only: the file holds tensors and plain settings, nothing to unpickle beyond.
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise NisqaCheckpointError(
            f"nisqa: could not read {path} as a torch checkpoint ({exc}); delete it and fetch "
            f"{WEIGHTS.url} again"
        ) from exc
    if not isinstance(checkpoint, dict) or not {"args", "model_state_dict"} <= set(checkpoint):
        raise NisqaCheckpointError(
            f"nisqa: {path} is not a NISQA checkpoint (expected the keys 'args' and "
            f"'model_state_dict'); use the official weights/nisqa.tar ({WEIGHTS.url})"
        )
    config = NisqaConfig.from_args(checkpoint["args"])
    return NisqaNetwork(checkpoint["model_state_dict"], config, device)


def nisqa(samples: npt.ArrayLike, sample_rate: int, network: NisqaNetwork) -> dict[str, float]:
    """NISQA scores of a mono clip at its own ``sample_rate`` (no resampling, as the reference)."""
    audio = np.asarray(samples, dtype=np.float32)
    if audio.ndim != 1 or audio.size == 0:
        raise AudioValidationError(
            f"nisqa needs non-empty mono audio, got an array of shape {audio.shape}"
        )
    if not np.all(np.isfinite(audio)):
        raise AudioValidationError("nisqa: the audio holds NaN or infinite samples")
    segments = segment(mel_spectrogram_db(audio, sample_rate, network.config), network.config)
    return network(segments)


class Nisqa(Metric):
    """NISQA v2.0 MOS, noisiness, coloration, discontinuity, loudness (non-intrusive)."""

    name = "nisqa"
    version = "1"
    higher_is_better = True
    requires_reference = False
    #: Native rate: the reference computes its features at the file's own rate (see above).
    sample_rate = None
    outputs = (
        "nisqa_mos",
        "nisqa_noisiness",
        "nisqa_coloration",
        "nisqa_discontinuity",
        "nisqa_loudness",
    )
    #: The model can score from 0.14 s (one 150-ms segment), but it was trained on 6-12 s clips;
    #: below 1 s there are fewer than 22 segments to pool over.
    min_duration = 1.0
    weight_files = (WEIGHTS,)
    #: Off by default: its weights are non-commercial and downloaded on first use (or given
    #: with --weights-dir); ask for it with --metrics nisqa.
    default = False
    # No sound check: NISQA is a learned rating of any signal's (floored) mel spectrogram;
    # silence, a constant or a click gets the model's own rating (MOS 1.3-2.1 on those of
    # tests/plugins/metrics/test_degenerate.py), no 0/0 involved.
    #: ``threads``: torch threads while scoring (default 1).
    accepted_options = ("threads",)
    supports_device = True

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._network: NisqaNetwork | None = None

    def setup(self) -> None:
        if self._network is None:
            self._network = load_network(locate(WEIGHTS), self.device)

    def score_batch(
        self, restorations: Sequence[Restoration], utterances: Sequence[Utterance]
    ) -> list[dict[str, float]]:
        check_batch(self.name, restorations, utterances)
        self.setup()
        assert self._network is not None
        threads = int(self.options.get("threads", 1))
        if threads < 1:
            raise ConfigError(f"nisqa: option threads must be at least 1, got {threads}")
        with torch_threads(threads):
            return [
                nisqa(r.audio.samples, r.audio.sample_rate, self._network) for r in restorations
            ]


@hookimpl
def gensr_register_metrics() -> list[type[Metric]]:
    return [Nisqa]
