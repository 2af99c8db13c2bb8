"""Conformance kits for plugin authors: raise AssertionError on a broken contract.

from gensr_bench.testing import check_metric_conformance
check_metric_conformance(MyMetric)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from gensr_bench.interfaces import Metric, RestorationModel, Suite
from gensr_bench.records import Restoration, Utterance
from gensr_bench.testing.signals import as_restorations, tiny_utterances


def check_metric_conformance(
    metric_cls: type[Metric], utterances: Sequence[Utterance] | None = None, **options: Any
) -> list[dict[str, float]]:
    """Conformance kit for metric authors: raise AssertionError on a broken contract.

    Checks the class attributes, that ``score_batch`` returns one dict per input with exactly
    the declared ``outputs`` as finite floats, that scoring is deterministic, and that a batch
    scores the same as its items one at a time. Returns the scores of ``utterances``.
    """
    assert isinstance(metric_cls.name, str) and metric_cls.name, "name must be a non-empty str"
    assert metric_cls.name == metric_cls.name.lower() and " " not in metric_cls.name, (
        f"name {metric_cls.name!r} must be lowercase and '-' separated"
    )
    assert isinstance(metric_cls.version, str) and metric_cls.version, "version must be a str"
    assert metric_cls.outputs, "outputs must name at least one value"
    for output in metric_cls.outputs:
        metric_cls.direction(output)  # raises KeyError when a mapping misses an output
    assert metric_cls.description(), "give the class a docstring: its first line is shown by ls"
    rate = metric_cls.sample_rate or 16000
    utts = list(utterances) if utterances is not None else tiny_utterances(3, 2.0, rate)
    metric = metric_cls(**options)
    metric.setup()
    restorations = as_restorations(utts)
    scores = metric.score_batch(restorations, utts)
    assert len(scores) == len(utts), "score_batch must return one dict per utterance"
    for item in scores:
        assert set(item) == set(metric_cls.outputs), (
            f"expected outputs {metric_cls.outputs}, got {sorted(item)}"
        )
        for key, value in item.items():
            assert isinstance(value, float) and math.isfinite(value), f"{key}={value!r}"
    again = metric.score_batch(restorations, utts)
    assert again == scores, "score_batch must be deterministic"
    singles = [metric.score_batch([r], [u])[0] for r, u in zip(restorations, utts, strict=True)]
    for single, batched in zip(singles, scores, strict=True):
        for key in batched:
            assert math.isclose(single[key], batched[key], rel_tol=1e-5, abs_tol=1e-6), (
                f"{key}: batched {batched[key]} != single {single[key]}"
            )
    return scores


def check_model_conformance(
    model_cls: type[RestorationModel],
    utterances: Sequence[Utterance] | None = None,
    **options: Any,
) -> list[Restoration]:
    """Conformance kit for model authors: raise AssertionError on a broken contract.

    Checks the class attributes, that ``restore`` returns one Restoration per input with the
    input's id and finite mono audio at the model's rate, that it is deterministic for a seed,
    and that an utterance's output does not depend on the rest of its batch (the
    ``item_seed`` rule). Returns the restorations of ``utterances``.
    """
    from gensr_bench.interfaces import PARADIGMS

    assert isinstance(model_cls.name, str) and model_cls.name, "name must be a non-empty str"
    assert model_cls.paradigm in PARADIGMS, f"paradigm must be one of {PARADIGMS}"
    assert model_cls.description(), "give the class a docstring: its first line is shown by ls"
    rate = model_cls.sample_rate
    utts = list(utterances) if utterances is not None else tiny_utterances(3, 1.0, rate)
    model = model_cls(**options)
    model.setup()
    first = model.restore(utts, seed=0)
    assert len(first) == len(utts), "restore must return one Restoration per utterance"
    for restoration, utt in zip(first, utts, strict=True):
        assert restoration.utterance_id == utt.id, "restorations must keep input order and ids"
        assert restoration.audio.sample_rate == rate, "output must be at the model's rate"
        assert len(restoration.audio.samples) > 0, "output must not be empty"
        assert np.isfinite(restoration.audio.samples).all(), "output must be finite"
    again = model.restore(utts, seed=0)
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(a.audio.samples, b.audio.samples), "restore must be deterministic"
    alone = model.restore(utts[-1:], seed=0)[0]
    assert np.array_equal(alone.audio.samples, first[-1].audio.samples), (
        "an output must not depend on the rest of its batch: draw randomness from "
        "item_seed(seed, utterance.id)"
    )
    return first


def check_suite_conformance(suite: Suite, limit: int = 3) -> list[Utterance]:
    """Conformance kit for suite authors: the first ``limit`` utterances of ``suite``.

    Checks ids are unique, audio is at the suite's rate, ``len`` agrees with iteration under a
    limit, iteration is repeatable and the fingerprint is stable.
    """
    assert suite.description(), "give the class a docstring: its first line is shown by ls"
    limited = type(suite)(limit=limit, **suite.options)
    first = list(limited)
    assert len(first) == len(limited) == min(limit, suite.full_size())
    assert len({u.id for u in first}) == len(first), "utterance ids must be unique"
    for utt in first:
        if utt.degraded is not None:
            assert utt.degraded.sample_rate == suite.sample_rate, f"{utt.id}: wrong rate"
    second = list(limited)
    assert [u.id for u in first] == [u.id for u in second], "iteration must be repeatable"
    assert limited.fingerprint() == type(suite)(limit=limit, **suite.options).fingerprint()
    return first
