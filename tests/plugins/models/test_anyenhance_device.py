"""AnyEnhance on ``--device``: no CPU tensor is made inside its inference or DPO paths.

There is no GPU here. These tests run the paths on torch's ``meta`` device, where a CPU tensor
mixed into a computation raises ("Tensor on device cpu is not on the expected device meta"):
shapes flow, values do not. Covered on ``meta``: the windowed decoding and synthesis
(``enhance``: the audio encoder's STFT, the rotary and sinusoidal positions, the transformer,
the token critic, classifier-free guidance, the moved random draws, the cross-fade), the codec's
encode and decode, the resampler, a model loaded by ``setup`` on its ``device``, DPO's window
batches and the log-probability of a batch made on another device than the network's.

Not covered on ``meta`` (data-dependent, or NumPy): drawing DPO's masks (``windows_of`` and the
valid-token counts read values; they are drawn on the CPU and moved, tested on the CPU), the
w2v-BERT embedding (its feature extractor takes NumPy arrays: the audio is copied to the CPU,
the features moved to the model's device) and ``restore_samples``'s final copy to NumPy. The
CUDA path itself has not been run on a GPU here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from gensr_bench.devices import place
from gensr_bench_plugins.models.anyenhance import AnyEnhance, AnyEnhanceDPO
from gensr_bench_plugins.models.anyenhance.checkpoint import LoadedAnyEnhance, load_folder
from gensr_bench_plugins.models.anyenhance.codec import load_codec
from gensr_bench_plugins.models.anyenhance.policy import (
    alignment_masks,
    sequence_logprob,
    window_batch,
)
from gensr_bench_plugins.models.anyenhance.sampling import crossfade, enhance
from gensr_bench_plugins.models.anyenhance.semantic import resample
from gensr_bench_plugins.models.anyenhance.settings import DecodeSettings
from gensr_bench_plugins.models.anyenhance.testing import noise_audio, published_layout

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "anyenhance"
META = torch.device("meta")
RATE = 44100


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _folder(tmp_path: Path, case: str = "critic_v2") -> Path:
    return published_layout(FIXTURE, tmp_path / "weights" / "anyenhance", case)


def test_the_models_declare_a_device_and_place_sets_it(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    model = AnyEnhance(checkpoint=str(folder))
    aligned = AnyEnhanceDPO(checkpoint=str(folder))
    assert AnyEnhance.supports_device and AnyEnhanceDPO.supports_device
    assert place([model, aligned], "cpu") == {"anyenhance": "cpu", "anyenhance-dpo": "cpu"}
    model.setup()
    assert model.loaded is not None
    assert next(model.loaded.net.parameters()).device.type == "cpu"
    assert next(model.trainable_module().parameters()).device.type == "cpu"


@pytest.mark.parametrize("case", ["critic_v2", "critic_v1_rotary_cfg", "no_critic"])
def test_decoding_and_synthesis_keep_every_tensor_on_the_signals_device(case: str) -> None:
    """``enhance`` on ``meta``: two windows (the last padded and cross-faded), each decoded
    with the critic (v1 or v2) or without, rotary or sinusoidal positions, guidance or not."""
    loaded = load_folder(FIXTURE, f"{case}/config.json", f"{case}/model.pt", device=META)
    assert next(loaded.net.parameters()).device == META
    assert next(loaded.codec.parameters()).device == META
    settings = DecodeSettings(timesteps=3, cond_scale=2.0 if "cfg" in case else 1.0)
    window = loaded.codec.hop_length * loaded.net.cfg.window_tokens
    signal = torch.zeros(1, window + 1000, device=META)
    windows: list[torch.Tensor] = []
    generator = torch.Generator().manual_seed(0)
    out = enhance(loaded.net, loaded.codec, signal, settings, generator, windows=windows)
    assert out.device == META and tuple(out.shape) == (1, window + 1000)
    assert len(windows) == 2 and all(tokens.device == META for tokens in windows)
    assert crossfade([], 1024, META).device == META


def test_the_codec_and_the_resampler_run_on_the_inputs_device(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Convolutions on ``meta`` do not check their weight's device: a checking ``conv1d``
    stands in, so the resampler's filter (computed on the CPU) must have been moved."""
    conv1d = torch.nn.functional.conv1d

    def checked(x: torch.Tensor, weight: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        assert weight.device == x.device, f"weight on {weight.device}, input on {x.device}"
        return conv1d(x, weight, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "conv1d", checked)
    codec = load_codec(FIXTURE / "dac" / "weights.pth").to(META)
    audio = torch.zeros(2, 1, 3000, device=META)
    codes = codec.encode(audio)
    assert codes.device == META and codes.dtype == torch.long
    decoded = codec.decode(codes)
    assert decoded.device == META and decoded.shape[-1] == codes.shape[-1] * codec.hop_length
    resampled = resample(audio, RATE, 16000)
    assert resampled.device == META and resampled.shape[-1] == -(-3000 * 16000 // RATE)


def test_setup_loads_on_the_models_device_and_dpo_batches_follow_the_network(
    tmp_path: Path,
) -> None:
    """A model placed on ``meta`` loads its network and codec there; its DPO batches are made
    there; a batch made on the CPU is scored by a network on ``meta`` (inputs follow it)."""
    folder = _folder(tmp_path)
    degraded = [noise_audio(0.15, 0), noise_audio(0.12, 1)]
    outputs = [noise_audio(0.15, 2), noise_audio(0.12, 3)]

    model = AnyEnhance(checkpoint=str(folder))
    model.device = "meta"
    net = model.trainable_module()
    assert next(net.parameters()).device == META
    assert model.loaded is not None and next(model.loaded.codec.parameters()).device == META
    batch = model.policy_batch(degraded, outputs)
    for name in ("audio", "codes", "valid", "owner"):
        assert getattr(batch, name).device == META, name
    everything = torch.ones(batch.codes.shape, dtype=torch.bool)  # a CPU mask, moved
    logprob = model.sequence_logprob(batch, everything)
    assert logprob.device == META and tuple(logprob.shape) == (2,)

    cpu = load_folder(folder)
    cpu_batch = window_batch(cpu, degraded, outputs)
    mask = alignment_masks(cpu_batch, [torch.Generator().manual_seed(0)])
    assert mask.device.type == "cpu" and mask.any()
    on_meta = LoadedAnyEnhance(cpu.net.to(META), cpu.codec, cpu.sha256)
    scored = sequence_logprob(on_meta.net, cpu_batch, mask)
    assert scored.device == META and tuple(scored.shape) == (2,)


def test_the_w2v_bert_model_is_moved_with_the_network() -> None:
    """The semantic embedder is no ``nn.Module`` (``net.to`` would leave it): ``load_folder``
    moves it too. Its forward pass is not run on ``meta`` (its extractor takes NumPy)."""
    loaded = load_folder(FIXTURE, "semantic/config.json", "semantic/model.pt", device=META)
    semantic = loaded.net.audio_encoder.semantic
    assert semantic is not None
    assert semantic.device == META
    assert next(loaded.net.parameters()).device == META
