"""``align``: a generative model aligned on its own candidates, in one folder.

The library entry point of ``gensr-bench align`` (the command only maps its options to an
:class:`AlignRequest` and shows an :class:`AlignProgress`)::

    from gensr_bench.alignment.align import AlignRequest, align
    from gensr_bench.alignment.pipeline import resolve_criterion

    criterion = resolve_criterion(["dnsmos_ovrl", "estoi"], [Dnsmos, Estoi])
    result = align(AlignRequest(model, suite, criterion, out_dir=Path("aligned"), n=8))
    print(result.saved["alignment"]["steps_done"], "steps; checkpoint in", result.out_dir)

The steps: (a) candidates through the runner into ``OUT/candidates`` (or a finished candidate
run reused), (b) the unanimous pairs into ``OUT/pairs`` (reused on ``resume`` when their
settings match), (c) a held-out split by input, (d) the trainer, which leaves the aligned
checkpoint in ``OUT`` itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gensr_bench.errors import ConfigError, GensrError, describe

from .candidate_runs import (
    CANDIDATES_DIR,
    PAIRS_DIR,
    build_pairs,
    candidate_model,
    candidates_finished,
    missing_scores,
    reused_candidates,
)

if TYPE_CHECKING:
    from gensr_bench.interfaces import Backend, Metric, RestorationModel, Suite
    from gensr_bench.plugins import GensrPluginManager
    from gensr_bench.records import PreferencePair, RunResult, ScoredOutput, Utterance

    from .pipeline import Criterion, PairSettings, PairsRecord
    from .trainer import AlignConfig

#: What supervised fine-tuning (``objective="sft"``) trains on.
SFT_TARGETS = ("winners", "ground-truth")


class AlignProgress:
    """What :func:`align` reports as it goes. Every hook does nothing here: override those
    you show (the command line draws bars and prints lines)."""

    def message(self, text: str) -> None:
        """A line on what happens (a reuse, a count, what is trained on)."""

    def candidates_started(self, total: int, done: int) -> None:
        """The candidate run starts: ``total`` outputs, ``done`` of them already scored."""

    def candidate_scored(self, scored: ScoredOutput) -> None:
        """One candidate was sampled and scored."""

    def candidates_finished(self, result: RunResult, directory: Path) -> None:
        """The candidate run in ``directory`` finished (not called when candidates are reused)."""

    def pairs_ready(self, record: PairsRecord, directory: Path, reused: bool) -> None:
        """The preference dataset in ``directory`` is ready (``reused``: from an earlier run)."""

    def reference_terms(self, done: int, total: int) -> None:
        """The trainer's one-time reference terms: ``done`` of ``total`` pairs."""

    def training_step(self, step: int, total: int, loss: float) -> None:
        """Training step ``step`` of ``total`` finished with ``loss``."""

    def close(self) -> None:
        """``align`` has returned or failed: release what the hooks hold (bars)."""


@dataclass(frozen=True)
class AlignRequest:
    """Everything one alignment run needs; built from ``gensr-bench align``'s options."""

    #: The model to align: an ``AlignablePolicy``.
    model: RestorationModel
    #: The suite whose inputs the candidates restore.
    suite: Suite
    #: The outputs a winner must beat the loser on (``pipeline.resolve_criterion``).
    criterion: Criterion
    #: Folder of the run: ``candidates/``, ``pairs/`` and the aligned checkpoint itself.
    out_dir: Path
    #: The criterion's metrics, configured (default: each metric class with no options).
    metrics: Sequence[Metric] | None = None
    #: Candidates per input.
    n: int = 8
    #: Seed of the candidates, pair selection, held-out split and training.
    seed: int = 0
    #: One margin for every criterion output, or output -> margin (e.g. measured jitter).
    min_margin: float | Mapping[str, float] = 0.0
    max_pairs: int | None = None
    selection: str = "margin"
    winner: str = "model"
    #: ``dpo`` (the method) or ``sft`` (supervised baseline on ``sft_target``).
    objective: str = "dpo"
    sft_target: str = "winners"
    #: Fraction of the inputs whose pairs are held out to evaluate training.
    held_out: float = 0.1
    #: The trainer's recipe (default: ``AlignConfig(objective=objective, seed=seed)``).
    config: AlignConfig | None = None
    #: Continue the run in ``out_dir``, step by step.
    resume: bool = False
    #: A finished candidate run to reuse instead of sampling.
    candidates_dir: Path | None = None
    #: ``candidates_dir`` may hold another model's candidates (cross-paradigm data).
    other_model_candidates: bool = False
    #: Stop training (and save) after this many minutes.
    max_minutes: float | None = None
    #: Worker processes of the candidate run, and where its batches run.
    workers: int = 1
    backend: Backend | None = None
    plugin_dirs: tuple[str, ...] = ()
    #: Where the candidates are sampled and scored: auto, cpu or cuda (gensr_bench.devices).
    #: Training runs where the model's module is.
    device: str = "cpu"
    #: The plugin manager whose run hooks see the candidate run (and whose plugins it records).
    plugin_manager: GensrPluginManager | None = None
    #: What the manifest records as the base model (a name or checkpoint folder) and the
    #: command that made the run.
    model_spec: str | None = None
    suite_name: str | None = None
    limit: int | None = None
    command: str | None = None
    #: Metric options given for the criterion's metrics (refused with ``candidates_dir``).
    metric_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class AlignResult:
    """What :func:`align` made."""

    out_dir: Path
    candidates_dir: Path
    #: The candidate run's result; ``None`` when the candidates were reused or already finished.
    candidates: RunResult | None
    pairs_dir: Path
    pairs: int
    pairs_record: PairsRecord
    train_examples: int
    held_out_pairs: int
    #: The checkpoint's manifest as the trainer saved it (``saved["alignment"]``: steps done,
    #: minutes, history).
    saved: Mapping[str, Any]
    steps: int


