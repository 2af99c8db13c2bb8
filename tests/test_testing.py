"""The conformance kits catch broken plugins and pass good ones."""

from __future__ import annotations

import numpy as np
import pytest

from gensr_bench.records import Audio, Restoration
from gensr_bench.testing import (
    EchoModel,
    LevelMetric,
    ToySuite,
    check_metric_conformance,
    check_model_conformance,
    check_suite_conformance,
)
from gensr_bench_plugins.models.reference import Identity
from gensr_bench_plugins.models.wiener import Wiener
from gensr_bench_plugins.suites.synth import SynthGSR


@pytest.mark.parametrize("model_cls", [EchoModel, Identity, Wiener])
def test_good_models_conform(model_cls):
    assert len(check_model_conformance(model_cls)) == 3


class _BatchDependent(EchoModel):
    """Adds noise drawn once per batch: outputs depend on the batch, which the contract forbids."""

    name = "test-batch-dependent"

    def restore(self, batch, seed):
        rng = np.random.default_rng(seed + len(batch))
        return [
            Restoration(
                u.id,
                Audio(
                    u.degraded.samples
                    + 0.01 * rng.standard_normal(len(u.degraded.samples)).astype(np.float32),
                    u.degraded.sample_rate,
                ),
                self.name,
            )
            for u in batch
        ]


def test_batch_dependent_model_is_caught():
    with pytest.raises(AssertionError, match="item_seed"):
        check_model_conformance(_BatchDependent)


class _NonDeterministicMetric(LevelMetric):
    """Returns a different value on every call."""

    name = "test-nondeterministic"
    calls = 0

    def score_batch(self, restorations, utterances):
        type(self).calls += 1
        return [{"level_db": float(type(self).calls)} for _ in restorations]


def test_nondeterministic_metric_is_caught():
    assert check_metric_conformance(LevelMetric)
    with pytest.raises(AssertionError, match="deterministic"):
        check_metric_conformance(_NonDeterministicMetric)


def test_suites_conform():
    assert [u.id for u in check_suite_conformance(ToySuite(size=5))] == [
        "toy-000",
        "toy-001",
        "toy-002",
    ]
    assert len(check_suite_conformance(SynthGSR(), limit=2)) == 2
