"""``command``: any inference script as a model, run once per batch.

``gensr-bench run --model command --model-option cmd='python infer.py --in {input_dir} --out
{output_dir}'`` writes each batch's degraded inputs to a temporary folder as
``{input_dir}/<id>.wav`` (float32 WAV at ``sample_rate``; ``<id>`` as ``run --save-audio``
names files), runs the command, and reads each output back from ``{output_dir}/<id>.wav`` (any
audio suffix libsndfile reads, at any rate: the runner resamples for each metric).

How the command runs
    ``cmd`` is split like a shell would split it (``shlex.split``) and run *without* a shell,
    so a path with spaces in a placeholder stays one argument and nothing is re-interpreted.
    Placeholders, substituted inside each argument: ``{input_dir}``, ``{output_dir}`` (both
    required; the output folder exists, empty), ``{sample_rate}`` and ``{seed}``; ``{{`` and
    ``}}`` are literal braces. ``shell=true`` runs ``cmd`` through ``/bin/sh -c`` instead (for
    pipes, ``&&`` or environment set-up), with every placeholder shell-quoted. The command runs
    in the current directory, with stdin closed. Each worker process (``--workers``) runs its
    own batches, so several commands can run at once: use ``--workers 1`` for a script that
    needs the whole machine (a GPU, all cores).

Failures (each is an error on the affected utterances; the run goes on)
    a non-zero exit: every utterance of the batch, with the tail of the command's stderr;
    an output the command did not write: that utterance, naming the file, with the stderr tail;
    a command still running after ``timeout`` seconds (default 600): it is killed, with its
    child processes, and every utterance of the batch says so, naming the ``timeout`` option.

Seeds and candidates
    Without ``{seed}`` in ``cmd`` the outputs cannot depend on the seed, so alignment refuses
    the model (its candidates would all be the same). With it, ``{seed}`` is the batch's seed;
    derive each file's randomness from it and the file name, or run with ``--batch-size 1``,
    so that batching does not change results.

Options: ``cmd`` (required), ``timeout`` (seconds, default 600), ``sample_rate`` (the rate the
script reads and writes, default 16000), ``shell`` (default false).
"""

from __future__ import annotations

import os
import shlex
import signal
import string
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gensr_bench import RestorationModel, hookimpl
from gensr_bench.audio import write_audio
from gensr_bench.errors import BatchRestorationError, ConfigError, GensrError, describe
from gensr_bench.execution import audio_file_name
from gensr_bench.records import Restoration, Utterance

from ..common.output_files import OutputFolder

DEFAULT_TIMEOUT_S = 600.0
PLACEHOLDERS = ("input_dir", "output_dir", "sample_rate", "seed")
REQUIRED = ("input_dir", "output_dir")
#: How much of the command's stderr an error carries: its last lines, at most this many chars.
TAIL_LINES, TAIL_CHARS = 15, 1500
TRUE_WORDS, FALSE_WORDS = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


class CommandError(GensrError):
    """The command failed for a whole batch (a non-zero exit, a timeout, not found)."""


def stderr_tail(stderr: str, stdout: str = "") -> str:
    """The last lines of what the command printed (stderr, else stdout), for an error."""
    text = (stderr.strip() or stdout.strip()).replace("\r", "\n")
    if not text:
        return "it printed nothing"
    lines = [line for line in text.splitlines() if line.strip()][-TAIL_LINES:]
    tail = " | ".join(line.strip() for line in lines)  # one line: errors are printed a line each
    if len(tail) > TAIL_CHARS:
        tail = "..." + tail[-TAIL_CHARS:]
    return f"its output ends with: {tail}"


def parse_flag(value: Any, option: str) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS or word in FALSE_WORDS:
        return word in TRUE_WORDS
    raise ConfigError(f"model 'command': option {option} must be true or false, got {value!r}")


