"""Evaluation: restore every utterance of a suite and score it with every metric.

``evaluate`` streams ``ScoredOutput`` records (memory stays flat); ``run_suite`` adds the run
store, resume, the score cache, provenance, the run hooks and the summary. Per-utterance
failures never stop a run: the affected outputs are ``None`` and the reason is kept in
``errors``. Nothing here prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from gensr_bench.devices import device_description, place, resolve_device
from gensr_bench.errors import ConfigError
from gensr_bench.execution import (
    COLLECTED_AUDIO,
    PARENT_POLL_S,
    BatchProcessor,
    LocalBackend,
    Processed,
    audio_file_name,
    batched,
    bounded,
    init_worker,
    metric_identity,
    prefixed,
    save_audio,
    score_each,
    watch_parent,
    worker_payload,
)
from gensr_bench.interfaces import Backend, Metric, RestorationModel, Suite
from gensr_bench.outcome import finish_run
from gensr_bench.provenance import (
    NUMERIC_CPU_FLAGS,
    collect_provenance,
    cpu_info,
    git_commit,
    run_config,
)
from gensr_bench.records import RunResult, ScoredOutput, Utterance
from gensr_bench.shards import in_shard, merge_runs, parse_shard, shard_size
from gensr_bench.store import ScoreCache

if TYPE_CHECKING:
    from gensr_bench.plugins import GensrPluginManager

__all__ = [
    "COLLECTED_AUDIO",
    "NUMERIC_CPU_FLAGS",
    "PARENT_POLL_S",
    "BatchProcessor",
    "Callback",
    "LocalBackend",
    "Processed",
    "RunOptions",
    "audio_file_name",
    "bounded",
    "collect_provenance",
    "cpu_info",
    "evaluate",
    "finish_run",
    "git_commit",
    "in_shard",
    "init_worker",
    "merge_runs",
    "metric_identity",
    "parse_shard",
    "prefixed",
    "run_config",
    "run_suite",
    "save_audio",
    "score_each",
    "shard_size",
    "watch_parent",
    "worker_payload",
]


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
    batches = batched(numbered(), batch_size)
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
    #: A meta key (e.g. ``degradation``) to break the means down by (``RunResult.breakdown``).
    by: str | None = None
    #: ``--device``: auto, cpu or cuda (gensr_bench.devices); recorded in provenance.
    device: str = "cpu"


def run_suite(
    model: RestorationModel,
    suite: Suite,
    metrics: Sequence[Metric],
    out_dir: str | Path,
    options: RunOptions = RunOptions(),
    pm: GensrPluginManager | None = None,
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
    # Placed before the config: a component whose scores depend on its device (Whisper's
    # compute type) records it there. A bad device fails here, before the store is written.
    device = resolve_device(options.device)
    placed = place([model, *metrics], device)
    config = run_config(model, suite, metrics, options.seed, options.shard)
    # Both stores close however the run ends (an error, a KeyboardInterrupt), not only on success.
    with ExitStack() as closing:
        store = closing.enter_context(RunStore(out_dir))
        store.create(config, resume=options.resume, overwrite=options.overwrite)
        done = store.done_ids() if options.resume else set()
        provenance = collect_provenance(pm, model, suite, metrics, options.seed)
        provenance["device"] = {**device_description(device), "components": placed}
        history = store.get_info("sessions") or []
        history.append(
            {
                "started_at": time.time(),
                "already_done": len(done),
                "workers": options.workers,
                "batch_size": options.batch_size,
                "backend": options.backend.name if options.backend is not None else "local",
                "device": device,
            }
        )
        store.set_info("provenance", provenance)
        store.set_info("sessions", history)
        run_info = {"out_dir": str(out_dir), "config": config, "provenance": provenance}
        if pm is not None:
            pm.hook.gensr_run_started(run=run_info)
        if on_start is not None:
            on_start(shard_size(len(suite), options.shard), len(done))
        cache = closing.enter_context(ScoreCache(options.cache_path)) if options.use_cache else None
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
        result = finish_run(
            store, config, {**provenance, "sessions": history}, directions, options.by
        )
        if options.shard is None:  # a shard holds only part of the run's utterances
            used = ((output.utterance_id, output.meta) for output in store.outputs())
            result = replace(result, model_ignored_files=tuple(model.ignored_files(used)))
        if pm is not None:
            pm.hook.gensr_run_finished(run=run_info, result=result)
        return result
