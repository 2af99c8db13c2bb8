"""The ``anyenhance`` restoration model: AnyEnhance with its published weights (user-supplied)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from gensr_bench import RestorationModel
from gensr_bench.errors import ConfigError
from gensr_bench.interfaces import item_seed
from gensr_bench.records import Audio, Restoration, Utterance
from gensr_bench.weights import WeightFile, search_dirs

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
    from .checkpoint import LoadedAnyEnhance

FOLDER = "anyenhance"
_NOTE = f"AnyEnhance ({HUB_ID} on the Hugging Face hub); supply it yourself"


class AnyEnhance(RestorationModel):
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
    #: NOT MEASURED across CPUs yet (see benchmarks/anyenhance/STATUS.md): float32 throughout; a
    #: flipped token between CPUs would move samples far more than this.
    waveform_tolerance = 1e-5
    weight_files: ClassVar[tuple[WeightFile, ...]] = tuple(
        WeightFile(f"{FOLDER}/{file}", license="see the model card", description=_NOTE)
        for file in (CONFIG_FILE, MODEL_FILE, CODEC_FILE)
    )
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
        searched = [Path(given)] if given else [directory / FOLDER for directory in search_dirs()]
        for folder in searched:
            if (folder / CONFIG_FILE).is_file():
                absent = [f for f in (MODEL_FILE, CODEC_FILE) if not (folder / f).is_file()]
                if absent:
                    raise CheckpointError(
                        f"the AnyEnhance weights folder {folder} lacks {', '.join(absent)}; "
                        + missing_files_message(folder, [folder])
                    )
                return folder
        raise CheckpointError(missing_files_message(None, searched))

    def setup(self) -> None:
        if self.loaded is None:
            from .checkpoint import load_folder

            self.loaded = load_folder(
                self.folder, semantic_model=self.options.get("semantic_model")
            )

    def checkpoint_hash(self) -> str | None:
        return self.loaded.sha256 if self.loaded is not None else None

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
        signal = torch.from_numpy(np.asarray(samples, dtype=np.float32).reshape(1, -1))
        generator = torch.Generator().manual_seed(seed)
        out = enhance(self.loaded.net, self.loaded.codec, signal, settings, generator, self.task)
        return out[0].numpy().astype(np.float32)

    def _degraded(self, utt: Utterance) -> np.ndarray:
        if utt.degraded is None:
            raise CheckpointError(f"utterance {utt.id!r} has no degraded audio")
        if utt.degraded.sample_rate != self.sample_rate:
            raise ConfigError(
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
                drawn = _draw(
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


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("0", "false", "no", "off")
    return bool(value)


def _draw(rng: Any, sampling: Mapping[str, Any]) -> dict[str, Any]:
    """A ``[low, high]`` value is drawn uniformly (integers stay integers); others are kept."""
    drawn: dict[str, Any] = {}
    for key, value in sampling.items():
        if isinstance(value, (list, tuple)):
            low, high = value
            if isinstance(low, int) and isinstance(high, int):
                drawn[key] = rng.randint(low, high)
            else:
                drawn[key] = round(rng.uniform(float(low), float(high)), 3)
        else:
            drawn[key] = value
    return drawn


__all__ = ["TASKS", "AnyEnhance"]
