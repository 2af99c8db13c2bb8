"""Evaluation: restore every utterance of a suite and score it with every metric.

``evaluate`` streams ``ScoredOutput`` records (memory stays flat); ``run_suite`` adds the run
store, resume, the score cache, provenance, the run hooks and the summary. Per-utterance
failures never stop a run: the affected outputs are ``None`` and the reason is kept in
``errors``. Nothing here prints.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import io
import math
import multiprocessing
import os
import pickle
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from gensr_bench import audio as audio_ops
from gensr_bench.errors import ConfigError, DiskFullError, GensrError, describe, disk_full_as_error
from gensr_bench.interfaces import Backend, Batch, Metric, RestorationModel, Suite
from gensr_bench.records import Audio, Restoration, RunResult, ScoredOutput, Utterance
from gensr_bench.store import ScoreCache

#: (new scored output, cache entries computed for it)
Processed = tuple[ScoredOutput, dict[str, dict[str, float]]]


def _prefixed(name: str, message: str) -> str:
    """``message`` led by the metric's name, once (metrics often name themselves already)."""
    while message.startswith(f"{name}: {name}: "):
        message = message[len(name) + 2 :]
    return message if message.startswith(f"{name}: ") else f"{name}: {message}"


def metric_identity(metric: Metric, rate: int) -> str:
    """What makes a metric's cached value reusable: name, version, options and scoring rate."""
    options = ",".join(f"{k}={metric.options[k]!r}" for k in sorted(metric.options))
    return f"{metric.name}|{metric.version}|{options}|{rate}"


@dataclass
class _Item:
    """Mutable per-utterance state while one batch is processed."""

    index: int
    utterance: Utterance
    scores: dict[str, float | None] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    flags: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    output: Audio | None = None
    resampled: dict[tuple[str, int], Audio] = field(default_factory=dict)

    def fail(self, names: Iterable[str], message: str) -> None:
        for name in names:
            if name not in self.errors:
                self.scores[name] = None
                self.errors[name] = message

    def at_rate(self, which: str, audio: Audio, rate: int) -> Audio:
        key = (which, rate)
        if key not in self.resampled:
            self.resampled[key] = audio_ops.resample(audio, rate)
        return self.resampled[key]


