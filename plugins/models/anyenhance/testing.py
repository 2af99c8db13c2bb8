"""Test helpers for AnyEnhance: the tiny fixture models laid out as published, and audio."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from gensr_bench.records import Audio

from .layout import CODEC_FILE, CONFIG_FILE, MODEL_FILE
from .semantic import SEMANTIC_FOLDER

RATE = 44100


def published_layout(fixture: Path, folder: Path, case: str = "critic_v2") -> Path:
    """``folder`` laid out as the hub's ``amphion/anyenhance``, holding the tiny model ``case``
    of the fixture folder ``fixture`` (``tests/fixtures/anyenhance``)."""
    for source, target in (
        (fixture / case / "config.json", folder / CONFIG_FILE),
        (fixture / case / "model.pt", folder / MODEL_FILE),
        (fixture / "dac" / "weights.pth", folder / CODEC_FILE),
    ):
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    if case == "semantic":
        shutil.copytree(fixture / SEMANTIC_FOLDER, folder / SEMANTIC_FOLDER, dirs_exist_ok=True)
    return folder


def noise_audio(seconds: float, seed: int) -> Audio:
    """Seeded white noise at 44.1 kHz (RMS 0.1)."""
    rng = np.random.default_rng(seed)
    return Audio((0.1 * rng.standard_normal(int(seconds * RATE))).astype(np.float32), RATE)
