"""Generative restoration models of the three paradigms, small enough to train on a CPU.

``ar-small`` (autoregressive), ``mgm-small`` (masked generative) and ``fm-small`` (flow
matching) predict clean log-magnitude frames from degraded ones, time-aligned, and synthesise
waveforms with the degraded input's phase. AR and MGM work on the tokens of a per-bin scalar
tokenizer (``gensr-bench train tokenizer``). Checkpoints ship in ``checkpoints/``; ``gensr-bench
train --model NAME`` trains new ones. Aligned variants (``ar-small-dpo``, ``mgm-small-dpo``,
``fm-small-dpo``) ship the checkpoints ``gensr-bench align`` wrote for their base model.
"""

from __future__ import annotations

from typing import Any

from gensr_bench import RestorationModel, hookimpl

from .ar import ARSmall, ARSmallDPO
from .fm import FMPiper, FMPiperDPO, FMSmall, FMSmallDPO
from .mgm import MGMSmall, MGMSmallDPO

__all__ = [
    "ARSmall",
    "ARSmallDPO",
    "FMPiper",
    "FMPiperDPO",
    "FMSmall",
    "FMSmallDPO",
    "MGMSmall",
    "MGMSmallDPO",
]


@hookimpl
def gensr_register_models() -> list[type[RestorationModel]]:
    return [
        ARSmall,
        MGMSmall,
        FMSmall,
        ARSmallDPO,
        MGMSmallDPO,
        FMSmallDPO,
        FMPiper,
        FMPiperDPO,
    ]


@hookimpl
def gensr_register_commands(cli: Any) -> None:
    from .commands import tokenizer_command

    train = cli.commands.get("train")
    if train is not None and "tokenizer" not in getattr(train, "commands", {"tokenizer": 0}):
        train.add_command(tokenizer_command)