def audio_file_name(utterance_id: str) -> str:
    """A safe ``.wav`` file name for an utterance id (a hash keeps altered ids unique)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", utterance_id).lstrip(".")
    if safe != utterance_id or not safe:
        safe = f"{safe[:80]}-{hashlib.sha256(utterance_id.encode()).hexdigest()[:8]}"
    return f"{safe}.wav"


#: Flag under which a worker returns an output's audio for the caller to save (never stored).
COLLECTED_AUDIO = "_collected_audio"


def save_audio(audio_dir: Path, utterance_id: str, audio: Audio) -> str:
    """Write a scored output as ``audio_dir/<id>.wav`` (float); returns the file name."""
    name = audio_file_name(utterance_id)
    audio_dir.mkdir(parents=True, exist_ok=True)
    tmp = audio_dir / f".tmp-{name}"
    audio_ops.write_audio(tmp, audio)
    tmp.replace(audio_dir / name)
    return name


def score_each(
    metric: Metric, restorations: Sequence[Restoration], utterances: Sequence[Utterance]
) -> list[dict[str, float] | str]:
    """The metric's scores of every restoration, or the error text where it failed.

    One ``score_batch`` call; if it raises, each restoration is scored alone so that one bad
    output costs only its own score. Values must be finite numbers for every declared output.
    """
    try:
        batch = metric.score_batch(restorations, utterances)
        if len(batch) != len(restorations):
            raise GensrError(f"returned {len(batch)} results for {len(restorations)} inputs")
        return [_check_values(metric, values) for values in batch]
    except Exception as exc:
        if len(restorations) == 1:
            return [describe(exc)]
        return [_score_one(metric, r, u) for r, u in zip(restorations, utterances, strict=True)]


def _score_one(
    metric: Metric, restoration: Restoration, utterance: Utterance
) -> dict[str, float] | str:
    try:
        values = metric.score_batch([restoration], [utterance])
        if len(values) != 1:
            raise GensrError(f"returned {len(values)} results for 1 input")
        return _check_values(metric, values[0])
    except Exception as exc:
        return describe(exc)


def _check_values(metric: Metric, values: Mapping[str, Any]) -> dict[str, float] | str:
    missing = [n for n in metric.outputs if n not in values]
    if missing:
        return f"returned no value for {missing}"
    clean: dict[str, float] = {}
    for name in metric.outputs:
        value = values[name]
        # Only real numbers are scores: float() would turn "4.5" into 4.5 and True into 1.0.
        # bool is an int subclass, and numpy's bool is refused alongside it.
        if isinstance(value, bool | np.bool_) or not isinstance(
            value, int | float | np.integer | np.floating
        ):
            return (
                f"returned a value of type {type(value).__name__} for {name!r} ({value!r}); "
                "a metric's values must be real numbers (Python or numpy int or float), "
                "not bool, str or other types"
            )
        number = float(value)
        if not math.isfinite(number):
            return f"returned a non-finite value for {name}: {number}"
        clean[name] = number
    return clean


class BatchProcessor:
    """Restores and scores batches. One lives in each worker and loads its components once."""

    def __init__(
        self,
        model: RestorationModel,
        metrics: Sequence[Metric],
        cache: ScoreCache | None = None,
        audio_dir: str | Path | None = None,
    ) -> None:
        self.model = model
        self.metrics = list(metrics)
        self.cache = cache
        self.audio_dir = None if audio_dir is None else Path(audio_dir)
        #: Return each output's audio in ``flags[COLLECTED_AUDIO]`` instead of writing it to
        #: ``audio_dir`` (for workers that do not share the caller's file system); the caller
        #: (``evaluate``) saves it.
        self.collect_audio = False
        self.output_names = [name for m in self.metrics for name in m.outputs]
        self._ready: set[int] = set()
        self._setup_errors: dict[int, str] = {}

    def _ensure_setup(self, component: RestorationModel | Metric) -> str | None:
        """Set a component up the first time it has work (a fully cached rerun loads nothing).

        Returns the reason when setup failed; the failure is remembered, not retried per batch.
        """
        key = id(component)
        if key not in self._ready and key not in self._setup_errors:
            try:
                component.setup()
                self._ready.add(key)
            except Exception as exc:
                self._setup_errors[key] = f"setup of {component.name!r} failed: {describe(exc)}"
        return self._setup_errors.get(key)

    def process(self, batch: Sequence[tuple[int, Utterance]], seed: int) -> list[Processed]:
        items = [_Item(index, utt) for index, utt in batch]
        self._restore(items, seed)
        new_cache: list[dict[str, dict[str, float]]] = [{} for _ in items]
        for metric in self.metrics:
            self._score(metric, items, new_cache)
        results = []
        for item, cached in zip(items, new_cache, strict=True):
            scores = {name: item.scores.get(name) for name in self.output_names}
            scored = ScoredOutput(
                utterance_id=item.utterance.id,
                index=item.index,
                scores=scores,
                errors=dict(item.errors),
                meta=dict(item.utterance.meta),
                flags=dict(item.flags),
                timings=dict(item.timings),
            )
            results.append((scored, cached))
        return results

    # -- restoration ---------------------------------------------------------------------
    def _restore(self, items: list[_Item], seed: int) -> None:
        ready: list[_Item] = []
        for item in items:
            utt = item.utterance
            if utt.error is not None:
                item.fail(self.output_names, f"input could not be loaded: {utt.error}")
                continue
            try:
                audio_ops.validate(utt.degraded, f"degraded audio of utterance {utt.id!r}")
            except GensrError as exc:
                item.fail(self.output_names, str(exc))
                continue
            ready.append(item)
        if not ready:
            return
        inputs = [self._model_input(item) for item in ready]
        failure = self._ensure_setup(self.model)
        if failure is not None:
            for item in ready:
                item.fail(self.output_names, failure)
            return
        start = time.perf_counter()
        try:
            outputs: list[Restoration | BaseException] = list(self.model.restore(inputs, seed))
            if len(outputs) != len(inputs):
                raise GensrError(
                    f"model {self.model.name!r} returned {len(outputs)} restorations for "
                    f"{len(inputs)} inputs"
                )
        except Exception:
            # Isolate the failing utterance(s): restore one at a time.
            outputs = []
            for utt in inputs:
                try:
                    outputs.extend(self.model.restore([utt], seed))
                except Exception as exc:
                    outputs.append(exc)
        per_item = (time.perf_counter() - start) / len(ready)
        for item, out in zip(ready, outputs, strict=True):
            item.timings["model_s"] = per_item
            if isinstance(out, BaseException):
                item.fail(self.output_names, f"model {self.model.name!r} failed: {describe(out)}")
                continue
            try:
                valid = audio_ops.validate(
                    out.audio, f"output of model {self.model.name!r} for {item.utterance.id!r}"
                )
            except GensrError as exc:
                item.fail(self.output_names, str(exc))
                continue
            limited, gain = audio_ops.limit_peak(valid)
            if gain != 1.0:
                item.flags["peak_normalised_gain"] = gain
            item.output = limited
            if self.audio_dir is not None:
                if self.collect_audio:
                    item.flags[COLLECTED_AUDIO] = limited
                else:
                    item.flags["audio"] = save_audio(self.audio_dir, item.utterance.id, limited)

    def _model_input(self, item: _Item) -> Utterance:
        utt = item.utterance
        rate = self.model.sample_rate
        assert utt.degraded is not None
        if utt.degraded.sample_rate == rate and (
            utt.reference is None or utt.reference.sample_rate == rate
        ):
            return utt
        item.flags.setdefault("resampled", {})["model"] = f"{utt.degraded.sample_rate}->{rate}"
        return replace(
            utt,
            degraded=audio_ops.resample(utt.degraded, rate),
            reference=None if utt.reference is None else audio_ops.resample(utt.reference, rate),
        )

    # -- scoring ---------------------------------------------------------------------------
    def _score(
        self, metric: Metric, items: list[_Item], new_cache: list[dict[str, dict[str, float]]]
    ) -> None:
        names = list(metric.outputs)
        pending: list[tuple[int, Restoration, Utterance, str]] = []
        for position, item in enumerate(items):
            if item.output is None:
                continue
            prepared = self._prepare(metric, item)
            if isinstance(prepared, str):
                item.fail(names, _prefixed(metric.name, prepared))
                continue
            restoration, utterance, key = prepared
            hit = self.cache.get(key) if self.cache is not None else None
            if hit is not None and set(hit) == set(names):
                item.scores.update(hit)
                item.flags.setdefault("cached", []).append(metric.name)
                continue
            pending.append((position, restoration, utterance, key))
        if not pending:
            return
        failure = self._ensure_setup(metric)
        if failure is not None:
            for position, *_ in pending:
                items[position].fail(names, _prefixed(metric.name, failure))
            return
        start = time.perf_counter()
        results = score_each(metric, [p[1] for p in pending], [p[2] for p in pending])
        per_item = (time.perf_counter() - start) / len(pending)
        for (position, _, _, key), result in zip(pending, results, strict=True):
            item = items[position]
            item.timings[f"{metric.name}_s"] = per_item
            if isinstance(result, str):
                item.fail(names, _prefixed(metric.name, result))
                continue
            item.scores.update(result)
            new_cache[position][key] = result

    def _prepare(self, metric: Metric, item: _Item) -> tuple[Restoration, Utterance, str] | str:
        utt = item.utterance
        assert item.output is not None and utt.degraded is not None
        if metric.requires_reference and utt.reference is None:
            return "needs a reference, and this utterance has none"
        native = (utt.reference or utt.degraded).sample_rate
        rate = metric.sample_rate or native
        if item.output.sample_rate != rate:  # recorded so results say what was scored
            item.flags.setdefault("resampled", {})[metric.name] = (
                f"{item.output.sample_rate}->{rate}"
            )
        try:
            output = audio_ops.validate(
                item.at_rate("output", item.output, rate),
                f"output for {utt.id!r} at {rate} Hz",
                metric.min_duration,
            )
            reference = None
            if utt.reference is not None:
                reference = item.at_rate("reference", utt.reference, rate)
                if metric.requires_reference:  # a metric that ignores it does not fail on it
                    reference = audio_ops.validate(
                        reference, f"reference of {utt.id!r}", metric.min_duration
                    )
            degraded = item.at_rate("degraded", utt.degraded, rate)
        except GensrError as exc:
            return str(exc)
        if metric.requires_reference and reference is not None:
            output, reference, dropped = audio_ops.match_lengths(output, reference)
            if dropped:
                item.flags["length_trimmed_samples"] = dropped
        restoration = Restoration(utt.id, output, self.model.name)
        scored_utt = replace(utt, degraded=degraded, reference=reference)
        reference_key = (
            reference.content_hash() if (metric.requires_reference and reference) else None
        )
        if metric.uses_transcript:
            reference_key = f"{reference_key}|transcript:{utt.transcript!r}"
        key = ScoreCache.key(metric_identity(metric, rate), output.content_hash(), reference_key)
        return restoration, scored_utt, key


# -- the local backend: this process, or worker processes on this machine -------------------
_WORKER: BatchProcessor | None = None


def init_worker(payload: bytes, plugin_dirs: Sequence[str], threads: int) -> BatchProcessor:
    """Set a worker up: thread counts, then the unpickled processor.

    Local plugin files (``gensr_bench_local.<stem>``, from ``plugin_dirs``) that the model or
    metrics come from are imported while the payload is unpickled. Shared by every backend
    whose workers are separate processes (``local``, ``ray``).
    """
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover - torch is a dependency, but metrics need not use it
        pass
    processor: BatchProcessor = _PluginUnpickler(io.BytesIO(payload), plugin_dirs).load()
    return processor


class _PluginUnpickler(pickle.Unpickler):
    """Unpickles a payload, importing the local plugin files its classes come from on demand."""

    def __init__(self, file: io.BytesIO, plugin_dirs: Sequence[str]) -> None:
        super().__init__(file)
        self.plugin_dirs = list(plugin_dirs)

    def find_class(self, module: str, name: str) -> Any:
        from gensr_bench.plugins import LOCAL_MODULE_PREFIX, import_local_module

        if module.startswith(f"{LOCAL_MODULE_PREFIX}."):
            import_local_module(module, self.plugin_dirs)
        return super().find_class(module, name)


def worker_payload(
    processor: BatchProcessor, plugin_dirs: Sequence[str]
) -> tuple[bytes, list[str]]:
    """The pickled processor and the absolute plugin folders for workers to set up from.

    Folders are made absolute here because a worker need not start in the caller's directory.
    """
    try:
        payload = pickle.dumps(processor)
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise GensrError(
            f"the model and metrics cannot be sent to worker processes: {describe(exc)}; "
            "define them at the top level of an importable module or a local plugin file, "
            "or run with --workers 1"
        ) from exc
    return payload, [str(Path(d).resolve()) for d in plugin_dirs]


#: Seconds between a worker's checks that the process that started it is still alive.
PARENT_POLL_S = 0.5


def watch_parent(parent_pid: int, interval: float = PARENT_POLL_S) -> threading.Thread:
    """Exit this (worker) process as soon as ``parent_pid`` is no longer its parent.

    A worker blocks on its task queue, whose pipe it also holds open for writing, so it never
    sees the end of the queue when the caller is killed (``kill -9``, an out-of-memory kill):
    without this it would live on, holding its model and metrics in memory. The dead parent's
    children are re-parented (to init or a subreaper), which ``os.getppid`` shows on every
    platform; ``os._exit`` because the interpreter's shutdown could block on the dead pool.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval)
        os._exit(1)

    thread = threading.Thread(target=watch, name="gensr-parent-watchdog", daemon=True)
    thread.start()
    return thread


