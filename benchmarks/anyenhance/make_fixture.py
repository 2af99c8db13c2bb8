"""Make the AnyEnhance parity fixture by running Amphion's reference on tiny random configurations.

What it runs (the reference, unmodified, from a local checkout that is never committed here):

- Amphion ``models/se/anyenhance/`` at commit ``3275ad9bb289566dc0038f09fbb60d6af2b6dd88``
  (2025-01-15, "clean coments"; github.com/open-mmlab/Amphion, MIT): ``anyenhance_model.py``,
  ``modules/anyenhance_modules.py``, ``modules/attend.py`` and ``infer_anyenhance.py``'s
  ``process_single_audio`` (the windowing and cross-fade);
- ``descript-audio-codec`` 1.0.0's model code (``dac.model.dac``, ``dac.nn``), the codec the
  reference's ``infer_anyenhance.py`` loads with ``dac.DAC.load``;
- ``memory-efficient-attention-pytorch`` 0.1.6 (the attention the reference uses on a CPU).

Modules the reference imports but inference never uses (torchaudio, torchvision, audiotools)
are replaced by empty stand-ins, and ``dac/__init__`` (which pulls audiotools and argbind) is
skipped by importing its submodules directly. The DAC weights are written in the layout
``DAC.load`` reads (``{"state_dict", "metadata": {"kwargs"}}``); the AnyEnhance weights the way
the reference saves them (``AnyEnhance.state_dict()``: no ``vq_model.*`` keys), once with the
``module.`` prefix of a DataParallel checkpoint.

Usage (a throwaway folder holds the reference; nothing of it is committed)::

    git -C <amphion mirror> show 3275ad9:models/se/anyenhance/...   # into /work/ae-ref
    pip download --no-deps descript-audio-codec==1.0.0 memory-efficient-attention-pytorch==0.1.6
    pip install --target <site> einops beartype json5 tqdm packaging
    PYTHONPATH=/work/ae-ref:<site> python benchmarks/anyenhance/make_fixture.py \
        --out tests/fixtures/anyenhance
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import sys
import types
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

AMPHION_COMMIT = "3275ad9bb289566dc0038f09fbb60d6af2b6dd88"

DAC_KWARGS = {
    "encoder_dim": 4,
    "encoder_rates": [2, 4, 8, 8],
    "latent_dim": 16,
    "decoder_dim": 32,
    "decoder_rates": [8, 8, 4, 2],
    "n_codebooks": 3,
    "codebook_size": 16,
    "codebook_dim": 4,
    "sample_rate": 44100,
}


def tiny_config(*, rotary: bool, self_cond: bool, critic: bool, critic_v2: bool) -> dict:
    """A configuration in the published JSON layout (``model`` -> three sections)."""
    dim, seq_len, prompt_len, layers, tokens = 16, 6, 2, 3, 16
    return {
        "model": {
            "MaskGitTransformer": {
                "num_tokens": tokens,
                "seq_len": seq_len + prompt_len,
                "dim": dim,
                "depth": 2,
                "dim_head": 8,
                "heads": 2,
                "ff_mult": 2,
                "vq_layers": layers,
                "self_cond": self_cond,
                "use_rotary_pos_enc": rotary,
            },
            "AudioEncoder": {
                "dim": dim,
                "seq_len": seq_len + prompt_len,
                "input_dim": 513,
                "n_fft": 1024,
                "hop_length": 512,
                "win_length": 1024,
                "mlp_layers": [8, dim],
                "transformer_layers": 1,
                "transformer_dim": dim,
                "transformer_heads": 2,
                "transformer_ff_mult": 2,
                "transformer_dim_head": 8,
                "use_rotary_pos_enc": rotary,
                "num_transformer_paths": 2,
                "use_noisy_audio_embed": False,
            },
            "AnyEnhance": {
                "seq_len": seq_len,
                "prompt_len": prompt_len,
                "vq_layers": layers,
                "task_num": 2,
                "self_critic": critic,
                "critic_v2": critic_v2,
            },
        }
    }


# name -> (config, cond_scale, timesteps, DataParallel prefix)
CASES = {
    "critic_v2": (
        tiny_config(rotary=False, self_cond=True, critic=True, critic_v2=True),
        1,
        20,
        False,
    ),
    "critic_v1_rotary_cfg": (
        tiny_config(rotary=True, self_cond=False, critic=True, critic_v2=False),
        2.0,
        8,
        True,
    ),
    "no_critic": (
        tiny_config(rotary=False, self_cond=False, critic=False, critic_v2=False),
        1,
        6,
        False,
    ),
}


def install_stand_ins() -> None:
    """Empty modules for what the reference imports but inference never calls."""
    for name in ("torchaudio", "torchaudio.transforms", "torchvision", "torchvision.transforms"):
        sys.modules[name] = types.ModuleType(name)
    sys.modules["torchvision"].transforms = sys.modules["torchvision.transforms"]  # type: ignore[attr-defined]
    audiotools = types.ModuleType("audiotools")
    ml = types.ModuleType("audiotools.ml")

    class BaseModel(nn.Module):
        INTERN: ClassVar[list[str]] = []
        EXTERN: ClassVar[list[str]] = []

    ml.BaseModel = BaseModel  # type: ignore[attr-defined]
    audiotools.ml = ml  # type: ignore[attr-defined]
    audiotools.AudioSignal = object  # type: ignore[attr-defined]
    audiotools.STFTParams = object  # type: ignore[attr-defined]
    sys.modules["audiotools"] = audiotools
    sys.modules["audiotools.ml"] = ml
    # import dac.model / dac.nn without dac/__init__ (it needs audiotools' real ml and argbind)
    spec = importlib.util.find_spec("dac")
    if spec is None or spec.submodule_search_locations is None:
        raise SystemExit("descript-audio-codec (the dac package) is not on PYTHONPATH")
    package = types.ModuleType("dac")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["dac"] = package


def randomise(module: nn.Module, generator: torch.Generator, skip: str = "vq_model.") -> None:
    """Move parameters and batch-norm statistics off their initial values (all are tested).

    ``skip``: a prefix left alone (the codec inside AnyEnhance, saved and randomised once).
    """
    with torch.no_grad():
        for name, param in module.named_parameters():
            if name.startswith(skip):
                continue
            if "alpha" in name:
                param.uniform_(0.5, 1.5, generator=generator)
            elif name.endswith("_scale") or "gamma" in name:
                param.add_(0.2 * torch.randn(param.shape, generator=generator))
        for name, buf in module.named_buffers():
            if name.startswith(skip):
                continue
            if name.endswith("running_mean"):
                buf.copy_(0.3 * torch.randn(buf.shape, generator=generator))
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 2.0, generator=generator)
            elif name.endswith(".beta"):
                buf.copy_(0.1 * torch.randn(buf.shape, generator=generator))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    install_stand_ins()

    from dac.model.dac import DAC
    from models.se.anyenhance.anyenhance_model import AnyEnhance, AudioEncoder_v2
    from models.se.anyenhance.infer_anyenhance import process_single_audio
    from models.se.anyenhance.modules.anyenhance_modules import MaskGitTransformer

    out: Path = args.out
    (out / "dac").mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(1234)

    torch.manual_seed(0)
    dac = DAC(**DAC_KWARGS).eval()
    randomise(dac, generator)
    torch.save(
        {"state_dict": dac.state_dict(), "metadata": {"kwargs": DAC_KWARGS}},
        out / "dac" / "weights.pth",
    )

    # inputs: one longer than a window (three windows, the last aligned to the end), one shorter
    t = torch.arange(10000) / 44100
    long_input = 0.3 * torch.sin(2 * torch.pi * 440 * t) + 0.05 * torch.randn(
        10000, generator=generator
    )
    short_input = 0.2 * torch.randn(3000, generator=generator)
    expected: dict = {
        "amphion_commit": AMPHION_COMMIT,
        "inputs": {"long": long_input, "short": short_input},
        "cases": {},
    }

    # the codec alone: encode (preprocess pads to a multiple of the hop) and decode
    with torch.no_grad():
        codec_in = long_input[None, None, :5000]
        z, codes, *_ = dac.encode(dac.preprocess(codec_in, 44100))
        z_q, _, _ = dac.quantizer.from_codes(codes)
        expected["dac"] = {"input": codec_in, "codes": codes, "z": z, "decoded": dac.decode(z_q)}

    for index, (case, (config, cond_scale, timesteps, prefixed)) in enumerate(CASES.items()):
        torch.manual_seed(100 + index)
        section = copy.deepcopy(config["model"])
        transformer = MaskGitTransformer(**section["MaskGitTransformer"])
        encoder = AudioEncoder_v2(**section["AudioEncoder"])
        model = AnyEnhance(
            vq_model=dac, transformer=transformer, audio_encoder=encoder, **section["AnyEnhance"]
        )
        randomise(model, generator)
        model.eval()
        state = model.state_dict()
        if prefixed:
            state = {f"module.{key}": value for key, value in state.items()}
        folder = out / case
        folder.mkdir(exist_ok=True)
        torch.save(state, folder / "model.pt")
        (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")

        windows: list[torch.Tensor] = []
        generate = model.generate

        def recording(*a, _generate=generate, _windows=windows, **k):
            ids, audio = _generate(*a, **k)
            _windows.append(ids[0].clone())
            return ids, audio

        model.generate = recording
        results = {}
        for key, signal in expected["inputs"].items():
            windows.clear()
            torch.manual_seed(7)
            window = 512 * (model.seq_len + model.prompt_len)
            enhanced = process_single_audio(
                model,
                signal[None, :],
                "cpu",
                "enhancement",
                window_size=window,
                overlap=1024,
                timesteps=timesteps,
                cond_scale=cond_scale,
            )
            results[key] = {"tokens": torch.stack(windows), "audio": enhanced[0].clone()}
        expected["cases"][case] = {
            "seed": 7,
            "timesteps": timesteps,
            "cond_scale": cond_scale,
            "results": results,
        }
        print(case, {k: tuple(v["tokens"].shape) for k, v in results.items()})
    torch.save(expected, out / "expected.pt")


if __name__ == "__main__":
    main()
