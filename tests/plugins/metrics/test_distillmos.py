"""DistillMOS: equal to the distillmos package, conformance, direction, errors, side effects."""

from __future__ import annotations

import hashlib
import sys
from typing import Any

import numpy as np
import pytest

from gensr_bench.audio import resample
from gensr_bench.errors import AudioValidationError
from gensr_bench.records import Audio, Restoration, Utterance
from gensr_bench.testing import (
    add_noise,
    as_restorations,
    check_metric_conformance,
    noisy_utterance,
    tiny_utterances,
)
from gensr_bench_plugins.metrics import distillmos as distillmos_module
from gensr_bench_plugins.metrics.distillmos import (
    DistillMos,
    import_distillmos,
    load_model,
    weights_path,
)
from gensr_bench_plugins.suites.espeak import ESPEAK_SAMPLE_RATE, Voice, synthesize

#: The model's window: clips of exactly this length are scored without padding, in one pass.
WINDOW = 122_880
PASSAGE = (
    "The kettle clicked off just as the phone began to ring. Please close the window before "
    "the rain comes in. We walked along the river until the path vanished into tall grass."
)


@pytest.fixture(scope="module")
def metric() -> DistillMos:
    instance = DistillMos()
    instance.setup()
    return instance


@pytest.fixture(scope="module")
def package_model() -> Any:
    """The package's own model, built as its README says (default weights, eval mode)."""
    model = import_distillmos().ConvTransformerSQAModel()
    model.eval()
    return model


def test_hook_registers_the_class() -> None:
    assert distillmos_module.gensr_register_metrics() == [DistillMos]


def test_conformance() -> None:
    scores = check_metric_conformance(DistillMos, tiny_utterances(2, 1.0))
    for item in scores:
        assert 1.0 <= item["distillmos"] <= 5.0


@pytest.mark.parametrize(
    "seconds",
    [
        1.5,  # zero-padded to one window
        8.5,  # longer than a window: two crops, averaged
    ],
)
def test_equals_distillmos_package(metric: DistillMos, package_model: Any, seconds: float) -> None:
    import torch

    utt = noisy_utterance(f"clip-{seconds}", seconds=seconds, snr_db=10.0, seed=3)
    ours = metric.score_batch(as_restorations([utt]), [utt])[0]["distillmos"]
    assert utt.degraded is not None
    with torch.no_grad():
        theirs = float(package_model(torch.from_numpy(utt.degraded.samples)[None]))
    assert ours == pytest.approx(theirs, abs=1e-6)


def test_clean_speech_scores_higher_than_noisy(metric: DistillMos) -> None:
    # One full window of espeak speech: short clips are zero-padded, and on those DistillMOS
    # can rate clean espeak below noisy (see the module docstring).
    raw = synthesize(PASSAGE, Voice("en-us", rate=150), seed=1)
    clean = resample(Audio(raw, ESPEAK_SAMPLE_RATE), 16000)
    clean = Audio(clean.samples[:WINDOW], 16000)
    assert len(clean.samples) == WINDOW
    utt = Utterance("passage", add_noise(clean, 5.0, seed=2), clean, PASSAGE, {})
    good = metric.score_batch(as_restorations([utt], "reference"), [utt])[0]["distillmos"]
    bad = metric.score_batch(as_restorations([utt], "degraded"), [utt])[0]["distillmos"]
    assert DistillMos.direction("distillmos") is True
    assert good > bad + 0.1  # measured: 2.38 against 2.10


def test_silence_raises(metric: DistillMos) -> None:
    utt = noisy_utterance(seconds=1.0)
    silent = Restoration(utt.id, Audio(np.zeros(16_000, np.float32), 16_000), "test")
    with pytest.raises(AudioValidationError, match="silence"):
        metric.score_batch([silent], [utt])


def test_wrong_sample_rate_raises(metric: DistillMos) -> None:
    utt = noisy_utterance(seconds=1.0, sample_rate=8000)
    with pytest.raises(AudioValidationError, match="8000 Hz"):
        metric.score_batch(as_restorations([utt]), [utt])


def test_restores_thread_count_and_random_state(metric: DistillMos) -> None:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        utt = noisy_utterance(seconds=1.0)
        metric.score_batch(as_restorations([utt]), [utt])
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
    state = torch.get_rng_state()
    load_model()
    assert torch.equal(torch.get_rng_state(), state)


def test_no_torchaudio_placeholder_is_left_behind() -> None:
    import_distillmos()
    module = sys.modules.get("torchaudio")
    assert module is None or getattr(module, "__file__", None) is not None


def test_declares_attributes_and_weight_hash() -> None:
    assert DistillMos.sample_rate == 16000 and not DistillMos.requires_reference
    hashes = DistillMos().weights_sha256()
    path = weights_path()
    assert path.name == "distill_mos_v7.pt"
    assert hashes == {
        "distillmos/weights/distill_mos_v7.pt": hashlib.sha256(path.read_bytes()).hexdigest()
    }
