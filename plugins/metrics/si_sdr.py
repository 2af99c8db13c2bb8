"""Scale-invariant signal-to-distortion ratio (SI-SDR, Le Roux et al. 2019), in dB.

    alpha  = <est, ref> / <ref, ref>          (optimal scaling of the reference)
    target = alpha * ref,  residual = est - target
    SI-SDR = 10 log10(||target||^2 / ||residual||^2)

Computed in float64 without any epsilon, at the reference's native sample rate (the runner
resamples the restoration to it), so no band of the reference is thrown away. With
``zero_mean=True`` (option) both signals have their mean removed first, as in Le Roux et al.'s
definition; the default (``False``) follows torchmetrics. SI-SDR is unbounded for an output that
is an exact scaled copy of the reference (+inf) or carries none of it (-inf); those cases raise
instead of returning a clamped number.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from gensr_bench import Metric, hookimpl
from gensr_bench.errors import AudioValidationError, ConfigError, MetricError
from gensr_bench.records import Restoration, Utterance

from ._util import check_batch, estimate_and_reference


def si_sdr(estimate: npt.ArrayLike, reference: npt.ArrayLike, zero_mean: bool = False) -> float:
    """SI-SDR of ``estimate`` against ``reference`` (same length) in dB."""
    est = np.asarray(estimate, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if est.shape != ref.shape or est.ndim != 1:
        raise AudioValidationError(
            f"SI-SDR needs two 1-D signals of the same length, got {est.shape} and {ref.shape}; "
            "trim them first (gensr_bench.audio.match_lengths)"
        )
    if zero_mean:
        est = est - est.mean()
        ref = ref - ref.mean()
    ref_energy = float(np.dot(ref, ref))
    if ref_energy == 0.0:
        raise AudioValidationError(
            "SI-SDR is undefined for a silent (all-zero) reference: there is no signal to "
            "project onto"
        )
    target = (np.dot(est, ref) / ref_energy) * ref
    residual = est - target
    target_energy = float(np.dot(target, target))
    residual_energy = float(np.dot(residual, residual))
    if target_energy == 0.0:
        raise MetricError(
            "SI-SDR is -inf (or 0/0): the restoration has no component along the reference; it "
            "is silent or exactly orthogonal to it"
        )
    if residual_energy == 0.0:
        raise MetricError(
            "SI-SDR is +inf: the restoration is an exact scaled copy of the reference "
            "(zero residual); no finite value describes it"
        )
    return float(10.0 * np.log10(target_energy / residual_energy))


class SiSdr(Metric):
    """Scale-invariant signal-to-distortion ratio in dB (intrusive, at the reference's rate)."""

    name = "si-sdr"
    version = "1"
    higher_is_better = True
    requires_reference = True
    sample_rate = None
    outputs = ("si_sdr",)
    min_duration = 0.0

    def __init__(self, **options: Any) -> None:
        unknown = set(options) - {"zero_mean"}
        if unknown:
            raise ConfigError(
                f"si-sdr got unknown option(s) {sorted(unknown)}; it accepts only zero_mean"
            )
        super().__init__(**options)
        self.zero_mean = bool(options.get("zero_mean", False))

    def score_batch(
        self, restorations: Sequence[Restoration], utterances: Sequence[Utterance]
    ) -> list[dict[str, float]]:
        check_batch(self.name, restorations, utterances)
        scores = []
        for restoration, utterance in zip(restorations, utterances, strict=True):
            est, ref = estimate_and_reference(restoration, utterance, self.sample_rate, self.name)
            scores.append({"si_sdr": si_sdr(est, ref, zero_mean=self.zero_mean)})
        return scores


@hookimpl
def gensr_register_metrics() -> list[type[Metric]]:
    return [SiSdr]
