"""Word and character error rates of a restoration's pocketsphinx transcription (``wer``, ``cer``).

A content metric: the restoration is recognised by PocketSphinx 5 (the US-English acoustic
model, 3-gram language model and CMU dictionary that ship inside the ``pocketsphinx`` wheel,
decoded at 16 kHz) and the words are compared with a reference text by Levenshtein alignment:

    error rate = (substitutions + deletions + insertions) / number of reference tokens

over words (``wer``) or characters (``cer``), after both texts are normalised by
:func:`normalize_text`. The rate is 0 for a perfect transcription, 1.0 for an empty one, and can
exceed 1 when the recogniser inserts words. The counts of one alignment are available from
:func:`word_edits` / :func:`char_edits` (an :class:`EditCounts`).

**Which reference text.** Option ``reference_text``:

* ``"auto"`` (default): the utterance's ``transcript`` when it has one, otherwise the
  recognition of the utterance's clean reference audio. The second case measures how much the
  restoration changes what the recogniser hears (recogniser errors on the reference cancel
  out only partly), not absolute intelligibility;
* ``"transcript"``: always the transcript; an utterance without one is an error (``None``);
* ``"asr"``: always the recognition of the reference audio, even when a transcript exists.

The option is part of the metric's recorded configuration, so results say which was used.
The metric declares ``requires_reference = True`` (the ``auto`` and ``asr`` modes may need the
reference audio) and ``uses_transcript = True``, so the runner's score cache keys a result by the
output, the reference and the transcript.

**Text normalisation and alignment** live in the shared module ``text.py`` (its docstring gives
the rules; :func:`normalize_text`, :func:`word_edits`, :func:`char_edits` and the other names
are re-exported here).

**Not a preference metric on the synthetic suites.** PocketSphinx is a GMM-HMM recogniser
trained on human speech; on espeak-synthesised speech it is close to 100 % WER even on the
clean reference (measured on the first 20 clean ``synth-gsr`` references against their
transcripts: corpus WER 0.89, CER 0.67; no utterance below 0.61). Differences between
restorations are then recogniser noise, not intelligibility, so it must not be chosen as a
preference metric (or read as content preservation) on the synthetic suites; use it on recorded
human speech. It is therefore left out of the default metric set (``default = False``): ask for
it with ``--metrics wer,cer``.

Recognition is deterministic: the decoder's feature front end is reinitialised before every
utterance: without that, the same audio decoded after another utterance came out different
(the front end keeps state between utterances; turning its noise removal off did not help).
Float samples in [-1, 1] become 16-bit PCM by rounding ``x * 32767`` after clipping to
[-1, 1]. One decoder per process serves both metrics and keeps the last transcriptions by audio
content, so ``--metrics wer,cer`` recognises each output once, and candidates of one input
recognise their shared reference once.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from gensr_bench import Metric, hookimpl
from gensr_bench.errors import GensrError
from gensr_bench.records import Audio
from gensr_bench.weights import sha256_of

# The text normalisation and alignment live in the shared module text.py (whisper.py uses them
# too); they are imported here under their old names, which stay part of this module's API.
from .text import EditCounts as EditCounts
from .text import align as align
from .text import cardinal as cardinal
from .text import char_edits as char_edits
from .text import character_error_rate as character_error_rate
from .text import normalize_text as normalize_text
from .text import ordinal as ordinal
from .text import word_edits as word_edits
from .text import word_error_rate as word_error_rate

# The reference-text choice, the transcription memory and the scoring loop live in the shared
# module transcription.py (whisper.py derives from them too); these names stay importable here.
from .transcription import REFERENCE_TEXT_CHOICES as REFERENCE_TEXT_CHOICES
from .transcription import TRANSCRIPTION_CACHE_SIZE as TRANSCRIPTION_CACHE_SIZE
from .transcription import CachingTranscriber, TranscriptionErrorRate

SAMPLE_RATE = 16000
_ALTERNATE_PRONUNCIATION = re.compile(r"\(\d+\)$")

# -- recognition -----------------------------------------------------------------------------


def to_pcm16(samples: npt.ArrayLike) -> npt.NDArray[np.int16]:
    """Float samples in [-1, 1] as 16-bit PCM: clipped, scaled by 32767 and rounded."""
    audio = np.clip(np.asarray(samples, dtype=np.float64), -1.0, 1.0)
    return np.round(audio * 32767.0).astype(np.int16)


def clean_hypothesis(hypothesis: str) -> str:
    """Drop filler tokens (``<sil>``, ``[noise]``, ``++garbage++``) and ``(2)`` markers."""
    words = []
    for word in hypothesis.split():
        if word.startswith(("<", "[", "+")):
            continue
        words.append(_ALTERNATE_PRONUNCIATION.sub("", word))
    return " ".join(words)


class Recognizer(CachingTranscriber):
    """PocketSphinx with the wheel's US-English model, decoding whole 16-kHz utterances.

    ``transcribe`` is deterministic and independent of what was decoded before (see the module
    docstring). The last ``cache_size`` transcriptions are kept by audio content (0: none).
    Safe to share between threads.
    """

    sample_rate = SAMPLE_RATE
    decodes = "PocketSphinx's en-us model decodes"

    def __init__(self, cache_size: int = TRANSCRIPTION_CACHE_SIZE) -> None:
        try:
            from pocketsphinx import Decoder
        except ImportError as exc:
            raise GensrError(
                "the wer and cer metrics need PocketSphinx; install it with "
                "`pip install pocketsphinx`"
            ) from exc
        super().__init__(cache_size)
        # The defaults are the en-us acoustic model, en-us.lm.bin and cmudict-en-us.dict from
        # the wheel's model folder; loglevel FATAL keeps the decoder's INFO lines off stderr.
        self._decoder: Any = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")

    def config(self) -> dict[str, str]:
        """The model files the decoder loaded (acoustic model folder, LM, dictionary)."""
        return {key: str(self._decoder.config[key]) for key in ("hmm", "lm", "dict")}

    def decode(self, audio: Audio) -> str:
        """The recognised words of 16-kHz ``audio``, fillers removed ('' when none)."""
        decoder = self._decoder
        decoder.reinit_feat()  # forget the previous utterance's noise and CMN estimates
        decoder.start_utt()
        decoder.process_raw(to_pcm16(audio.samples).tobytes(), no_search=False, full_utt=True)
        decoder.end_utt()
        hypothesis = decoder.hyp()
        return clean_hypothesis(hypothesis.hypstr) if hypothesis is not None else ""


def model_files() -> dict[str, Path]:
    """The decoder's default model files, keyed ``pocketsphinx/<path in the model folder>``.

    Every file of the acoustic model folder (its README aside), the language model and the
    pronunciation dictionary: what ``Decoder(samprate=16000)`` loads.
    """
    try:
        import pocketsphinx
    except ImportError as exc:
        raise GensrError(
            "the wer and cer metrics need PocketSphinx; install it with `pip install pocketsphinx`"
        ) from exc
    config = pocketsphinx.Config()
    acoustic = Path(config["hmm"])
    paths = [p for p in sorted(acoustic.iterdir()) if p.is_file() and p.name != "README"]
    paths += [Path(config["lm"]), Path(config["dict"])]
    root = Path(pocketsphinx.get_model_path())
    files = {}
    for path in paths:
        if not path.is_file():
            raise GensrError(
                f"PocketSphinx model file {path} is missing; reinstall it "
                "(`pip install --force-reinstall pocketsphinx`)"
            )
        name = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
        files[f"pocketsphinx/{name}"] = path
    return files


@cache
def shared_recognizer() -> Recognizer:
    """The process's recogniser, created on first use (loading the model takes ~0.5 s)."""
    return Recognizer()


