"""The DPO trainer: a policy against a frozen copy of itself, on preference pairs.

Paradigm-agnostic (DESIGN section 4): it needs only what :class:`AlignablePolicy` offers
(``policy_batch``, ``alignment_inputs`` and the paradigm's term, ``sequence_logprob`` or
``velocity_error``) and picks the loss with :func:`loss_for_paradigm`.

* **Reference**: a deep copy of the model taken before any update, in eval mode, without
  gradients. With ``precompute_reference`` its terms are computed once for every pair (and
  saved in ``OUT/reference_terms.pt``); each pair then keeps one random draw (mask, or ``t``
  and noise) for the whole run. Without it the reference runs at every step and every epoch
  draws afresh.
* **Draws** are made pair by pair from a generator seeded by the pair's index (and the epoch),
  so they never depend on batching, resuming or the order of the pairs; dropout (used by the
  supervised term) draws from torch's generator seeded by the step, in a fork of its state.
* **Objectives**: ``dpo`` (the method; ``sft_weight > 0`` adds the model's supervised loss on
  the winners, a guard against the drift of both likelihoods) and ``sft`` (the baselines:
  the supervised loss on the chosen outputs only, e.g. ground truth or winners).
* **Optimiser**: AdamW, linear warm-up then a constant rate, gradient clipping.
* **Resumable**: ``OUT/train_state.pt`` (weights, optimiser, step, history) every
  ``checkpoint_every`` steps and at the end; the model's own checkpoint beside it
  (``AlignablePolicy.save_trainable``), and ``OUT/align.log`` with one JSON line per
  ``log_every`` steps: loss, rewards/chosen, rewards/rejected, reward accuracy, margin (and on
  held-out pairs, when given).
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import torch

from gensr_bench.errors import ConfigError
from gensr_bench.interfaces import AlignablePolicy, item_seed
from gensr_bench.records import Audio

from .losses import DEFAULT_BETA, LossOutput, loss_for_paradigm

STATE_FILE: Final = "train_state.pt"
REFERENCE_FILE: Final = "reference_terms.pt"
LOG_FILE: Final = "align.log"
OBJECTIVES: Final = ("dpo", "sft")


@dataclass(frozen=True)
class AlignmentExample:
    """One training example: a pair for DPO (``rejected`` set), a target for SFT (``None``)."""

    input_id: str
    degraded: Audio
    chosen: Audio
    rejected: Audio | None = None


@dataclass(frozen=True)
class AlignConfig:
    """The recipe of one alignment run (saved in the checkpoint's manifest)."""

    objective: str = "dpo"
    beta: float | None = None  # None: DEFAULT_BETA of the paradigm
    lr: float = 1e-5
    steps: int = 500
    batch_size: int = 4
    warmup: int = 20
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    sft_weight: float = 0.0
    precompute_reference: bool = True
    log_every: int = 25
    checkpoint_every: int = 100
    seed: int = 0
    #: AR and MGM: the reward from the *mean* log-probability of the scored tokens instead of
    #: their sum (whose scale grows with the output's length and, for MGM, the masked share;
    #: a sum over 257 bins x masked frames saturates the loss at beta 10). Pick beta for it.
    token_mean: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ConfigError(
                f"unknown alignment objective {self.objective!r}; one of {', '.join(OBJECTIVES)}"
            )
        for name in ("steps", "batch_size", "log_every", "checkpoint_every"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"alignment option {name} must be at least 1")
        if not self.lr > 0:
            raise ConfigError(f"alignment option lr must be positive, got {self.lr}")
        if self.sft_weight < 0:
            raise ConfigError(f"alignment option sft_weight must be >= 0, got {self.sft_weight}")

    def beta_for(self, paradigm: str) -> float:
        if self.beta is not None:
            return float(self.beta)
        if paradigm not in DEFAULT_BETA:
            loss_for_paradigm(paradigm)  # raises the clear error
        return float(DEFAULT_BETA[paradigm])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def dpo_term(
    policy: AlignablePolicy, batch: Any, inputs: tuple[Any, ...], token_mean: bool = False
) -> torch.Tensor:
    """The paradigm's per-sample DPO term: FM's velocity error, else the summed (or, with
    ``token_mean``, the per-token mean) log-probability of the output's scored tokens."""
    if policy.paradigm == "fm":
        return policy.velocity_error(batch, *inputs)
    summed = policy.sequence_logprob(batch, *inputs)
    if not token_mean:
        return summed
    return summed / policy.scored_tokens(batch, *inputs).to(summed.dtype).clamp_min(1.0)


class DPOTrainer:
    """Aligns ``model`` (a RestorationModel that is an AlignablePolicy) on ``examples``."""

    def __init__(
        self,
        model: AlignablePolicy,
        examples: Sequence[AlignmentExample],
        config: AlignConfig,
        out_dir: Path,
        *,
        eval_examples: Sequence[AlignmentExample] = (),
        manifest: Mapping[str, Any] | None = None,
    ) -> None:
        if not examples:
            raise ConfigError("nothing to align on: the preference set has no pairs")
        self.dpo = config.objective == "dpo"
        missing = [e.input_id for e in examples if self.dpo and e.rejected is None]
        if missing:
            raise ConfigError(
                f"DPO needs a rejected output for every pair; {len(missing)} have none "
                f"(first: {missing[0]!r}); use objective 'sft' for targets without a loser"
            )
        if config.token_mean and model.paradigm not in ("ar", "mgm"):
            raise ConfigError(
                f"the alignment option token_mean applies to token models (AR, MGM); "
                f"{model.paradigm!r} compares per-sample errors already averaged"
            )
        self.model = model
        self.paradigm = model.paradigm
        self.loss_fn = loss_for_paradigm(self.paradigm) if self.dpo else None
        self.beta = config.beta_for(self.paradigm) if self.dpo else None
        self.examples = list(examples)
        self.eval_examples = [e for e in eval_examples if e.rejected is not None]
        self.config = config
        self.out_dir = Path(out_dir)
        self.manifest = dict(manifest or {})
        module = model.trainable_module()
        # The reference: a frozen copy taken before any update (and before a resume).
        self.reference: AlignablePolicy | None = None
        if self.dpo:
            self.reference = copy.deepcopy(model)
            ref_module = self.reference.trainable_module()
            ref_module.eval()
            ref_module.requires_grad_(False)
        self.module = module
        self.optimiser = torch.optim.AdamW(
            [p for p in module.parameters() if p.requires_grad],
            lr=config.lr,
            weight_decay=config.weight_decay,
        )
        self.step = 0
        self.elapsed = 0.0
        self.history: list[dict[str, Any]] = []
        self._ref_terms: torch.Tensor | None = None
        self._orders: dict[int, list[int]] = {}

    # -- bookkeeping ------------------------------------------------------------------------
    def _pair_generator(self, index: int, epoch: int, held_out: bool = False) -> torch.Generator:
        fixed = self.config.precompute_reference or held_out
        key = f"{'eval' if held_out else 'train'}#{index}"
        seed = item_seed(self.config.seed + (0 if fixed else epoch), key)
        return torch.Generator().manual_seed(seed)

    def _order(self, epoch: int) -> list[int]:
        if epoch not in self._orders:
            g = torch.Generator().manual_seed(item_seed(self.config.seed, f"epoch#{epoch}"))
            self._orders = {epoch: torch.randperm(len(self.examples), generator=g).tolist()}
        return self._orders[epoch]

    def _indices(self, step: int) -> tuple[list[int], int]:
        """The example indices of ``step`` and their epoch (epochs never mix in a batch)."""
        n, size = len(self.examples), min(self.config.batch_size, len(self.examples))
        per_epoch = max(1, n // size)
        epoch, slot = divmod(step, per_epoch)
        return self._order(epoch)[slot * size : (slot + 1) * size], epoch

    def _lr(self, step: int) -> float:
        warmup = max(0, self.config.warmup)
        return self.config.lr * min(1.0, (step + 1) / warmup) if warmup else self.config.lr

    # -- terms ------------------------------------------------------------------------------
    def _paired(
        self, examples: Sequence[AlignmentExample], generators: Sequence[torch.Generator]
    ) -> tuple[Any, tuple[Any, ...]]:
        degraded = [e.degraded for e in examples]
        outputs = [e.chosen for e in examples] + [e.rejected for e in examples]
        batch = self.model.policy_batch(degraded + degraded, outputs)  # type: ignore[arg-type]
        return batch, self.model.alignment_inputs(batch, generators)

    @torch.no_grad()
    def _reference_terms(
        self, examples: Sequence[AlignmentExample], generators: Sequence[torch.Generator]
    ) -> torch.Tensor:
        assert self.reference is not None
        batch, inputs = self._paired(examples, generators)
        return dpo_term(self.reference, batch, inputs, self.config.token_mean).detach()

    def precompute(self, progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
        """Reference terms ``[N, 2]`` (chosen, rejected) of every pair, saved for resuming."""
        path = self.out_dir / REFERENCE_FILE
        key = {
            "pairs": len(self.examples),
            "seed": self.config.seed,
            "ids": self._ids_hash(),
            "token_mean": self.config.token_mean,
        }
        if path.exists():
            saved = torch.load(path, map_location="cpu", weights_only=False)
            if saved.get("key") == key:
                self._ref_terms = saved["terms"]
                return saved["terms"]
        terms = torch.zeros(len(self.examples), 2)
        size = self.config.batch_size
        for start in range(0, len(self.examples), size):
            idx = list(range(start, min(start + size, len(self.examples))))
            gens = [self._pair_generator(i, 0) for i in idx]
            values = self._reference_terms([self.examples[i] for i in idx], gens).cpu()
            terms[idx, 0], terms[idx, 1] = values[: len(idx)], values[len(idx) :]
            if progress is not None:
                progress(idx[-1] + 1, len(self.examples))
        self.out_dir.mkdir(parents=True, exist_ok=True)
        torch.save({"key": key, "terms": terms}, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").replace(path)
        self._ref_terms = terms
        return terms

    def _ids_hash(self) -> str:
        ids = "\n".join(e.input_id for e in self.examples)
        return hashlib.sha256(ids.encode()).hexdigest()[:16]

    def _dpo_loss(
        self, examples: Sequence[AlignmentExample], gens: Sequence[torch.Generator], ref: Any
    ) -> LossOutput:
        assert self.loss_fn is not None and self.beta is not None
        batch, inputs = self._paired(examples, gens)
        terms = dpo_term(self.model, batch, inputs, self.config.token_mean)
        if ref is not None:  # precomputed terms are kept on the CPU
            ref = ref.to(terms.device)
        if ref is None:  # the live reference sees the very same batch and draws
            assert self.reference is not None
            with torch.no_grad():
                ref = dpo_term(self.reference, batch, inputs, self.config.token_mean).detach()
        b = len(examples)
        return self.loss_fn(terms[:b], terms[b:], ref[:b], ref[b:], self.beta)

    def evaluate(self) -> dict[str, float]:
        """Reward accuracy and margin on the held-out pairs (fixed draws)."""
        if not self.eval_examples or not self.dpo:
            return {}
        accs, margins, size = [], [], self.config.batch_size
        with torch.no_grad():
            for start in range(0, len(self.eval_examples), size):
                part = self.eval_examples[start : start + size]
                gens = [self._pair_generator(start + i, 0, held_out=True) for i in range(len(part))]
                out = self._dpo_loss(part, gens, None)
                accs.append(out.reward_accuracy * len(part))
                margins.append(out.margin * len(part))
        n = len(self.eval_examples)
        return {"eval_reward_accuracy": sum(accs) / n, "eval_margin": sum(margins) / n}

    def _objective(
        self, part: Sequence[AlignmentExample], gens: Sequence[torch.Generator], idx: list[int]
    ) -> tuple[dict[str, float], torch.Tensor]:
        """The loss of one batch (DPO, plus the optional supervised term; or SFT) and its logs."""
        if not self.dpo:
            loss = self._supervised(part, gens[0])
            return {"sft_loss": loss.item()}, loss
        ref = None
        if self._ref_terms is not None:
            ref = torch.cat([self._ref_terms[idx, 0], self._ref_terms[idx, 1]])
        out = self._dpo_loss(part, gens, ref)
        loss = out.loss
        values = {
            "dpo_loss": out.loss.item(),
            "rewards/chosen": float(out.rewards_chosen.mean()),
            "rewards/rejected": float(out.rewards_rejected.mean()),
            "reward_accuracy": out.reward_accuracy,
            "margin": out.margin,
        }
        if self.config.sft_weight > 0:
            sft = self._supervised(part, gens[0])
            loss = loss + self.config.sft_weight * sft
            values["sft_loss"] = sft.item()
        return values, loss

    # -- the loop ---------------------------------------------------------------------------
    def train_step(self) -> tuple[dict[str, float], int]:
        """One optimiser step on the next batch; returns its logged values and the epoch.

        Sets the learning rate of the schedule, computes the objective (DPO, plus the optional
        supervised term; or SFT), clips the gradient and steps. ``train`` calls it in a loop;
        the benchmarks time it alone.
        """
        cfg = self.config
        for group in self.optimiser.param_groups:
            group["lr"] = self._lr(self.step)
        idx, epoch = self._indices(self.step)
        part = [self.examples[i] for i in idx]
        gens = [self._pair_generator(i, epoch) for i in idx]
        self.module.train()
        # Dropout (the supervised term trains with it) draws from torch's global generator:
        # seed it by the step, in a fork, so a run is repeatable, resumes exactly and leaves
        # the caller's random state alone.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(item_seed(cfg.seed, f"step#{self.step}"))
            values, loss = self._objective(part, gens, idx)
            if not torch.isfinite(loss):
                raise ConfigError(f"alignment loss became {loss.item()} at step {self.step}")
            self.optimiser.zero_grad()
            loss.backward()
        torch.nn.utils.clip_grad_norm_(self.module.parameters(), cfg.grad_clip)
        self.optimiser.step()
        self.step += 1
        values["loss"] = loss.item()
        return values, epoch

    def train(
        self,
        *,
        resume: bool = False,
        max_minutes: float | None = None,
        progress: Callable[[int, int, float], None] | None = None,
        reference_progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, Any]:
        """Run to ``config.steps`` (or ``max_minutes``); returns the checkpoint's manifest.

        ``progress(step, steps, loss)`` follows the training steps, ``reference_progress(done,
        pairs)`` the one-time precomputation of the reference terms before them.
        """
        cfg = self.config
        state_path = self.out_dir / STATE_FILE
        if state_path.exists() and not resume:
            raise ConfigError(
                f"{self.out_dir} already holds an alignment run; pass --resume to continue it "
                "or choose another --out"
            )
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if resume and state_path.exists():
            saved = torch.load(state_path, map_location="cpu", weights_only=False)
            self.module.load_state_dict(saved["module"])
            self.optimiser.load_state_dict(saved["optimiser"])
            self.step, self.elapsed = int(saved["step"]), float(saved["elapsed"])
            self.history = list(saved["history"])
        if self.dpo and cfg.precompute_reference and self._ref_terms is None:
            self.precompute(reference_progress)
        log = (self.out_dir / LOG_FILE).open("a")
        start = time.perf_counter() - self.elapsed
        sums: dict[str, float] = {}
        count = 0
        manifest: dict[str, Any] = {}
        try:
            while self.step < cfg.steps:
                if max_minutes is not None and time.perf_counter() - start > max_minutes * 60:
                    break
                values, epoch = self.train_step()
                self.elapsed = time.perf_counter() - start
                for k, v in values.items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
                if progress is not None:
                    progress(self.step, cfg.steps, values["loss"])
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    entry: dict[str, Any] = {"step": self.step, "epoch": epoch}
                    entry.update({k: round(v / count, 6) for k, v in sums.items()})
                    entry.update({k: round(v, 6) for k, v in self.evaluate().items()})
                    entry["lr"] = self._lr(self.step - 1)
                    entry["minutes"] = round(self.elapsed / 60, 2)
                    sums, count = {}, 0
                    self.history.append(entry)
                    log.write(json.dumps(entry) + "\n")
                    log.flush()
                if self.step % cfg.checkpoint_every == 0:
                    manifest = self._checkpoint()
        finally:
            self.elapsed = time.perf_counter() - start
            if self.step > 0:
                manifest = self._checkpoint()
            log.close()
        return manifest

    def _supervised(
        self, examples: Sequence[AlignmentExample], generator: torch.Generator
    ) -> torch.Tensor:
        batch = self.model.policy_batch(
            [e.degraded for e in examples], [e.chosen for e in examples]
        )
        return self.model.supervised_loss(batch, generator)

    def _checkpoint(self) -> dict[str, Any]:
        state = {
            "module": self.module.state_dict(),
            "optimiser": self.optimiser.state_dict(),
            "step": self.step,
            "elapsed": self.elapsed,
            "history": self.history,
        }
        path = self.out_dir / STATE_FILE
        torch.save(state, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").replace(path)
        manifest = {
            **self.manifest,
            "alignment": {
                **self.config.to_dict(),
                "beta": self.beta,
                "paradigm": self.paradigm,
                "pairs": len(self.examples),
                "held_out_pairs": len(self.eval_examples),
                "steps_done": self.step,
                "minutes": round(self.elapsed / 60, 2),
                "history": self.history[-10:],
            },
        }
        self.model.save_trainable(self.out_dir, manifest)
        return manifest
