"""SpeechBERTScore on a tiny random WavLM: the paper's definition by hand, identities,
symmetry, loading from a folder, and the errors that say how to provide the model."""

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
from gensr_bench_plugins.metrics import speechbertscore as speechbertscore_module
from gensr_bench_plugins.metrics.speechbertscore import SpeechBertScore, speech_bert_score

#: The tiny model has 3 transformer layers; 2 is an inner one, as 14 of 24 is for WavLM-Large.
LAYER = 2


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_wavlm_dir(tmp_path_factory.mktemp("speechbertscore") / "tiny-wavlm", seed=0)


@pytest.fixture(scope="module")
def metric(model_dir: Path) -> SpeechBertScore:
    instance = SpeechBertScore(model=str(model_dir), layer=LAYER)
    instance.setup()
    return instance


def _score(metric: SpeechBertScore, output: Audio, reference: Audio) -> dict[str, float]:
    restoration = Restoration("u", output, "test")
    return metric.score_batch([restoration], [Utterance("u", output, reference)])[0]


def test_hook_registers_the_class() -> None:
    assert speechbertscore_module.gensr_register_metrics() == [SpeechBertScore]


def test_defaults_are_the_papers_best_setting() -> None:
    metric = SpeechBertScore()
    config = metric.config()
    assert (config["model"], config["layer"], config["score"]) == (
        "microsoft/wavlm-large",
        14,
        "precision",
    )
    assert metric.requires_reference and metric.sample_rate == 16000
    assert all(SpeechBertScore.direction(output) for output in SpeechBertScore.outputs)


def test_conformance(model_dir: Path) -> None:
    check_metric_conformance(
        SpeechBertScore, tiny_utterances(2, 1.0), model=str(model_dir), layer=LAYER
    )


def test_equals_the_reference_implementation_on_the_in_memory_model(model_dir: Path) -> None:
    """At every layer, the folder-loaded metric equals discrete_speech_metrics' procedure,
    written out here on the in-memory model: a full forward pass, hidden_states[layer], a
    float32 cosine matrix, greedy matching."""
    import torch

    from gensr_bench_plugins.metrics._util import torch_threads

    model, _ = tiny_wavlm(seed=0)
    utt = noisy_utterance(seconds=1.0, snr_db=5.0, seed=3)
    assert utt.reference is not None and utt.degraded is not None

    def hidden_states(samples: np.ndarray) -> tuple[torch.Tensor, ...]:
        with torch_threads(), torch.inference_mode():
            wav = torch.from_numpy(samples.copy()).unsqueeze(0)
            return model(wav, output_hidden_states=True).hidden_states

    all_generated = hidden_states(utt.degraded.samples)
    all_reference = hidden_states(utt.reference.samples)
    assert len(all_generated) == 4  # the input of layer 1, then the output of layers 1..3
    for layer, (generated, reference) in enumerate(zip(all_generated, all_reference, strict=True)):
        generated, reference = generated[0], reference[0]
        similarity = (generated @ reference.T) / (
            generated.norm(dim=1, keepdim=True) * reference.norm(dim=1).unsqueeze(0)
        )
        precision = similarity.max(dim=1)[0].mean().item()
        recall = similarity.max(dim=0)[0].mean().item()
        f1 = 2 * precision * recall / (precision + recall)

        metric = SpeechBertScore(model=str(model_dir), layer=layer)
        item = metric.score_batch(as_restorations([utt]), [utt])[0]
        assert item["speechbertscore"] == pytest.approx(precision, abs=1e-5)
        assert item["speechbertscore_recall"] == pytest.approx(recall, abs=1e-5)
        assert item["speechbertscore_f1"] == pytest.approx(f1, abs=1e-5)
        in_memory = speech_bert_score(utt.degraded.samples, utt.reference.samples, model, layer)
        assert in_memory == pytest.approx(tuple(item.values()), abs=1e-9)


def test_identical_audio_scores_one(metric: SpeechBertScore) -> None:
    audio = voiced_signal(1.0, seed=4)
    for value in _score(metric, audio, audio).values():
        assert value == pytest.approx(1.0, abs=1e-6)


def test_swapping_output_and_reference_swaps_precision_and_recall(
    metric: SpeechBertScore,
) -> None:
    first, second = voiced_signal(1.0, seed=1), voiced_signal(1.3, seed=2)
    forward, backward = _score(metric, first, second), _score(metric, second, first)
    assert forward["speechbertscore"] == pytest.approx(backward["speechbertscore_recall"])
    assert forward["speechbertscore_recall"] == pytest.approx(backward["speechbertscore"])
    assert forward["speechbertscore_f1"] == pytest.approx(backward["speechbertscore_f1"])
    assert forward["speechbertscore"] != pytest.approx(forward["speechbertscore_recall"])