def _init_pool_worker(
    payload: bytes, plugin_dirs: Sequence[str], threads: int, parent_pid: int
) -> None:
    global _WORKER
    watch_parent(parent_pid)  # first: loading the metrics can take long
    _WORKER = init_worker(payload, plugin_dirs, threads)


def _work(batch: Sequence[tuple[int, Utterance]], seed: int) -> list[Processed]:
    assert _WORKER is not None, "worker not initialised"
    return _WORKER.process(batch, seed)


class LocalBackend(Backend):
    """This machine: the calling process (1 worker) or spawned worker processes (default)."""

    name = "local"
    version = "1"
    accepted_options = ()

    def map_batches(
        self,
        processor: BatchProcessor,
        batches: Iterator[Batch],
        seed: int,
        *,
        workers: int,
        plugin_dirs: Sequence[str] = (),
    ) -> Iterator[list[Processed]]:
        if workers == 1:
            for batch in batches:
                yield processor.process(batch, seed)
            return
        if processor.cache is not None:
            processor.cache.prepare()  # workers then only read a database already in WAL mode
        payload, dirs = worker_payload(processor, plugin_dirs)
        threads = max(1, (os.cpu_count() or 1) // workers)
        context = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=_init_pool_worker,
            initargs=(payload, dirs, threads, os.getpid()),
        ) as pool:
            yield from bounded(
                lambda batch: pool.submit(_work, batch, seed), batches, 2 * workers, _wait_any
            )