# -- metrics ---------------------------------------------------------------------------------


class _ErrorRateMetric(TranscriptionErrorRate):
    """Shared scoring of ``wer`` and ``cer``; subclasses pick the unit of alignment."""

    version = "1"
    sample_rate = SAMPLE_RATE
    accepted_options = ("reference_text",)
    verb = "recognise"
    verb_ing = "recognising"
    #: "words" or "characters".
    unit: ClassVar[str]

    def load_transcriber(self) -> Recognizer:
        return shared_recognizer()

    def edits(self, reference: str, hypothesis: str) -> EditCounts:
        return (word_edits if self.unit == "words" else char_edits)(reference, hypothesis)

    def edit_counts(self, reference: str, hypothesis: str) -> dict[str, EditCounts]:
        return {self.outputs[0]: self.edits(reference, hypothesis)}

    def weights_sha256(self) -> dict[str, str]:
        return {name: sha256_of(path) for name, path in model_files().items()}


class Wer(_ErrorRateMetric):
    """Word error rate of a PocketSphinx transcription (lower is better; not for espeak suites).

    Reference text: the utterance's transcript, else the recognition of its reference audio
    (option ``reference_text``; see the module docstring for this and the normalisation).
    PocketSphinx is near 100 % WER on espeak-synthesised speech even when it is clean, so this
    metric must not be used as a preference metric on the synthetic suites; it is off by
    default (``default = False``).
    """

    name = "wer"
    outputs = ("wer",)
    unit = "words"


class Cer(_ErrorRateMetric):
    """Character error rate of a PocketSphinx transcription (lower is better; not for espeak).

    Reference text: the utterance's transcript, else the recognition of its reference audio
    (option ``reference_text``; see the module docstring for this and the normalisation).
    PocketSphinx is near 100 % WER on espeak-synthesised speech even when it is clean, so this
    metric must not be used as a preference metric on the synthetic suites; it is off by
    default (``default = False``).
    """

    name = "cer"
    outputs = ("cer",)
    unit = "characters"


@hookimpl
def gensr_register_metrics() -> list[type[Metric]]:
    return [Wer, Cer]
