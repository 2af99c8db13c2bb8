"""Tiny networks, tokenizers and checkpoints of the generative models, for tests.

``ar-small``, ``mgm-small`` and ``fm-small`` on a few seconds of synthetic voiced speech: small
enough that a test builds, trains or runs one in well under a second. They live with the
plugin, not in ``gensr_bench.testing``, because the core names no plugin. Needs torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from gensr_bench.testing import add_noise, voiced_signal

if TYPE_CHECKING:
    from gensr_bench_plugins.models.generative.base import FrameNet
    from gensr_bench_plugins.models.generative.nets import NetConfig
    from gensr_bench_plugins.models.generative.tokenizer import SpectralTokenizer


def tiny_spectral_tokenizer(
    levels: int = 8, seconds: float = 1.0, n: int = 2, seed: int = 0, snr_db: float = 30.0
) -> SpectralTokenizer:
    """The generative models' per-bin tokenizer fitted on ``n`` clips of ``voiced_signal``.

    Clip ``i`` is ``voiced_signal(seconds, seed=seed + i)`` at 16 kHz plus white noise at
    ``snr_db`` (``add_noise``): a pure harmonic tone leaves the bins above its harmonics at the
    magnitude floor, and their normalisation statistics would blow up any other input, while
    real speech has some energy in every bin. The defaults fit ``levels`` codebook values per
    bin on 252 frames; deterministic, and well under a second. Needs torch.
    """
    from gensr_bench_plugins.models.generative.tokenizer import SpectralTokenizer, clean_frames

    clips = [
        add_noise(voiced_signal(seconds, 16000, seed + i), snr_db, seed + i).samples
        for i in range(n)
    ]
    return SpectralTokenizer(levels).fit(clean_frames(clips))


def tiny_net_config(dropout: float = 0.0, **sizes: Any) -> NetConfig:
    """A generative model's ``NetConfig`` small enough for unit tests: ``d_model`` 32, one
    layer of 2 heads, a 64-wide feed-forward layer and ``dropout``; ``sizes`` override any
    field (``extra`` included)."""
    from gensr_bench_plugins.models.generative.nets import NetConfig

    return NetConfig(**{"d_model": 32, "layers": 1, "heads": 2, "ff": 64, **sizes}, dropout=dropout)


def tiny_generative_net(
    model_name: str,
    tokenizer: SpectralTokenizer | None = None,
    *,
    dropout: float = 0.0,
    seed: int = 0,
) -> FrameNet:
    """A randomly initialised tiny network of ``model_name`` (``ar-small``, ``mgm-small`` or
    ``fm-small``), in eval mode, on ``tokenizer`` (default: ``tiny_spectral_tokenizer()``) with
    ``tiny_net_config(dropout)``; zero-initialised weight matrices are drawn at random too.
    The weights depend only on ``seed`` (drawn under
    ``torch.random.fork_rng``, so the caller's random state is untouched)."""
    import torch

    from gensr_bench_plugins.models.generative import ARSmall, FMSmall, MGMSmall

    classes = {cls.name: cls for cls in (ARSmall, MGMSmall, FMSmall)}
    if model_name not in classes:
        raise KeyError(f"no generative model {model_name!r}; one of {sorted(classes)}")
    tokenizer = tokenizer if tokenizer is not None else tiny_spectral_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = classes[model_name].net_class(tiny_net_config(dropout), tokenizer)
        # Zero-initialised layers (fm-small's residual head) get small random weights, so a
        # test network's output depends on every part of it.
        for param in net.parameters():
            if param.dim() > 1 and not bool(param.any()):
                torch.nn.init.normal_(param, std=0.05)
    net.eval()
    return net


def tiny_generative_checkpoint(
    directory: Path,
    model_name: str,
    tokenizer: SpectralTokenizer | None = None,
    *,
    dropout: float = 0.0,
    seed: int = 0,
) -> Path:
    """Save ``tiny_generative_net(...)`` as a checkpoint folder (``model.pt`` and
    ``manifest.json``) in ``directory`` and return it: usable as the model's ``checkpoint``
    option and as ``run --model DIR``. Weights are stored in half precision, as training does.
    """
    from gensr_bench_plugins.models.generative.base import save_checkpoint

    net = tiny_generative_net(model_name, tokenizer, dropout=dropout, seed=seed)
    save_checkpoint(directory, model_name, net, {"note": "tiny test checkpoint"})
    return directory