def _wait_any(pending: set[Any]) -> tuple[list[Any], set[Any]]:
    done, rest = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
    return [future.result() for future in done], set(rest)


def bounded(
    submit: Callable[[Batch], Any],
    batches: Iterator[Batch],
    limit: int,
    wait_any: Callable[[set[Any]], tuple[list[Any], set[Any]]],
) -> Iterator[Any]:
    """Keep at most ``limit`` submitted batches in flight; yield results as they complete.

    ``submit`` starts one batch and returns its handle (a future, a Ray object ref);
    ``wait_any(pending)`` blocks until at least one is done and returns (their results, the
    handles still pending). Batches are drawn lazily, so memory stays flat.
    """
    pending: set[Any] = set()
    exhausted = False
    while True:
        while not exhausted and len(pending) < limit:
            batch = next(batches, None)
            if batch is None:
                exhausted = True
                break
            pending.add(submit(batch))
        if not pending:
            return
        results, pending = wait_any(pending)
        yield from results


def _batched(
    items: Iterable[tuple[int, Utterance]], size: int
) -> Iterator[list[tuple[int, Utterance]]]:
    batch: list[tuple[int, Utterance]] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/N"`` -> ``(i, N)`` with ``0 <= i < N``; ConfigError with the fix otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if match is None:
        raise ConfigError(
            f"shard {text!r} is not of the form i/N (e.g. 0/4 for the first of four shards)"
        )
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 0 <= index < count:
        raise ConfigError(
            f"shard {text!r} is out of range: N must be at least 1 and i one of 0 .. N-1 "
            f"(shards of a 4-way split are 0/4, 1/4, 2/4 and 3/4)"
        )
    return index, count


