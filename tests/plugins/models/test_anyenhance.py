"""AnyEnhance: parity with Amphion's reference on tiny random configurations, and the plugin.

The fixture (tests/fixtures/anyenhance, made by benchmarks/anyenhance/make_fixture.py from
Amphion commit 3275ad9) holds the reference's outputs for four configurations: token critic v2
with self-conditioning and sinusoidal positions; critic v1 with rotary positions and
classifier-free guidance (cond_scale 2, a DataParallel ``module.`` checkpoint); the w2v-BERT
noisy-audio embedding (a tiny random w2v-BERT); no critic.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from gensr_bench.errors import ConfigError, GensrError, UnknownOptionError
from gensr_bench.interfaces import item_seed
from gensr_bench.records import Audio, Utterance
from gensr_bench_plugins.models.anyenhance import AnyEnhance
from gensr_bench_plugins.models.anyenhance.checkpoint import load_folder
from gensr_bench_plugins.models.anyenhance.codec import load_codec
from gensr_bench_plugins.models.anyenhance.layout import (
    CODEC_FILE,
    CONFIG_FILE,
    HUB_ID,
    MODEL_FILE,
    CheckpointError,
)
from gensr_bench_plugins.models.anyenhance.sampling import enhance
from gensr_bench_plugins.models.anyenhance.semantic import SEMANTIC_FOLDER, resample
from gensr_bench_plugins.models.anyenhance.settings import DecodeSettings
from gensr_bench_plugins.models.anyenhance.testing import published_layout as fixture_layout

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "anyenhance"
CASES = ("critic_v2", "critic_v1_rotary_cfg", "semantic", "no_critic")


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # tiny tensors: threads only cost time on a shared machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def expected() -> dict:
    return torch.load(FIXTURE / "expected.pt", weights_only=True)


def published_layout(root: Path, case: str) -> Path:
    """A weights folder laid out as the hub's ``amphion/anyenhance``, holding the tiny model."""
    return fixture_layout(FIXTURE, root / "anyenhance", case)


def test_the_resampler_matches_torchaudios(expected: dict) -> None:
    ref = expected["resample"]
    out = resample(ref["input"][None], 44100, 16000)[0]
    assert out.shape == ref["output"].shape
    assert torch.allclose(out, ref["output"], atol=1e-6, rtol=0)


def test_the_codec_matches_the_reference_dac(expected: dict) -> None:
    codec = load_codec(FIXTURE / "dac" / "weights.pth")
    ref = expected["dac"]
    with torch.no_grad():
        assert torch.equal(codec.encode(ref["input"]), ref["codes"])
        decoded = codec.decode(ref["codes"])
    assert decoded.shape == ref["decoded"].shape
    assert torch.allclose(decoded, ref["decoded"], atol=1e-4, rtol=0)


@pytest.mark.parametrize("case", CASES)
def test_tokens_and_waveforms_match_the_reference(case: str, expected: dict) -> None:
    loaded = load_folder(FIXTURE, f"{case}/config.json", f"{case}/model.pt")
    assert loaded.ignored_keys == []
    spec = expected["cases"][case]
    settings = DecodeSettings(timesteps=spec["timesteps"], cond_scale=spec["cond_scale"])
    for key, signal in expected["inputs"].items():
        windows: list[torch.Tensor] = []
        generator = torch.Generator().manual_seed(spec["seed"])
        out = enhance(loaded.net, loaded.codec, signal[None], settings, generator, windows=windows)
        ref = spec["results"][key]
        assert torch.equal(torch.stack(windows), ref["tokens"]), f"{case}/{key}: tokens differ"
        assert out.shape == (1, signal.shape[-1])
        assert torch.allclose(out[0], ref["audio"], atol=1e-4, rtol=0), f"{case}/{key}"


def test_the_plugin_restores_from_the_published_folder_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, expected: dict
) -> None:
    published_layout(tmp_path, "critic_v2")
    monkeypatch.setenv("GENSR_BENCH_WEIGHTS_DIR", str(tmp_path))
    model = AnyEnhance(timesteps=4)
    unloaded_hash = model.checkpoint_hash()
    signal = expected["inputs"]["long"].numpy()
    utt = Utterance(id="u1", degraded=Audio(signal, 44100))
    first = model.restore([utt], seed=3)[0]
    again = AnyEnhance(timesteps=4).restore([utt], seed=3)[0]
    assert first.audio.sample_rate == 44100 and first.audio.samples.shape == signal.shape
    np.testing.assert_array_equal(first.audio.samples, again.audio.samples)
    direct = model.restore_samples(signal, item_seed(3, "u1"))
    np.testing.assert_array_equal(first.audio.samples, direct)
    assert model.checkpoint_hash() == unloaded_hash and len(unloaded_hash or "") == 64
    other = model.restore([utt], seed=4)[0]
    assert not np.array_equal(first.audio.samples, other.audio.samples)


