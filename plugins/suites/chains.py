"""Degradation chains of the generated suites: the recipes, one utterance's draw, its application.

:data:`RECIPES` holds the parameter ranges of the three recipes (GSR, DNS 2020 no-reverb and
with-reverb); :func:`draw_chain` draws one utterance's degradations and their parameters from a
recipe, and :func:`apply_chain` applies them to 16 kHz speech (synthesising the noise and the
room from the drawn parameters unless a recording or a measured room is given). The names are
importable from ``generated.py`` too, which builds utterances with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from . import degradations as dg

#: The rate of every generated utterance: the chains degrade 16 kHz speech.
SAMPLE_RATE = 16000

#: Parameter ranges of the three recipes (recorded in fingerprints).
RECIPES: dict[str, dict[str, Any]] = {
    "gsr": {
        "p_reverb": 0.5,
        "p_noise": 0.75,
        "p_clipping": 0.35,
        "p_bandwidth": 0.5,
        "snr_db": (-5.0, 20.0),
        "rt60": (0.1, 1.0),
        "drr_db": (-4.0, 8.0),
        "clip_threshold": (0.06, 0.9),
        "cutoff_hz": (1000, 6000),
        "filter_order": (2, 10),
    },
    "dns-no-reverb": {"snr_db": (0.0, 19.0)},
    "dns-with-reverb": {"snr_db": (0.0, 19.0), "rt60": (0.3, 1.0), "drr_db": (-4.0, 8.0)},
}
NOISE_DETAILS: dict[str, Any] = {
    "hum_hz": (50.0, 60.0),
    "hum_harmonics": (4, 12),
    "hvac_cutoff_hz": (150, 800),
    "hvac_modulation_hz": (0.05, 0.5),
    "hvac_modulation_depth": (0.1, 0.5),
    "babble_talkers": (3, 6),
    "absorption_cutoff_hz": (2500, 7500),
}
#: Degradation names in the order they are listed in ``meta["degradation"]``.
DEGRADATION_ORDER = ("noise", "reverb", "clipping", "bandwidth")
#: Degradation parameters in ``meta``: present in every utterance, ``None`` when not applied.
DEGRADATION_PARAMETERS = (
    "noise_type",
    "snr_db",
    "hum_hz",
    "hum_harmonics",
    "hvac_cutoff_hz",
    "hvac_modulation_hz",
    "hvac_modulation_depth",
    "babble_talkers",
    "rt60",
    "drr_db",
    "absorption_cutoff_hz",
    "clip_threshold",
    "cutoff_hz",
    "filter_type",
    "filter_order",
    "zero_phase",
)


def uniform(rng: np.random.Generator, bounds: Sequence[float], digits: int = 2) -> float:
    return round(float(rng.uniform(bounds[0], bounds[1])), digits)


def integer(rng: np.random.Generator, bounds: Sequence[int]) -> int:
    return int(rng.integers(bounds[0], bounds[1] + 1))


def empty_meta() -> dict[str, Any]:
    """Every degradation parameter, ``None`` until drawn: all utterances share one schema."""
    return dict.fromkeys(DEGRADATION_PARAMETERS)


def draw_noise(rng: np.random.Generator, snr_db: Sequence[float]) -> dict[str, Any]:
    kind = dg.NOISE_TYPES[int(rng.integers(len(dg.NOISE_TYPES)))]
    params: dict[str, Any] = {"noise_type": kind, "snr_db": uniform(rng, snr_db)}
    if kind == "hum":
        params["hum_hz"] = float(rng.choice(NOISE_DETAILS["hum_hz"]))
        params["hum_harmonics"] = integer(rng, NOISE_DETAILS["hum_harmonics"])
    elif kind == "hvac":
        params["hvac_cutoff_hz"] = float(integer(rng, NOISE_DETAILS["hvac_cutoff_hz"]))
        params["hvac_modulation_hz"] = uniform(rng, NOISE_DETAILS["hvac_modulation_hz"], 3)
        params["hvac_modulation_depth"] = uniform(rng, NOISE_DETAILS["hvac_modulation_depth"])
    elif kind == "babble":
        params["babble_talkers"] = integer(rng, NOISE_DETAILS["babble_talkers"])
    return params


def draw_reverb(
    rng: np.random.Generator, rt60: Sequence[float], drr_db: Sequence[float]
) -> dict[str, Any]:
    return {
        "rt60": uniform(rng, rt60),
        "drr_db": uniform(rng, drr_db, 1),
        "absorption_cutoff_hz": float(integer(rng, NOISE_DETAILS["absorption_cutoff_hz"])),
    }


def draw_chain(
    recipe: str, rng: np.random.Generator, ranges: dict[str, Any] | None = None
) -> tuple[list[str], dict[str, Any]]:
    """The degradations of one utterance (in application order) and their parameters.

    ``ranges`` replaces the recipe's parameter ranges (``RECIPES[recipe]``) when given.
    """
    if ranges is None:
        if recipe not in RECIPES:
            raise ValueError(f"unknown recipe {recipe!r}; expected one of {sorted(RECIPES)}")
        ranges = RECIPES[recipe]
    params = empty_meta()
    if recipe == "dns-no-reverb":
        params.update(draw_noise(rng, ranges["snr_db"]))
        return ["noise"], params
    if recipe == "dns-with-reverb":
        params.update(draw_reverb(rng, ranges["rt60"], ranges["drr_db"]))
        params.update(draw_noise(rng, ranges["snr_db"]))
        return ["reverb", "noise"], params
    if recipe != "gsr":
        raise ValueError(f"unknown recipe {recipe!r}; expected one of {sorted(RECIPES)}")
    stages = ["reverb", "noise", "clipping", "bandwidth"]
    chosen = [stage for stage in stages if rng.random() < ranges[f"p_{stage}"]]
    if not chosen:  # at least one degradation per utterance
        chosen = [stages[int(rng.integers(len(stages)))]]
    if "reverb" in chosen:
        params.update(draw_reverb(rng, ranges["rt60"], ranges["drr_db"]))
    if "noise" in chosen:
        params.update(draw_noise(rng, ranges["snr_db"]))
    if "clipping" in chosen:
        params["clip_threshold"] = uniform(rng, ranges["clip_threshold"], 3)
    if "bandwidth" in chosen:
        params["cutoff_hz"] = float(integer(rng, ranges["cutoff_hz"]))
        params["filter_type"] = dg.FILTER_TYPES[int(rng.integers(len(dg.FILTER_TYPES)))]
        params["filter_order"] = integer(rng, ranges["filter_order"])
        params["zero_phase"] = bool(rng.random() < 0.5)
    return chosen, params


def noise_signal(
    params: dict[str, Any],
    n: int,
    rng: np.random.Generator,
    talkers: Sequence[npt.NDArray[np.float32]],
) -> dg.Signal:
    kind = params["noise_type"]
    if kind == "white":
        return dg.white_noise(n, SAMPLE_RATE, rng)
    if kind == "pink":
        return dg.pink_noise(n, SAMPLE_RATE, rng)
    if kind == "brown":
        return dg.brown_noise(n, SAMPLE_RATE, rng)
    if kind == "hum":
        return dg.mains_hum(n, SAMPLE_RATE, rng, params["hum_hz"], params["hum_harmonics"])
    if kind == "hvac":
        return dg.hvac_noise(
            n,
            SAMPLE_RATE,
            rng,
            params["hvac_cutoff_hz"],
            params["hvac_modulation_hz"],
            params["hvac_modulation_depth"],
        )
    if kind == "babble":
        return dg.babble(talkers, n, rng)
    raise ValueError(f"unknown noise type {kind!r}")


def apply_chain(
    clean: npt.ArrayLike,
    stages: Sequence[str],
    params: dict[str, Any],
    recipe: str,
    rng: np.random.Generator,
    talkers: Sequence[npt.NDArray[np.float32]] = (),
    rir: npt.ArrayLike | None = None,
    noise: npt.ArrayLike | None = None,
) -> tuple[dg.Signal, dg.Signal]:
    """Apply the degradation chain ``stages`` (from :func:`draw_chain`) to 16 kHz speech.

    Returns ``(reference, degraded)``: the reference is ``clean`` except for the DNS with-reverb
    recipe, whose target is the reverberant speech. Babble noise needs ``talkers``. ``rir``, when
    given, is the room response of the ``reverb`` stage (a measured or simulated room at 16 kHz,
    direct path first); otherwise a stochastic one is drawn from ``params`` with ``rng``.
    ``noise``, when given, is the noise source of the ``noise`` stage (a recording, at least as
    long as the speech); otherwise it is synthesised from ``params`` with ``rng``.
    """
    reference = np.asarray(clean, dtype=np.float64)
    degraded = reference
    for stage in stages:
        if stage == "reverb":
            room = rir
            if room is None:
                room = dg.synthetic_rir(
                    params["rt60"],
                    SAMPLE_RATE,
                    rng,
                    drr_db=params["drr_db"],
                    absorption_cutoff_hz=params["absorption_cutoff_hz"],
                )
            degraded = dg.reverberate(degraded, room)
            if recipe == "dns-with-reverb":
                reference = degraded  # DNS 2020: the reverberant clean speech is the target
        elif stage == "noise":
            if noise is None:
                source = noise_signal(params, len(degraded), rng, talkers)
            else:
                source = np.asarray(noise, dtype=np.float64)[: len(degraded)]
                if len(source) < len(degraded):
                    raise ValueError(
                        f"the noise has {len(source)} samples, the speech {len(degraded)}"
                    )
            degraded, _ = dg.mix_at_snr(degraded, source, params["snr_db"])
        elif stage == "clipping":
            degraded = dg.clip(degraded, params["clip_threshold"])
        elif stage == "bandwidth":
            degraded = dg.band_limit(
                degraded,
                SAMPLE_RATE,
                params["cutoff_hz"],
                params["filter_type"],
                params["filter_order"],
                params["zero_phase"],
            )
        else:
            raise ValueError(f"unknown degradation stage {stage!r}")
    return reference, degraded