def in_shard(position: int, shard: tuple[int, int] | None) -> bool:
    """Whether the utterance at ``position`` of the suite belongs to ``shard`` (round robin)."""
    return shard is None or position % shard[1] == shard[0]


def shard_size(total: int, shard: tuple[int, int] | None) -> int:
    """How many of ``total`` utterances ``shard`` holds."""
    if shard is None:
        return total
    index, count = shard
    return total // count + (1 if index < total % count else 0)


def evaluate(
    model: RestorationModel,
    utterances: Iterable[Utterance],
    metrics: Sequence[Metric],
    *,
    seed: int = 0,
    workers: int = 1,
    batch_size: int = 4,
    skip: frozenset[str] | set[str] = frozenset(),
    cache: ScoreCache | None = None,
    plugin_dirs: Sequence[str] = (),
    audio_dir: str | Path | None = None,
    backend: Backend | None = None,
    shard: tuple[int, int] | None = None,
) -> Iterator[ScoredOutput]:
    """Restore and score every utterance not in ``skip``; yields results as they complete.

    ``backend`` (default: :class:`LocalBackend`) decides where batches run; each worker loads
    the model and metrics once, and a bounded number of batches is in flight so memory stays
    flat. With ``shard=(i, N)`` only the utterances at positions ``p`` with ``p % N == i`` are
    processed. New metric values are written to ``cache`` here, in the calling process; audio
    a worker returns instead of saving (``BatchProcessor.collect_audio``) is saved here too.
    """
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}")
    seen: set[str] = set()

    def numbered() -> Iterator[tuple[int, Utterance]]:
        for index, utt in enumerate(utterances):
            if utt.id in seen:
                raise ConfigError(
                    f"utterance id {utt.id!r} occurs twice in the suite; ids must be unique"
                )
            seen.add(utt.id)
            if utt.id not in skip and in_shard(index, shard):
                yield index, utt

    def finish(results: list[Processed]) -> Iterator[ScoredOutput]:
        if cache is not None:
            merged: dict[str, dict[str, float]] = {}
            for _, entries in results:
                merged.update(entries)
            cache.put_many(merged)
        for scored, _ in results:
            audio = scored.flags.get(COLLECTED_AUDIO)
            if audio is not None and audio_dir is not None:
                flags = {k: v for k, v in scored.flags.items() if k != COLLECTED_AUDIO}
                flags["audio"] = save_audio(Path(audio_dir), scored.utterance_id, audio)
                scored = replace(scored, flags=flags)
            yield scored

    processor = BatchProcessor(model, metrics, cache, audio_dir)
    chosen = backend if backend is not None else LocalBackend()
    batches = _batched(numbered(), batch_size)
    for results in chosen.map_batches(
        processor, batches, seed, workers=workers, plugin_dirs=plugin_dirs
    ):
        yield from finish(results)


