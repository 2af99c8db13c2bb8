"""The ``anyenhance`` restoration model: AnyEnhance with its published weights (user-supplied)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from gensr_bench import AlignablePolicy, RestorationModel
from gensr_bench.errors import AudioValidationError, ConfigError
from gensr_bench.interfaces import item_seed
from gensr_bench.records import Audio, Restoration, Utterance
from gensr_bench.weights import WeightFile, search_dirs
from gensr_bench_plugins.common.sampling import draw_settings

from .layout import (
    CODEC_FILE,
    CONFIG_FILE,
    HUB_ID,
    MODEL_FILE,
    CheckpointError,
    missing_files_message,
)
from .settings import TASKS, DecodeSettings

if TYPE_CHECKING:
    import torch

    from .checkpoint import LoadedAnyEnhance
    from .policy import WindowBatch

_NOTE = f"AnyEnhance ({HUB_ID} on the Hugging Face hub); supply it yourself"


def _weight_files(folder: str, note: str) -> tuple[WeightFile, ...]:
    return tuple(
        WeightFile(f"{folder}/{file}", license="see the model card", description=note)
        for file in (CONFIG_FILE, MODEL_FILE, CODEC_FILE)
    )


class AnyEnhance(RestorationModel, AlignablePolicy):
    """AnyEnhance (Amphion): masked generative restoration over 44.1 kHz DAC tokens.

    Reads its weights from ``<weights>/anyenhance/`` (the hub folder ``amphion/anyenhance``) or
    the folder of option ``checkpoint``. Options: ``timesteps`` (20), ``cond_scale`` (1),
    ``temperature`` (1.0), ``topk_filter_thres`` (0.9), ``token_critic`` (true: use the
    checkpoint's critic when it has one), ``task`` (enhancement), ``semantic_model`` (w2v-BERT
    2.0, for a configuration with ``use_noisy_audio_embed`` as the published one; default
    ``<folder>/w2v-bert-2.0``). Audio is processed in windows of ``512 x (seq_len +
    prompt_len)`` samples cross-faded over 1024 samples.
    """

    name = "anyenhance"
    paradigm = "mgm"
    sample_rate = 44100
    #: Not declared: not measured across CPUs yet (benchmarks/anyenhance/STATUS.md). It samples
    #: in float32 throughout, where one token drawn differently moves samples far more than a
    #: rounding step; ``check`` then says "not declared" instead of quoting an unmeasured bound.
    waveform_tolerance = None
    #: Runs on ``--device``: the network, codec and w2v-BERT are loaded there, each window is
    #: decoded there, and the random numbers are drawn on the CPU and moved (the same draws on
    #: every device; a GPU's float32 kernels may still round differently, and one score that
    #: flips moves a token). DPO (``align``) trains the network where it was loaded. The CUDA
    #: path is checked on torch's ``meta`` device only: no GPU has run it here.
    supports_device = True
    weight_files: ClassVar[tuple[WeightFile, ...]] = _weight_files("anyenhance", _NOTE)
    accepted_options = (
        "checkpoint",
        "timesteps",
        "cond_scale",
        "temperature",
        "topk_filter_thres",
        "token_critic",
        "task",
        "semantic_model",
    )
    #: Candidate settings for ``sample`` (the paper's sampling variation for MGM): a
    #: ``[low, high]`` range is drawn per candidate.
    candidate_sampling: ClassVar[Mapping[str, Any]] = {"timesteps": [10, 40], "temperature": 1.0}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        task = str(options.get("task", "enhancement"))
        if task != "enhancement":
            raise ConfigError(
                f"model {self.name!r} supports task 'enhancement' here (got {task!r}); "
                f"'extraction' needs a prompt recording, which gensr-bench does not pass yet"
            )
        self.task = task
        self.settings = DecodeSettings(
            timesteps=int(options.get("timesteps", 20)),
            cond_scale=float(options.get("cond_scale", 1.0)),
            temperature=float(options.get("temperature", 1.0)),
            topk_filter_thres=float(options.get("topk_filter_thres", 0.9)),
            use_token_critic=_flag(options.get("token_critic", True)),
        )
        self.loaded: LoadedAnyEnhance | None = None
        self._trainable = False
        self._sha256: str | None = None
        # Missing weights are a usage error, found before a run starts (the CLI exits 1 with
        # the message); a failure in ``setup`` would only mark every output as failed.
        self.folder = self.weights_folder()

    def config(self) -> dict[str, Any]:
        return {**super().config(), "settings": asdict(self.settings), "task": self.task}

    # -- weights -----------------------------------------------------------------------------
    def weights_folder(self) -> Path:
        """The folder of option ``checkpoint``, else the first ``<weights>/anyenhance`` found;
        raises CheckpointError naming the files, the hub id and the fix when files are missing."""
        given = self.options.get("checkpoint")
        searched = (
            [Path(given)] if given else [directory / self.name for directory in search_dirs()]
        )
        for folder in searched:
            if (folder / CONFIG_FILE).is_file():
                absent = [f for f in (MODEL_FILE, CODEC_FILE) if not (folder / f).is_file()]
                if absent:
                    raise CheckpointError(
                        f"the AnyEnhance weights folder {folder} lacks {', '.join(absent)}; "
                        + missing_files_message(folder, [folder], self.name)
                    )
                return folder
        raise CheckpointError(missing_files_message(None, searched, self.name))

    def setup(self) -> None:
        if self.loaded is None:
            from .checkpoint import load_folder

            self.loaded = load_folder(
                self.folder,
                semantic_model=self.options.get("semantic_model"),
                device=self.device,  # set by the runner before setup (devices.place)
            )

    def checkpoint_hash(self) -> str | None:
        """sha256 over the config, network and codec files (computed once, loaded or not)."""
        if self.loaded is not None:
            return self.loaded.sha256
        if self._sha256 is None:
            from .checkpoint import file_sha256

            files = (CONFIG_FILE, MODEL_FILE, CODEC_FILE)
            self._sha256 = file_sha256([self.folder / name for name in files])
        return self._sha256

    # -- alignment (policy.py) ---------------------------------------------------------------
    def _loaded(self) -> LoadedAnyEnhance:
        self.setup()
        assert self.loaded is not None
        return self.loaded

    def trainable_module(self) -> torch.nn.Module:
        """The network DPO updates, on the model's device; the codec and w2v-BERT stay
        frozen, outside it.

        Loading freezes it for inference; the first call makes its parameters trainable (a
        caller may freeze them again, as the DPO trainer does for its reference copy).
        """
        net = self._loaded().net
        if not self._trainable:
            net.requires_grad_(True)
            self._trainable = True
        return net

    def policy_batch(self, degraded: Sequence[Audio], outputs: Sequence[Audio]) -> WindowBatch:
        """Whole windows of each (degraded input, output) pair and the output's codes."""
        from .policy import window_batch

        return window_batch(self._loaded(), degraded, outputs)

    def alignment_inputs(
        self, batch: WindowBatch, generators: Sequence[torch.Generator]
    ) -> tuple[torch.Tensor]:
        """``(mask,)``: a training-schedule mask per window of each pair element."""
        from .policy import alignment_masks

        return (alignment_masks(batch, generators),)

    def sequence_logprob(self, batch: WindowBatch, positions: torch.Tensor) -> torch.Tensor:
        """Summed log-probability ``[B]`` of each output's codes at the masked ``positions``."""
        from .policy import sequence_logprob

        return sequence_logprob(self._loaded().net, batch, positions)

    def supervised_loss(self, batch: WindowBatch, generator: torch.Generator) -> torch.Tensor:
        from .policy import supervised_loss

        return supervised_loss(self._loaded().net, batch, generator)

    def save_trainable(self, directory: Path, manifest: Mapping[str, Any]) -> Path:
        """The published folder layout with the current network and ``manifest.json``, which
        ``--model DIR`` and option ``checkpoint`` restore from."""
        from .policy import save_folder

        record = {
            **dict(manifest),
            "model": self.name,
            "base_checkpoint_sha256": self.checkpoint_hash(),
        }
        return save_folder(self._loaded(), self.folder, Path(directory), record)

    # -- restoration -------------------------------------------------------------------------
    def restore_samples(
        self, samples: np.ndarray, seed: int, settings: DecodeSettings | None = None
    ) -> np.ndarray:
        """One restoration of mono ``samples`` at 44.1 kHz, deterministic for ``seed``."""
        import torch

        from .sampling import enhance

        self.setup()
        assert self.loaded is not None
        settings = settings or self.settings
        if self.loaded.net.token_critic is None:
            settings = replace(settings, use_token_critic=False)
        device = next(self.loaded.net.parameters()).device
        signal = torch.from_numpy(np.asarray(samples, dtype=np.float32).reshape(1, -1))
        # the generator stays on the CPU (draws are moved): the same samples on every device
        generator = torch.Generator().manual_seed(seed)
        out = enhance(
            self.loaded.net, self.loaded.codec, signal.to(device), settings, generator, self.task
        )
        return out[0].cpu().numpy().astype(np.float32)

    def _degraded(self, utt: Utterance) -> np.ndarray:
        if utt.degraded is None:
            raise AudioValidationError(
                f"utterance {utt.id!r} has no degraded audio"
                + (f" ({utt.error})" if utt.error else "")
            )
        if utt.degraded.sample_rate != self.sample_rate:
            raise AudioValidationError(
                f"degraded audio of utterance {utt.id!r} is at {utt.degraded.sample_rate} Hz; "
                f"model {self.name!r} runs at {self.sample_rate} Hz (the runner resamples suites)"
            )
        samples = np.asarray(utt.degraded.samples, dtype=np.float32)
        return samples.mean(axis=0) if samples.ndim > 1 else samples

    def restore(self, batch: Sequence[Utterance], seed: int) -> list[Restoration]:
        out = []
        for utt in batch:
            samples = self.restore_samples(self._degraded(utt), item_seed(seed, utt.id))
            out.append(Restoration(utt.id, Audio(samples, self.sample_rate), self.name, seed))
        return out

    def sample(
        self,
        batch: Sequence[Utterance],
        n: int,
        seed: int,
        sampling: Mapping[str, Any] | None = None,
    ) -> list[list[Restoration]]:
        """``n`` candidates per utterance, each with its own seed and drawn settings."""
        import random

        out: list[list[Restoration]] = []
        for utt in batch:
            samples = self._degraded(utt)
            candidates = []
            for k in range(n):
                cand_seed = item_seed(seed + k, utt.id)
                drawn = draw_settings(
                    random.Random(cand_seed), {**self.candidate_sampling, **(sampling or {})}
                )
                settings = replace(
                    self.settings,
                    timesteps=int(drawn.get("timesteps", self.settings.timesteps)),
                    temperature=float(drawn.get("temperature", self.settings.temperature)),
                    cond_scale=float(drawn.get("cond_scale", self.settings.cond_scale)),
                )
                audio = self.restore_samples(samples, cand_seed, settings)
                candidates.append(
                    Restoration(
                        utt.id,
                        Audio(audio, self.sample_rate),
                        self.name,
                        seed + k,
                        meta={"sampling": {k2: v for k2, v in asdict(settings).items()}},
                    )
                )
            out.append(candidates)
        return out


class AnyEnhanceDPO(AnyEnhance):
    """AnyEnhance after multi-metric DPO on its own candidates (weights: `gensr-bench align`).

    Reads ``<weights>/anyenhance-dpo/``, the folder ``gensr-bench align --model anyenhance``
    writes (the published layout plus ``manifest.json``), or option ``checkpoint``. No aligned
    weights ship: the base model's are not redistributable here. Options as ``anyenhance``.
    """

    name = "anyenhance-dpo"
    weight_files: ClassVar[tuple[WeightFile, ...]] = _weight_files(
        "anyenhance-dpo", "AnyEnhance aligned by `gensr-bench align`; supply it yourself"
    )


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("0", "false", "no", "off")
    return bool(value)


__all__ = ["TASKS", "AnyEnhance", "AnyEnhanceDPO"]