def test_candidates_draw_their_own_settings(tmp_path: Path) -> None:
    folder = published_layout(tmp_path, "no_critic")
    model = AnyEnhance(checkpoint=str(folder))
    utt = Utterance(id="u2", degraded=Audio(np.zeros(3000, dtype=np.float32), 44100))
    [candidates] = model.sample([utt], n=2, seed=0, sampling={"timesteps": [2, 5]})
    assert len(candidates) == 2
    for candidate in candidates:
        assert 2 <= candidate.meta["sampling"]["timesteps"] <= 5
        assert candidate.audio.samples.shape == (3000,)


def test_missing_weights_name_the_files_the_hub_id_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENSR_BENCH_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setattr("gensr_bench.weights.search_dirs", lambda: [tmp_path])
    monkeypatch.setattr(
        "gensr_bench_plugins.models.anyenhance.model.search_dirs", lambda: [tmp_path]
    )
    with pytest.raises(CheckpointError) as error:
        AnyEnhance()
    message = str(error.value)
    for needed in (CONFIG_FILE, MODEL_FILE, CODEC_FILE, HUB_ID, "huggingface-cli download"):
        assert needed in message
    assert isinstance(error.value, GensrError)  # the CLI turns it into exit status 1


def test_a_config_with_the_semantic_embedding_needs_w2v_bert(tmp_path: Path) -> None:
    folder = published_layout(tmp_path, "semantic")
    assert load_folder(folder).net.audio_encoder.semantic is not None
    shutil.rmtree(folder / SEMANTIC_FOLDER)
    with pytest.raises(CheckpointError, match=r"facebook/w2v-bert-2\.0"):
        load_folder(folder)
    given = load_folder(folder, semantic_model=FIXTURE / SEMANTIC_FOLDER)
    assert given.net.audio_encoder.semantic is not None


def test_an_incomplete_folder_or_a_mismatched_checkpoint_is_refused(tmp_path: Path) -> None:
    folder = published_layout(tmp_path, "critic_v2")
    (folder / CODEC_FILE).unlink()
    with pytest.raises(CheckpointError, match="lacks"):
        load_folder(folder)
    published_layout(tmp_path, "critic_v2")
    state = torch.load(folder / MODEL_FILE, weights_only=True)
    del state["task_emb.weight"]
    torch.save(state, folder / MODEL_FILE)
    with pytest.raises(CheckpointError, match=r"task_emb\.weight"):
        load_folder(folder)


def test_a_folder_without_the_network_or_codec_is_refused_at_once(tmp_path: Path) -> None:
    folder = published_layout(tmp_path, "no_critic")
    (folder / MODEL_FILE).unlink()
    with pytest.raises(CheckpointError, match="lacks") as error:
        AnyEnhance(checkpoint=str(folder))
    assert HUB_ID in str(error.value)


def test_options_are_checked(tmp_path: Path) -> None:
    folder = str(published_layout(tmp_path, "no_critic"))
    with pytest.raises(UnknownOptionError):
        AnyEnhance(checkpoint=folder, timestep=3)
    with pytest.raises(ConfigError, match="extraction"):
        AnyEnhance(checkpoint=folder, task="extraction")
    settings = AnyEnhance(checkpoint=folder, token_critic="false").settings
    assert settings.use_token_critic is False


def test_the_cli_exits_1_when_the_weights_are_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from gensr_bench.cli import main

    monkeypatch.setenv("GENSR_BENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("GENSR_BENCH_WEIGHTS_DIR", str(tmp_path / "weights"))
    args = ["run", "--model", "anyenhance", "--suite", "synth-gsr", "--limit", "1"]
    assert main([*args, "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert HUB_ID in err and MODEL_FILE in err and "huggingface-cli download" in err


def test_inputs_must_be_at_44_1_khz(tmp_path: Path) -> None:
    from gensr_bench.errors import AudioValidationError

    model = AnyEnhance(checkpoint=str(published_layout(tmp_path, "no_critic")))
    utt = Utterance(id="u", degraded=Audio(np.zeros(1600, dtype=np.float32), 16000))
    with pytest.raises(AudioValidationError, match="44100 Hz"):
        model.restore([utt], seed=0)
