"""Shared test fixtures and a conformance kit for plugin authors.

Use these instead of copy-pasting helpers into test files::

    from gensr_bench.testing import noisy_utterance, check_metric_conformance
    check_metric_conformance(MyMetric)

Everything here is small and fast: tiny synthetic audio, no weights, no network.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gensr_bench import weights as weights_module
from gensr_bench.interfaces import Metric, RestorationModel, Suite, item_seed
from gensr_bench.records import Audio, PreferencePair, Restoration, ScoredOutput, Utterance
from gensr_bench.weights import WeightFile


def voiced_signal(seconds: float = 2.0, sample_rate: int = 16000, seed: int = 0) -> Audio:
    """A speech-like test signal: a gliding harmonic tone with a syllable-rate envelope.

    Deterministic for a seed; peak 0.5. Good enough for metrics that need voiced energy
    (DNSMOS, PESQ, STOI) without shipping recordings.
    """
    rng = np.random.default_rng(seed)
    n = round(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    f0 = 110 + 60 * rng.random() + 25 * np.sin(2 * math.pi * (0.5 + rng.random()) * t)
    phase = 2 * math.pi * np.cumsum(f0) / sample_rate
    harmonics = sum(np.sin(k * phase) / k for k in range(1, 30) if k * f0.max() < sample_rate / 2)
    syllables = 0.5 * (1 - np.cos(2 * math.pi * (3.0 + rng.random()) * t))
    signal = np.asarray(harmonics) * syllables
    signal = 0.5 * signal / (np.max(np.abs(signal)) + 1e-9)
    return Audio(signal.astype(np.float32), sample_rate)


def add_noise(clean: Audio, snr_db: float, seed: int = 0) -> Audio:
    """``clean`` plus white Gaussian noise at ``snr_db`` (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(len(clean.samples)).astype(np.float32)
    power = float(np.mean(clean.samples.astype(np.float64) ** 2))
    noise *= np.float32(math.sqrt(power / (10 ** (snr_db / 10)) / np.mean(noise**2)))
    return Audio(clean.samples + noise, clean.sample_rate)


def noisy_utterance(
    uid: str = "utt-0",
    seconds: float = 2.0,
    sample_rate: int = 16000,
    snr_db: float = 5.0,
    seed: int = 0,
    **meta: Any,
) -> Utterance:
    """An utterance whose reference is ``voiced_signal`` and whose input adds white noise."""
    clean = voiced_signal(seconds, sample_rate, seed)
    degraded = add_noise(clean, snr_db, seed + 1)
    return Utterance(
        id=uid,
        degraded=degraded,
        reference=clean,
        transcript=None,
        meta={"degradation": "noise", "snr_db": snr_db, **meta},
    )


def tiny_utterances(n: int = 4, seconds: float = 1.0, sample_rate: int = 16000) -> list[Utterance]:
    """``n`` short noisy utterances with varied seeds and SNRs."""
    return [
        noisy_utterance(f"utt-{i}", seconds, sample_rate, snr_db=5.0 * (i % 4), seed=10 * i)
        for i in range(n)
    ]


def as_restorations(
    utterances: Sequence[Utterance], which: str = "degraded", model: str = "test"
) -> list[Restoration]:
    """Restorations equal to each utterance's ``degraded`` or ``reference`` audio."""
    out = []
    for utt in utterances:
        audio = getattr(utt, which)
        assert audio is not None, f"utterance {utt.id} has no {which} audio"
        out.append(Restoration(utterance_id=utt.id, audio=audio, model=model))
    return out


class EchoModel(RestorationModel):
    """Test model: returns the degraded input scaled by ``gain`` (default 1)."""

    name = "test-echo"
    paradigm = "dsp"
    sample_rate = 16000
    accepted_options = ("gain",)

    def restore(self, batch: Sequence[Utterance], seed: int) -> list[Restoration]:
        gain = float(self.options.get("gain", 1.0))
        out = []
        for utt in batch:
            assert utt.degraded is not None
            audio = Audio(utt.degraded.samples * np.float32(gain), utt.degraded.sample_rate)
            out.append(Restoration(utt.id, audio, self.name, seed))
        return out


class NoisyEchoModel(RestorationModel):
    """Test model: the degraded input plus white noise drawn from ``item_seed(seed, id)``.

    Option ``noise`` (default 0.01): the noise's standard deviation; ``ids`` (a list of
    utterance ids, default all): only these get noise, the others are returned as they are.
    Different seeds give different outputs, so it stands in for a generative model's
    candidates.
    """

    name = "test-noisy-echo"
    paradigm = "dsp"
    sample_rate = 16000
    accepted_options = ("noise", "ids")

    def restore(self, batch: Sequence[Utterance], seed: int) -> list[Restoration]:
        level = float(self.options.get("noise", 0.01))
        ids = self.options.get("ids")
        out = []
        for utt in batch:
            assert utt.degraded is not None
            rng = np.random.default_rng(item_seed(seed, utt.id))
            noise = rng.standard_normal(len(utt.degraded.samples)).astype(np.float32) * level
            if ids is not None and utt.id not in ids:
                noise[:] = 0.0
            audio = Audio(utt.degraded.samples + noise, utt.degraded.sample_rate)
            out.append(Restoration(utt.id, audio, self.name, seed))
        return out


class LevelMetric(Metric):
    """Test metric: RMS level of the output in dBFS (cheap, non-intrusive).

    Option ``delay``: seconds to sleep per utterance, to make runs slow on purpose;
    ``setup_log``: a folder where each ``setup`` call appends its process id to ``setup.log``
    (to count how often workers load the metric); ``setup_error`` / ``score_error``: a message
    that ``setup`` / ``score_batch`` fails with (a metric whose weights are missing, or one
    that fails on every input).
    """

    name = "test-level"
    higher_is_better = True
    requires_reference = False
    sample_rate = 16000
    outputs = ("level_db",)
    accepted_options = ("delay", "setup_log", "setup_error", "score_error")

    def setup(self) -> None:
        folder = self.options.get("setup_log")
        if folder:
            with (Path(folder) / "setup.log").open("a") as handle:
                handle.write(f"{os.getpid()}\n")
        if self.options.get("setup_error"):
            raise RuntimeError(self.options["setup_error"])

    def score_batch(
        self, restorations: Sequence[Restoration], utterances: Sequence[Utterance]
    ) -> list[dict[str, float]]:
        delay = float(self.options.get("delay", 0.0))
        if delay:
            time.sleep(delay * len(restorations))
        if self.options.get("score_error"):
            raise RuntimeError(self.options["score_error"])
        return [
            {"level_db": float(10 * np.log10(np.mean(r.audio.samples.astype(np.float64) ** 2)))}
            for r in restorations
        ]


class SnrMetric(Metric):
    """Test metric: SNR of the output against the reference in dB (cheap, intrusive)."""

    name = "test-snr"
    higher_is_better = True
    requires_reference = True
    sample_rate = 16000
    outputs = ("snr_db",)
    min_duration = 0.25

    def score_batch(
        self, restorations: Sequence[Restoration], utterances: Sequence[Utterance]
    ) -> list[dict[str, float]]:
        out = []
        for r, u in zip(restorations, utterances, strict=True):
            assert u.reference is not None
            ref = u.reference.samples.astype(np.float64)
            err = r.audio.samples.astype(np.float64) - ref
            out.append({"snr_db": float(10 * np.log10(np.sum(ref**2) / np.sum(err**2)))})
        return out


class ListSuite(Suite):
    """Test suite over utterances given in memory (``utterances=`` option)."""

    name = "test-list"
    accepted_options = ("n",)  # recorded in the config, set from the utterances given

    def __init__(self, utterances: Sequence[Utterance] = (), limit: int | None = None) -> None:
        super().__init__(limit=limit, n=len(utterances))
        self._utterances = list(utterances)

    def iter_utterances(self) -> Iterator[Utterance]:
        yield from self._utterances

    def full_size(self) -> int:
        return len(self._utterances)

    def fingerprint(self) -> str:
        import hashlib

        digest = hashlib.sha256()
        for utt in self._utterances:
            digest.update(utt.id.encode())
            if utt.degraded is not None:
                digest.update(utt.degraded.content_hash().encode())
        return digest.hexdigest()[:16]


class ToySuite(Suite):
    """Test suite of ``size`` (default 8) deterministic noisy voiced utterances of 1 s."""

    name = "test-toy"
    accepted_options = ("size", "seconds")

    def __init__(self, limit: int | None = None, **options: Any) -> None:
        # Options go through the base class, which refuses unknown ones with a clear error
        # (keyword parameters here would raise a bare TypeError instead).
        options = {"size": 8, "seconds": 1.0, **options}
        super().__init__(limit=limit, **options)
        self.size = int(options["size"])
        self.seconds = float(options["seconds"])

    def iter_utterances(self) -> Iterator[Utterance]:
        for i in range(self.size):
            yield noisy_utterance(
                f"toy-{i:03d}",
                self.seconds,
                snr_db=float(i % 5) * 4.0,
                seed=i,
                degradation=("noise-low" if i % 2 else "noise-high"),
            )

    def full_size(self) -> int:
        return self.size


def check_metric_conformance(
    metric_cls: type[Metric], utterances: Sequence[Utterance] | None = None, **options: Any
) -> list[dict[str, float]]:
    """Conformance kit for metric authors: raise AssertionError on a broken contract.

    Checks the class attributes, that ``score_batch`` returns one dict per input with exactly
    the declared ``outputs`` as finite floats, that scoring is deterministic, and that a batch
    scores the same as its items one at a time. Returns the scores of ``utterances``.
    """
    assert isinstance(metric_cls.name, str) and metric_cls.name, "name must be a non-empty str"
    assert metric_cls.name == metric_cls.name.lower() and " " not in metric_cls.name, (
        f"name {metric_cls.name!r} must be lowercase and '-' separated"
    )
    assert isinstance(metric_cls.version, str) and metric_cls.version, "version must be a str"
    assert metric_cls.outputs, "outputs must name at least one value"
    for output in metric_cls.outputs:
        metric_cls.direction(output)  # raises KeyError when a mapping misses an output
    assert metric_cls.description(), "give the class a docstring: its first line is shown by ls"
    rate = metric_cls.sample_rate or 16000
    utts = list(utterances) if utterances is not None else tiny_utterances(3, 2.0, rate)
    metric = metric_cls(**options)
    metric.setup()
    restorations = as_restorations(utts)
    scores = metric.score_batch(restorations, utts)
    assert len(scores) == len(utts), "score_batch must return one dict per utterance"
    for item in scores:
        assert set(item) == set(metric_cls.outputs), (
            f"expected outputs {metric_cls.outputs}, got {sorted(item)}"
        )
        for key, value in item.items():
            assert isinstance(value, float) and math.isfinite(value), f"{key}={value!r}"
    again = metric.score_batch(restorations, utts)
    assert again == scores, "score_batch must be deterministic"
    singles = [metric.score_batch([r], [u])[0] for r, u in zip(restorations, utts, strict=True)]
    for single, batched in zip(singles, scores, strict=True):
        for key in batched:
            assert math.isclose(single[key], batched[key], rel_tol=1e-5, abs_tol=1e-6), (
                f"{key}: batched {batched[key]} != single {single[key]}"
            )
    return scores


def check_model_conformance(
    model_cls: type[RestorationModel],
    utterances: Sequence[Utterance] | None = None,
    **options: Any,
) -> list[Restoration]:
    """Conformance kit for model authors: raise AssertionError on a broken contract.

    Checks the class attributes, that ``restore`` returns one Restoration per input with the
    input's id and finite mono audio at the model's rate, that it is deterministic for a seed,
    and that an utterance's output does not depend on the rest of its batch (the
    ``item_seed`` rule). Returns the restorations of ``utterances``.
    """
    from gensr_bench.interfaces import PARADIGMS

    assert isinstance(model_cls.name, str) and model_cls.name, "name must be a non-empty str"
    assert model_cls.paradigm in PARADIGMS, f"paradigm must be one of {PARADIGMS}"
    assert model_cls.description(), "give the class a docstring: its first line is shown by ls"
    rate = model_cls.sample_rate
    utts = list(utterances) if utterances is not None else tiny_utterances(3, 1.0, rate)
    model = model_cls(**options)
    model.setup()
    first = model.restore(utts, seed=0)
    assert len(first) == len(utts), "restore must return one Restoration per utterance"
    for restoration, utt in zip(first, utts, strict=True):
        assert restoration.utterance_id == utt.id, "restorations must keep input order and ids"
        assert restoration.audio.sample_rate == rate, "output must be at the model's rate"
        assert len(restoration.audio.samples) > 0, "output must not be empty"
        assert np.isfinite(restoration.audio.samples).all(), "output must be finite"
    again = model.restore(utts, seed=0)
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(a.audio.samples, b.audio.samples), "restore must be deterministic"
    alone = model.restore(utts[-1:], seed=0)[0]
    assert np.array_equal(alone.audio.samples, first[-1].audio.samples), (
        "an output must not depend on the rest of its batch: draw randomness from "
        "item_seed(seed, utterance.id)"
    )
    return first


def check_suite_conformance(suite: Suite, limit: int = 3) -> list[Utterance]:
    """Conformance kit for suite authors: the first ``limit`` utterances of ``suite``.

    Checks ids are unique, audio is at the suite's rate, ``len`` agrees with iteration under a
    limit, iteration is repeatable and the fingerprint is stable.
    """
    assert suite.description(), "give the class a docstring: its first line is shown by ls"
    limited = type(suite)(limit=limit, **suite.options)
    first = list(limited)
    assert len(first) == len(limited) == min(limit, suite.full_size())
    assert len({u.id for u in first}) == len(first), "utterance ids must be unique"
    for utt in first:
        if utt.degraded is not None:
            assert utt.degraded.sample_rate == suite.sample_rate, f"{utt.id}: wrong rate"
    second = list(limited)
    assert [u.id for u in first] == [u.id for u in second], "iteration must be repeatable"
    assert limited.fingerprint() == type(suite)(limit=limit, **suite.options).fingerprint()
    return first


def write_plugin_file(directory: Path, source: str, stem: str | None = None) -> Path:
    """Write a local plugin file ``<stem>.py`` into ``directory`` and return its path.

    ``source`` is dedented, so tests can indent it. Without ``stem`` a unique one is drawn:
    local plugins are imported as ``gensr_bench_local.<stem>`` and cached per process, so
    unique stems keep one test's plugin from shadowing another's. The plugin loads under the
    name ``local.<stem>``.
    """
    import textwrap
    import uuid

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem or 'plugin_' + uuid.uuid4().hex[:12]}.py"
    path.write_text(textwrap.dedent(source))
    return path


