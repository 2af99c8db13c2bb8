"""Audio and signal fixtures: tiny synthetic speech, noisy utterances, preference pairs.

Deterministic for a seed, small and fast: no recordings, no weights, no network.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from gensr_bench.records import Audio, PreferencePair, Restoration, Utterance


def voiced_signal(seconds: float = 2.0, sample_rate: int = 16000, seed: int = 0) -> Audio:
    """A speech-like test signal: a gliding harmonic tone with a syllable-rate envelope.

    Deterministic for a seed; peak 0.5. Good enough for metrics that need voiced energy
    (DNSMOS, PESQ, STOI) without shipping recordings.
    """
    rng = np.random.default_rng(seed)
    n = round(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    f0 = 110 + 60 * rng.random() + 25 * np.sin(2 * math.pi * (0.5 + rng.random()) * t)
    phase = 2 * math.pi * np.cumsum(f0) / sample_rate
    harmonics = sum(np.sin(k * phase) / k for k in range(1, 30) if k * f0.max() < sample_rate / 2)
    syllables = 0.5 * (1 - np.cos(2 * math.pi * (3.0 + rng.random()) * t))
    signal = np.asarray(harmonics) * syllables
    signal = 0.5 * signal / (np.max(np.abs(signal)) + 1e-9)
    return Audio(signal.astype(np.float32), sample_rate)


def add_noise(clean: Audio, snr_db: float, seed: int = 0) -> Audio:
    """``clean`` plus white Gaussian noise at ``snr_db`` (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(len(clean.samples)).astype(np.float32)
    power = float(np.mean(clean.samples.astype(np.float64) ** 2))
    noise *= np.float32(math.sqrt(power / (10 ** (snr_db / 10)) / np.mean(noise**2)))
    return Audio(clean.samples + noise, clean.sample_rate)


def noisy_utterance(
    uid: str = "utt-0",
    seconds: float = 2.0,
    sample_rate: int = 16000,
    snr_db: float = 5.0,
    seed: int = 0,
    **meta: Any,
) -> Utterance:
    """An utterance whose reference is ``voiced_signal`` and whose input adds white noise."""
    clean = voiced_signal(seconds, sample_rate, seed)
    degraded = add_noise(clean, snr_db, seed + 1)
    return Utterance(
        id=uid,
        degraded=degraded,
        reference=clean,
        transcript=None,
        meta={"degradation": "noise", "snr_db": snr_db, **meta},
    )


def tiny_utterances(n: int = 4, seconds: float = 1.0, sample_rate: int = 16000) -> list[Utterance]:
    """``n`` short noisy utterances with varied seeds and SNRs."""
    return [
        noisy_utterance(f"utt-{i}", seconds, sample_rate, snr_db=5.0 * (i % 4), seed=10 * i)
        for i in range(n)
    ]


def as_restorations(
    utterances: Sequence[Utterance], which: str = "degraded", model: str = "test"
) -> list[Restoration]:
    """Restorations equal to each utterance's ``degraded`` or ``reference`` audio."""
    out = []
    for utt in utterances:
        audio = getattr(utt, which)
        assert audio is not None, f"utterance {utt.id} has no {which} audio"
        out.append(Restoration(utterance_id=utt.id, audio=audio, model=model))
    return out


def sine(
    frequency: float, seconds: float = 0.1, sample_rate: int = 16000, amplitude: float = 0.5
) -> Audio:
    """A float32 sine of ``frequency`` Hz, ``seconds`` long, peak ``amplitude``."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return Audio((amplitude * np.sin(2 * math.pi * frequency * t)).astype(np.float32), sample_rate)


def tiny_preference_pairs(
    n_inputs: int = 2,
    pairs_per_input: int = 2,
    *,
    seconds: float = 0.1,
    sample_rate: int = 16000,
    model: str = "test-model",
) -> tuple[list[PreferencePair], dict[str, Audio]]:
    """Preference pairs over tiny sines, and the degraded input of each paired input.

    Input ``i`` is ``utt-<i>`` (degraded: a sine of ``200 + 50 i`` Hz); its pair ``j`` prefers
    candidate ``utt-<i>~c<2j>`` (seed ``2j``) to ``utt-<i>~c<2j+1>`` (seed ``2j+1``), every
    candidate a sine of its own frequency and level. Scores (``dnsmos_ovrl``, ``estoi``) are
    floats with long binary expansions, so an inexact round trip shows; criterion
    ``("dnsmos_ovrl", "estoi")``. Returns ``(pairs, degraded)``, ``degraded`` keyed by input id.
    """
    pairs = []
    degraded = {}
    for i in range(n_inputs):
        uid = f"utt-{i}"
        degraded[uid] = sine(200.0 + 50.0 * i, seconds, sample_rate, amplitude=0.3)
        for j in range(pairs_per_input):
            restorations = []
            for k in (2 * j, 2 * j + 1):
                audio = sine(
                    300.0 + 40.0 * i + 10.0 * k, seconds, sample_rate, amplitude=0.6 - 0.05 * k
                )
                restorations.append(Restoration(f"{uid}~c{k}", audio, model, seed=k))
            chosen, rejected = restorations
            pairs.append(
                PreferencePair(
                    input_id=uid,
                    chosen=chosen,
                    rejected=rejected,
                    chosen_scores={"dnsmos_ovrl": 3.0 + 1 / 3 + 0.1 * j, "estoi": 0.9 / 7},
                    rejected_scores={"dnsmos_ovrl": 2.0 + 1 / 7 + 0.1 * j, "estoi": 0.1 / 3},
                    criterion=("dnsmos_ovrl", "estoi"),
                )
            )
    return pairs, degraded


def utterance_digest(utterances: Sequence[Utterance]) -> str:
    """SHA-256 of utterances' content: id, audio bytes, transcript and meta (as sorted JSON).

    Two generations of a suite are the same exactly when their digests are equal: use it to
    check that a suite is deterministic for a seed, or that a cached read equals a fresh one.
    Audio is hashed as little-endian float32 with its rate and length.
    """
    import hashlib
    import json

    digest = hashlib.sha256()
    for utt in utterances:
        digest.update(utt.id.encode("utf-8") + b"\0")
        for audio in (utt.degraded, utt.reference):
            if audio is None:
                digest.update(b"none\0")
                continue
            samples = np.ascontiguousarray(audio.samples, dtype="<f4")
            digest.update(f"{audio.sample_rate}:{len(samples)}\0".encode())
            digest.update(samples.tobytes())
        digest.update(json.dumps(utt.transcript).encode("utf-8") + b"\0")
        digest.update(json.dumps(dict(utt.meta), sort_keys=True).encode("utf-8") + b"\0")
    return digest.hexdigest()
