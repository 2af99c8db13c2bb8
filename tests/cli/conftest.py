"""Fixtures shared by the command tests.

``checkpoints``, ``aligned`` and ``sft_aligned`` are the tiny generative checkpoints and the
`align` runs of them that the `align` and `pairs` tests read (module fixtures: each test module
builds its own). Those modules run with one torch thread (``one_torch_thread``).
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from gensr_bench.testing import invoke_cli
from gensr_bench.testing.alignment import align_args
from gensr_bench.testing.fixtures import one_torch_thread  # noqa: F401 (a fixture)
from gensr_bench_plugins.models.generative.testing import (
    tiny_generative_checkpoint,
    tiny_spectral_tokenizer,
)

TOY_PLUGINS = Path(__file__).parents[1] / "fixtures" / "toy_plugins"
align = functools.partial(align_args, TOY_PLUGINS)


@pytest.fixture()
def cache_env(tmp_path, monkeypatch):
    monkeypatch.setenv("GENSR_BENCH_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("base")
    tokenizer = tiny_spectral_tokenizer()
    return {
        name: tiny_generative_checkpoint(root / name, name, tokenizer)
        for name in ("ar-small", "fm-small")
    }


@pytest.fixture(scope="module")
def aligned(tmp_path_factory: pytest.TempPathFactory, checkpoints: dict[str, Path]) -> Path:
    """An `align` run of ar-small: 2 DPO steps at a rate large enough to change the weights."""
    out = tmp_path_factory.mktemp("aligned") / "ar-dpo"
    result = invoke_cli(
        align(
            checkpoints["ar-small"],
            out,
            "--align-option",
            "steps=2",
            "--align-option",
            "lr=1e-3",
            "--align-option",
            "warmup=0",
        )
    )
    assert result.exit_code == 0, result.stderr
    assert f"checkpoint in {out}" in result.stdout
    return out


@pytest.fixture(scope="module")
def sft_aligned(tmp_path_factory: pytest.TempPathFactory, checkpoints: dict[str, Path]) -> Path:
    """An `align` run of fm-small: 1 SFT step on the clean references; its candidates are
    scored on two outputs (level_db, snr_db), and SFT needs no pair to train."""
    out = tmp_path_factory.mktemp("sft") / "fm-sft"
    result = invoke_cli(
        align(
            checkpoints["fm-small"],
            out,
            "--objective",
            "sft",
            "--sft-target",
            "ground-truth",
            "--align-option",
            "steps=1",
            metrics="level_db,snr_db",
        )
    )
    assert result.exit_code == 0, result.stderr
    return out
