"""Candidate generation per paradigm and one DPO step, on the shipped small models."""

from __future__ import annotations

import pytest
from _bench import record_throughput

PARADIGMS = {"ar": "ar-small", "mgm": "mgm-small", "fm": "fm-small"}


@pytest.mark.parametrize("paradigm", list(PARADIGMS))
def test_candidate_generation(benchmark, registries, speech, paradigm):
    """8 candidates of each of 2 inputs with the paradigm's candidate sampling settings."""
    utterances, _ = speech
    inputs = utterances[:2]
    model = registries.models.create(PARADIGMS[paradigm])
    model.setup()
    candidates = benchmark.pedantic(lambda: model.sample(inputs, 8, 0), rounds=1, iterations=1)
    assert [len(c) for c in candidates] == [8, 8]
    # Audio seconds *generated*: 8 candidates of each input.
    record_throughput(benchmark, 8 * sum(u.degraded.duration for u in inputs))


@pytest.mark.parametrize("paradigm", list(PARADIGMS))
def test_dpo_step(benchmark, registries, speech, tmp_path, paradigm):
    """One optimiser step of DPO (batch of 4 pairs, precomputed reference terms)."""
    from gensr_bench.alignment.trainer import AlignConfig, AlignmentExample, DPOTrainer

    utterances, _ = speech
    model = registries.models.create(PARADIGMS[paradigm])
    model.setup()
    examples = [
        AlignmentExample(u.id, u.degraded, chosen=u.reference, rejected=u.degraded)
        for u in utterances
    ]
    trainer = DPOTrainer(model, examples, AlignConfig(steps=1000, batch_size=4), tmp_path)
    trainer.precompute()
    values, _ = benchmark.pedantic(trainer.train_step, rounds=3, iterations=1, warmup_rounds=1)
    assert values["loss"] == values["loss"]  # finite numbers, not NaN
    seconds = sum(u.degraded.duration for u in utterances)
    benchmark.extra_info["pair_audio_seconds"] = round(seconds, 2)
    benchmark.extra_info["steps_per_s"] = round(1 / benchmark.stats.stats.mean, 3)