def align(request: AlignRequest, progress: AlignProgress | None = None) -> AlignResult:
    """Sample candidates, pair them, train: see the module's docstring.

    Raises:
        ConfigError: the model cannot be aligned, the suite stands for several suites, the
            folder holds another run (without ``resume``), a criterion metric cannot be set up
            (before anything is sampled), or nothing is left to train on.
        GensrError: training stopped before its first step.
    """
    shown = progress if progress is not None else AlignProgress()
    try:
        return _align(request, shown)
    finally:
        shown.close()


def _align(request: AlignRequest, progress: AlignProgress) -> AlignResult:
    from .candidates import CandidateModel, CandidateSuite
    from .losses import loss_for_paradigm
    from .pipeline import PairSettings
    from .trainer import AlignConfig

    if request.sft_target not in SFT_TARGETS:
        raise ConfigError(
            f"unknown SFT target {request.sft_target!r}; one of {', '.join(SFT_TARGETS)}"
        )
    model, suite, criterion, out_dir = (
        request.model,
        request.suite,
        request.criterion,
        request.out_dir,
    )
    config = request.config or AlignConfig(objective=request.objective, seed=request.seed)
    check_alignable(model)
    check_out_dir(out_dir, request.model_spec, request.resume)
    own_candidates = out_dir / CANDIDATES_DIR
    if (
        request.candidates_dir is not None
        and own_candidates.exists()
        and own_candidates.resolve() != request.candidates_dir.resolve()
    ):
        raise ConfigError(
            f"{out_dir} already holds its own candidates ({own_candidates}); drop "
            "--candidates to continue with them, or align into another --out"
        )
    if request.objective == "dpo":
        loss_for_paradigm(model.paradigm)  # a paradigm without a DPO loss fails before sampling
    if suite.subsets:
        raise ConfigError(
            f"suite {request.suite_name or suite.name!r} stands for several suites "
            f"({', '.join(suite.subsets)}); align on one of them"
        )
    metrics: Sequence[Metric] = (
        request.metrics
        if request.metrics is not None
        else [cls(**request.metric_options.get(cls.name, {})) for cls in criterion.metrics]
    )
    cand_model, cand_suite = CandidateModel(model), CandidateSuite(suite, request.n)
    if request.other_model_candidates and request.candidates_dir is None:
        raise ConfigError("other-model candidates need a candidate run to reuse (--candidates DIR)")
    cand_dir, candidates, metrics = _candidates(request, cand_model, cand_suite, metrics, progress)
    made_by = candidate_model(cand_dir) if request.other_model_candidates else None

    settings = PairSettings(
        criterion.outputs,
        request.min_margin,
        request.max_pairs,
        request.selection,
        request.winner,
        request.seed,
    )
    sha = model.checkpoint_hash()
    pairs, utterances, record = pairs_step(
        request,
        cand_dir,
        settings,
        metrics,
        sha=sha if made_by is None else made_by.get("checkpoint_sha256"),
        progress=progress,
        model_name=None if made_by is None else str(made_by.get("name")),
    )
    examples, eval_examples, train_ids, held_ids = _training_inputs(
        request, pairs, utterances, cand_dir
    )
    progress.message(
        f"training on {len(examples)} "
        f"{'pairs' if request.objective == 'dpo' else 'targets'} of {len(train_ids)} inputs; "
        f"{len(eval_examples)} held-out pairs of {len(held_ids)} inputs"
    )
    manifest = {
        "command": request.command,
        "base_model": request.model_spec or model.name,
        "base_model_name": model.name,
        "base_checkpoint_sha256": sha,
        "suite": {
            "name": request.suite_name or suite.name,
            "options": dict(suite.options),
            "limit": request.limit,
            "fingerprint": suite.fingerprint(),
        },
        "criterion": list(criterion.outputs),
        "directions": dict(criterion.directions),
        "objective": request.objective,
        "sft_target": request.sft_target if request.objective == "sft" else None,
        "candidates": {
            "run": str(cand_dir.resolve()),
            "n": request.n,
            "seed": request.seed,
            "model": made_by if made_by is not None else model.config(),
        },
        "pairs": {
            "dataset": str((out_dir / PAIRS_DIR).resolve()),
            **settings.to_dict(),
            "total": len(pairs),
            "inputs": len({pair.input_id for pair in pairs}),
            "train_examples": len(examples),
            "held_out_pairs": len(eval_examples),
            "held_out_fraction": request.held_out,
            "held_out_inputs": held_ids,
        },
    }
    from .trainer import DPOTrainer

    trainer = DPOTrainer(
        model,  # type: ignore[arg-type]  # an AlignablePolicy: checked by check_alignable
        examples,
        config,
        out_dir,
        eval_examples=eval_examples,
        manifest=manifest,
    )
    saved = trainer.train(
        resume=request.resume,
        max_minutes=request.max_minutes,
        progress=progress.training_step,
        reference_progress=progress.reference_terms,
    )
    if not saved:
        raise GensrError(
            f"training stopped before its first step (is --max-minutes 0?); no checkpoint "
            f"was written to {out_dir}"
        )
    return AlignResult(
        out_dir=out_dir,
        candidates_dir=cand_dir,
        candidates=candidates,
        pairs_dir=out_dir / PAIRS_DIR,
        pairs=len(pairs),
        pairs_record=record,
        train_examples=len(examples),
        held_out_pairs=len(eval_examples),
        saved=saved,
        steps=config.steps,
    )


