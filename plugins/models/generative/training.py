"""Training loop shared by the three models: resumable, logged, with a progress bar.

``OUT/train_state.pt`` holds everything needed to continue (weights, optimiser, step, random
state) and is rewritten every ``checkpoint_every`` steps; ``OUT/model.pt`` + ``manifest.json``
form the checkpoint ``run`` and ``--model OUT`` use, and ``OUT/train.log`` has one line of
losses per ``log_every`` steps. Stopping at any point (Ctrl-C, ``max_minutes``) keeps the last
checkpoint; ``--resume`` continues from it.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from gensr_bench.errors import ConfigError
from gensr_bench.interfaces import Suite

from .base import FrameNet, save_checkpoint
from .data import CropSampler, FrameBatch
from .nets import count_parameters

STATE_FILE = "train_state.pt"
LOG_FILE = "train.log"


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warm-up to ``peak`` then cosine decay to a tenth of it."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def train_net(
    net: FrameNet,
    model_name: str,
    suite: Suite,
    out_dir: Path,
    recipe: Mapping[str, Any],
    *,
    seed: int = 0,
    resume: bool = False,
    max_minutes: float | None = None,
    manifest: Mapping[str, Any] | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> dict[str, Any]:
    """Train ``net`` on crops of ``suite``; returns the final manifest."""
    out_dir.mkdir(parents=True, exist_ok=True)
    state_path = out_dir / STATE_FILE
    if state_path.exists() and not resume:
        raise ConfigError(
            f"{out_dir} already holds a training run; pass --resume to continue it or choose "
            "another --out"
        )
    steps = int(recipe["steps"])
    torch.manual_seed(seed)
    optimiser = torch.optim.AdamW(
        [p for p in net.parameters() if p.requires_grad],
        lr=float(recipe["lr"]),
        weight_decay=0.01,
    )
    generator = torch.Generator().manual_seed(seed)
    step, elapsed, history = 0, 0.0, []
    if resume and state_path.exists():
        saved = torch.load(state_path, map_location="cpu", weights_only=False)
        net.load_state_dict(saved["net"])
        optimiser.load_state_dict(saved["optimiser"])
        generator.set_state(saved["generator"])
        step, elapsed, history = saved["step"], saved["elapsed"], saved["history"]
    sampler = CropSampler(suite, float(recipe["crop_s"]), seed + step)
    validation = sampler.reseeded(seed + 10**6).batch(int(recipe["batch_size"]), net.tokenizer)
    log = (out_dir / LOG_FILE).open("a")
    base_manifest = dict(manifest or {})

    def checkpoint() -> dict[str, Any]:
        torch.save(
            {
                "net": net.state_dict(),
                "optimiser": optimiser.state_dict(),
                "generator": generator.get_state(),
                "step": step,
                "elapsed": elapsed,
                "history": history,
            },
            state_path.with_suffix(".tmp"),
        )
        state_path.with_suffix(".tmp").replace(state_path)
        full = {
            **base_manifest,
            "steps": step,
            "train_minutes": round(elapsed / 60, 2),
            "recipe": dict(recipe),
            "net": net.cfg.to_dict(),
            "history": history[-20:],
        }
        save_checkpoint(out_dir, model_name, net, full)
        return full

    start = time.perf_counter() - elapsed
    running, since_log = 0.0, 0
    log_every = int(recipe.get("log_every", 50))
    save_every = int(recipe.get("checkpoint_every", 250))
    manifest_out: dict[str, Any] = {}
    try:
        while step < steps:
            if max_minutes is not None and (time.perf_counter() - start) > max_minutes * 60:
                break
            net.train()
            for group in optimiser.param_groups:
                group["lr"] = lr_at(step, steps, float(recipe["lr"]), int(recipe["warmup"]))
            batch = sampler.batch(int(recipe["batch_size"]), net.tokenizer)
            loss = net.training_loss(batch, generator)
            if not torch.isfinite(loss):
                raise ConfigError(f"training loss became {loss.item()} at step {step}")
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimiser.step()
            step += 1
            elapsed = time.perf_counter() - start
            running += loss.item()
            since_log += 1
            if progress is not None:
                progress(step, steps, loss.item())
            if step % log_every == 0 or step == steps:
                val = validation_loss(net, validation, seed)
                entry = {
                    "step": step,
                    "loss": round(running / since_log, 5),
                    "val_loss": round(val, 5),
                    "minutes": round(elapsed / 60, 2),
                }
                running, since_log = 0.0, 0
                history.append(entry)
                log.write(json.dumps(entry) + "\n")
                log.flush()
            if step % save_every == 0:
                manifest_out = checkpoint()
    finally:
        elapsed = time.perf_counter() - start
        if step > 0:
            manifest_out = checkpoint()
        log.close()
    manifest_out["parameters"] = count_parameters(net) - count_parameters(net.tokenizer)
    return manifest_out


@torch.no_grad()
def validation_loss(net: FrameNet, batch: FrameBatch, seed: int) -> float:
    """Loss on a fixed batch with fixed randomness (comparable across steps)."""
    net.eval()
    value = float(net.training_loss(batch, torch.Generator().manual_seed(seed)).item())
    net.train()
    return value