def readme_code_block(readme: Path, first_line: str) -> str:
    """The fenced code block of ``readme`` whose first line is ``first_line``, byte for byte.

    Lets a test run the README's own example, so the test breaks when the example does.
    """
    text = readme.read_text()
    start = text.index(f"\n{first_line}\n") + 1
    return text[start : text.index("```", start)]


@dataclasses.dataclass(frozen=True)
class CliResult:
    """What one ``gensr-bench`` command line gave: its exit code and what it printed."""

    exit_code: int
    stdout: str
    stderr: str


def invoke_cli(args: Sequence[str]) -> CliResult:
    """Run ``gensr-bench ARGS`` as a user does, with click's ``CliRunner`` capturing output.

    Goes through ``gensr_bench.cli.main``, so plugin commands are registered (``--plugins-dir``
    included), library errors become ``error: ...`` on stderr and exit codes are the real ones
    (2 for unknown names and usage errors, 1 for other errors). Progress bars land in
    ``stderr``. With click 8.1 stderr is mixed into ``stdout`` and ``stderr`` is empty.
    """
    from click.testing import CliRunner

    from gensr_bench.cli import main

    with CliRunner().isolation() as streams:
        code = main(list(args))
        out, err = streams[0], streams[1]
        return CliResult(
            code, out.getvalue().decode(), "" if err is None else err.getvalue().decode()
        )