def _candidates(
    request: AlignRequest,
    cand_model: RestorationModel,
    cand_suite: Suite,
    metrics: Sequence[Metric],
    progress: AlignProgress,
) -> tuple[Path, RunResult | None, Sequence[Metric]]:
    """(a): the candidate folder, the candidate run's result (``None``: reused), the metrics
    as they scored the candidates."""
    from gensr_bench.runner import RunOptions, run_config, run_suite

    if request.candidates_dir is not None:
        cand_dir = request.candidates_dir
        metrics = reused_candidates(
            cand_dir,
            request.criterion,
            run_config(cand_model, cand_suite, [], request.seed),
            request.metric_options,
            other_model=request.other_model_candidates,
        )
        progress.message(f"reusing the candidates in {cand_dir}")
        return cand_dir, None, metrics
    cand_dir = request.out_dir / CANDIDATES_DIR
    if not candidates_finished(cand_dir):
        preflight_metrics(metrics)
    options = RunOptions(
        seed=request.seed,
        workers=request.workers,
        resume=request.resume,
        save_audio=True,
        plugin_dirs=request.plugin_dirs,
        backend=request.backend,
        device=request.device,
    )
    result = run_suite(
        cand_model,
        cand_suite,
        metrics,
        cand_dir,
        options,
        request.plugin_manager,
        progress.candidates_started,
        progress.candidate_scored,
    )
    progress.candidates_finished(result, cand_dir)
    return cand_dir, result, metrics


def _training_inputs(
    request: AlignRequest,
    pairs: Sequence[PreferencePair],
    utterances: Mapping[str, Utterance],
    cand_dir: Path,
) -> tuple[list[Any], list[Any], list[str], list[str]]:
    """(c): training examples, held-out pairs, and the train and held-out input ids."""
    from .pipeline import (
        alignment_examples,
        degraded_inputs,
        held_out_split,
        reference_examples,
        winner_examples,
    )

    train_ids, held_ids = held_out_split(list(utterances), request.held_out, request.seed)
    rate = pairs[0].chosen.audio.sample_rate if pairs else request.model.sample_rate
    degraded = degraded_inputs(utterances, rate)
    if request.objective == "dpo":
        examples = alignment_examples(pairs, degraded, train_ids)
    elif request.sft_target == "winners":
        examples = winner_examples(pairs, degraded, train_ids)
    else:
        examples = reference_examples(utterances, degraded, train_ids)
    eval_examples = alignment_examples(pairs, degraded, held_ids)
    if not examples:
        advice = missing_scores(cand_dir, request.criterion.outputs) or (
            "Sample more candidates (--n), use more inputs (--limit), a smaller --min-margin "
            "or fewer criterion outputs"
        )
        raise ConfigError(
            f"nothing to train on: {len(pairs)} pairs over {len(utterances)} inputs, none in "
            f"the {len(train_ids)} training inputs ({len(held_ids)} held out). {advice}"
        )
    return examples, eval_examples, train_ids, held_ids