def test_different_audio_scores_below_identical(metric: SpeechBertScore) -> None:
    utt = noisy_utterance(seconds=1.0, snr_db=0.0, seed=5)
    clean = metric.score_batch(as_restorations([utt], "reference"), [utt])[0]
    noisy = metric.score_batch(as_restorations([utt], "degraded"), [utt])[0]
    assert utt.reference is not None
    other = _score(metric, voiced_signal(1.0, seed=6), utt.reference)
    for output in SpeechBertScore.outputs:
        assert noisy[output] < clean[output] - 1e-3
        assert other[output] < clean[output] - 1e-3


def test_scores_outputs_of_another_length_without_alignment(metric: SpeechBertScore) -> None:
    reference = voiced_signal(1.0, seed=7)
    shorter = Audio(reference.samples[:12000], 16000)
    item = _score(metric, shorter, reference)
    # Every output frame has a close match in the reference; the reference's tail has none.
    assert item["speechbertscore_recall"] < item["speechbertscore"] < 1.0


def test_caller_thread_setting_is_restored(metric: SpeechBertScore) -> None:
    import torch

    threads = torch.get_num_threads()
    audio = voiced_signal(0.5, seed=8)
    _score(metric, audio, audio)
    assert torch.get_num_threads() == threads


def test_missing_reference_raises(metric: SpeechBertScore) -> None:
    audio = voiced_signal(0.5)
    with pytest.raises(AudioValidationError, match="needs a clean reference"):
        metric.score_batch([Restoration("u", audio, "t")], [Utterance("u", audio, None)])


def test_missing_folder_says_how_to_provide_the_model(tmp_path: Path) -> None:
    metric = SpeechBertScore(model=str(tmp_path / "no-such-model"))
    with pytest.raises(WeightsError, match="does not exist") as raised:
        metric.setup()
    assert "--metric-option speechbertscore.model=/path/to/dir" in str(raised.value)


def test_folder_without_a_model_says_how_to_provide_one(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match=r"config\.json") as raised:
        SpeechBertScore(model=str(tmp_path)).setup()
    assert "--metric-option speechbertscore.model=/path/to/dir" in str(raised.value)


def test_hub_id_offline_says_how_to_provide_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    metric = SpeechBertScore(model="gensr-bench-tests/no-such-wavlm")
    with pytest.raises(WeightsError, match="gensr-bench-tests/no-such-wavlm") as raised:
        metric.setup()
    message = str(raised.value)
    assert "hf download" in message
    assert "--metric-option speechbertscore.model=/path/to/dir" in message


def test_layer_beyond_the_model_is_refused(model_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"0\.\.3"):
        SpeechBertScore(model=str(model_dir), layer=14).setup()


@pytest.mark.parametrize(
    "options", [{"layers": 3}, {"layer": "last"}, {"layer": -1}, {"layer": 1.5}, {"model": ""}]
)
def test_bad_options_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        SpeechBertScore(**options).config()


def test_weight_hash_and_config_record_the_folder(model_dir: Path) -> None:
    metric = SpeechBertScore(model=str(model_dir), layer=LAYER)
    expected = hashlib.sha256((model_dir / "model.safetensors").read_bytes()).hexdigest()
    assert metric.weights_sha256() == {"tiny-wavlm/model.safetensors": expected}
    config = metric.config()
    assert config["model"] == str(model_dir.resolve()) and config["layer"] == LAYER


def test_weight_record_of_an_uncached_hub_id_names_id_and_revision() -> None:
    metric = SpeechBertScore(model="gensr-bench-tests/no-such-wavlm", revision="v1")
    assert metric.weights_sha256() == {
        "hub:gensr-bench-tests/no-such-wavlm": (
            "revision v1; not in the local Hugging Face cache, unhashed"
        )
    }


def test_a_set_up_metric_pickles_without_its_model(model_dir: Path) -> None:
    """The runner pickles metrics to worker processes; each worker loads its own model."""
    metric = SpeechBertScore(model=str(model_dir), layer=LAYER)
    metric.setup()
    utts = tiny_utterances(1, 1.0)
    copy = pickle.loads(pickle.dumps(metric))
    assert copy.score_batch(as_restorations(utts), utts) == metric.score_batch(
        as_restorations(utts), utts
    )
