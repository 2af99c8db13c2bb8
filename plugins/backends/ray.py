"""The ``ray`` backend: batches run as tasks on Ray actors, on a local or an existing cluster.

``gensr-bench run --backend ray --workers N`` starts ``N`` actors (one CPU each by default);
each unpickles the run's model and metrics once and then processes batch after batch, so
weights load once per worker, as with the local backend. At most two batches per actor are in
flight, so memory stays flat however long the suite is. Scores are those of the local backend:
the same ``BatchProcessor`` does the work.

Options (``--backend-option KEY=VALUE``):

* ``address``: an existing cluster (``auto``, ``ray://head:10001``, ``host:6379``); without it a
  private local cluster with ``N * num_cpus`` CPUs is started for the run and stopped after it.
* ``num_cpus``: CPUs reserved per actor (default 1; it is also the actor's thread count).

On a cluster every node needs gensr-bench and the run's plugins installed (or a Ray runtime
environment that provides them); local plugin files (``--plugins-dir``) are imported by each
actor from the same absolute path, so those folders must be there on every node. Saved audio
(``--save-audio``, candidate runs of ``align``) is sent back to the caller, which writes it, so
workers need no shared file system. The score cache is read by a worker only where its path
exists on that worker's machine; new values are always written by the caller.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from gensr_bench import Backend, hookimpl
from gensr_bench.errors import ConfigError, GensrError
from gensr_bench.execution import BatchProcessor, Processed, bounded, init_worker, worker_payload
from gensr_bench.interfaces import Batch


class _Worker:
    """What each actor holds: the processor, set up on the actor's machine."""

    def __init__(self, payload: bytes, plugin_dirs: Sequence[str], threads: int) -> None:
        self.processor = init_worker(payload, plugin_dirs, threads)
        cache = self.processor.cache
        if cache is not None and not cache.path.exists():
            self.processor.cache = None  # another machine: score without the caller's cache

    def process(self, batch: Batch, seed: int) -> list[Processed]:
        return self.processor.process(batch, seed)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise GensrError(
            "the ray backend needs Ray: `pip install 'gensr-bench[ray]'` (or `pip install ray`)"
        ) from exc
    return ray


class RayBackend(Backend):
    """Ray actors on a local or existing cluster; each worker loads its metrics once."""

    name = "ray"
    version = "1"
    accepted_options = ("address", "num_cpus")

    def map_batches(
        self,
        processor: BatchProcessor,
        batches: Iterator[Batch],
        seed: int,
        *,
        workers: int,
        plugin_dirs: Sequence[str] = (),
    ) -> Iterator[list[Processed]]:
        ray = _import_ray()
        address = self.options.get("address")
        try:
            num_cpus = float(self.options.get("num_cpus", 1))
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"ray backend option num_cpus must be a number, got {self.options['num_cpus']!r}"
            ) from exc
        if num_cpus <= 0:
            raise ConfigError(f"ray backend option num_cpus must be positive, got {num_cpus}")
        started_here = not ray.is_initialized()
        if started_here:
            init: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "configure_logging": False,
            }
            if address:
                init["address"] = str(address)
            else:
                init["num_cpus"] = max(1, round(workers * num_cpus))
            ray.init(**init)
        if processor.audio_dir is not None:
            processor.collect_audio = True  # the caller writes the audio (evaluate)
        if processor.cache is not None:
            processor.cache.prepare()
        try:
            pickled, dirs = worker_payload(processor, plugin_dirs)
            payload = ray.put(pickled)
            actor_cls = ray.remote(num_cpus=num_cpus)(_Worker)
            threads = max(1, int(num_cpus))
            actors = [actor_cls.remote(payload, dirs, threads) for _ in range(workers)]
            idle = list(actors) * 2  # two batches in flight per actor
            owner: dict[Any, Any] = {}

            def submit(batch: Batch) -> Any:
                actor = idle.pop(0)
                ref = actor.process.remote(batch, seed)
                owner[ref] = actor
                return ref

            def wait_any(pending: set[Any]) -> tuple[list[Any], set[Any]]:
                done, rest = ray.wait(list(pending), num_returns=1)
                results = []
                for ref in done:
                    idle.append(owner.pop(ref))
                    results.append(ray.get(ref))
                return results, set(rest)

            yield from bounded(submit, batches, 2 * workers, wait_any)
            for actor in actors:
                ray.kill(actor)
        finally:
            processor.collect_audio = False
            if started_here:
                ray.shutdown()


@hookimpl
def gensr_register_backends() -> list[type[Backend]]:
    return [RayBackend]