def check_alignable(model: RestorationModel, alignable: Sequence[str] = ()) -> None:
    """Refuse a model that DPO cannot train (naming ``alignable``, the models that it can),
    first one that cannot sample distinct candidates (its own reason says most)."""
    from gensr_bench.interfaces import AlignablePolicy

    from .candidates import check_samples

    check_samples(model)
    if isinstance(model, AlignablePolicy):
        return
    raise ConfigError(
        f"model {model.name!r} (paradigm {model.paradigm}) cannot be aligned: it is not an "
        "AlignablePolicy, so it has no likelihood for DPO to train"
        + (f"; alignable models: {', '.join(alignable)}" if alignable else "")
    )


def check_out_dir(out_dir: Path, model_spec: str | None, resume: bool) -> None:
    """Refuse an ``out_dir`` that is the base checkpoint, or holds a run (unless resuming)."""
    from .trainer import STATE_FILE

    if (
        model_spec is not None
        and Path(model_spec).is_dir()
        and Path(model_spec).resolve() == out_dir.resolve()
    ):
        raise ConfigError(
            f"--out {out_dir} is the base model's own checkpoint folder; choose another --out"
        )
    started = [
        name for name in (CANDIDATES_DIR, PAIRS_DIR, STATE_FILE) if (out_dir / name).exists()
    ]
    if started and not resume:
        raise ConfigError(
            f"{out_dir} already holds an alignment run ({', '.join(started)}); pass --resume "
            "to continue it, or choose another --out"
        )


def preflight_metrics(metrics: Sequence[Metric]) -> None:
    """Set each criterion metric up once before sampling, in a throw-away instance.

    The runner records a metric that cannot load as ``None`` plus an error on every output
    and goes on, which suits ``run``; a criterion metric without scores ranks nothing, so
    ``align`` stops here, before hours of sampling, instead of after them with no pairs.

    Raises:
        ConfigError: a metric's setup failed; names the metric and gives its own reason
            (which says how to fix it, e.g. where its weights go).
    """
    for metric in metrics:
        probe = type(metric)(**metric.options)
        try:
            probe.setup()
        except Exception as exc:
            raise ConfigError(
                f"criterion metric {metric.name!r} cannot be set up, so no candidate could be "
                f"ranked on its outputs ({', '.join(metric.outputs)}): {describe(exc)}. Nothing "
                "was sampled; fix that, or leave its outputs out of --metrics, and rerun"
            ) from exc


def pairs_step(
    request: AlignRequest,
    cand_dir: Path,
    settings: PairSettings,
    metrics: Sequence[Metric],
    *,
    sha: str | None,
    progress: AlignProgress,
    model_name: str | None = None,
) -> tuple[Sequence[PreferencePair], dict[str, Utterance], PairsRecord]:
    """(b): (pairs, inputs by id, record): the saved pairs when their settings match, else new.

    ``model_name`` and ``sha`` name the model that made the candidates (default: the policy).
    """
    from gensr_bench.store import read_run

    from .pipeline import load_pairs, read_pairs_record, source_utterances
    from .trainer import STATE_FILE

    out_dir = request.out_dir
    pairs_dir = out_dir / PAIRS_DIR
    outputs = read_run(cand_dir, outputs=False).count
    record = read_pairs_record(pairs_dir) if request.resume else None
    if (
        record is not None
        and dict(record.settings) == settings.to_dict()
        and record.source.get("candidates") == str(cand_dir.resolve())
        and record.source.get("outputs") == outputs
    ):
        pairs = load_pairs(pairs_dir)
        utterances = source_utterances(request.suite, record.source["inputs"])
        progress.pairs_ready(record, pairs_dir, reused=True)
        return pairs, {u: utterances[u] for u in record.source["inputs"]}, record
    if (out_dir / STATE_FILE).exists():
        raise ConfigError(
            f"the pair settings differ from those the training in {out_dir} started with "
            f"(saved: {None if record is None else dict(record.settings)}); rerun with the "
            "same options, or align into another --out"
        )
    pair_set, record = build_pairs(
        cand_dir,
        request.suite,
        settings,
        request.criterion.directions,
        pairs_dir,
        model=model_name or request.model.name,
        checkpoint_sha256=sha,
        seed=request.seed,
        outputs=outputs,
        reference_metrics=metrics,
        overwrite=True,
    )
    progress.pairs_ready(record, pairs_dir, reused=False)
    return pair_set.pairs, pair_set.utterances, record
