"""transcription: the transcription memory, the reference-text choice and the scoring loop that
wer/cer (asr.py) and whisper (whisper.py) share, tested once on all three with a stand-in
recogniser; the recognisers themselves are tested in test_asr.py and test_whisper.py."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from gensr_bench.errors import AudioValidationError, ConfigError, MetricError
from gensr_bench.execution import BatchProcessor
from gensr_bench.records import Audio, Restoration, Utterance
from gensr_bench.testing import EchoModel, sine
from gensr_bench_plugins.metrics import asr, whisper
from gensr_bench_plugins.metrics.asr import Cer, Recognizer, Wer
from gensr_bench_plugins.metrics.text import EditCounts, character_error_rate, word_edits
from gensr_bench_plugins.metrics.transcription import (
    REFERENCE_TEXT_CHOICES,
    TRANSCRIPTION_CACHE_SIZE,
    CachingTranscriber,
    TranscriptionErrorRate,
)
from gensr_bench_plugins.metrics.whisper import Whisper, WhisperTranscriber

METRICS = (Wer, Cer, Whisper)
#: Which error rate each output of the three metrics is.
RATE_OF_OUTPUT = {"wer": "wer", "cer": "cer", "whisper_wer": "wer", "whisper_cer": "cer"}


class FakeTranscriber:
    """Answers a fixed text per audio content hash and counts calls."""

    def __init__(self, texts: dict[str, str]) -> None:
        self.texts = texts
        self.calls = 0

    def transcribe(self, audio: Audio) -> str:
        self.calls += 1
        return self.texts[audio.content_hash()]


def tone(amplitude: float) -> Audio:
    """0.2 s of a 440-Hz tone: distinct audio per amplitude, with sound (a constant would be
    refused as a reference to transcribe)."""
    return sine(440, 0.2, amplitude=amplitude)


def with_texts(
    cls: type[TranscriptionErrorRate], texts: dict[str, str], **options: str
) -> TranscriptionErrorRate:
    """A ``cls`` metric whose recogniser answers ``texts`` (no model is loaded)."""
    metric = cls(**options)
    metric._transcriber = FakeTranscriber(texts)
    return metric


def score_one(metric: TranscriptionErrorRate, output: Audio, utt: Utterance) -> dict[str, float]:
    return metric.score_batch([Restoration(utt.id, output, "test")], [utt])[0]


def expected(cls: type[TranscriptionErrorRate], **rates: float) -> dict[str, object]:
    """The scores ``cls`` gives when the word and character error rates are ``rates``."""
    return {output: pytest.approx(rates[RATE_OF_OUTPUT[output]]) for output in cls.outputs}


# -- asr and whisper share the module --------------------------------------------------------


def test_asr_and_whisper_derive_from_the_shared_classes() -> None:
    assert all(issubclass(cls, TranscriptionErrorRate) for cls in METRICS)
    assert issubclass(Recognizer, CachingTranscriber)
    assert issubclass(WhisperTranscriber, CachingTranscriber)
    for module in (asr, whisper):  # the old names stay importable from both modules
        assert module.REFERENCE_TEXT_CHOICES is REFERENCE_TEXT_CHOICES
        assert module.TRANSCRIPTION_CACHE_SIZE == TRANSCRIPTION_CACHE_SIZE


def test_asr_and_whisper_refuse_a_missing_transcript_alike() -> None:
    """The same check, worded with each metric's name and verb."""
    output = tone(0.1)
    utt = Utterance("u", output, output, None, {})
    messages = {}
    for cls in METRICS:
        with pytest.raises(MetricError) as raised:
            score_one(with_texts(cls, {}, reference_text="transcript"), output, utt)
        messages[cls.name] = str(raised.value)
    assert messages["wer"] == (
        "wer: utterance 'u' has no transcript and option reference_text='transcript' forbids "
        "recognising the reference instead; use reference_text='auto' for suites without "
        "transcripts"
    )
    assert messages["cer"] == messages["wer"].replace("wer:", "cer:", 1)
    assert messages["whisper"] == messages["wer"].replace("wer:", "whisper:", 1).replace(
        "recognising", "transcribing"
    )


