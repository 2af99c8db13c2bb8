"""AnyEnhance's decoding settings (torch-free, so the model registers without importing torch)."""

from __future__ import annotations

from dataclasses import dataclass

TASKS = {"enhancement": 0, "extraction": 1}


@dataclass(frozen=True)
class DecodeSettings:
    """The reference's ``generate`` arguments; ``use_token_critic`` only when there is one."""

    timesteps: int = 20
    cond_scale: float = 1.0
    temperature: float = 1.0
    topk_filter_thres: float = 0.9
    use_token_critic: bool = True
    critic_noise_scale: float = 1.0
