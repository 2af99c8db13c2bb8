"""The noisy-audio semantic embedding (``use_noisy_audio_embed``): w2v-BERT 2.0 features.

When the configuration asks for it (the published one does), the audio encoder adds one more
condition: the degraded window resampled to 16 kHz, turned into w2v-BERT 2.0's input features
(its SeamlessM4T feature extractor), run through the model, and hidden state 17 (transformers'
numbering: 0 is the input projection) resized bilinearly to ``[seq_len, dim]``.

The resampler is a windowed-sinc (Hann) polyphase filter with the usual defaults (zero
crossings 6 each side, cutoff 0.99 of the lower Nyquist rate), the filter torchaudio's
``Resample`` uses and the reference calls; written here because torchaudio's CPU-less wheel
cannot be imported beside the CPU torch.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from gensr_bench_plugins.common.hf_models import (
    import_transformers,
    load_pretrained,
    model_source,
)

SEMANTIC_HUB_ID = "facebook/w2v-bert-2.0"
SEMANTIC_FOLDER = "w2v-bert-2.0"
SEMANTIC_LAYER = 17
SEMANTIC_RATE = 16000
_WHO = "anyenhance"


def sinc_kernel(
    orig: int, new: int, zeros: int = 6, rolloff: float = 0.99
) -> tuple[torch.Tensor, int]:
    """Polyphase filters ``[new', 1, 2 * width + orig']`` (rates divided by their gcd) and
    ``width``, the filter's half-length in input samples; computed in float64."""
    gcd = math.gcd(orig, new)
    orig, new = orig // gcd, new // gcd
    cutoff = min(orig, new) * rolloff
    width = math.ceil(zeros * orig / cutoff)
    taps = torch.arange(-width, width + orig, dtype=torch.float64)[None, None] / orig
    phases = torch.arange(0, -new, -1)[:, None, None] / new
    t = ((phases + taps) * cutoff).clamp(-zeros, zeros)
    window = torch.cos(t * math.pi / zeros / 2) ** 2
    t = t * math.pi
    sinc = torch.where(t == 0, torch.tensor(1.0, dtype=t.dtype), t.sin() / t)
    return (sinc * (window * (cutoff / orig))).to(torch.float32), width


def resample(audio: torch.Tensor, orig: int, new: int) -> torch.Tensor:
    """Resample ``audio [..., T]`` from ``orig`` to ``new`` Hz (``ceil(T * new / orig)`` out),
    on ``audio``'s device (the filters are computed on the CPU, in float64, then moved)."""
    if orig == new:
        return audio
    kernel, width = sinc_kernel(orig, new)
    kernel = kernel.to(audio.device)
    gcd = math.gcd(orig, new)
    step, out_rate = orig // gcd, new // gcd
    shape = audio.shape
    flat = audio.reshape(-1, shape[-1])
    padded = F.pad(flat, (width, width + step))
    out = F.conv1d(padded[:, None], kernel, stride=step).transpose(1, 2).reshape(flat.shape[0], -1)
    length = math.ceil(out_rate * shape[-1] / step)
    return out[:, :length].reshape(*shape[:-1], -1)


class SemanticEmbedder:
    """w2v-BERT 2.0 hidden states of 44.1 kHz audio, resized to the token grid.

    Not an ``nn.Module`` (the network holds it as a plain attribute, outside its state dict):
    ``to(device)`` moves the w2v-BERT model. The feature extractor works on NumPy arrays, on
    the CPU; its features are moved to the model's device.
    """

    def __init__(self, extractor: Any, model: Any, layer: int = SEMANTIC_LAYER) -> None:
        self.extractor = extractor
        self.model = model.eval()
        self.layer = layer

    def to(self, device: str | torch.device) -> SemanticEmbedder:
        """Move the w2v-BERT model to ``device``; returns ``self``."""
        self.model.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return torch.device(next(self.model.parameters()).device)

    @torch.no_grad()
    def __call__(self, audio: torch.Tensor, seq_len: int, dim: int) -> torch.Tensor:
        """``audio [B, 1, T]`` at 44.1 kHz -> ``[B, seq_len, dim]`` on ``audio``'s device."""
        audio_16k = resample(audio, 44100, SEMANTIC_RATE)
        features = self.extractor(
            [clip[0].cpu().numpy() for clip in audio_16k],
            sampling_rate=SEMANTIC_RATE,
            return_tensors="pt",
            padding=True,
        )["input_features"].to(self.device)
        # the reference passes the features only (no attention mask)
        hidden = self.model(input_features=features, output_hidden_states=True).hidden_states
        states = hidden[self.layer]
        resized = F.interpolate(
            states.unsqueeze(1), size=(seq_len, dim), mode="bilinear", align_corners=False
        )
        return resized.squeeze(1).to(audio.device)


def load_semantic(source: str | Path) -> SemanticEmbedder:
    """The embedder from a folder written by ``save_pretrained`` (or a hub id when online)."""
    transformers = import_transformers(_WHO)
    where = model_source(str(source), None, _WHO, SEMANTIC_HUB_ID)
    extractor = load_pretrained(
        transformers.AutoFeatureExtractor.from_pretrained,
        where,
        _WHO,
        SEMANTIC_HUB_ID,
        "feature extractor",
    )
    model = load_pretrained(transformers.AutoModel.from_pretrained, where, _WHO, SEMANTIC_HUB_ID)
    return SemanticEmbedder(extractor, model.float())
