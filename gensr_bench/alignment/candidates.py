"""Candidates: ``n`` samples per input of a suite, restored and scored through the runner.

The runner evaluates a model on a suite; candidates reuse it unchanged through two thin
wrappers, so the score cache, ``--resume``, worker processes and ``save_audio`` all apply:

* :class:`CandidateSuite` repeats every utterance of a suite ``n`` times, as
  ``<id>~c<k>`` with ``meta["source_id"]`` and ``meta["candidate"] = k``;
* :class:`CandidateModel` restores candidate ``k`` of an utterance with the wrapped model's
  ``sample(..., seed + k)``: exactly candidate ``k`` of ``model.sample(batch, n, seed)``,
  drawn from the paradigm's candidate sampling settings (``sampling`` overrides them).

:func:`load_candidates` reads a finished candidate run back, grouped by input.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from gensr_bench.errors import ConfigError, StoreError
from gensr_bench.interfaces import RestorationModel, Suite
from gensr_bench.records import Restoration, Utterance

SEPARATOR = "~c"


def candidate_id(source_id: str, k: int) -> str:
    return f"{source_id}{SEPARATOR}{k}"


class CandidateSuite(Suite):
    """Every utterance of ``suite``, ``n`` times (one per candidate)."""

    name = "candidates"
    supports_device = True  # placed through the wrapped model (see ``device``)

    def __init__(self, suite: Suite, n: int) -> None:
        if n < 2:
            raise ValueError(f"preference pairs need at least 2 candidates per input, got {n}")
        super().__init__(limit=None)
        self.suite = suite
        self.n = n
        self.sample_rate = suite.sample_rate  # type: ignore[misc]

    def iter_utterances(self) -> Iterator[Utterance]:
        for utt in self.suite:
            for k in range(self.n):
                meta = {**utt.meta, "source_id": utt.id, "candidate": k}
                yield replace(utt, id=candidate_id(utt.id, k), meta=meta)

    def full_size(self) -> int:
        return len(self.suite) * self.n

    def config(self) -> dict[str, Any]:
        # ``suite_limit``: a run's config overwrites ``limit`` with this wrapper's own (None),
        # and `gensr-bench pairs build` needs the source suite's to rebuild it.
        return {
            **self.suite.config(),
            "limit": self.suite.limit,
            "suite_limit": self.suite.limit,
            "candidates": self.n,
        }

    def fingerprint(self) -> str:
        return f"{self.suite.fingerprint()}x{self.n}"


def check_samples(model: RestorationModel) -> None:
    """Refuse a model whose ``sample`` cannot draw distinct candidates (its
    ``sampling_refusal``): every candidate would be the same output, so no pair could form."""
    refusal = model.sampling_refusal()
    if refusal is not None:
        raise ConfigError(f"model {model.name!r} cannot sample candidates: {refusal}")


class CandidateModel(RestorationModel):
    """Restores candidate ``k`` of an utterance as ``model.sample(..., seed + k)`` does."""

    name = "candidates"

    def __init__(self, model: RestorationModel, sampling: Mapping[str, Any] | None = None):
        check_samples(model)
        super().__init__()
        self.model = model
        self.sampling = dict(sampling or {})
        self.paradigm = model.paradigm  # type: ignore[misc]
        self.sample_rate = model.sample_rate  # type: ignore[misc]

    @property
    def device(self) -> str:
        """The wrapped model's device (placing the candidates places the model)."""
        return self.model.device

    @device.setter
    def device(self, value: str) -> None:
        if self.model.supports_device:
            self.model.device = value

    def setup(self) -> None:
        self.model.setup()

    def restore(self, batch: Sequence[Utterance], seed: int) -> list[Restoration]:
        out = []
        for utt in batch:
            source = replace(utt, id=str(utt.meta["source_id"]))
            k = int(utt.meta["candidate"])
            (drawn,) = self.model.sample([source], 1, seed + k, self.sampling or None)[0]
            out.append(replace(drawn, utterance_id=utt.id))
        return out

    def config(self) -> dict[str, Any]:
        return {**self.model.config(), "candidate_sampling": self.sampling}

    def checkpoint_hash(self) -> str | None:
        return self.model.checkpoint_hash()


def load_candidates(run_dir: str | Path) -> dict[str, list[dict[str, Any]]]:
    """A finished candidate run, grouped by input id, each candidate in order ``k``.

    Each entry holds ``id``, ``k``, ``scores``, ``errors``, ``meta`` and ``audio`` (the saved
    file, or ``None`` when the run did not keep audio or the output failed).
    """
    from gensr_bench.store import RUN_DB, has_run, read_run

    run = Path(run_dir)
    if not has_run(run):
        raise StoreError(f"no candidate run in {run}: expected {run / RUN_DB}")
    grouped: dict[str, list[dict[str, Any]]] = {}
    for output in read_run(run).outputs:
        source = output.meta.get("source_id")
        if source is None:
            raise StoreError(
                f"{run} is not a candidate run: utterance {output.utterance_id!r} has no "
                "meta 'source_id' (build candidates with gensr_bench.alignment.candidates)"
            )
        name = output.flags.get("audio")
        grouped.setdefault(str(source), []).append(
            {
                "id": output.utterance_id,
                "k": int(output.meta["candidate"]),
                "scores": dict(output.scores),
                "errors": dict(output.errors),
                "meta": json.loads(json.dumps(output.meta)),
                "audio": None if name is None else str(run / "audio" / name),
            }
        )
    for entries in grouped.values():
        entries.sort(key=lambda entry: entry["k"])
    return grouped