Callback = Callable[[ScoredOutput], None]


# -- whole runs ---------------------------------------------------------------------------
@dataclass(frozen=True)
class RunOptions:
    """How a run executes; none of these change its scores (so none is part of its config)."""

    seed: int = 0
    workers: int = 1
    batch_size: int = 4
    resume: bool = False
    overwrite: bool = False
    use_cache: bool = True
    cache_path: str | None = None
    plugin_dirs: tuple[str, ...] = ()
    #: Keep every scored output as ``OUT/audio/<id>.wav`` (named in ``flags.audio``).
    save_audio: bool = False
    #: Where batches run (``None``: the local backend).
    backend: Backend | None = None
    #: ``(i, N)``: only the utterances at positions ``p % N == i`` (a part of a job array; the
    #: parts are joined with ``merge_runs``). Recorded in the run's config.
    shard: tuple[int, int] | None = None


def run_config(
    model: RestorationModel,
    suite: Suite,
    metrics: Sequence[Metric],
    seed: int,
    shard: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """What determines a run's scores; a resumed run must match it exactly.

    A shard's config is the whole run's plus ``"shard": [i, N]``.
    """
    config = {
        "model": model.config(),
        "suite": {**suite.config(), "limit": suite.limit, "fingerprint": suite.fingerprint()},
        "metrics": [metric.config() for metric in metrics],
        "seed": seed,
    }
    if shard is not None:
        config["shard"] = list(shard)
    return config


def git_commit() -> dict[str, Any] | None:
    import subprocess

    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(dirty)}


#: The x86 instruction-set flags (of /proc/cpuinfo) that decide which numeric kernels MKL,
#: oneDNN and torch run, and so how float results round: provenance records the ones present.
NUMERIC_CPU_FLAGS = (
    "sse4_1",
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx_vnni",
    "avx512f",
    "avx512dq",
    "avx512cd",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
)


def cpu_info(cpuinfo: str | None = None) -> dict[str, Any]:
    """The CPU model, its numeric instruction-set flags (sorted; ``NUMERIC_CPU_FLAGS`` and
    every ``amx_*``; empty where ``/proc/cpuinfo`` cannot be read) and the vector code path
    torch chose (``None`` when torch is not loaded: it is not imported just for this).

    ``cpuinfo``: the text of ``/proc/cpuinfo`` (read from there by default).
    """
    import platform
    import sys

    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:  # the first processor speaks for all
            fields[key.strip()] = value.strip()
    present = set(fields.get("flags", "").split())
    flags = sorted(f for f in present if f in NUMERIC_CPU_FLAGS or f.startswith("amx_"))
    torch = sys.modules.get("torch")
    capability = None
    if torch is not None:
        try:
            capability = str(torch.backends.cpu.get_cpu_capability())
        except (AttributeError, RuntimeError):  # a torch without it, or one half-imported
            capability = None
    return {
        "model": fields.get("model name") or platform.processor() or None,
        "flags": flags,
        "torch_capability": capability,
    }


