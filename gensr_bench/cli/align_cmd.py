"""``gensr-bench align``: sample candidates, pair them, train (DPO or SFT) in one folder.

Registered by :mod:`gensr_bench.cli.alignment_plugin`; the steps around the pipeline live in
:mod:`gensr_bench.cli.align_steps`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from gensr_bench.cli.run_cmd import create_model, run_one
from gensr_bench.cli.toolkit import (
    SEED,
    CliState,
    backend_options,
    make_backend,
    parse_metric_options,
    parse_options,
    pass_state,
)
from gensr_bench.errors import ConfigError, GensrError

from .align_helpers import (
    CANDIDATES_DIR,
    PAIRS_DIR,
    SFT_TARGETS,
    command_line,
    echo_pair_stats,
    pair_options,
    split_items,
)
from .align_steps import (
    candidates_finished,
    check_out_dir,
    missing_scores,
    pairs_step,
    preflight_metrics,
    require_alignable,
    reused_candidates,
)


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
    min_margin: float,
    max_pairs: int | None,
    selection: str,
    winner: str,
    objective: str,
    sft_target: str | None,
    held_out: float,
    align_option: tuple[str, ...],
    resume: bool,
    candidates_dir: str | None,
    max_minutes: float | None,
    model_option: tuple[str, ...],
    suite_option: tuple[str, ...],
    metric_option: tuple[str, ...],
    backend: str,
    backend_option: tuple[str, ...],
) -> None:
    """Align a generative model on its own candidates: sample, pair, train (DPO).

    Everything goes into --out: the candidates (OUT/candidates, a run with saved audio, so
    the score cache, --workers and --resume apply), the preference dataset (OUT/pairs), and
    the aligned checkpoint in OUT itself (use it with `gensr-bench run --model OUT`), with
    train_state.pt and align.log. --resume skips finished candidates, reuses the pairs when
    their settings match and continues training. With --candidates the candidates of another
    run are reused (nothing is sampled) and only pairs/ and the checkpoint go into --out.
    """
    from tqdm import tqdm

    from gensr_bench.alignment.candidates import CandidateModel, CandidateSuite
    from gensr_bench.alignment.losses import loss_for_paradigm
    from gensr_bench.alignment.pipeline import (
        PairSettings,
        align_config,
        alignment_examples,
        degraded_inputs,
        held_out_split,
        reference_examples,
        resolve_criterion,
        winner_examples,
    )
    from gensr_bench.alignment.trainer import DPOTrainer
    from gensr_bench.plugins import plugin_dirs_from_env
    from gensr_bench.runner import RunOptions, run_config

    if sft_target is not None and objective != "sft":
        raise click.UsageError("--sft-target applies to --objective sft only")
    target = sft_target or "winners"
    out_dir = Path(out)
    reg = state.registries
    criterion = resolve_criterion(split_items(metrics), [e.cls for e in reg.metrics])
    config = align_config(
        parse_options(align_option, "--align-option"), objective=objective, seed=seed
    )
    check_out_dir(out_dir, model_spec, resume)
    own_candidates = out_dir / CANDIDATES_DIR
    if (
        candidates_dir is not None
        and own_candidates.exists()
        and own_candidates.resolve() != Path(candidates_dir).resolve()
    ):
        raise ConfigError(
            f"{out_dir} already holds its own candidates ({own_candidates}); drop "
            "--candidates to continue with them, or align into another --out"
        )
    model = create_model(reg, model_spec, parse_options(model_option, "--model-option"))
    require_alignable(reg, model, model_spec)
    if objective == "dpo":
        loss_for_paradigm(model.paradigm)  # a paradigm without a DPO loss fails before sampling
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
    metric_objs = [cls(**per_metric.get(cls.name, {})) for cls in criterion.metrics]
    sha = model.checkpoint_hash()
    cand_model, cand_suite = CandidateModel(model), CandidateSuite(suite_obj, n)

    # (a) candidates, through the runner (or those of a finished run, reused).
    if candidates_dir is not None:
        cand_dir = Path(candidates_dir)
        metric_objs = reused_candidates(
            cand_dir, criterion, run_config(cand_model, cand_suite, [], seed), per_metric
        )
        click.echo(f"reusing the candidates in {cand_dir}")
    else:
        cand_dir = own_candidates
        if not candidates_finished(cand_dir):
            preflight_metrics(criterion.metrics, per_metric)
        options = RunOptions(
            seed=seed,
            workers=workers or os.cpu_count() or 1,
            resume=resume,
            save_audio=True,
            plugin_dirs=tuple(str(d.resolve()) for d in plugin_dirs_from_env(state.plugin_dirs)),
            backend=make_backend(state, backend, backend_option),
        )
        run_one(
            state,
            f"{model.name} ({n} candidates per input)",
            suite,
            cand_model,
            cand_suite,
            metric_objs,
            cand_dir,
            options,
            None,
        )

    # (b) pairs.
    settings = PairSettings(criterion.outputs, min_margin, max_pairs, selection, winner, seed)
    pairs, utterances, record = pairs_step(
        out_dir,
        cand_dir,
        suite_obj,
        criterion,
        settings,
        metric_objs,
        model=model.name,
        sha=sha,
        seed=seed,
        resume=resume,
    )
    echo_pair_stats(record.stats, signed=True)

    # (c) the held-out split, by input.
    train_ids, held_ids = held_out_split(list(utterances), held_out, seed)
    rate = pairs[0].chosen.audio.sample_rate if pairs else model.sample_rate
    degraded = degraded_inputs(utterances, rate)
    if objective == "dpo":
        examples = alignment_examples(pairs, degraded, train_ids)
    elif target == "winners":
        examples = winner_examples(pairs, degraded, train_ids)
    else:
        examples = reference_examples(utterances, degraded, train_ids)
    eval_examples = alignment_examples(pairs, degraded, held_ids)
    if not examples:
        advice = missing_scores(cand_dir, criterion.outputs) or (
            "Sample more candidates (--n), use more inputs (--limit), a smaller --min-margin "
            "or fewer criterion outputs"
        )
        raise ConfigError(
            f"nothing to train on: {len(pairs)} pairs over {len(utterances)} inputs, none in "
            f"the {len(train_ids)} training inputs ({len(held_ids)} held out). {advice}"
        )
    click.echo(
        f"training on {len(examples)} {'pairs' if objective == 'dpo' else 'targets'} of "
        f"{len(train_ids)} inputs; {len(eval_examples)} held-out pairs of {len(held_ids)} inputs"
    )

    # (d) the trainer, into OUT itself.
    manifest = {
        "command": command_line(state),
        "base_model": model_spec,
        "base_model_name": model.name,
        "base_checkpoint_sha256": sha,
        "suite": {
            "name": suite,
            "options": dict(suite_obj.options),
            "limit": limit,
            "fingerprint": suite_obj.fingerprint(),
        },
        "criterion": list(criterion.outputs),
        "directions": dict(criterion.directions),
        "objective": objective,
        "sft_target": target if objective == "sft" else None,
        "candidates": {"run": str(cand_dir.resolve()), "n": n, "seed": seed},
        "pairs": {
            "dataset": str((out_dir / PAIRS_DIR).resolve()),
            **settings.to_dict(),
            "total": len(pairs),
            "inputs": len({pair.input_id for pair in pairs}),
            "train_examples": len(examples),
            "held_out_pairs": len(eval_examples),
            "held_out_fraction": held_out,
            "held_out_inputs": held_ids,
        },
    }
    trainer = DPOTrainer(
        model,  # an AlignablePolicy: checked by require_alignable
        examples,
        config,
        out_dir,
        eval_examples=eval_examples,
        manifest=manifest,
    )
    bar = tqdm(unit="step", desc=f"{objective} {model.name}", file=sys.stderr)

    def progress(step: int, total: int, loss: float) -> None:
        bar.total = total
        bar.n = step
        bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        bar.refresh()

    reference_bar = tqdm(unit="pair", desc="reference terms", file=sys.stderr, delay=1.0)

    def reference_progress(done: int, total: int) -> None:
        reference_bar.total = total
        reference_bar.n = done
        reference_bar.refresh()

    try:
        saved = trainer.train(
            resume=resume,
            max_minutes=max_minutes,
            progress=progress,
            reference_progress=reference_progress,
        )
    finally:
        reference_bar.close()
        bar.close()
    if not saved:
        raise GensrError(
            f"training stopped before its first step (is --max-minutes 0?); no checkpoint "
            f"was written to {out_dir}"
        )
    done = saved["alignment"]
    last = done["history"][-1] if done["history"] else {}
    shown = ", ".join(
        f"{key} {value:.4g}"
        for key, value in last.items()
        if key in ("loss", "reward_accuracy", "eval_reward_accuracy", "eval_margin")
    )
    click.echo(
        f"aligned {model.name} ({objective}): {done['steps_done']}/{config.steps} steps in "
        f"{done['minutes']} min{'; ' + shown if shown else ''}"
    )
    click.echo(
        f"checkpoint in {out_dir} (use it with: gensr-bench run --model {out_dir} --suite ...)"
    )
