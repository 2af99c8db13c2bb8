"""Make the AnyEnhance parity fixture by running Amphion's reference on tiny random configurations.

What it runs (the reference, unmodified, from a local checkout that is never committed here):

- Amphion ``models/se/anyenhance/`` at commit ``3275ad9bb289566dc0038f09fbb60d6af2b6dd88``
  (2025-01-15, "clean coments"; github.com/open-mmlab/Amphion, MIT): ``anyenhance_model.py``,
  ``modules/anyenhance_modules.py``, ``modules/attend.py`` and ``infer_anyenhance.py``'s
  ``process_single_audio`` (the windowing and cross-fade);
- ``descript-audio-codec`` 1.0.0's model code (``dac.model.dac``, ``dac.nn``), the codec the
  reference's ``infer_anyenhance.py`` loads with ``dac.DAC.load``;
- ``memory-efficient-attention-pytorch`` 0.1.6 (the attention the reference uses on a CPU).

``torchaudio.transforms.Resample`` (44.1 -> 16 kHz before w2v-BERT) runs torchaudio 2.3.1's own
kernel functions, read from its wheel, since torchaudio cannot be imported beside the CPU torch;
w2v-BERT 2.0 is a tiny random ``Wav2Vec2BertModel`` (transformers, the installed version).
Modules the reference imports but inference never uses (torchvision, audiotools) are replaced by
empty stand-ins, and ``dac/__init__`` (which pulls audiotools and argbind) is
skipped by importing its submodules directly. The DAC weights are written in the layout
``DAC.load`` reads (``{"state_dict", "metadata": {"kwargs"}}``); the AnyEnhance weights the way
the reference saves them (``AnyEnhance.state_dict()``: no ``vq_model.*`` keys), once with the
``module.`` prefix of a DataParallel checkpoint.

Usage (a throwaway folder holds the reference; nothing of it is committed)::

    git -C <amphion mirror> show 3275ad9:models/se/anyenhance/...   # into /work/ae-ref
    pip download --no-deps descript-audio-codec==1.0.0 memory-efficient-attention-pytorch==0.1.6
    pip install --target <site> einops beartype json5 tqdm packaging
    pip download --no-deps torchaudio==2.3.1    # only its resampler's source is read
    PYTHONPATH=/work/ae-ref:<site> python benchmarks/anyenhance/make_fixture.py \
        --out tests/fixtures/anyenhance --torchaudio-wheel torchaudio-2.3.1-*.whl
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import sys
import types
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

AMPHION_COMMIT = "3275ad9bb289566dc0038f09fbb60d6af2b6dd88"

DAC_KWARGS = {
    "encoder_dim": 4,
    "encoder_rates": [2, 4, 8, 8],
    "latent_dim": 16,
    "decoder_dim": 16,
    "decoder_rates": [8, 8, 4, 2],
    "n_codebooks": 3,
    "codebook_size": 16,
    "codebook_dim": 4,
    "sample_rate": 44100,
}


def tiny_config(
    *, rotary: bool, self_cond: bool, critic: bool, critic_v2: bool, semantic: bool = False
) -> dict:
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
                "use_noisy_audio_embed": semantic,
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
    "semantic": (
        tiny_config(rotary=False, self_cond=True, critic=True, critic_v2=True, semantic=True),
        1,
        4,
        False,
    ),
    "no_critic": (
        tiny_config(rotary=False, self_cond=False, critic=False, critic_v2=False),
        1,
        6,
        False,
    ),
}


def torchaudio_resample(wheel: Path) -> type[nn.Module]:
    """``torchaudio.transforms.Resample`` (sinc_interp_hann, defaults) on torchaudio's own kernel
    functions, read from its wheel (its package cannot be imported beside the CPU torch)."""
    import ast
    import math
    import warnings
    import zipfile
    from typing import Optional

    source = zipfile.ZipFile(wheel).read("torchaudio/functional/functional.py").decode()
    tree = ast.parse(source)
    wanted = {"_get_sinc_resample_kernel", "_apply_sinc_resample_kernel"}
    functions: list[ast.stmt] = [
        n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in wanted
    ]
    namespace: dict[str, Any] = {
        "torch": torch,
        "math": math,
        "warnings": warnings,
        "Optional": Optional,
        "Tensor": torch.Tensor,
        "_CPU": torch.device("cpu"),
    }
    exec(compile(ast.Module(body=functions, type_ignores=[]), str(wheel), "exec"), namespace)
    get_kernel = namespace["_get_sinc_resample_kernel"]
    apply_kernel = namespace["_apply_sinc_resample_kernel"]

    class Resample(nn.Module):
        def __init__(self, orig_freq: int = 16000, new_freq: int = 16000) -> None:
            super().__init__()
            self.orig_freq, self.new_freq = orig_freq, new_freq
            self.gcd = math.gcd(int(orig_freq), int(new_freq))
            kernel, self.width = get_kernel(
                orig_freq, new_freq, self.gcd, 6, 0.99, "sinc_interp_hann", None
            )
            self.register_buffer("kernel", kernel, persistent=False)

        def forward(self, waveform: torch.Tensor) -> torch.Tensor:
            if self.orig_freq == self.new_freq:
                return waveform
            return apply_kernel(
                waveform, self.orig_freq, self.new_freq, self.gcd, self.kernel, self.width
            )

    return Resample


def tiny_w2v_bert(folder: Path) -> None:
    """A random w2v-BERT 2.0 small enough for a fixture: 17 layers (the reference reads
    hidden state 17) of width 8, and the default SeamlessM4T feature extractor."""
    from transformers import SeamlessM4TFeatureExtractor, Wav2Vec2BertConfig, Wav2Vec2BertModel

    torch.manual_seed(17)
    config = Wav2Vec2BertConfig(
        hidden_size=8,
        num_hidden_layers=17,
        num_attention_heads=2,
        intermediate_size=16,
        output_hidden_size=8,
        conv_depthwise_kernel_size=3,
        add_adapter=False,
        left_max_position_embeddings=8,
        right_max_position_embeddings=2,
        vocab_size=4,
    )
    Wav2Vec2BertModel(config).eval().save_pretrained(folder)
    SeamlessM4TFeatureExtractor().save_pretrained(folder)


def install_stand_ins(torchaudio_wheel: Path) -> None:
    """Stand-ins for what the reference imports: torchaudio's resampler (its own code), empty
    modules for what inference never calls."""
    for name in ("torchaudio", "torchaudio.transforms", "torchvision", "torchvision.transforms"):
        sys.modules[name] = types.ModuleType(name)
    sys.modules["torchaudio"].transforms = sys.modules["torchaudio.transforms"]  # type: ignore[attr-defined]
    sys.modules["torchaudio.transforms"].Resample = torchaudio_resample(torchaudio_wheel)  # type: ignore[attr-defined]
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
    parser.add_argument(
        "--torchaudio-wheel",
        type=Path,
        required=True,
        help="a torchaudio wheel (2.3.1 as the reference pins), for its resampler's code",
    )
    args = parser.parse_args()
    out: Path = args.out
    # transformers first, while it can still see that torchvision and torchaudio are absent
    tiny_w2v_bert(out / "w2v-bert-2.0")
    from transformers import AutoFeatureExtractor, AutoModel

    AutoModel.from_pretrained(out / "w2v-bert-2.0")
    AutoFeatureExtractor.from_pretrained(out / "w2v-bert-2.0")
    install_stand_ins(args.torchaudio_wheel)

    from dac.model.dac import DAC
    from models.se.anyenhance.anyenhance_model import AnyEnhance, AudioEncoder_v2
    from models.se.anyenhance.infer_anyenhance import process_single_audio
    from models.se.anyenhance.modules import encoder_loss
    from models.se.anyenhance.modules.anyenhance_modules import MaskGitTransformer

    (out / "dac").mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(1234)
    # the reference reads w2v-BERT from <pretrained_path>/w2v-bert-2.0
    encoder_loss.pretrained_path = str(out)

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

    # the resampler the semantic embedding runs first (torchaudio's, as the reference calls it)
    resampler = sys.modules["torchaudio.transforms"].Resample(orig_freq=44100, new_freq=16000)
    expected["resample"] = {"input": long_input, "output": resampler(long_input[None])[0]}

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
        if encoder.use_noisy_audio_embed:
            # load w2v-BERT now: loading it lazily inside the first window would draw from the
            # global RNG after the seed was set
            encoder.init_noisy_embed_provider(device="cpu")
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
