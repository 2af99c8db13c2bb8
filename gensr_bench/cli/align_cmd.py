"""``gensr-bench align``: sample candidates, pair them, train (DPO or SFT) in one folder.

Registered by :mod:`gensr_bench.cli.alignment_plugin`. The command maps its options to an
:class:`~gensr_bench.alignment.align.AlignRequest`, calls
:func:`~gensr_bench.alignment.align.align` and shows its progress (:class:`AlignBars`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gensr_bench.alignment.align import SFT_TARGETS, AlignProgress
from gensr_bench.cli.run_cmd import create_model
from gensr_bench.cli.runs import RunBar, print_run
from gensr_bench.cli.toolkit import (
    SEED,
    CliState,
    backend_options,
    device_option,
    make_backend,
    parse_metric_options,
    parse_options,
    pass_state,
)
from gensr_bench.errors import ConfigError

from .align_helpers import (
    command_line,
    echo_pair_stats,
    pair_options,
    resolve_margin,
    split_items,
)

if TYPE_CHECKING:
    from gensr_bench.alignment.pipeline import PairsRecord
    from gensr_bench.interfaces import Suite
    from gensr_bench.records import RunResult, ScoredOutput


@click.command(name="align")
@click.option(
    "--model",
    "model_spec",
    required=True,
    help="Model to align: a registered name or a checkpoint folder (see `ls models`).",
)
@click.option("--suite", required=True, help="Suite whose inputs the candidates restore.")
@click.option(
    "--metrics",
    required=True,
    help="Comma-separated metric outputs the winner must beat the loser on, every one "
    "(e.g. dnsmos_ovrl,dnsmos_sig,estoi); a metric name stands for all its outputs.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder of the run: candidates/, pairs/ and the aligned checkpoint itself.",
)
@click.option(
    "--n", type=click.IntRange(min=2), default=8, show_default=True, help="Candidates per input."
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Use the first N inputs.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes for the candidates (default: number of cores).",
)
@click.option(
    "--seed",
    type=SEED,
    default=0,
    show_default=True,
    help="Seed of the candidates, pair selection, held-out split and training.",
)
@pair_options
@click.option(
    "--objective",
    type=click.Choice(["dpo", "sft"]),  # trainer.OBJECTIVES (not imported: it loads torch)
    default="dpo",
    show_default=True,
    help="dpo (the method) or sft (supervised baseline on --sft-target).",
)
@click.option(
    "--sft-target",
    type=click.Choice(SFT_TARGETS),
    default=None,
    help="With --objective sft: the pairs' chosen outputs [winners] or the clean references.",
)
@click.option(
    "--held-out",
    type=click.FloatRange(min=0, max=1, max_open=True),
    default=0.1,
    show_default=True,
    help="Fraction of the inputs whose pairs are held out to evaluate training.",
)
@click.option(
    "--align-option",
    multiple=True,
    metavar="KEY=VALUE",
    help="Trainer option (AlignConfig field), e.g. steps=500, beta=1000, lr=1e-5.",
)
@click.option("--resume", is_flag=True, help="Continue the run in --out, step by step.")
@click.option(
    "--candidates",
    "candidates_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Reuse a finished candidate run (e.g. another align's OUT/candidates) instead of "
    "sampling: same model, suite, --limit, --n and --seed, scored with the criterion's "
    "metrics. For ablations: another criterion or winner on the same candidates.",
)
@click.option(
    "--other-model",
    "other_model",
    is_flag=True,
    help="The --candidates were made by another model (cross-paradigm data, the paper's "
    "Table 4): their model is not checked against --model; the suite, --limit, --n and --seed "
    "still are. The manifest and pairs record the model that made them.",
)
@click.option(
    "--max-minutes",
    type=click.FloatRange(min=0),
    default=None,
    help="Stop training (and save) after M minutes.",
)
@click.option("--model-option", multiple=True, metavar="KEY=VALUE", help="Option for the model.")
@click.option("--suite-option", multiple=True, metavar="KEY=VALUE", help="Option for the suite.")
@click.option(
    "--metric-option", multiple=True, metavar="METRIC.KEY=VALUE", help="Option for one metric."
)
@backend_options
@device_option
@pass_state
def align_command(
    state: CliState,
    model_spec: str,
    suite: str,
    metrics: str,
    out: str,
    n: int,
    limit: int | None,
    workers: int | None,
    seed: int,
    min_margin: float | str,
    jitter: str | None,
    max_pairs: int | None,
    selection: str,
    winner: str,
    objective: str,
    sft_target: str | None,
    held_out: float,
    align_option: tuple[str, ...],
    resume: bool,
    candidates_dir: str | None,
    other_model: bool,
    max_minutes: float | None,
    model_option: tuple[str, ...],
    suite_option: tuple[str, ...],
    metric_option: tuple[str, ...],
    backend: str,
    backend_option: tuple[str, ...],
    device: str,
) -> None:
    """Align a generative model on its own candidates: sample, pair, train (DPO).

    Everything goes into --out: the candidates (OUT/candidates, a run with saved audio, so
    the score cache, --workers and --resume apply), the preference dataset (OUT/pairs), and
    the aligned checkpoint in OUT itself (use it with `gensr-bench run --model OUT`), with
    train_state.pt and align.log. --resume skips finished candidates, reuses the pairs when
    their settings match and continues training. With --candidates the candidates of another
    run are reused (nothing is sampled) and only pairs/ and the checkpoint go into --out.
    """
    from gensr_bench.alignment.align import AlignRequest, align, check_alignable
    from gensr_bench.alignment.pipeline import align_config, resolve_criterion
    from gensr_bench.interfaces import AlignablePolicy
    from gensr_bench.plugins import plugin_dirs_from_env

    if sft_target is not None and objective != "sft":
        raise click.UsageError("--sft-target applies to --objective sft only")
    if other_model and candidates_dir is None:
        raise click.UsageError("--other-model needs --candidates DIR (another model's run)")
    reg = state.registries
    criterion = resolve_criterion(split_items(metrics), [e.cls for e in reg.metrics])
    config = align_config(
        parse_options(align_option, "--align-option"), objective=objective, seed=seed
    )
    model = create_model(reg, model_spec, parse_options(model_option, "--model-option"))
    check_alignable(model, sorted(e.name for e in reg.models if issubclass(e.cls, AlignablePolicy)))
    suite_cls = reg.suites.get(suite)
    if suite_cls.subsets:
        raise ConfigError(
            f"suite {suite!r} stands for several suites ({', '.join(suite_cls.subsets)}); "
            "align on one of them"
        )
    suite_obj = suite_cls(limit=limit, **parse_options(suite_option, "--suite-option"))
    per_metric = parse_metric_options(metric_option)
    unknown = sorted(set(per_metric) - {cls.name for cls in criterion.metrics})
    if unknown:
        raise click.BadParameter(
            f"options given for metrics that no criterion output needs: {unknown} (scoring "
            f"with: {', '.join(cls.name for cls in criterion.metrics)})",
            param_hint="--metric-option",
        )
    request = AlignRequest(
        model=model,
        suite=suite_obj,
        criterion=criterion,
        out_dir=Path(out),
        metrics=(
            [cls(**per_metric.get(cls.name, {})) for cls in criterion.metrics]
            if candidates_dir is None
            else None
        ),
        n=n,
        seed=seed,
        min_margin=resolve_margin(min_margin, jitter, criterion.outputs),
        max_pairs=max_pairs,
        selection=selection,
        winner=winner,
        objective=objective,
        sft_target=sft_target or "winners",
        held_out=held_out,
        config=config,
        resume=resume,
        candidates_dir=Path(candidates_dir) if candidates_dir is not None else None,
        other_model_candidates=other_model,
        max_minutes=max_minutes,
        workers=workers or os.cpu_count() or 1,
        backend=make_backend(state, backend, backend_option),
        device=device,
        plugin_dirs=tuple(str(d.resolve()) for d in plugin_dirs_from_env(state.plugin_dirs)),
        plugin_manager=state.pm,
        model_spec=model_spec,
        suite_name=suite,
        limit=limit,
        command=command_line(state),
        metric_options=per_metric,
    )
    bars = AlignBars(
        f"{model.name} ({n} candidates per input) on {suite}",
        f"{objective} {model.name}",
        suite_obj,
    )
    result = align(request, bars)
    done = result.saved["alignment"]
    last = done["history"][-1] if done["history"] else {}
    shown = ", ".join(
        f"{key} {value:.4g}"
        for key, value in last.items()
        if key in ("loss", "reward_accuracy", "eval_reward_accuracy", "eval_margin")
    )
    click.echo(
        f"aligned {model.name} ({objective}): {done['steps_done']}/{result.steps} steps in "
        f"{done['minutes']} min{'; ' + shown if shown else ''}"
    )
    click.echo(
        f"checkpoint in {result.out_dir} (use it with: gensr-bench run --model "
        f"{result.out_dir} --suite ...)"
    )


class AlignBars(AlignProgress):
    """``align``'s progress on the terminal: the candidate run's bar and table, the pairs'
    statistics, then the bars of the reference terms and the training steps."""

    def __init__(self, label: str, training: str, suite: Suite) -> None:
        self.label, self.training, self.suite = label, training, suite
        self.candidates = RunBar(label)
        self.bars: dict[str, Any] = {}

    def message(self, text: str) -> None:
        click.echo(text)

    def candidates_started(self, total: int, done: int) -> None:
        self.candidates.start(total, done)

    def candidate_scored(self, scored: ScoredOutput) -> None:
        self.candidates.scored(scored)

    def candidates_finished(self, result: RunResult, directory: Path) -> None:
        self.candidates.close()
        print_run(self.label, result, directory, self.suite)

    def pairs_ready(self, record: PairsRecord, directory: Path, reused: bool) -> None:
        count = record.stats["pairs"]
        if reused:
            click.echo(f"\nreusing the {count} pairs saved in {directory} (same settings)")
        else:
            click.echo(f"\n{count} pairs saved in {directory}")
        echo_pair_stats(record.stats, signed=True)

    def _bar(self, name: str, **options: Any) -> Any:
        from tqdm import tqdm

        if name not in self.bars:
            self.bars[name] = tqdm(file=sys.stderr, **options)
        return self.bars[name]

    def reference_terms(self, done: int, total: int) -> None:
        bar = self._bar("reference", unit="pair", desc="reference terms", delay=1.0)
        bar.total = total
        bar.n = done
        bar.refresh()

    def training_step(self, step: int, total: int, loss: float) -> None:
        bar = self._bar("training", unit="step", desc=self.training)
        bar.total = total
        bar.n = step
        bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        bar.refresh()

    def close(self) -> None:
        self.candidates.close()
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()
