"""WavLM-SV speaker similarity on a tiny random WavLMForXVector: the model card's procedure
by hand, identities, symmetry, loading from a folder, and the errors."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest

from gensr_bench.errors import AudioValidationError, ConfigError
from gensr_bench.records import Audio, Restoration, Utterance
from gensr_bench.testing import (
    as_restorations,
    check_metric_conformance,
    noisy_utterance,
    tiny_utterances,
    tiny_wavlm,
    tiny_wavlm_dir,
    voiced_signal,
)
from gensr_bench.weights import WeightsError
from gensr_bench_plugins.metrics import speaker_sim_wavlm as speaker_sim_wavlm_module
from gensr_bench_plugins.metrics.speaker_sim_wavlm import (
    SpeakerSimWavlm,
    wavlm_speaker_similarity,
)

OPTION_HINT = "--metric-option speaker-sim-wavlm.model=/path/to/dir"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("speaker-sim-wavlm") / "tiny-wavlm-sv"
    return tiny_wavlm_dir(folder, xvector=True, seed=1)


@pytest.fixture(scope="module")
def metric(model_dir: Path) -> SpeakerSimWavlm:
    instance = SpeakerSimWavlm(model=str(model_dir))
    instance.setup()
    return instance


def _score(metric: SpeakerSimWavlm, output: Audio, reference: Audio) -> float:
    restoration = Restoration("u", output, "test")
    return metric.score_batch([restoration], [Utterance("u", output, reference)])[0][
        "speaker_sim_wavlm"
    ]


def test_hook_registers_the_class() -> None:
    assert speaker_sim_wavlm_module.gensr_register_metrics() == [SpeakerSimWavlm]


def test_defaults() -> None:
    assert SpeakerSimWavlm().config()["model"] == "microsoft/wavlm-base-plus-sv"
    assert SpeakerSimWavlm.direction("speaker_sim_wavlm") is True
    assert SpeakerSimWavlm.requires_reference and SpeakerSimWavlm.sample_rate == 16000


def test_conformance(model_dir: Path) -> None:
    check_metric_conformance(SpeakerSimWavlm, tiny_utterances(2, 1.0), model=str(model_dir))


@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask:UserWarning")
def test_equals_the_model_card_procedure_on_the_in_memory_model(model_dir: Path) -> None:
    """Feature extractor, x-vector, L2-normalise, cosine: the wavlm-base-plus-sv model card,
    written out on the in-memory model, equals the metric loaded from the folder."""
    import torch

    from gensr_bench_plugins.metrics._util import torch_threads

    model, extractor = tiny_wavlm(xvector=True, seed=1)
    utts = [noisy_utterance(f"u{i}", seconds=1.0, snr_db=5.0 * i, seed=i) for i in range(2)]
    scores = SpeakerSimWavlm(model=str(model_dir)).score_batch(as_restorations(utts), utts)
    for utt, item in zip(utts, scores, strict=True):
        assert utt.reference is not None and utt.degraded is not None
        embeddings = []
        for samples in (utt.degraded.samples, utt.reference.samples):
            inputs = extractor(samples, sampling_rate=16000, return_tensors="pt")
            with torch_threads(), torch.inference_mode():
                embeddings.append(model(**inputs).embeddings)
        first, second = (torch.nn.functional.normalize(e, dim=-1) for e in embeddings)
        by_hand = torch.nn.CosineSimilarity(dim=-1)(first, second).item()
        assert item["speaker_sim_wavlm"] == pytest.approx(by_hand, abs=1e-6)
        in_memory = wavlm_speaker_similarity(
            utt.degraded.samples, utt.reference.samples, model, extractor
        )
        # Not bit for bit: the same weights loaded from the folder sit in other memory, and
        # oneDNN's convolutions may then round differently (4e-9 apart with transformers 5.25).
        assert in_memory == pytest.approx(item["speaker_sim_wavlm"], abs=1e-6)


def test_identical_is_one_symmetric_and_different_is_less(metric: SpeakerSimWavlm) -> None:
    first, second = voiced_signal(1.0, seed=0), voiced_signal(1.2, seed=5)
    assert _score(metric, first, first) == pytest.approx(1.0, abs=1e-6)
    forward, backward = _score(metric, first, second), _score(metric, second, first)
    assert forward == pytest.approx(backward, abs=1e-12)
    assert forward < 1.0 - 1e-3


def test_noisy_scores_below_clean(metric: SpeakerSimWavlm) -> None:
    import torch

    threads = torch.get_num_threads()
    utt = noisy_utterance(seconds=1.0, snr_db=0.0, seed=2)
    clean = metric.score_batch(as_restorations([utt], "reference"), [utt])[0]
    noisy = metric.score_batch(as_restorations([utt], "degraded"), [utt])[0]
    assert noisy["speaker_sim_wavlm"] < clean["speaker_sim_wavlm"] - 1e-3
    assert torch.get_num_threads() == threads  # the caller's setting is restored


def test_silence_and_too_short_audio_raise(metric: SpeakerSimWavlm) -> None:
    clean = voiced_signal(1.0)
    with pytest.raises(AudioValidationError, match="digital silence"):
        _score(metric, Audio(np.zeros(16000, np.float32), 16000), clean)
    with pytest.raises(AudioValidationError, match=r"at least 0\.5 s"):
        _score(metric, Audio(clean.samples[:4000], 16000), clean)


def test_missing_folder_says_how_to_provide_the_model(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="does not exist") as raised:
        SpeakerSimWavlm(model=str(tmp_path / "no-such-model")).setup()
    assert OPTION_HINT in str(raised.value)


def test_folder_without_feature_extractor_is_refused(model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "no-extractor"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        (folder / name).write_bytes((model_dir / name).read_bytes())
    with pytest.raises(WeightsError, match="feature extractor") as raised:
        SpeakerSimWavlm(model=str(folder)).setup()
    assert OPTION_HINT in str(raised.value)


def test_hub_id_offline_says_how_to_provide_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsError, match="gensr-bench-tests/no-such-wavlm-sv") as raised:
        SpeakerSimWavlm(model="gensr-bench-tests/no-such-wavlm-sv").setup()
    assert "hf download" in str(raised.value) and OPTION_HINT in str(raised.value)


def test_unknown_option_is_refused() -> None:
    with pytest.raises(ConfigError, match="available options: model, revision"):
        SpeakerSimWavlm(layer=3)


def test_weight_hash_and_config_record_the_folder(model_dir: Path) -> None:
    metric = SpeakerSimWavlm(model=str(model_dir))
    expected = hashlib.sha256((model_dir / "model.safetensors").read_bytes()).hexdigest()
    assert metric.weights_sha256() == {"tiny-wavlm-sv/model.safetensors": expected}
    assert metric.config()["model"] == str(model_dir.resolve())


def test_a_set_up_metric_pickles_without_its_model(model_dir: Path) -> None:
    """The runner pickles metrics to worker processes; each worker loads its own model."""
    metric = SpeakerSimWavlm(model=str(model_dir))
    metric.setup()
    utts = tiny_utterances(1, 1.0)
    copy = pickle.loads(pickle.dumps(metric))
    assert copy.score_batch(as_restorations(utts), utts) == metric.score_batch(
        as_restorations(utts), utts
    )