# -- reference text ---------------------------------------------------------------------------


@pytest.mark.parametrize("cls", METRICS)
def test_reference_text_is_the_transcript_when_there_is_one(
    cls: type[TranscriptionErrorRate],
) -> None:
    output, reference = tone(0.1), tone(0.2)
    texts = {output.content_hash(): "The cat sat.", reference.content_hash(): "a dog ran"}
    utt = Utterance("u", reference, reference, "the cat sat down", {})
    assert score_one(with_texts(cls, texts), output, utt) == expected(cls, wer=0.25, cer=5 / 16)
    # reference_text="asr" compares with the transcription of the reference audio instead.
    asr_mode = with_texts(cls, texts, reference_text="asr")
    against_transcription = character_error_rate("a dog ran", "The cat sat.")
    assert score_one(asr_mode, output, utt) == expected(cls, wer=1.0, cer=against_transcription)


@pytest.mark.parametrize("cls", METRICS)
def test_reference_text_falls_back_to_transcribing_the_reference(
    cls: type[TranscriptionErrorRate],
) -> None:
    output, reference = tone(0.1), tone(0.2)
    texts = {output.content_hash(): "the cat", reference.content_hash(): "The cat sat."}
    utt = Utterance("u", reference, reference, None, {})
    assert score_one(with_texts(cls, texts), output, utt) == expected(cls, wer=1 / 3, cer=4 / 11)


@pytest.mark.parametrize("cls", METRICS)
def test_no_transcript_and_no_reference_raises(cls: type[TranscriptionErrorRate]) -> None:
    output = tone(0.1)
    verb = "recognise" if cls in (Wer, Cer) else "transcribe"
    with pytest.raises(
        MetricError, match=f"neither a transcript nor a reference to {verb} one from"
    ):
        score_one(with_texts(cls, {}), output, Utterance("u", output, None, None, {}))


@pytest.mark.parametrize("cls", METRICS)
def test_empty_reference_text_raises(cls: type[TranscriptionErrorRate]) -> None:
    output = tone(0.1)
    metric = with_texts(cls, {output.content_hash(): "words"})
    with pytest.raises(MetricError, match=r"reference text of 'u' is empty after normalisation"):
        score_one(metric, output, Utterance("u", output, output, "...", {}))


@pytest.mark.parametrize("cls", METRICS)
def test_unknown_reference_text_option_raises(cls: type[TranscriptionErrorRate]) -> None:
    with pytest.raises(
        ConfigError, match=f"{cls.name}: option reference_text='gold' is not one of auto, "
    ):
        cls(reference_text="gold")


@pytest.mark.parametrize("cls", METRICS)
def test_wrong_sample_rate_raises(cls: type[TranscriptionErrorRate]) -> None:
    audio = Audio(np.full(800, 0.1, np.float32), 8000)
    with pytest.raises(AudioValidationError, match="8000 Hz"):
        score_one(with_texts(cls, {}), audio, Utterance("u", audio, audio, "words", {}))


@pytest.mark.parametrize("cls", METRICS)
def test_a_silent_reference_without_transcript_is_none_with_a_reason(
    cls: type[TranscriptionErrorRate],
) -> None:
    """Scored the way a run scores it: None plus the reason, never 0; nothing transcribed."""
    output = tone(0.1)
    silence = Audio(np.zeros(16000, np.float32), 16000)
    utt = Utterance("silent-reference", output, silence, None, {})
    metric = with_texts(cls, {})
    [(scored, _)] = BatchProcessor(EchoModel(), [metric]).process([(0, utt)], seed=0)
    for name in cls.outputs:
        assert scored.scores[name] is None
        assert "the reference of 'silent-reference' is digital silence" in scored.errors[name]


# -- the base class on its own ---------------------------------------------------------------


