"""Tiny neural networks and torch settings for tests (need torch; transformers for WavLM)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def tiny_wavlm(*, xvector: bool = False, seed: int = 0, num_layers: int = 3) -> tuple[Any, Any]:
    """A randomly initialised tiny WavLM and its feature extractor, for metric tests.

    Returns ``(model, feature_extractor)``: a ``WavLMModel`` (or, with ``xvector=True``, a
    ``WavLMForXVector`` with a weighted layer sum, as ``microsoft/wavlm-base-plus-sv``) in eval
    mode, 32-d with ``num_layers`` transformer layers and the real convolutional front end (a
    320-sample hop at 16 kHz), and a ``Wav2Vec2FeatureExtractor`` that normalises each
    signal. The weights depend only on ``seed`` (drawn under ``torch.random.fork_rng``, so the
    caller's random state is untouched). Needs torch and transformers; builds in well under
    a second.
    """
    import torch
    from transformers import (
        Wav2Vec2FeatureExtractor,
        WavLMConfig,
        WavLMForXVector,
        WavLMModel,
    )

    config = WavLMConfig(
        hidden_size=32,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        num_buckets=32,
        max_bucket_distance=64,
        tdnn_dim=(16, 16, 16, 16, 32),
        xvector_output_dim=16,
        use_weighted_layer_sum=xvector,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = (WavLMForXVector if xvector else WavLMModel)(config)
    model.eval()
    extractor = Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16000,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=True,
    )
    return model, extractor


def tiny_wavlm_dir(
    directory: Path, *, xvector: bool = False, seed: int = 0, num_layers: int = 3
) -> Path:
    """Save ``tiny_wavlm(...)`` with ``save_pretrained`` into ``directory`` and return it.

    The folder holds ``config.json``, ``model.safetensors`` and ``preprocessor_config.json``,
    the layout of a hub snapshot, so a metric's ``model`` option can point at it. The same
    arguments give the same weights as the in-memory ``tiny_wavlm``.
    """
    from transformers.utils import logging as transformers_logging

    model, extractor = tiny_wavlm(xvector=xvector, seed=seed, num_layers=num_layers)
    directory.mkdir(parents=True, exist_ok=True)
    bars = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()  # "Writing model shards" is noise in tests
    try:
        model.save_pretrained(directory)
    finally:
        if bars:
            transformers_logging.enable_progress_bar()
    extractor.save_pretrained(directory)
    return directory


@contextlib.contextmanager
def torch_threads(n: int = 1) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, then restore the previous number.

    For tests on tiny tensors: a second thread saves nothing there, and on a busy machine its
    spin-waiting slows them down by an order of magnitude. Use it in a module fixture::

        @pytest.fixture(autouse=True, scope="module")
        def _one_torch_thread():
            with torch_threads(1):
                yield

    Needs torch.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