def placeholders(cmd: str) -> list[str]:
    """The placeholder names ``cmd`` uses; ConfigError for a malformed or unknown one."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(cmd) if name is not None]
    except ValueError as exc:
        raise ConfigError(
            f"model 'command': cannot read the placeholders of cmd {cmd!r} ({exc}); write "
            "literal braces as {{ and }}"
        ) from exc
    unknown = sorted({name for name in fields if name not in PLACEHOLDERS})
    if unknown:
        raise ConfigError(
            f"model 'command': cmd uses unknown placeholder(s) "
            f"{', '.join('{' + n + '}' for n in unknown)}; available: "
            f"{', '.join('{' + n + '}' for n in PLACEHOLDERS)} (literal braces: {{{{ and }}}})"
        )
    return fields


class CommandModel(RestorationModel):
    """Runs any inference script on each batch (option cmd, with {input_dir} {output_dir}).

    See the module documentation for the placeholders, failures and options.
    """

    name = "command"
    version = "1"
    paradigm = "dsp"
    accepted_options = ("cmd", "timeout", "sample_rate", "shell")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        cmd = options.get("cmd")
        if not isinstance(cmd, str) or not cmd.strip():
            raise ConfigError(
                "model 'command' needs the command to run: --model-option "
                "cmd='python infer.py --in {input_dir} --out {output_dir}'"
            )
        used = placeholders(cmd)
        missing = [name for name in REQUIRED if name not in used]
        if missing:
            raise ConfigError(
                f"model 'command': cmd must contain {', '.join('{' + n + '}' for n in missing)}"
                " (where the inputs are written and where the outputs are read back), e.g. "
                "cmd='python infer.py --in {input_dir} --out {output_dir}'"
            )
        self.cmd = cmd
        self.uses_seed = "seed" in used
        self.shell = parse_flag(options.get("shell", False), "shell")
        if not self.shell:
            try:
                shlex.split(cmd)
            except ValueError as exc:
                raise ConfigError(f"model 'command': cannot split cmd {cmd!r}: {exc}") from exc
        try:
            self.timeout = float(options.get("timeout", DEFAULT_TIMEOUT_S))
            rate = int(options.get("sample_rate", 16000))
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"model 'command': timeout and sample_rate must be numbers ({exc})"
            ) from exc
        if self.timeout <= 0 or rate <= 0:
            raise ConfigError(
                f"model 'command': timeout ({self.timeout}) and sample_rate ({rate}) must be "
                "positive"
            )
        self.sample_rate = rate  # type: ignore[misc]
        try:  # a format spec such as {seed:04d} would only fail on the first batch
            self.arguments({name: "x" for name in PLACEHOLDERS})
        except (ValueError, IndexError, KeyError) as exc:
            raise ConfigError(
                f"model 'command': cannot fill in the placeholders of cmd {cmd!r} ({exc}); "
                "write them bare, e.g. {seed}"
            ) from exc

    def arguments(self, values: Mapping[str, str]) -> list[str]:
        """The command line for one batch, placeholders filled in."""
        if self.shell:
            quoted = {key: shlex.quote(value) for key, value in values.items()}
            return ["/bin/sh", "-c", self.cmd.format(**quoted)]
        return [part.format(**values) for part in shlex.split(self.cmd)]

    def run(self, values: Mapping[str, str]) -> tuple[str, str]:
        """Run the command; its (stdout, stderr). CommandError when it fails as a whole."""
        args = self.arguments(values)
        try:
            process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
                start_new_session=True,  # its own process group: a timeout kills its children
            )
        except OSError as exc:
            raise CommandError(
                f"cannot start {args[0]!r} ({exc.strerror or exc}); check the first word of "
                "cmd (a program on PATH, or a path to one)"
            ) from exc
        try:
            stdout, stderr = process.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            with_children(process, signal.SIGKILL)
            stdout, stderr = process.communicate()
            raise CommandError(
                f"the command did not finish within {self.timeout:g} s (option timeout) and "
                "was killed; raise it with --model-option timeout=SECONDS, or check that the "
                f"command does not wait for input; {stderr_tail(stderr, stdout)}"
            ) from None
        except BaseException:
            with_children(process, signal.SIGKILL)
            process.wait()
            raise
        if process.returncode != 0:
            raise CommandError(
                f"the command exited with status {process.returncode}: {shlex.join(args)}; "
                f"{stderr_tail(stderr, stdout)}"
            )
        return stdout, stderr

    def restore(self, batch: Sequence[Utterance], seed: int) -> list[Restoration]:
        with tempfile.TemporaryDirectory(prefix="gensr-command-") as tmp:
            input_dir, output_dir = Path(tmp) / "input", Path(tmp) / "output"
            input_dir.mkdir()
            output_dir.mkdir()
            for utt in batch:
                assert utt.degraded is not None
                write_audio(input_dir / audio_file_name(utt.id), utt.degraded)
            values = {
                "input_dir": str(input_dir),
                "output_dir": str(output_dir),
                "sample_rate": str(self.sample_rate),
                "seed": str(seed),
            }
            try:
                stdout, stderr = self.run(values)
            except CommandError as exc:
                raise BatchRestorationError([str(exc)] * len(batch)) from exc
            return self.read_outputs(batch, seed, output_dir, stderr_tail(stderr, stdout))

    def read_outputs(
        self, batch: Sequence[Utterance], seed: int, output_dir: Path, tail: str
    ) -> list[Restoration]:
        """Each utterance's output from ``output_dir``; BatchRestorationError if any failed."""
        folder = OutputFolder.scan(output_dir)
        outcomes: list[Restoration | str] = []
        for utt in batch:
            try:
                audio, _ = folder.read(utt.id, {})
            except Exception as exc:
                expected = f"{{output_dir}}/{audio_file_name(utt.id)}"
                outcomes.append(
                    f"the command exited 0 but {expected} could not be read: {describe(exc)}; "
                    f"{tail}"
                )
                continue
            outcomes.append(Restoration(utt.id, audio, self.name, seed))
        if any(isinstance(outcome, str) for outcome in outcomes):
            raise BatchRestorationError(outcomes)
        return [outcome for outcome in outcomes if isinstance(outcome, Restoration)]

    def sampling_refusal(self) -> str | None:
        if self.uses_seed:
            return None
        return (
            "its cmd takes no {seed}, so every candidate would be the same output; put {seed} "
            "in cmd (and draw the script's randomness from it) to sample candidates"
        )


def with_children(process: subprocess.Popen[str], sig: int) -> None:
    """Send ``sig`` to ``process`` and every process in its group (what it started)."""
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        process.kill()


@hookimpl
def gensr_register_models() -> list[type[RestorationModel]]:
    return [CommandModel]


@hookimpl
def gensr_suggest_names(kind: str) -> list[str]:
    if kind != "models":
        return []
    return ["command (wrap an inference script: --model-option cmd='... {input_dir} {output_dir}')"]
