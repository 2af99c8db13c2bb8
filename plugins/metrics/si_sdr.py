"""Scale-invariant signal-to-distortion ratio (SI-SDR, Le Roux et al. 2019), in dB.

    alpha  = <est, ref> / <ref, ref>          (optimal scaling of the reference)
    target = alpha * ref,  residual = est - target
    SI-SDR = 10 log10(||target||^2 / ||residual||^2)

Computed in float64 at the reference's native sample rate (the runner resamples the
restoration to it), so no band of the reference is thrown away. As in torchmetrics'
``scale_invariant_signal_distortion_ratio`` (the reference implementation it is tested
against), a small ``eps`` (option; default float32 machine epsilon, torchmetrics' value for
float32 input) is added to the numerator and denominator of both ratios, so an exact copy of the
reference scores a large finite value, about 10 log10(||ref||^2 / eps) dB, rather than +inf.
With ``zero_mean=True`` (option) both signals have their mean removed first, as in Le Roux et
al.'s definition; the default (``False``) follows torchmetrics. A silent reference raises (there
is nothing to project onto), and so does a silent output, whose SI-SDR is -inf (the eps
convention would call it 0 dB).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from gensr_bench import Metric, hookimpl
from gensr_bench.errors import AudioValidationError, MetricError
from gensr_bench.records import Utterance

from ._util import PairwiseMetric, check_same_shape

#: torchmetrics' epsilon for float32 input (torch.finfo(torch.float32).eps).
DEFAULT_EPS = float(np.finfo(np.float32).eps)


def si_sdr(
    estimate: npt.ArrayLike,
    reference: npt.ArrayLike,
    zero_mean: bool = False,
    eps: float = DEFAULT_EPS,
) -> float:
    """SI-SDR of ``estimate`` against ``reference`` (same length) in dB."""
    est = np.asarray(estimate, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    check_same_shape(est, ref, "SI-SDR")
    if zero_mean:
        est = est - est.mean()
        ref = ref - ref.mean()
    # With zero_mean a constant (DC) signal becomes all-zero too: say so, not just "silent".
    silent = "a silent (all-zero)"
    if zero_mean:
        silent = "a silent or constant (all-zero once its mean is removed)"
    ref_energy = float(np.dot(ref, ref))
    if ref_energy == 0.0:
        raise AudioValidationError(
            f"SI-SDR is undefined for {silent} reference: there is no signal to project onto"
        )
    if not np.any(est):
        raise MetricError(
            f"SI-SDR of {silent} output is -inf; the eps convention would report 0 dB, which "
            "is not an honest score"
        )
    target = ((np.dot(est, ref) + eps) / (ref_energy + eps)) * ref
    residual = est - target
    target_energy = float(np.dot(target, target))
    residual_energy = float(np.dot(residual, residual))
    return float(10.0 * np.log10((target_energy + eps) / (residual_energy + eps)))


class SiSdr(PairwiseMetric):
    """Scale-invariant signal-to-distortion ratio in dB (intrusive, at the reference's rate)."""

    name = "si-sdr"
    version = "2"
    higher_is_better = True
    sample_rate = None
    outputs = ("si_sdr",)
    min_duration = 0.0
    #: SI-SDR stays defined on a constant or a click (only all-zero signals are refused, in
    #: ``si_sdr``): the projection onto the reference is exact arithmetic, not an eps floor,
    #: and such an output scores very low (about -50 dB against speech), which is the honest
    #: answer for an output that keeps none of the reference.
    needs_sound = False
    accepted_options = ("zero_mean", "eps")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.zero_mean = bool(options.get("zero_mean", False))
        self.eps = float(options.get("eps", DEFAULT_EPS))

    def score_pair(
        self, estimate: np.ndarray, reference: np.ndarray, utterance: Utterance
    ) -> dict[str, float]:
        return {"si_sdr": si_sdr(estimate, reference, zero_mean=self.zero_mean, eps=self.eps)}


@hookimpl
def gensr_register_metrics() -> list[type[Metric]]:
    return [SiSdr]
