"""Tests of gensr_bench_plugins.common.sampling: drawing a candidate's sampling settings."""

from __future__ import annotations

import random

from gensr_bench_plugins.common.sampling import draw_settings


def test_ranges_are_drawn_in_order_and_fixed_values_kept() -> None:
    settings = {"steps": [10, 40], "cfg_scale": [1.0, 3.0], "temperature": 0.9, "top_k": None}
    drawn = draw_settings(random.Random(7), settings)
    again = random.Random(7)
    assert drawn == {
        "steps": again.randint(10, 40),
        "cfg_scale": round(again.uniform(1.0, 3.0), 3),
        "temperature": 0.9,
        "top_k": None,
    }
    assert isinstance(drawn["steps"], int) and 1.0 <= drawn["cfg_scale"] <= 3.0
    assert draw_settings(random.Random(7), settings) == drawn  # seeded


def test_a_float_range_with_integer_looking_bounds_stays_float() -> None:
    drawn = draw_settings(random.Random(0), {"x": (1.0, 2)})
    assert isinstance(drawn["x"], float)