def toy_cli_run(
    out: Path,
    plugins_dir: Path,
    model: str = "test-echo",
    *,
    size: int = 6,
    metrics: str = "test-level,test-snr",
    limit: int | None = None,
    save_audio: bool = False,
    **model_options: Any,
) -> Path:
    """``gensr-bench run`` of ``model`` on ``test-toy`` (``size`` utterances of 1 s) into
    ``out``, with the test components loaded from ``plugins_dir`` (a folder whose plugin file
    registers them, such as ``tests/fixtures/toy_plugins``). One worker; model options are
    passed as JSON. Returns ``out``; raises AssertionError when the run fails.
    """
    import json

    from gensr_bench.cli import main

    args = ["--plugins-dir", str(plugins_dir), "run", "--suite", "test-toy"]
    args += ["--suite-option", f"size={size}", "--model", model, "--metrics", metrics]
    args += ["--workers", "1", "--out", str(out)]
    args += ["--limit", str(limit)] if limit is not None else []
    args += ["--save-audio"] if save_audio else []
    for key, value in model_options.items():
        args += ["--model-option", f"{key}={json.dumps(value)}"]
    code = main(args)
    assert code == 0, f"gensr-bench {' '.join(args)} exited with {code}"
    return out


Row = tuple[str, int, dict[str, Any], dict[str, Any], dict[str, Any]]


