"""Batches on workers: restore and score one batch (``BatchProcessor``), set worker processes
up from a pickled processor, keep a bounded number of batches in flight, and the local backend.

Nothing here prints; per-utterance failures become ``None`` scores with the reason in ``errors``.
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
from gensr_bench.errors import BatchRestorationError, GensrError, describe
from gensr_bench.interfaces import Backend, Batch, Metric, RestorationModel
from gensr_bench.records import Audio, Restoration, ScoredOutput, Utterance
from gensr_bench.store import ScoreCache

#: (new scored output, cache entries computed for it)
Processed = tuple[ScoredOutput, dict[str, dict[str, float]]]


def prefixed(name: str, message: str) -> str:
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


def per_utterance(
    error: BatchRestorationError, size: int
) -> list[Restoration | BaseException] | None:
    """A batch's outcomes from a model's :class:`BatchRestorationError` (each failure as an
    error carrying its reason); ``None`` when they do not match the ``size`` of the batch."""
    if len(error.outcomes) != size:
        return None
    return [
        outcome if isinstance(outcome, Restoration) else GensrError(outcome)
        for outcome in error.outcomes
    ]


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
        outputs: list[Restoration | BaseException]
        try:
            outputs = list(self.model.restore(inputs, seed))
            if len(outputs) != len(inputs):
                raise GensrError(
                    f"model {self.model.name!r} returned {len(outputs)} restorations for "
                    f"{len(inputs)} inputs"
                )
        except BatchRestorationError as exc:
            outputs = per_utterance(exc, len(inputs)) or self._restore_each(inputs, seed)
        except Exception:
            outputs = self._restore_each(inputs, seed)
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

    def _restore_each(
        self, inputs: Sequence[Utterance], seed: int
    ) -> list[Restoration | BaseException]:
        """Isolate the failing utterance(s) of a batch: restore one at a time."""
        outputs: list[Restoration | BaseException] = []
        for utt in inputs:
            try:
                outputs.extend(self.model.restore([utt], seed))
            except BatchRestorationError as exc:
                outputs.extend(per_utterance(exc, 1) or [exc])
            except Exception as exc:
                outputs.append(exc)
        return outputs

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
                item.fail(names, prefixed(metric.name, prepared))
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
                items[position].fail(names, prefixed(metric.name, failure))
            return
        start = time.perf_counter()
        results = score_each(metric, [p[1] for p in pending], [p[2] for p in pending])
        per_item = (time.perf_counter() - start) / len(pending)
        for (position, _, _, key), result in zip(pending, results, strict=True):
            item = items[position]
            item.timings[f"{metric.name}_s"] = per_item
            if isinstance(result, str):
                item.fail(names, prefixed(metric.name, result))
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


def batched(
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
