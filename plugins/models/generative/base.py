"""What the three generative models share: checkpoints, restoration, candidate sampling."""

from __future__ import annotations

import hashlib
import io
import json
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from gensr_bench import AlignablePolicy, RestorationModel
from gensr_bench.errors import AudioValidationError, ConfigError
from gensr_bench.interfaces import Suite, item_seed
from gensr_bench.records import Audio, Restoration, Utterance
from gensr_bench_plugins.common.sampling import draw_settings

from . import features as ft
from .data import FrameBatch, frame_batch
from .nets import NetConfig, count_parameters
from .tokenizer import MANIFEST, SpectralTokenizer, write_artifact

MODEL_FILE = "model.pt"
SHIPPED = Path(__file__).parent / "checkpoints"


def shipped_checkpoint(name: str) -> Path:
    """Where the checkpoint that ships with the package lives."""
    return SHIPPED / name


class FrameNet(nn.Module):
    """Base of the networks: holds the tokenizer (normalisation and codebooks) as a submodule."""

    def __init__(self, cfg: NetConfig, tokenizer: SpectralTokenizer) -> None:
        super().__init__()
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.tokenizer.requires_grad_(False)

    def training_loss(self, batch: FrameBatch, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def generate(
        self, cond: torch.Tensor, generator: torch.Generator, settings: Mapping[str, Any]
    ) -> torch.Tensor:
        """Normalised clean frames ``[B, T, bins]`` for degraded frames ``cond [B, T, bins]``."""
        raise NotImplementedError


def save_checkpoint(
    directory: Path, model_name: str, net: FrameNet, manifest: Mapping[str, Any]
) -> str:
    """Write ``model.pt`` (half-precision weights) and ``manifest.json``; returns the sha256."""
    state = {
        k: (v.half() if v.is_floating_point() and not k.startswith("tokenizer.") else v)
        for k, v in net.state_dict().items()
    }
    payload = {
        "model": model_name,
        "net": net.cfg.to_dict(),
        "tokenizer": net.tokenizer.state(),
        "state": state,
    }
    parameters = count_parameters(net) - count_parameters(net.tokenizer)
    extra = {"model": model_name, "parameters": parameters}
    return str(write_artifact(directory, MODEL_FILE, payload, {**manifest, **extra})["sha256"])


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the checkpoint manifest {path}: {exc}") from exc


class GenerativeModel(RestorationModel, AlignablePolicy):
    """A restoration model that predicts clean log-magnitude frames from degraded ones.

    Options: ``checkpoint`` (a folder with ``model.pt`` and ``manifest.json``; default: the
    checkpoint shipped with the package), ``gl_iterations`` (Griffin-Lim iterations, default
    10), ``smooth`` (frames of the Hann-weighted smoothing over time of the generated frames
    before synthesis, odd; default ``default_smooth``; 1 turns it off) and the paradigm's
    sampling settings for ``restore`` (see ``default_sampling``; single values). ``sample``
    uses ``candidate_sampling``, where a ``[low, high]`` list is a range.
    """

    sample_rate = 16000
    #: Restoration runs in float64 and rounds to float32 at the end, so two x86 CPUs differ by
    #: at most one float32 rounding step of a sample (2.4e-7 below magnitude 4; measured:
    #: 7e-12 over every emulated CPU, where float32 sampling differed by 8e-6, and by up to 0.7
    #: where AR or MGM drew another token: benchmarks/reproducibility/RESULTS.md). AR and MGM
    #: assume that no two sampling scores come within float64 rounding of each other.
    waveform_tolerance = 2.5e-7
    #: Sampling runs on ``--device`` (random numbers are drawn on the CPU and moved, so the
    #: draws are the same everywhere; a GPU's float64 kernels may still round differently,
    #: which the tolerance above does not cover). Training and DPO run on the CPU.
    supports_device = True
    net_class: ClassVar[type[FrameNet]]
    #: Frames of :func:`features.smooth_time` before synthesis (``smooth`` option).
    default_smooth: ClassVar[int] = ft.SMOOTH_FRAMES
    #: Sampling settings for ``restore``.
    default_sampling: ClassVar[dict[str, Any]] = {}
    #: Sampling settings of the paper for candidates (``sample``); lists are ranges.
    candidate_sampling: ClassVar[dict[str, Any]] = {}
    #: The model name its shipped checkpoint records, when that is another model's (an aligned
    #: variant such as ``fm-small-dpo`` ships the weights ``align`` wrote for ``fm-small``).
    checkpoint_model: ClassVar[str | None] = None
    #: Default network size and training recipe.
    default_net: ClassVar[NetConfig] = NetConfig()
    train_defaults: ClassVar[dict[str, Any]] = {
        "steps": 3000,
        "batch_size": 8,
        "crop_s": 2.0,
        "lr": 1e-3,
        "warmup": 200,
    }

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The core refuses any other option, naming these.
        cls.accepted_options = (
            "checkpoint",
            "gl_iterations",
            "smooth",
            *sorted(cls.default_sampling),
        )

    def __init__(self, **options: Any) -> None:
        ranged = sorted(k for k, v in options.items() if isinstance(v, (list, tuple, dict)))
        if ranged:
            raise ConfigError(
                f"model option(s) {', '.join(ranged)} of {self.name!r} must be single values "
                "(ranges are for candidate sampling: pass them in `sample(..., sampling=...)`)"
            )
        super().__init__(**options)
        self.net: FrameNet | None = None
        self._sha256: str | None = None
        self.gl_iterations = int(options.get("gl_iterations", ft.GL_ITERATIONS))
        self.smooth = int(options.get("smooth", self.default_smooth))
        if self.smooth < 1 or self.smooth % 2 == 0:
            raise ConfigError(
                f"model option smooth={options.get('smooth')!r} of {self.name!r} must be an odd "
                "number of frames >= 1 (1 turns the smoothing off; "
                f"default {self.default_smooth})"
            )
        self.sampling = {
            **self.default_sampling,
            **{k: v for k, v in options.items() if k in self.default_sampling},
        }

    # -- weights ----------------------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> Path:
        given = self.options.get("checkpoint")
        return Path(given) if given else shipped_checkpoint(self.name)

    def setup(self) -> None:
        if self.net is not None:
            return
        self.load_net(self.checkpoint_dir)

    def load_net(self, directory: Path) -> FrameNet:
        file = directory / MODEL_FILE
        if not file.is_file():
            raise ConfigError(
                f"no checkpoint for model {self.name!r} at {directory}; train one with "
                f"`gensr-bench train --model {self.name} --suite synth-gsr-train --out DIR` "
                "and pass --model-option checkpoint=DIR (or --model DIR)"
            )
        sha256, state, net = self.read_checkpoint(file, str(file))
        net.load_state_dict(state)
        net.eval()
        net.to(self.device)  # inference runs where the model was placed (--device)
        self.net = net
        self._sha256 = sha256
        return net

    @classmethod
    def read_checkpoint(
        cls, file: Path, label: str
    ) -> tuple[str, dict[str, torch.Tensor], FrameNet]:
        """The sha256 of a ``model.pt`` of this model, its weights (float32) and a new
        network of its sizes and tokenizer (weights not loaded); ``label`` names it in errors."""
        data = file.read_bytes()
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        accepted = {cls.name, cls.checkpoint_model or cls.name}
        if payload.get("model") not in accepted:
            raise ConfigError(
                f"{label} holds a {payload.get('model')!r} checkpoint, not one of "
                f"{' or '.join(repr(name) for name in sorted(accepted))}"
            )
        tokenizer = SpectralTokenizer.from_state(payload["tokenizer"])
        net = cls.net_class(NetConfig.from_dict(payload["net"]), tokenizer)
        state = {k: v.float() for k, v in payload["state"].items()}
        return hashlib.sha256(data).hexdigest(), state, net

    def checkpoint_hash(self) -> str | None:
        if self._sha256 is None:
            file = self.checkpoint_dir / MODEL_FILE
            if file.is_file():
                self._sha256 = hashlib.sha256(file.read_bytes()).hexdigest()
        return self._sha256

    # -- restoration --------------------------------------------------------------------------
    def _degraded(self, utt: Utterance) -> np.ndarray:
        if utt.degraded is None:
            raise AudioValidationError(
                f"utterance {utt.id!r} has no degraded audio"
                + (f" ({utt.error})" if utt.error else "")
            )
        return utt.degraded.samples

    @torch.no_grad()
    def _restore_one(
        self, samples: np.ndarray, seed: int, settings: Mapping[str, Any]
    ) -> np.ndarray:
        """One output, computed in ``ft.SAMPLING_DTYPE`` from the features to the waveform,
        so that x86 CPUs with other vector units give the same samples (features module)."""
        assert self.net is not None
        prepared = ft.prepare(samples, ft.SAMPLING_DTYPE)
        with in_precision(self.net, ft.SAMPLING_DTYPE):
            device = next(self.net.parameters()).device
            cond = self.net.tokenizer.normalise(prepared.logmag.to(device))[None]
            # Random numbers are drawn on the CPU and moved: the same samples on every device.
            generator = torch.Generator().manual_seed(seed)
            frames = self.net.generate(cond, generator, settings)[0]
            logmag = self.net.tokenizer.denormalise(frames).cpu()
        return ft.synthesise(logmag, prepared, self.gl_iterations, self.smooth)

    def restore(self, batch: Sequence[Utterance], seed: int) -> list[Restoration]:
        self.setup()
        out = []
        for utt in batch:
            samples = self._restore_one(self._degraded(utt), item_seed(seed, utt.id), self.sampling)
            out.append(Restoration(utt.id, Audio(samples, ft.SAMPLE_RATE), self.name, seed))
        return out

    def draw_settings(self, rng: random.Random, sampling: Mapping[str, Any]) -> dict[str, Any]:
        """One candidate's settings: a ``[low, high]`` range is drawn from (integers stay so)."""
        return draw_settings(rng, {**self.candidate_sampling, **sampling})

    def sample(
        self,
        batch: Sequence[Utterance],
        n: int,
        seed: int,
        sampling: Mapping[str, Any] | None = None,
    ) -> list[list[Restoration]]:
        """``n`` candidates per utterance with the paper's sampling settings.

        ``candidate_sampling`` (the paper's settings; a ``[low, high]`` list is a range drawn
        from per candidate) updated by ``sampling``; the model's own options apply to
        ``restore`` only.
        """
        self.setup()
        unknown = sorted(set(sampling or {}) - set(self.default_sampling))
        if unknown:
            raise ConfigError(
                f"model {self.name!r} has no sampling setting {', '.join(unknown)}; "
                f"available: {', '.join(sorted(self.default_sampling))}"
            )
        out = []
        for utt in batch:
            samples = self._degraded(utt)
            candidates = []
            for k in range(n):
                cand_seed = item_seed(seed + k, utt.id)
                settings = self.draw_settings(random.Random(cand_seed), sampling or {})
                wave = self._restore_one(samples, cand_seed, settings)
                candidates.append(
                    Restoration(
                        utt.id,
                        Audio(wave, ft.SAMPLE_RATE),
                        self.name,
                        seed + k,
                        meta={"sampling": settings},
                    )
                )
            out.append(candidates)
        return out

    # -- training -----------------------------------------------------------------------------
    trainable = True
    #: Network options ``fit`` accepts (they size a new network).
    net_options: ClassVar[tuple[str, ...]] = ("d_model", "layers", "heads", "ff", "dropout")

    @classmethod
    def fit(
        cls,
        suite: Suite,
        out_dir: Path,
        *,
        seed: int = 0,
        resume: bool = False,
        max_minutes: float | None = None,
        options: Mapping[str, Any] | None = None,
        command: str = "",
        progress: Callable[[int, int, float], None] | None = None,
        device: str = "cpu",
    ) -> dict[str, Any]:
        """Train a new network on crops of ``suite`` (see ``train_defaults`` for the recipe)
        on ``device`` (``cpu`` or ``cuda``; the features are computed on the CPU).

        Options: every key of ``train_defaults`` (``steps``, ``batch_size``, ``crop_s``, ``lr``,
        ``warmup``, ``log_every``, ``checkpoint_every``), the network sizes ``net_options``,
        ``tokenizer`` (a folder from ``gensr-bench train tokenizer``; default: the shipped
        one) and ``init`` (a checkpoint folder to start from).
        """
        from gensr_bench.runner import git_commit

        from .training import train_net

        options = dict(options or {})
        recipe_keys = {*cls.train_defaults, "log_every", "checkpoint_every"}
        allowed = {*recipe_keys, *cls.net_options, "tokenizer", "init", *cls.default_net.extra}
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise ConfigError(
                f"model {cls.name!r} has no training option {', '.join(unknown)}; "
                f"available: {', '.join(sorted(allowed))}"
            )
        recipe = {**cls.train_defaults, **{k: options[k] for k in recipe_keys if k in options}}
        sizes = {k: options[k] for k in cls.net_options if k in options}
        extra = {**cls.default_net.extra}
        extra.update({k: options[k] for k in cls.default_net.extra if k in options})
        cfg = NetConfig.from_dict({**cls.default_net.to_dict(), **sizes, "extra": extra})
        warm: dict[str, Any] = {}
        if options.get("init"):
            net, warm = cls.warm_start(Path(options["init"]), sizes)
        else:
            tokenizer_dir = Path(options.get("tokenizer") or shipped_checkpoint("tokenizer"))
            net = cls.net_class(cfg, SpectralTokenizer.load(tokenizer_dir))
        manifest = {
            "training_command": command,
            "suite": suite.name,
            "suite_options": dict(suite.options),
            "suite_fingerprint": suite.fingerprint(),
            "code": git_commit(),
            "seed": seed,
            "device": device,
            **({"init": warm} if warm else {}),
        }
        net.to(device)
        return train_net(
            net,
            cls.name,
            suite,
            out_dir,
            recipe,
            seed=seed,
            resume=resume,
            max_minutes=max_minutes,
            manifest=manifest,
            progress=progress,
        )

    @classmethod
    def warm_start(
        cls, directory: Path, sizes: Mapping[str, Any]
    ) -> tuple[FrameNet, dict[str, Any]]:
        """A network of the checkpoint's sizes and tokenizer, with every tensor of the
        checkpoint whose name and shape match copied in (the rest is freshly initialised, so
        a checkpoint of an earlier version of the network still gives a head start).

        Returns the network and a record for the manifest (folder, checkpoint sha256,
        the steps and minutes it was trained, how many tensors were copied and which not).
        """
        file = directory / MODEL_FILE
        if not file.is_file():
            raise ConfigError(f"init={directory}: no {MODEL_FILE} there")
        if sizes:
            raise ConfigError(
                f"init={directory} fixes the network sizes; drop {', '.join(sorted(sizes))}"
            )
        sha256, state, net = cls.read_checkpoint(file, f"init={directory}")
        own = net.state_dict()
        matched = {
            k: v
            for k, v in state.items()
            if k in own and own[k].shape == v.shape and not k.startswith("tokenizer.")
        }
        net.load_state_dict(matched, strict=False)
        previous = read_manifest(directory)
        record = {
            "checkpoint": str(directory),
            "sha256": sha256,
            "steps": previous.get("steps"),
            "train_minutes": previous.get("train_minutes"),
            "training_command": previous.get("training_command"),
            "tensors_copied": len(matched),
            "tensors_new": sorted(
                k for k in own if k not in matched and not k.startswith("tokenizer.")
            ),
        }
        return net, record

    # -- alignment ----------------------------------------------------------------------------
    def trainable_module(self) -> nn.Module:
        """The network DPO updates (loaded on first use, on the model's ``--device``)."""
        self.setup()
        assert self.net is not None
        return self.net

    def supervised_loss(self, batch: FrameBatch, generator: torch.Generator) -> torch.Tensor:
        """The network's training loss with ``batch.target`` as the clean frames (dropout as
        in training: call it with the module in train mode)."""
        return self.trainable_module().training_loss(batch, generator)  # type: ignore[operator]

    def save_trainable(self, directory: Path, manifest: Mapping[str, Any]) -> Path:
        """A checkpoint folder of the current network that ``--model DIR`` restores."""
        net = self.trainable_module()
        assert isinstance(net, FrameNet)
        base = {"base_checkpoint_sha256": self.checkpoint_hash()}
        self._sha256 = None
        save_checkpoint(directory, self.name, net, {**base, **manifest})
        return directory

    @staticmethod
    def pair_lengths(batch: FrameBatch, pairs: int) -> list[int]:
        """Valid frames of each pair (the longer of its chosen and rejected output) for a
        ``policy_batch`` of ``2 * pairs`` outputs (chosen ones first)."""
        if len(batch) != 2 * pairs:
            raise ValueError(f"a batch of {len(batch)} outputs cannot hold {pairs} pairs")
        lengths = batch.valid.sum(-1)
        return [int(max(lengths[i], lengths[i + pairs])) for i in range(pairs)]

    def policy_batch(self, degraded: Sequence[Audio], outputs: Sequence[Audio]) -> FrameBatch:
        """Frames of (degraded input, model output) pairs, for ``sequence_logprob`` and co."""
        self.setup()
        assert self.net is not None
        pairs = [(d.samples, o.samples) for d, o in zip(degraded, outputs, strict=True)]
        return frame_batch(pairs, self.net.tokenizer)


def filter_logits(
    logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """Logits ``[..., V]`` with everything outside the top-k and the nucleus set to -inf."""
    if top_k is not None and 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and 0 < top_p < 1:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        # Drop a token when the tokens before it already hold top_p of the mass.
        drop = (probs.cumsum(-1) - probs) >= top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return logits


def sample_tokens(
    logits: torch.Tensor,
    generator: torch.Generator,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> torch.Tensor:
    """Draw one token per position from ``logits [..., V]`` (argmax at temperature 0).

    Uses the Gumbel-max trick (the argmax of logits plus Gumbel noise is a draw from their
    softmax), in sorted order so that top-k and nucleus filtering need no scatter: several
    times faster than ``torch.multinomial`` on the ~10^5 positions of a spectrogram.
    """
    if temperature <= 0:
        return logits.argmax(-1)
    values, order = torch.sort(logits / temperature, dim=-1, descending=True)
    if top_k is not None and 0 < top_k < values.shape[-1]:
        values[..., top_k:] = float("-inf")
    if top_p is not None and 0 < top_p < 1:
        probs = torch.softmax(values, dim=-1)
        drop = (probs.cumsum(-1) - probs) >= top_p
        values = values.masked_fill(drop, float("-inf"))
    # Drawn in float32 (exact on every CPU), the Gumbel noise computed in the logits' precision.
    uniform = torch.rand(values.shape, generator=generator)  # on the CPU, moved to the logits
    uniform = uniform.to(device=values.device, dtype=values.dtype).clamp_(1e-10, 1.0)
    pick = (values - torch.log(-torch.log(uniform))).argmax(-1, keepdim=True)
    return order.gather(-1, pick)[..., 0]


#: What a token model emits per bin (sampling option ``emit``): the drawn token's value, or
#: the mean value under the distribution it was drawn from (the path stays sampled).
EMIT_CHOICES = ("sample", "mean")


def emit_mean(settings: Mapping[str, Any], model: str) -> bool:
    """Whether ``settings`` ask for ``emit=mean`` (a clear error for an unknown choice)."""
    emit = settings.get("emit", "sample")
    if emit not in EMIT_CHOICES:
        raise ConfigError(
            f"sampling option emit={emit!r} of {model!r} must be one of {', '.join(EMIT_CHOICES)}"
        )
    return emit == "mean"


def expected_values(
    logits: torch.Tensor,
    codebook: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> torch.Tensor:
    """The mean codebook value ``[...]`` under the distribution :func:`sample_tokens` draws
    from (the same temperature, top-k and nucleus); ``codebook [..., V]`` holds each
    position's values (broadcast against ``logits``). At temperature 0 the argmax token's
    value."""
    if temperature <= 0:
        book = codebook.expand_as(logits)
        return book.gather(-1, logits.argmax(-1, keepdim=True))[..., 0]
    probs = torch.softmax(filter_logits(logits / temperature, top_k, top_p), dim=-1)
    return (probs * codebook).sum(-1)


class in_precision:  # lowercase: used like torch.no_grad
    """Run a module with its floating-point parameters and buffers in ``dtype``, and convert
    them back afterwards. float32 -> float64 -> float32 is exact, and ``Module.to`` keeps the
    parameter objects, so an optimiser holding them (alignment) is unaffected."""

    def __init__(self, module: nn.Module, dtype: torch.dtype) -> None:
        self.module = module
        self.dtype = dtype
        self.previous = next(
            (p.dtype for p in module.parameters() if p.is_floating_point()), torch.float32
        )

    def __enter__(self) -> None:
        self.module.to(self.dtype)

    def __exit__(self, *exc: object) -> None:
        self.module.to(self.previous)


class eval_mode:  # lowercase: used like torch.no_grad
    """Run a module in eval mode (no dropout) and restore its previous mode afterwards."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.was_training = module.training

    def __enter__(self) -> None:
        self.module.eval()

    def __exit__(self, *exc: object) -> None:
        self.module.train(self.was_training)
