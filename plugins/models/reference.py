"""The bounds every restoration model is compared against: ``identity`` and ``oracle``.

``identity`` returns the degraded input (what doing nothing scores) and ``oracle`` returns the
clean reference (what a perfect restoration scores). Together they bracket every real model on
a suite: a model below ``identity`` makes things worse, and no model can beat ``oracle`` on a
reference-based metric.
"""

from __future__ import annotations

from collections.abc import Sequence

from gensr_bench import RestorationModel, hookimpl
from gensr_bench.errors import AudioValidationError, MissingReferenceError
from gensr_bench.records import Restoration, Utterance


class Identity(RestorationModel):
    """Lower bound: returns the degraded input unchanged.

    Takes no options. The seed is ignored (the output is the input).
    """

    name = "identity"
    version = "1"
    paradigm = "dsp"
    sample_rate = 16000
    #: The output is the suite's own audio, untouched: no arithmetic, so no CPU dependence.
    waveform_tolerance = 0.0

    def restore(self, batch: Sequence[Utterance], seed: int) -> list[Restoration]:
        out = []
        for utt in batch:
            if utt.degraded is None:
                raise AudioValidationError(
                    f"utterance {utt.id!r} has no degraded audio"
                    + (f" ({utt.error})" if utt.error else "")
                    + "; the suite could not load it, so there is nothing to pass through"
                )
            out.append(Restoration(utt.id, utt.degraded, self.name, seed))
        return out


class Oracle(RestorationModel):
    """Upper bound: returns the clean reference (needs a suite with references).

    Takes no options. The seed is ignored. An utterance without a reference raises
    ``MissingReferenceError``: the suite has no references, so ``oracle`` cannot run on it.
    """

    name = "oracle"
    version = "1"
    paradigm = "dsp"
    sample_rate = 16000
    #: The output is the suite's own audio, untouched: no arithmetic, so no CPU dependence.
    waveform_tolerance = 0.0

    def restore(self, batch: Sequence[Utterance], seed: int) -> list[Restoration]:
        out = []
        for utt in batch:
            if utt.reference is None:
                raise MissingReferenceError(
                    f"utterance {utt.id!r} has no clean reference: the suite has no references, "
                    f"so model {self.name!r} cannot run on it; evaluate 'oracle' on a suite with "
                    "references (e.g. a synthetic one), or use 'identity' as the baseline here"
                )
            out.append(Restoration(utt.id, utt.reference, self.name, seed))
        return out


@hookimpl
def gensr_register_models() -> list[type[RestorationModel]]:
    return [Identity, Oracle]
