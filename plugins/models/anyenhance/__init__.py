"""AnyEnhance (Amphion, MIT code): the GenSR-Pref paper's masked generative model.

Our own implementation of the published network, decoding and DAC codec, loading the published
weights (``amphion/anyenhance`` on the Hugging Face hub, supplied by the user). Parity with the
reference is tested on tiny random configurations (``tests/fixtures/anyenhance``, made by
``benchmarks/anyenhance/make_fixture.py``).
"""

from __future__ import annotations

from gensr_bench import RestorationModel, hookimpl

from .model import AnyEnhance, AnyEnhanceDPO

__all__ = ["AnyEnhance", "AnyEnhanceDPO"]


@hookimpl
def gensr_register_models() -> list[type[RestorationModel]]:
    return [AnyEnhance, AnyEnhanceDPO]
