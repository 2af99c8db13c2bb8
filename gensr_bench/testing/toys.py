"""Toy models, metrics and suites for tests: cheap stand-ins for real plugins.

``tests/fixtures/toy_plugins`` registers them as a local plugin, so command-line tests can run
them by name (``test-echo``, ``test-level``, ``test-toy`` ...).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gensr_bench.interfaces import Metric, RestorationModel, Suite, item_seed
from gensr_bench.records import Audio, Restoration, Utterance
from gensr_bench.testing.signals import noisy_utterance


class EchoModel(RestorationModel):
    """Test model: returns the degraded input scaled by ``gain`` (default 1)."""

    name = "test-echo"
    paradigm = "dsp"
    sample_rate = 16000
    accepted_options = ("gain",)

    def restore(self, batch: Sequence[Utterance], seed: int) -> list[Restoration]:
        gain = float(self.options.get("gain", 1.0))
        out = []
        for utt in batch:
            assert utt.degraded is not None
            audio = Audio(utt.degraded.samples * np.float32(gain), utt.degraded.sample_rate)
            out.append(Restoration(utt.id, audio, self.name, seed))
        return out


class NoisyEchoModel(RestorationModel):
    """Test model: the degraded input plus white noise drawn from ``item_seed(seed, id)``.

    Option ``noise`` (default 0.01): the noise's standard deviation; ``ids`` (a list of
    utterance ids, default all): only these get noise, the others are returned as they are.
    Different seeds give different outputs, so it stands in for a generative model's
    candidates.
    """

    name = "test-noisy-echo"
    paradigm = "dsp"
    sample_rate = 16000
    accepted_options = ("noise", "ids")

    def restore(self, batch: Sequence[Utterance], seed: int) -> list[Restoration]:
        level = float(self.options.get("noise", 0.01))
        ids = self.options.get("ids")
        out = []
        for utt in batch:
            assert utt.degraded is not None
            rng = np.random.default_rng(item_seed(seed, utt.id))
            noise = rng.standard_normal(len(utt.degraded.samples)).astype(np.float32) * level
            if ids is not None and utt.id not in ids:
                noise[:] = 0.0
            audio = Audio(utt.degraded.samples + noise, utt.degraded.sample_rate)
            out.append(Restoration(utt.id, audio, self.name, seed))
        return out


class LevelMetric(Metric):
    """Test metric: RMS level of the output in dBFS (cheap, non-intrusive).

    Option ``delay``: seconds to sleep per utterance, to make runs slow on purpose;
    ``setup_log``: a folder where each ``setup`` call appends its process id to ``setup.log``
    (to count how often workers load the metric); ``setup_error`` / ``score_error``: a message
    that ``setup`` / ``score_batch`` fails with (a metric whose weights are missing, or one
    that fails on every input).
    """

    name = "test-level"
    higher_is_better = True
    requires_reference = False
    sample_rate = 16000
    outputs = ("level_db",)
    accepted_options = ("delay", "setup_log", "setup_error", "score_error")

    def setup(self) -> None:
        folder = self.options.get("setup_log")
        if folder:
            with (Path(folder) / "setup.log").open("a") as handle:
                handle.write(f"{os.getpid()}\n")
        if self.options.get("setup_error"):
            raise RuntimeError(self.options["setup_error"])

    def score_batch(
        self, restorations: Sequence[Restoration], utterances: Sequence[Utterance]
    ) -> list[dict[str, float]]:
        delay = float(self.options.get("delay", 0.0))
        if delay:
            time.sleep(delay * len(restorations))
        if self.options.get("score_error"):
            raise RuntimeError(self.options["score_error"])
        return [
            {"level_db": float(10 * np.log10(np.mean(r.audio.samples.astype(np.float64) ** 2)))}
            for r in restorations
        ]


class SnrMetric(Metric):
    """Test metric: SNR of the output against the reference in dB (cheap, intrusive)."""

    name = "test-snr"
    higher_is_better = True
    requires_reference = True
    sample_rate = 16000
    outputs = ("snr_db",)
    min_duration = 0.25

    def score_batch(
        self, restorations: Sequence[Restoration], utterances: Sequence[Utterance]
    ) -> list[dict[str, float]]:
        out = []
        for r, u in zip(restorations, utterances, strict=True):
            assert u.reference is not None
            ref = u.reference.samples.astype(np.float64)
            err = r.audio.samples.astype(np.float64) - ref
            out.append({"snr_db": float(10 * np.log10(np.sum(ref**2) / np.sum(err**2)))})
        return out


class ListSuite(Suite):
    """Test suite over utterances given in memory (``utterances=`` option)."""

    name = "test-list"
    accepted_options = ("n",)  # recorded in the config, set from the utterances given

    def __init__(self, utterances: Sequence[Utterance] = (), limit: int | None = None) -> None:
        super().__init__(limit=limit, n=len(utterances))
        self._utterances = list(utterances)

    def iter_utterances(self) -> Iterator[Utterance]:
        yield from self._utterances

    def full_size(self) -> int:
        return len(self._utterances)

    def fingerprint(self) -> str:
        import hashlib

        digest = hashlib.sha256()
        for utt in self._utterances:
            digest.update(utt.id.encode())
            if utt.degraded is not None:
                digest.update(utt.degraded.content_hash().encode())
        return digest.hexdigest()[:16]


class ToySuite(Suite):
    """Test suite of ``size`` (default 8) deterministic noisy voiced utterances of 1 s."""

    name = "test-toy"
    accepted_options = ("size", "seconds")

    def __init__(self, limit: int | None = None, **options: Any) -> None:
        # Options go through the base class, which refuses unknown ones with a clear error
        # (keyword parameters here would raise a bare TypeError instead).
        options = {"size": 8, "seconds": 1.0, **options}
        super().__init__(limit=limit, **options)
        self.size = int(options["size"])
        self.seconds = float(options["seconds"])

    def iter_utterances(self) -> Iterator[Utterance]:
        for i in range(self.size):
            yield noisy_utterance(
                f"toy-{i:03d}",
                self.seconds,
                snr_db=float(i % 5) * 4.0,
                seed=i,
                degradation=("noise-low" if i % 2 else "noise-high"),
            )

    def full_size(self) -> int:
        return self.size
