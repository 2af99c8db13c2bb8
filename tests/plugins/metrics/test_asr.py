"""wer / cer: declaration, the PocketSphinx recogniser on espeak speech, conformance.

The text normalisation and alignment are tested in test_text.py (they live in text.py), the
reference-text choice, the transcription memory and the scoring loop in test_transcription.py
(they live in transcription.py, shared with whisper); here, only that asr still exports the
text helpers under their old names."""

from __future__ import annotations

import numpy as np
import pytest

from gensr_bench.audio import resample
from gensr_bench.records import Audio, Utterance
from gensr_bench.testing import add_noise, as_restorations, check_metric_conformance
from gensr_bench_plugins.metrics import asr
from gensr_bench_plugins.metrics import text as text_module
from gensr_bench_plugins.metrics.asr import (
    Cer,
    Recognizer,
    Wer,
    clean_hypothesis,
    normalize_text,
    to_pcm16,
)
from gensr_bench_plugins.suites.espeak import ESPEAK_SAMPLE_RATE, Voice, synthesize

SENTENCES = ("Please close the window.", "The old bridge creaks.")


@pytest.fixture(scope="module")
def speech() -> list[Utterance]:
    """Two short espeak utterances at 16 kHz with transcripts, noisy input, clean reference."""
    utterances = []
    for index, text in enumerate(SENTENCES):
        raw = synthesize(text, Voice("en-us", rate=150), seed=index)
        clean = resample(Audio(raw, ESPEAK_SAMPLE_RATE), 16000)
        utterances.append(
            Utterance(f"speech-{index}", add_noise(clean, 15.0, index), clean, text, {})
        )
    return utterances


def test_hook_registers_both_classes() -> None:
    assert asr.gensr_register_metrics() == [Wer, Cer]


def test_declared_attributes() -> None:
    for cls, output in ((Wer, "wer"), (Cer, "cer")):
        assert cls.outputs == (output,)
        assert cls.direction(output) is False
        assert cls.default is False  # near-100 % WER on espeak: never in the default set
        assert cls.sample_rate == 16000
        assert "espeak" in (cls.__doc__ or "")


def test_weight_hashes_cover_the_model_files() -> None:
    import hashlib

    hashes = Wer().weights_sha256()
    files = asr.model_files()
    assert set(hashes) == set(files) and len(files) >= 8
    assert {"pocketsphinx/en-us/en-us.lm.bin", "pocketsphinx/en-us/cmudict-en-us.dict"} <= set(
        files
    )
    means = files["pocketsphinx/en-us/en-us/means"]
    assert (
        hashes["pocketsphinx/en-us/en-us/means"] == hashlib.sha256(means.read_bytes()).hexdigest()
    )


@pytest.mark.parametrize(
    "name",
    [
        "EditCounts",
        "align",
        "cardinal",
        "ordinal",
        "normalize_text",
        "word_edits",
        "char_edits",
        "word_error_rate",
        "character_error_rate",
    ],
)
def test_text_helpers_are_still_exported_from_asr(name: str) -> None:
    assert getattr(asr, name) is getattr(text_module, name)


def test_clean_hypothesis_drops_fillers_and_pronunciation_markers() -> None:
    assert clean_hypothesis("<s> read(2) the [noise] book ++garbage++ <sil> </s>") == (
        "read the book"
    )


# -- the recogniser --------------------------------------------------------------------------


def test_one_recognizer_serves_wer_and_cer() -> None:
    recognizer = Wer().load_transcriber()
    assert recognizer is Cer().load_transcriber() is asr.shared_recognizer()


def test_to_pcm16_rounds_and_clips() -> None:
    pcm = to_pcm16(np.array([0.0, 0.5, -1.0, 1.5, -2.0, 1e-5], np.float32))
    assert pcm.dtype == np.int16
    assert pcm.tolist() == [0, 16384, -32767, 32767, -32767, 0]


def test_recognizer_returns_words_and_ignores_history(speech: list[Utterance]) -> None:
    first, second = (utt.reference for utt in speech)
    assert first is not None and second is not None
    recognizer = Recognizer(cache_size=0)  # decode every call
    fresh = recognizer.transcribe(first)
    assert isinstance(fresh, str) and fresh and fresh == normalize_text(fresh)
    recognizer.transcribe(second)
    assert recognizer.transcribe(first) == fresh  # the previous utterance leaves no trace
    assert set(recognizer.config()) == {"hmm", "lm", "dict"}


def test_conformance_on_espeak_speech(speech: list[Utterance]) -> None:
    wer = check_metric_conformance(Wer, speech)
    cer = check_metric_conformance(Cer, speech)
    for w, c in zip(wer, cer, strict=True):
        assert w["wer"] >= 0.0 and c["cer"] >= 0.0
    # The clean reference, recognised, against its own recognition ("asr") scores exactly 0.
    metric = Wer(reference_text="asr")
    metric.setup()
    assert metric.score_batch(as_restorations(speech, "reference"), speech) == [
        {"wer": 0.0},
        {"wer": 0.0},
    ]