def run_rows(run_dir: Path) -> list[Row]:
    """What must not differ between two runs of the same work (backends, workers, shards):
    each row's id, suite position, scores, errors and meta, in suite order."""
    from gensr_bench.store import read_run

    return [
        (o.utterance_id, o.index, dict(o.scores), dict(o.errors), dict(o.meta))
        for o in read_run(run_dir).outputs
    ]


def scored_output(
    index: int,
    scores: Mapping[str, float | None],
    uid: str | None = None,
    **meta: Any,
) -> ScoredOutput:
    """A ScoredOutput for utterance ``utt-<index>`` (or ``uid``) with ``scores`` and ``meta``.

    Every ``None`` score gets an error under the same key, as the runner records failures.
    """
    return ScoredOutput(
        utterance_id=uid or f"utt-{index}",
        index=index,
        scores=dict(scores),
        errors={k: "failed in test" for k, v in scores.items() if v is None},
        meta=dict(meta),
    )


def sine(
    frequency: float, seconds: float = 0.1, sample_rate: int = 16000, amplitude: float = 0.5
) -> Audio:
    """A float32 sine of ``frequency`` Hz, ``seconds`` long, peak ``amplitude``."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return Audio((amplitude * np.sin(2 * math.pi * frequency * t)).astype(np.float32), sample_rate)


def tiny_preference_pairs(
    n_inputs: int = 2,
    pairs_per_input: int = 2,
    *,
    seconds: float = 0.1,
    sample_rate: int = 16000,
    model: str = "test-model",
) -> tuple[list[PreferencePair], dict[str, Audio]]:
    """Preference pairs over tiny sines, and the degraded input of each paired input.

    Input ``i`` is ``utt-<i>`` (degraded: a sine of ``200 + 50 i`` Hz); its pair ``j`` prefers
    candidate ``utt-<i>~c<2j>`` (seed ``2j``) to ``utt-<i>~c<2j+1>`` (seed ``2j+1``), every
    candidate a sine of its own frequency and level. Scores (``dnsmos_ovrl``, ``estoi``) are
    floats with long binary expansions, so an inexact round trip shows; criterion
    ``("dnsmos_ovrl", "estoi")``. Returns ``(pairs, degraded)``, ``degraded`` keyed by input id.
    """
    pairs = []
    degraded = {}
    for i in range(n_inputs):
        uid = f"utt-{i}"
        degraded[uid] = sine(200.0 + 50.0 * i, seconds, sample_rate, amplitude=0.3)
        for j in range(pairs_per_input):
            restorations = []
            for k in (2 * j, 2 * j + 1):
                audio = sine(
                    300.0 + 40.0 * i + 10.0 * k, seconds, sample_rate, amplitude=0.6 - 0.05 * k
                )
                restorations.append(Restoration(f"{uid}~c{k}", audio, model, seed=k))
            chosen, rejected = restorations
            pairs.append(
                PreferencePair(
                    input_id=uid,
                    chosen=chosen,
                    rejected=rejected,
                    chosen_scores={"dnsmos_ovrl": 3.0 + 1 / 3 + 0.1 * j, "estoi": 0.9 / 7},
                    rejected_scores={"dnsmos_ovrl": 2.0 + 1 / 7 + 0.1 * j, "estoi": 0.1 / 3},
                    criterion=("dnsmos_ovrl", "estoi"),
                )
            )
    return pairs, degraded


def tiny_wavlm(*, xvector: bool = False, seed: int = 0, num_layers: int = 3) -> tuple[Any, Any]:
    """A randomly initialised tiny WavLM and its feature extractor, for metric tests.

    Returns ``(model, feature_extractor)``: a ``WavLMModel`` (or, with ``xvector=True``, a
    ``WavLMForXVector`` with a weighted layer sum, as ``microsoft/wavlm-base-plus-sv``) in eval
    mode, 32-d with ``num_layers`` transformer layers and the real convolutional front end (a
    320-sample hop at 16 kHz), and a ``Wav2Vec2FeatureExtractor`` that normalises each
    signal. The weights depend only on ``seed`` (drawn under ``torch.random.fork_rng``, so the
    caller's random state is untouched). Needs torch and transformers; builds in well under
    a second.
    """
    import torch
    from transformers import (
        Wav2Vec2FeatureExtractor,
        WavLMConfig,
        WavLMForXVector,
        WavLMModel,
    )

    config = WavLMConfig(
        hidden_size=32,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        num_buckets=32,
        max_bucket_distance=64,
        tdnn_dim=(16, 16, 16, 16, 32),
        xvector_output_dim=16,
        use_weighted_layer_sum=xvector,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = (WavLMForXVector if xvector else WavLMModel)(config)
    model.eval()
    extractor = Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16000,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=True,
    )
    return model, extractor


def tiny_wavlm_dir(
    directory: Path, *, xvector: bool = False, seed: int = 0, num_layers: int = 3
) -> Path:
    """Save ``tiny_wavlm(...)`` with ``save_pretrained`` into ``directory`` and return it.

    The folder holds ``config.json``, ``model.safetensors`` and ``preprocessor_config.json``,
    the layout of a hub snapshot, so a metric's ``model`` option can point at it. The same
    arguments give the same weights as the in-memory ``tiny_wavlm``.
    """
    from transformers.utils import logging as transformers_logging

    model, extractor = tiny_wavlm(xvector=xvector, seed=seed, num_layers=num_layers)
    directory.mkdir(parents=True, exist_ok=True)
    bars = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()  # "Writing model shards" is noise in tests
    try:
        model.save_pretrained(directory)
    finally:
        if bars:
            transformers_logging.enable_progress_bar()
    extractor.save_pretrained(directory)
    return directory


# -- weights that cannot ship (non-redistributable licences) ----------------------------------

#: CI systems set ``CI=true``; the project's CI has the weights in ``../shared/weights``.
CI_ENV = "CI"


def in_ci() -> bool:
    """Whether the tests run under CI (``CI=true``, or ``CI=1``), where no weight may be absent."""
    return os.environ.get(CI_ENV, "").strip().lower() in {"true", "1"}


def shared_weights_dir(anchor: str | Path) -> Path | None:
    """``shared/weights`` beside the checkout that holds ``anchor``, or ``None`` outside one.

    The checkout is the nearest folder above ``anchor`` (pass a test's ``__file__``) with a
    ``pyproject.toml``; the project keeps the licensed weights in the folder ``shared`` next to
    it, never inside the repository. The result is where they would be; it need not exist.
    """
    for folder in Path(anchor).resolve().parents:
        if (folder / "pyproject.toml").is_file():
            return folder.parent / "shared" / "weights"
    return None


def require_weights(weight: WeightFile, anchor: str | Path, subfolder: str = "") -> Path:
    """The path of ``weight`` for a test that needs it; skips the test when it is absent.

    Looks where the plugins look (``--weights-dir``, ``GENSR_BENCH_WEIGHTS_DIR``, the cache
    folder), then in ``shared/weights/<subfolder>`` beside the checkout holding ``anchor``
    (see ``shared_weights_dir``). When the file is in none of them the calling test (or
    fixture) is skipped with a reason naming the file and ``GENSR_BENCH_WEIGHTS_DIR``; under
    ``CI=true`` it fails instead, since CI must run every test. A file that is there but has
    the wrong sha256 raises ``WeightsError`` everywhere. Call it inside a test or fixture::

        path = require_weights(WEIGHTS, __file__, "nisqa")
        monkeypatch.setenv(WEIGHTS_ENV, str(path.parent))
    """
    import pytest

    shared = shared_weights_dir(anchor)
    folders = [*weights_module.search_dirs(), *([shared / subfolder] if shared else [])]
    for folder in folders:
        path = folder / weight.filename
        if path.is_file():
            weights_module.verify(weight, path)
            return path
    looked = ", ".join(str(folder) for folder in folders)
    reason = (
        f"needs the weight file {weight.filename!r} ({weight.license or 'licence: see plugin'}), "
        f"not found in {looked}; point {weights_module.WEIGHTS_ENV} at the folder holding it"
    )
    if in_ci():
        pytest.fail(f"{reason} (CI=true: weight-needing tests must run in CI)", pytrace=False)
    pytest.skip(reason)


@contextlib.contextmanager
def torch_threads(n: int = 1) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, then restore the previous number.

    For tests on tiny tensors: a second thread saves nothing there, and on a busy machine its
    spin-waiting slows them down by an order of magnitude. Use it in a module fixture::

        @pytest.fixture(autouse=True, scope="module")
        def _one_torch_thread():
            with torch_threads(1):
                yield

    Needs torch.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


#: How to get what :func:`headless_chromium` needs (CI installs it in ``.ci/run``).
CHROMIUM_HELP = (
    "install Debian's browser and driver with `apt-get install -y chromium chromium-driver` "
    "(as root, or with sudo) and selenium with `pip install -e '.[dev]'`"
)


@contextlib.contextmanager
def headless_chromium(width: int = 1280, height: int = 900) -> Iterator[Any]:
    """A selenium WebDriver for headless Chromium, quit when the block ends.

    Uses the ``chromium`` and ``chromedriver`` found on PATH, given explicitly, so selenium
    never looks for (or downloads) a browser or driver. The browser's console is captured:
    read it with ``driver.get_log("browser")``. Raises RuntimeError saying how to install
    them when either is missing.
    """
    import shutil

    driver_path = shutil.which("chromedriver")
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if driver_path is None or browser is None:
        raise RuntimeError(
            f"headless Chromium is not available (chromium: {browser or 'not found'}, "
            f"chromedriver: {driver_path or 'not found'}); {CHROMIUM_HELP}"
        )
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        raise RuntimeError(f"selenium is not installed; {CHROMIUM_HELP}") from exc
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def utterance_digest(utterances: Sequence[Utterance]) -> str:
    """SHA-256 of utterances' content: id, audio bytes, transcript and meta (as sorted JSON).

    Two generations of a suite are the same exactly when their digests are equal: use it to
    check that a suite is deterministic for a seed, or that a cached read equals a fresh one.
    Audio is hashed as little-endian float32 with its rate and length.
    """
    import hashlib
    import json

    digest = hashlib.sha256()
    for utt in utterances:
        digest.update(utt.id.encode("utf-8") + b"\0")
        for audio in (utt.degraded, utt.reference):
            if audio is None:
                digest.update(b"none\0")
                continue
            samples = np.ascontiguousarray(audio.samples, dtype="<f4")
            digest.update(f"{audio.sample_rate}:{len(samples)}\0".encode())
            digest.update(samples.tobytes())
        digest.update(json.dumps(utt.transcript).encode("utf-8") + b"\0")
        digest.update(json.dumps(dict(utt.meta), sort_keys=True).encode("utf-8") + b"\0")
    return digest.hexdigest()