def collect_provenance(
    pm: Any, model: RestorationModel, suite: Suite, metrics: Sequence[Metric], seed: int
) -> dict[str, Any]:
    """Everything a result must record to be reproduced and compared (DESIGN section 4)."""
    import platform
    import socket
    from dataclasses import asdict

    import gensr_bench
    from gensr_bench.plugins import plugin_infos

    return {
        "gensr_bench_version": gensr_bench.__version__,
        "git": git_commit(),
        "plugins": [asdict(info) for info in plugin_infos(pm)] if pm is not None else [],
        "components": {
            "model": {
                "name": model.name,
                "version": model.version,
                "paradigm": model.paradigm,
                "class": f"{type(model).__module__}.{type(model).__qualname__}",
                "waveform_tolerance": model.waveform_tolerance,
            },
            "suite": {
                "name": suite.name,
                "version": suite.version,
                "class": f"{type(suite).__module__}.{type(suite).__qualname__}",
            },
            "metrics": [
                {
                    "name": m.name,
                    "version": m.version,
                    "class": f"{type(m).__module__}.{type(m).__qualname__}",
                }
                for m in metrics
            ],
        },
        "metric_weights_sha256": {m.name: m.weights_sha256() for m in metrics},
        "model_checkpoint_sha256": model.checkpoint_hash(),
        "suite_fingerprint": suite.fingerprint(),
        "seed": seed,
        "machine": {
            "hostname": socket.gethostname(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "cpu": cpu_info(),
        },
    }


def finish_run(
    store: Any,
    config: Mapping[str, Any],
    provenance: Mapping[str, Any],
    directions: dict[str, bool],
) -> RunResult:
    """Summarise every output of a store (``directions``: output -> higher is better, in table
    order), mark the run finished and write ``summary.json`` and ``scores.jsonl``."""
    from gensr_bench.stats import summarise
    from gensr_bench.store import write_exports

    outputs = list(store.outputs())
    seed = int(config.get("seed", 0))
    summaries = summarise(outputs, list(directions), directions.__getitem__, seed)
    result = RunResult(
        run_id=os.path.basename(os.path.abspath(store.out_dir)),
        config=dict(config),
        provenance=dict(provenance),
        summaries=tuple(summaries),
        n_utterances=len(outputs),
    )
    store.set_info("status", "finished")
    write_exports(store, result)
    return result


def run_suite(
    model: RestorationModel,
    suite: Suite,
    metrics: Sequence[Metric],
    out_dir: str | Path,
    options: RunOptions = RunOptions(),
    pm: Any = None,
    on_start: Callable[[int, int], None] | None = None,
    on_output: Callback | None = None,
) -> RunResult:
    """Evaluate ``model`` on ``suite`` into the run store at ``out_dir`` and summarise it.

    Scores are committed one utterance at a time; with ``options.resume`` finished utterances
    are skipped. ``on_start(total, already_done)`` and ``on_output(scored)`` let a caller show
    progress. Writes ``summary.json`` and ``scores.jsonl`` next to the store when done.
    """
    from gensr_bench.store import RunStore

    if not metrics:
        raise ConfigError("no metrics selected; pass --metrics or install a metric plugin")
    store = RunStore(out_dir)
    config = run_config(model, suite, metrics, options.seed, options.shard)
    store.create(config, resume=options.resume, overwrite=options.overwrite)
    try:
        done = store.done_ids() if options.resume else set()
        provenance = collect_provenance(pm, model, suite, metrics, options.seed)
        history = store.get_info("sessions") or []
        history.append(
            {
                "started_at": time.time(),
                "already_done": len(done),
                "workers": options.workers,
                "batch_size": options.batch_size,
                "backend": options.backend.name if options.backend is not None else "local",
            }
        )
        store.set_info("provenance", provenance)
        store.set_info("sessions", history)
        run_info = {"out_dir": str(out_dir), "config": config, "provenance": provenance}
        if pm is not None:
            pm.hook.gensr_run_started(run=run_info)
        if on_start is not None:
            on_start(shard_size(len(suite), options.shard), len(done))
        cache = None
        if options.use_cache:
            cache = ScoreCache(options.cache_path)
        start = time.perf_counter()
        for scored in evaluate(
            model,
            suite,
            metrics,
            seed=options.seed,
            workers=options.workers,
            batch_size=options.batch_size,
            skip=done,
            cache=cache,
            plugin_dirs=options.plugin_dirs,
            audio_dir=Path(out_dir) / "audio" if options.save_audio else None,
            backend=options.backend,
            shard=options.shard,
        ):
            store.write(scored)
            if on_output is not None:
                on_output(scored)
        history[-1]["wall_s"] = time.perf_counter() - start
        store.set_info("sessions", history)
        directions = {name: m.direction(name) for m in metrics for name in m.outputs}
        result = finish_run(store, config, {**provenance, "sessions": history}, directions)
        if pm is not None:
            pm.hook.gensr_run_finished(run=run_info, result=result)
        if cache is not None:
            cache.close()
        return result
    finally:
        store.close()


def merge_runs(
    run_dirs: Sequence[str | Path], out_dir: str | Path, *, overwrite: bool = False
) -> RunResult:
    """Join the finished shards ``i/N`` of one run (``--shard``) into the run they split.

    Every shard must have the same configuration apart from ``shard`` and the same ``N``; each
    ``i`` must appear exactly once, and each shard must be finished. The merged store holds
    every shard's rows, the configuration of an unsharded run (so the result compares, reports
    and resumes as one), the shards' sessions, and its summary is computed as ``run_suite``
    computes it: the scores and summaries equal those of one run over the whole suite. Each
    output's direction is read from the shards' own summaries. Saved audio (``audio/``) is
    copied.
    """
    import json
    import shutil

    from gensr_bench.store import RunStore

    if not run_dirs:
        raise ConfigError("name the shard folders to merge (the --out of each --shard run)")
    shards: dict[int, tuple[Path, dict[str, Any]]] = {}
    directions: dict[str, bool] = {}
    base: dict[str, Any] | None = None
    count: int | None = None
    for run_dir in map(Path, run_dirs):
        store = RunStore(run_dir)
        try:
            config = store.get_info("config")
            status = store.get_info("status")
        finally:
            store.close()
        shard = (config or {}).get("shard")
        if shard is None:
            raise ConfigError(
                f"{run_dir} is not a shard: its run was made without --shard i/N; merge only "
                "the parts of one sharded run"
            )
        if status != "finished":
            raise ConfigError(
                f"shard {shard[0]}/{shard[1]} in {run_dir} is not finished; complete it by "
                "rerunning its command with --resume, then merge"
            )
        rest = {k: v for k, v in config.items() if k != "shard"}
        if base is None:
            base, count = rest, int(shard[1])
        elif rest != base:
            differing = sorted(k for k in set(rest) | set(base) if rest.get(k) != base.get(k))
            raise ConfigError(
                f"{run_dir} is a shard of a different run (its configuration differs in "
                f"{differing}); merge the shards of one command line only"
            )
        if int(shard[1]) != count:
            raise ConfigError(
                f"{run_dir} is shard {shard[0]}/{shard[1]}, but the others split the run into "
                f"{count}; all shards must use the same N"
            )
        if int(shard[0]) in shards:
            raise ConfigError(
                f"shard {shard[0]}/{count} given twice: {shards[int(shard[0])][0]} and {run_dir}"
            )
        shards[int(shard[0])] = (run_dir, config)
        try:
            summary = json.loads((run_dir / "summary.json").read_text())
            for item in summary["summaries"]:
                directions[item["output"]] = bool(item["higher_is_better"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"cannot read the summary of shard {shard[0]}/{shard[1]} in {run_dir} "
                f"({exc}); finish it by rerunning its command with --resume"
            ) from exc
    assert base is not None and count is not None
    missing = sorted(set(range(count)) - set(shards))
    if missing:
        raise ConfigError(
            f"cannot merge: shard(s) {', '.join(f'{i}/{count}' for i in missing)} missing; "
            "run them and pass every shard's folder"
        )
    target = RunStore(out_dir)
    try:
        target.create(base, resume=False, overwrite=overwrite)
        sessions: list[Any] = []
        provenance: dict[str, Any] = {}
        seen: dict[str, Path] = {}
        for index in range(count):
            run_dir, _ = shards[index]
            source = RunStore(run_dir)
            try:
                for output in source.outputs():
                    if output.utterance_id in seen:
                        raise ConfigError(
                            f"utterance {output.utterance_id!r} is in {seen[output.utterance_id]}"
                            f" and in {run_dir}; these shards overlap"
                        )
                    seen[output.utterance_id] = run_dir
                    target.write(output)
                shard_provenance = source.get_info("provenance") or {}
                sessions.extend(
                    {**session, "shard": f"{index}/{count}", "run_dir": str(run_dir)}
                    for session in (source.get_info("sessions") or [])
                )
            finally:
                source.close()
            provenance = provenance or shard_provenance
            audio = run_dir / "audio"
            if audio.is_dir():
                shutil.copytree(
                    audio, Path(out_dir) / "audio", dirs_exist_ok=True, copy_function=_copy_file
                )
        provenance = {**provenance, "merged_from": [str(shards[i][0]) for i in range(count)]}
        target.set_info("provenance", provenance)
        target.set_info("sessions", sessions)
        # Every row lists every output of the run, in the metrics' order (BatchProcessor).
        first = next(target.outputs(), None)
        names = list(first.scores) if first is not None else []
        ordered = {name: directions[name] for name in names}
        return finish_run(target, base, {**provenance, "sessions": sessions}, ordered)
    except DiskFullError as exc:
        # A merge has no --resume: it is redone whole, over its own partial output.
        raise DiskFullError(exc.folder, exc.detail, "rerun the merge with --overwrite") from exc
    finally:
        target.close()


def _copy_file(source: str, destination: str) -> str:
    """``shutil.copy2`` that raises DiskFullError on a full disk (``copytree`` would collect
    the OSError into a ``shutil.Error`` of strings and lose its errno)."""
    import shutil

    with disk_full_as_error(Path(destination).parent):
        return str(shutil.copy2(source, destination))
