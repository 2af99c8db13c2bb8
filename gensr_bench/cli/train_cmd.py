"""``gensr-bench train``: training a trainable model on a suite."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gensr_bench.cli.app import cli
from gensr_bench.cli.toolkit import (
    SEED,
    CliState,
    device_option,
    parse_options,
)
from gensr_bench.errors import (
    ConfigError,
    GensrError,
)


@cli.group(invoke_without_command=True)
@click.option("--model", default=None, help="Trainable model name (see `ls models`).")
@click.option("--suite", default=None, help="Training suite, e.g. synth-gsr-train.")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Checkpoint folder.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Use N utterances.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--resume", is_flag=True, help="Continue the training run in --out.")
@click.option(
    "--max-minutes", type=click.FloatRange(min=0), default=None, help="Stop (and save) after M."
)
@click.option(
    "--train-option", multiple=True, metavar="KEY=VALUE", help="Training option, e.g. steps=500."
)
@click.option("--suite-option", multiple=True, metavar="KEY=VALUE", help="Option for the suite.")
@device_option
@click.pass_context
def train(
    ctx: click.Context,
    model: str | None,
    suite: str | None,
    out: str | None,
    limit: int | None,
    seed: int,
    resume: bool,
    max_minutes: float | None,
    train_option: tuple[str, ...],
    suite_option: tuple[str, ...],
    device: str,
) -> None:
    """Train a model (--model NAME --suite SUITE --out DIR), or another component by name.

    Plugins add sub-commands for other trainable parts (e.g. `train tokenizer`). Training
    writes a checkpoint folder usable as `run --model DIR`; `--resume` continues it.
    """
    if ctx.invoked_subcommand is not None:
        return
    missing = [
        flag
        for flag, value in (("--model", model), ("--suite", suite), ("--out", out))
        if value is None
    ]
    if missing:
        raise click.UsageError(
            f"train needs {', '.join(missing)} (or a sub-command: "
            f"{', '.join(sorted(train.commands)) or 'none installed'})"
        )
    assert model is not None and suite is not None and out is not None
    state = ctx.ensure_object(CliState)
    from tqdm import tqdm

    reg = state.registries
    model_cls = reg.models.get(model)
    if not model_cls.trainable:
        trainable = sorted(name for name in reg.models.names() if reg.models.get(name).trainable)
        raise ConfigError(
            f"model {model!r} cannot be trained; trainable models: {', '.join(trainable)}"
        )
    placement: dict[str, str] = {}
    if device != "cpu":  # the CPU needs nothing: every trainable model trains there
        from gensr_bench.devices import resolve_device

        resolved = resolve_device(device)
        if resolved != "cpu" and not model_cls.supports_device:
            raise ConfigError(
                f"model {model!r} does not train on a device (it declares no "
                "supports_device); leave --device out to train on the CPU"
            )
        placement = {"device": resolved} if resolved != "cpu" else {}
    suite_obj = reg.suites.create(
        suite, limit=limit, **parse_options(suite_option, "--suite-option")
    )
    bar = tqdm(unit="step", desc=f"train {model}", file=sys.stderr)

    def progress(step: int, total: int, loss: float) -> None:
        bar.total = total
        bar.n = step
        bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        bar.refresh()

    command = " ".join(["gensr-bench", *sys.argv[1:]])
    try:
        manifest = model_cls.fit(
            suite_obj,
            Path(out),
            seed=seed,
            resume=resume,
            max_minutes=max_minutes,
            options=parse_options(train_option, "--train-option"),
            command=command,
            progress=progress,
            **placement,  # only models with supports_device get a device
        )
    finally:
        bar.close()
    if not manifest.get("steps"):
        raise GensrError(
            f"training of {model} stopped before its first step (is --max-minutes 0?); "
            f"nothing was written to {out}"
        )
    click.echo(
        f"trained {model}: {manifest.get('steps')} steps in {manifest.get('train_minutes')} min, "
        f"{manifest.get('parameters')} parameters; checkpoint in {out} "
        f"(use it with: gensr-bench run --model {out} --suite ...)"
    )
