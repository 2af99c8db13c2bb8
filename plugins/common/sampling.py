"""Candidate sampling settings shared by the generative model plugins."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any


def draw_settings(rng: random.Random, sampling: Mapping[str, Any]) -> dict[str, Any]:
    """One candidate's settings: a ``[low, high]`` value is drawn uniformly from ``rng``
    (integers stay integers; floats are rounded to 3 decimals), other values are kept."""
    drawn: dict[str, Any] = {}
    for key, value in sampling.items():
        if isinstance(value, (list, tuple)):
            low, high = value
            if isinstance(low, int) and isinstance(high, int):
                drawn[key] = rng.randint(low, high)
            else:
                drawn[key] = round(rng.uniform(float(low), float(high)), 3)
        else:
            drawn[key] = value
    return drawn
