"""The steps behind ``gensr-bench pairs`` and ``gensr-bench align``, without any printing.

From a finished candidate run (:mod:`gensr_bench.alignment.candidates`) to training examples:

1. :func:`resolve_criterion`: the metric outputs a pair must win on, each with its direction,
   found through the metric classes that provide them (an item may also be a metric name,
   which stands for all of its outputs);
2. :func:`candidate_records`: the run's scored candidates with their saved audio, per input;
3. :func:`source_utterances`: the inputs themselves (degraded audio, clean reference), read
   from the suite the run recorded;
4. :func:`make_pairs`: unanimous pairs per input (:func:`~gensr_bench.alignment.pairs.
   unanimous_pairs`), the candidates' ids kept as ``<input>~c<k>``;
5. :func:`save_pairs` / :func:`load_pairs`: the preference dataset and ``pairs.json`` (the
   settings that made it, the metric directions and its statistics) in one folder;
6. :func:`held_out_split`, :func:`alignment_examples` and :func:`align_config`: what the DPO
   trainer takes (in :mod:`gensr_bench.alignment.training_inputs`, re-exported here).

Every function works on records in memory or reads / writes one clearly named place.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from gensr_bench.audio import limit_peak, read_audio, resample
from gensr_bench.errors import ConfigError, StoreError, UnknownNameError
from gensr_bench.interfaces import Metric, RestorationModel, Suite
from gensr_bench.records import Audio, PreferencePair, Restoration, Utterance

from .pairs import GROUND_TRUTH, Candidate, pair_stats, unanimous_pairs
from .training_inputs import (
    RESERVED_ALIGN_FIELDS,
    align_config,
    align_option_names,
    alignment_examples,
    held_out_split,
    reference_examples,
    winner_examples,
)

if TYPE_CHECKING:
    import datasets

    from gensr_bench.store import ScoreCache

#: The file beside a saved preference dataset's Arrow files that records how it was made.
PAIRS_RECORD: Final = "pairs.json"
#: The id suffix of the clean reference when it is the chosen output (ground-truth ablation).
REFERENCE_SUFFIX: Final = "~reference"

__all__ = [
    "PAIRS_RECORD",
    "REFERENCE_SUFFIX",
    "RESERVED_ALIGN_FIELDS",
    "Criterion",
    "PairSet",
    "PairSettings",
    "PairsRecord",
    "align_config",
    "align_option_names",
    "alignment_examples",
    "at_rate",
    "candidate_records",
    "dataset_stats",
    "degraded_inputs",
    "held_out_split",
    "load_pairs",
    "make_pairs",
    "pairs_from_run",
    "read_pairs_record",
    "reference_candidates",
    "reference_examples",
    "resolve_criterion",
    "save_pairs",
    "scores_or_none",
    "source_utterances",
    "winner_examples",
]


# -- the criterion ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Criterion:
    """The metric outputs a winner must beat the loser on, and the metrics providing them."""

    outputs: tuple[str, ...]
    directions: Mapping[str, bool]
    metrics: tuple[type[Metric], ...]


def resolve_criterion(
    items: Sequence[str], metrics: Sequence[type[Metric]], *, where: str = "registered metrics"
) -> Criterion:
    """The criterion named by ``items`` among the outputs of ``metrics``.

    Each item is a metric output (``dnsmos_ovrl``) or a metric name (``dnsmos``: all of its
    outputs). Directions come from ``Metric.direction``; ``metrics`` (the providing classes,
    in first-use order) are what must score the candidates. ``where`` says in messages which
    metrics were searched.

    Raises:
        UnknownNameError: an item is neither an output nor a metric name of ``metrics``; the
            message names every unknown item, close matches and the available outputs.
        ConfigError: no item, or an output named twice.
    """
    names = [item.strip() for item in items if item.strip()]
    if not names:
        raise ConfigError("name at least one metric output for the criterion, e.g. dnsmos_ovrl")
    by_output: dict[str, type[Metric]] = {}
    by_name: dict[str, type[Metric]] = {}
    for cls in metrics:
        by_name.setdefault(cls.name, cls)
        for output in cls.outputs:
            by_output.setdefault(output, cls)
    unknown = [name for name in names if name not in by_output and name not in by_name]
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, [*by_output, *by_name], n=3, cutoff=0.6)
            hints.append(f"{name!r}" + (f" (did you mean: {', '.join(close)}?)" if close else ""))
        available = ", ".join(sorted(by_output)) or "(none)"
        several = len(unknown) > 1
        raise UnknownNameError(
            f"unknown metric output{'s' if several else ''} {', '.join(hints)}: no metric "
            f"among the {where} provides {'them' if several else 'it'}. "
            f"Available outputs: {available}"
        )
    outputs: list[str] = []
    providers: list[type[Metric]] = []
    for name in names:
        cls = by_output.get(name) or by_name[name]
        named = [name] if name in by_output else list(cls.outputs)
        for output in named:
            if output in outputs:
                raise ConfigError(f"the criterion names metric output {output!r} twice")
            outputs.append(output)
        if cls not in providers:
            providers.append(cls)
    directions = {output: by_output[output].direction(output) for output in outputs}
    return Criterion(tuple(outputs), directions, tuple(providers))


# -- candidates and inputs -------------------------------------------------------------------


def candidate_records(
    grouped: Mapping[str, Sequence[Mapping[str, Any]]], *, model: str, seed: int
) -> dict[str, list[Candidate]]:
    """The candidates of :func:`~gensr_bench.alignment.candidates.load_candidates`, per input.

    Each becomes a :class:`Candidate` whose restoration carries the *input* id (as
    ``unanimous_pairs`` wants), the audio the run saved (exactly what was scored), ``model``,
    its sampling seed ``seed + k`` and ``meta["candidate_id"]``. Candidates whose output failed
    (no saved audio) are left out: they have no scores to pair on.

    Raises:
        StoreError: the run saved no audio at all (it was not run with ``save_audio``).
    """
    records: dict[str, list[Candidate]] = {}
    failed = 0
    for input_id, entries in grouped.items():
        kept = []
        for entry in entries:
            if entry["audio"] is None:
                failed += 1
                continue
            k = int(entry["k"])
            restoration = Restoration(
                utterance_id=input_id,
                audio=read_audio(entry["audio"]),
                model=model,
                seed=seed + k,
                meta={"candidate_id": entry["id"], "candidate": k},
            )
            kept.append(Candidate(restoration, dict(entry["scores"])))
        records[input_id] = kept
    if grouped and not any(records.values()):
        raise StoreError(
            f"the candidate run holds no saved audio ({failed} candidates): pairs need the "
            "candidates' audio; rerun the candidates with save_audio (`gensr-bench run "
            "--save-audio`, or `gensr-bench align`, which always keeps it)"
        )
    return records


def source_utterances(suite: Suite, ids: Iterable[str]) -> dict[str, Utterance]:
    """The utterances of ``suite`` with the given ids (iteration stops once all are found).

    Raises:
        ConfigError: an id is not in the suite (its content changed since the candidates were
            made), or an utterance could not be loaded.
    """
    wanted = set(ids)
    found: dict[str, Utterance] = {}
    for utt in suite:
        if utt.id in wanted:
            if utt.degraded is None:
                raise ConfigError(
                    f"input {utt.id!r} of suite {suite.name!r} cannot be loaded "
                    f"({utt.error or 'no degraded audio'})"
                )
            found[utt.id] = utt
            if len(found) == len(wanted):
                break
    missing = sorted(wanted - set(found))
    if missing:
        raise ConfigError(
            f"suite {suite.name!r} has no input {', '.join(repr(m) for m in missing[:5])}"
            f"{' ...' if len(missing) > 5 else ''}, which the candidate run holds: the suite "
            "changed since the candidates were made; rebuild them"
        )
    return found


def at_rate(audio: Audio, rate: int) -> Audio:
    """``audio`` at ``rate`` and peak-limited, as the runner hands model outputs to metrics."""
    return limit_peak(resample(audio, rate))[0]


class _GroundTruth(RestorationModel):
    """Restores every utterance to its clean reference (scores the ground truth)."""

    name = "ground-truth"

    def __init__(self, sample_rate: int) -> None:
        super().__init__()
        self.sample_rate = sample_rate  # type: ignore[misc]

    def restore(self, batch: Sequence[Utterance], seed: int) -> list[Restoration]:
        out = []
        for utt in batch:
            if utt.reference is None:
                raise ConfigError(f"utterance {utt.id!r} has no clean reference")
            out.append(Restoration(utt.id, utt.reference, self.name, seed))
        return out


def reference_candidates(
    utterances: Mapping[str, Utterance],
    metrics: Sequence[Metric],
    rate: int,
    cache: ScoreCache | None = None,
) -> dict[str, Candidate]:
    """Each input's clean reference at ``rate``, scored by ``metrics`` exactly as the runner
    scores a model's output (resampling, peak limit, score cache): the chosen side of the
    ground-truth ablation's pairs, so their margins can be reported.

    Raises:
        ConfigError: an input has no clean reference (the message names it).
    """
    from gensr_bench.runner import BatchProcessor

    missing = [uid for uid, utt in utterances.items() if utt.reference is None]
    if missing:
        raise ConfigError(
            f"the ground-truth winner needs every input's clean reference; input "
            f"{missing[0]!r} (and {len(missing) - 1} more) has none: use --winner model"
        )
    processor = BatchProcessor(_GroundTruth(rate), metrics, cache)
    batch = list(enumerate(utterances.values()))
    results = processor.process(batch, seed=0) if batch else []
    if cache is not None:
        cache.put_many({key: value for _, entries in results for key, value in entries.items()})
    out = {}
    for (scored, _), utt in zip(results, utterances.values(), strict=True):
        assert utt.reference is not None
        audio = at_rate(utt.reference, rate)
        out[utt.id] = Candidate(
            Restoration(utt.id, audio, GROUND_TRUTH, None, meta={"candidate_id": utt.id}),
            dict(scores_or_none(scored.scores)),
        )
    return out


def scores_or_none(scores: Mapping[str, Any]) -> dict[str, float | None]:
    return {name: None if value is None else float(value) for name, value in scores.items()}


# -- pairs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairSettings:
    """How pairs are made from candidates (``unanimous_pairs``' arguments)."""

    criterion: tuple[str, ...]
    #: One margin for every output, or output -> margin (``--min-margin auto``: the jitter).
    min_margin: float | Mapping[str, float] = 0.0
    max_pairs: int | None = None
    selection: str = "margin"
    winner: str = "model"
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        margin = self.min_margin
        return {
            **dataclasses.asdict(self),
            "criterion": list(self.criterion),
            "min_margin": dict(margin) if isinstance(margin, Mapping) else margin,
        }


def make_pairs(
    candidates: Mapping[str, Sequence[Candidate]],
    settings: PairSettings,
    directions: Mapping[str, bool],
    references: Mapping[str, Candidate] | None = None,
) -> list[PreferencePair]:
    """Unanimous pairs of every input, in input order.

    Each side's ``utterance_id`` becomes its candidate id (``<input>~c<k>``; the reference:
    ``<input>~reference``), so the dataset names which candidates were paired.
    """
    pairs: list[PreferencePair] = []
    for input_id, group in candidates.items():
        reference = None if references is None else references.get(input_id)
        found = unanimous_pairs(
            group,
            settings.criterion,
            directions,
            min_margin=settings.min_margin,
            max_pairs=settings.max_pairs,
            selection=settings.selection,
            seed=settings.seed,
            reference=reference,
            winner=settings.winner,
        )
        pairs.extend(
            replace(pair, chosen=_named(pair.chosen), rejected=_named(pair.rejected))
            for pair in found
        )
    return pairs


def _named(restoration: Restoration) -> Restoration:
    if restoration.model == GROUND_TRUTH:
        return replace(restoration, utterance_id=restoration.utterance_id + REFERENCE_SUFFIX)
    return replace(restoration, utterance_id=str(restoration.meta["candidate_id"]))


def degraded_inputs(utterances: Mapping[str, Utterance], rate: int) -> dict[str, Audio]:
    """Each input's degraded audio at ``rate`` (the candidates' rate), the dataset's prompt."""
    out = {}
    for uid, utt in utterances.items():
        assert utt.degraded is not None
        out[uid] = resample(utt.degraded, rate)
    return out


@dataclass(frozen=True)
class PairsRecord:
    """What ``pairs.json`` holds: the settings, directions, source and statistics of a set."""

    settings: Mapping[str, Any]
    directions: Mapping[str, bool]
    source: Mapping[str, Any]
    stats: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def save_pairs(
    pairs: Sequence[PreferencePair],
    degraded: Mapping[str, Audio],
    directory: Path,
    *,
    model: str,
    checkpoint_sha256: str | None,
    settings: PairSettings,
    directions: Mapping[str, bool],
    source: Mapping[str, Any],
    overwrite: bool = False,
) -> PairsRecord:
    """Save the preference dataset into ``directory`` and ``pairs.json`` beside its files.

    Raises what :func:`~gensr_bench.alignment.dataset.save_preference_dataset` raises (a
    non-empty folder without ``overwrite``).
    """
    from .dataset import build_preference_dataset, save_preference_dataset

    stats_outputs = [o for o in settings.criterion if o in directions]
    record = PairsRecord(
        settings=settings.to_dict(),
        directions=dict(directions),
        source=dict(source),
        stats=pair_stats(pairs, stats_outputs, directions=directions),
    )
    used = {pair.input_id for pair in pairs}
    ds = build_preference_dataset(
        pairs,
        {uid: audio for uid, audio in degraded.items() if uid in used},
        model=model,
        checkpoint_sha256=checkpoint_sha256,
    )
    save_preference_dataset(ds, directory, overwrite=overwrite)
    (Path(directory) / PAIRS_RECORD).write_text(json.dumps(record.to_dict(), indent=2) + "\n")
    return record


def read_pairs_record(directory: Path) -> PairsRecord | None:
    """The ``pairs.json`` of a saved preference dataset; ``None`` when it has none."""
    path = Path(directory) / PAIRS_RECORD
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text())
        return PairsRecord(raw["settings"], raw["directions"], raw["source"], raw["stats"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"cannot read {path}: {exc}; rebuild the pairs") from exc


def load_pairs(directory: Path) -> list[PreferencePair]:
    """The preference pairs saved in ``directory`` (audio decoded)."""
    from .dataset import load_preference_dataset, rows_to_pairs

    return rows_to_pairs(load_preference_dataset(directory))


@dataclass(frozen=True)
class _ScoreRow:
    input_id: str
    chosen_scores: Mapping[str, float | None]
    rejected_scores: Mapping[str, float | None]


def dataset_stats(
    ds: datasets.Dataset, record: PairsRecord | None, known: Mapping[str, bool]
) -> tuple[dict[str, Any], bool]:
    """:func:`~gensr_bench.alignment.pairs.pair_stats` of a saved dataset, read without its
    audio, and whether the margins are signed by direction.

    The margins are those of the metric outputs the pairs were made on: ``record``'s
    criterion and directions when the dataset has a ``pairs.json``, else the outputs named in
    its ``criterion`` column with directions from ``known`` (metric output -> higher is better;
    raw ``chosen - rejected`` differences when an output is not in it).
    """
    from .dataset import decode_scores

    columns = ds.select_columns(["input_id", "chosen_scores", "rejected_scores", "criterion"])
    rows = []
    named: dict[str, None] = {}
    for index, row in enumerate(columns):
        what = f"row {index}"
        rows.append(
            _ScoreRow(
                row["input_id"],
                decode_scores(row["chosen_scores"], f"{what} chosen_scores"),
                decode_scores(row["rejected_scores"], f"{what} rejected_scores"),
            )
        )
        named.update(dict.fromkeys(o for o in row["criterion"] if o != GROUND_TRUTH))
    if record is not None:
        outputs = [o for o in record.settings["criterion"] if o in record.directions]
        return pair_stats(rows, outputs, directions=record.directions), True
    outputs = list(named)
    if all(o in known for o in outputs):
        return pair_stats(rows, outputs, directions={o: known[o] for o in outputs}), True
    return pair_stats(rows, outputs), False


@dataclass(frozen=True)
class PairSet:
    """The pairs of a candidate run and what they were made from."""

    pairs: list[PreferencePair]
    #: The run's inputs (every one, paired or not), in suite order.
    utterances: dict[str, Utterance]
    #: Each input's degraded audio at the candidates' rate (the dataset's prompt).
    degraded: dict[str, Audio]
    #: The candidates' sample rate.
    sample_rate: int
    #: Candidates with saved audio (those that could pair).
    candidates: int


def pairs_from_run(
    run_dir: Path,
    suite: Suite,
    settings: PairSettings,
    directions: Mapping[str, bool],
    *,
    model: str,
    seed: int,
    reference_metrics: Sequence[Metric] = (),
    cache: ScoreCache | None = None,
) -> PairSet:
    """Unanimous pairs of the finished candidate run in ``run_dir``.

    The candidates' audio is read from the run's saved files; the inputs (degraded audio,
    and the clean reference for the ground-truth winner) from ``suite``, the suite the run
    sampled from. ``model`` and ``seed`` are the run's (the candidates' sampling seeds are
    ``seed + k``). With ``settings.winner == "ground-truth"`` the references are scored by
    ``reference_metrics`` (see :func:`reference_candidates`).

    Raises:
        StoreError: no candidate run in ``run_dir``, or it kept no audio.
        ConfigError: the suite lacks an input of the run, or (ground-truth winner) a reference.
    """
    from .candidates import load_candidates

    grouped = load_candidates(run_dir)
    if not grouped:
        raise StoreError(f"the candidate run in {run_dir} holds no candidates")
    candidates = candidate_records(grouped, model=model, seed=seed)
    utterances = source_utterances(suite, grouped)
    utterances = {uid: utterances[uid] for uid in grouped}
    rate = next(c.restoration.audio.sample_rate for group in candidates.values() for c in group)
    references = None
    if settings.winner == GROUND_TRUTH:
        references = reference_candidates(utterances, reference_metrics, rate, cache)
    return PairSet(
        pairs=make_pairs(candidates, settings, directions, references),
        utterances=utterances,
        degraded=degraded_inputs(utterances, rate),
        sample_rate=rate,
        candidates=sum(len(group) for group in candidates.values()),
    )