class ToyWer(TranscriptionErrorRate):
    """The smallest subclass: a recogniser from ``load_transcriber``, one word error rate."""

    name = "toy-wer"
    version = "0"
    outputs = ("toy_wer",)
    accepted_options = ("reference_text",)

    def __init__(self, **options: str) -> None:
        super().__init__(**options)
        self.loads = 0

    def load_transcriber(self) -> FakeTranscriber:
        self.loads += 1
        return FakeTranscriber({tone(0.1).content_hash(): "one two"})

    def edit_counts(self, reference: str, hypothesis: str) -> dict[str, EditCounts]:
        return {"toy_wer": word_edits(reference, hypothesis)}


def test_setup_loads_the_recogniser_once_and_the_default_verb_is_transcribe() -> None:
    metric = ToyWer()
    assert (metric.reference_text, metric.higher_is_better, metric.default) == (
        "auto",
        False,
        False,
    )
    utt = Utterance("u", tone(0.1), None, "one two three", {})
    restoration = Restoration("u", tone(0.1), "test")
    assert (
        metric.score_batch([restoration, restoration], [utt, utt])
        == [{"toy_wer": pytest.approx(1 / 3)}] * 2
    )
    metric.setup()
    assert metric.loads == 1
    with pytest.raises(MetricError, match="reference to transcribe one from"):
        metric.score_batch([restoration], [Utterance("u", tone(0.1), None, None, {})])


# -- the transcription memory ----------------------------------------------------------------


class CountingTranscriber(CachingTranscriber):
    """Decodes any audio as its peak amplitude, counting the decodes."""

    decodes = "The counter counts"

    def __init__(self, cache_size: int = TRANSCRIPTION_CACHE_SIZE) -> None:
        super().__init__(cache_size)
        self.decoded: list[str] = []

    def decode(self, audio: Audio) -> str:
        text = f"{float(np.max(audio.samples)):.2f}"
        self.decoded.append(text)
        return text


def test_the_memory_is_keyed_by_audio_content() -> None:
    transcriber = CountingTranscriber()
    assert transcriber.transcribe(tone(0.5)) == "0.50"
    assert transcriber.transcribe(tone(0.5)) == "0.50"  # another object, the same samples
    assert transcriber.transcribe(tone(0.25)) == "0.25"
    assert transcriber.decoded == ["0.50", "0.25"]
    transcriber.forget()
    transcriber.transcribe(tone(0.5))
    assert transcriber.decoded == ["0.50", "0.25", "0.50"]


def test_the_memory_keeps_the_last_used_transcriptions() -> None:
    transcriber = CountingTranscriber(cache_size=2)
    for amplitude in (0.1, 0.2, 0.1, 0.3):  # 0.1 was used again, so 0.2 is the one dropped
        transcriber.transcribe(tone(amplitude))
    transcriber.transcribe(tone(0.1))
    transcriber.transcribe(tone(0.2))
    assert transcriber.decoded == ["0.10", "0.20", "0.30", "0.20"]
    nothing_kept = CountingTranscriber(cache_size=0)
    nothing_kept.transcribe(tone(0.1))
    nothing_kept.transcribe(tone(0.1))
    assert nothing_kept.decoded == ["0.10", "0.10"]


def test_threads_share_one_memory_and_decode_each_audio_once() -> None:
    transcriber = CountingTranscriber()
    audios = [tone(0.1 * k) for k in range(1, 5)]
    threads = [
        threading.Thread(target=lambda: [transcriber.transcribe(a) for a in audios])
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(transcriber.decoded) == ["0.10", "0.20", "0.30", "0.40"]


def test_audio_at_another_rate_is_refused_before_decoding() -> None:
    transcriber = CountingTranscriber()
    with pytest.raises(
        AudioValidationError,
        match=r"The counter counts 16000 Hz audio, got 8000 Hz; resample it first",
    ):
        transcriber.transcribe(Audio(np.full(800, 0.1, np.float32), 8000))
    assert transcriber.decoded == []
