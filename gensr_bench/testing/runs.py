"""Helpers for tests that drive gensr-bench as a user does: local plugin files, README
examples, the command line, and the rows and scores of runs."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gensr_bench.records import ScoredOutput


def write_plugin_file(directory: Path, source: str, stem: str | None = None) -> Path:
    """Write a local plugin file ``<stem>.py`` into ``directory`` and return its path.

    ``source`` is dedented, so tests can indent it. Without ``stem`` a unique one is drawn:
    local plugins are imported as ``gensr_bench_local.<stem>`` and cached per process, so
    unique stems keep one test's plugin from shadowing another's. The plugin loads under the
    name ``local.<stem>``.
    """
    import textwrap
    import uuid

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem or 'plugin_' + uuid.uuid4().hex[:12]}.py"
    path.write_text(textwrap.dedent(source))
    return path


def readme_code_block(readme: Path, first_line: str) -> str:
    """The fenced code block of ``readme`` whose first line is ``first_line``, byte for byte.

    Lets a test run the README's own example, so the test breaks when the example does.
    """
    text = readme.read_text()
    start = text.index(f"\n{first_line}\n") + 1
    return text[start : text.index("```", start)]


def shell_commands(block: str, program: str = "gensr-bench") -> list[list[str]]:
    """The ``program`` command lines of a README ``bash`` block, each split as a shell would
    (``\\`` continuations joined, comments and other commands left out), without ``program``.

    Pass each to :func:`invoke_cli` to run the README's own commands.
    """
    import shlex

    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if words and words[0] == program:
            commands.append(words[1:])
    return commands


@dataclasses.dataclass(frozen=True)
class CliResult:
    """What one ``gensr-bench`` command line gave: its exit code and what it printed."""

    exit_code: int
    stdout: str
    stderr: str


def invoke_cli(args: Sequence[str]) -> CliResult:
    """Run ``gensr-bench ARGS`` as a user does, with click's ``CliRunner`` capturing output.

    Goes through ``gensr_bench.cli.main``, so plugin commands are registered (``--plugins-dir``
    included), library errors become ``error: ...`` on stderr and exit codes are the real ones
    (2 for unknown names and usage errors, 1 for other errors). Progress bars land in
    ``stderr``. With click 8.1 stderr is mixed into ``stdout`` and ``stderr`` is empty.
    """
    from click.testing import CliRunner

    from gensr_bench.cli import main

    with CliRunner().isolation() as streams:
        code = main(list(args))
        out, err = streams[0], streams[1]
        return CliResult(
            code, out.getvalue().decode(), "" if err is None else err.getvalue().decode()
        )


def toy_cli_run(
    out: Path,
    plugins_dir: Path,
    model: str = "test-echo",
    *,
    size: int = 6,
    metrics: str = "test-level,test-snr",
    limit: int | None = None,
    save_audio: bool = False,
    **model_options: Any,
) -> Path:
    """``gensr-bench run`` of ``model`` on ``test-toy`` (``size`` utterances of 1 s) into
    ``out``, with the test components loaded from ``plugins_dir`` (a folder whose plugin file
    registers them, such as ``tests/fixtures/toy_plugins``). One worker; model options are
    passed as JSON. Returns ``out``; raises AssertionError when the run fails.
    """
    import json

    from gensr_bench.cli import main

    args = ["--plugins-dir", str(plugins_dir), "run", "--suite", "test-toy"]
    args += ["--suite-option", f"size={size}", "--model", model, "--metrics", metrics]
    args += ["--workers", "1", "--out", str(out)]
    args += ["--limit", str(limit)] if limit is not None else []
    args += ["--save-audio"] if save_audio else []
    for key, value in model_options.items():
        args += ["--model-option", f"{key}={json.dumps(value)}"]
    code = main(args)
    assert code == 0, f"gensr-bench {' '.join(args)} exited with {code}"
    return out


Row = tuple[str, int, dict[str, Any], dict[str, Any], dict[str, Any]]


def run_rows(run_dir: Path) -> list[Row]:
    """What must not differ between two runs of the same work (backends, workers, shards):
    each row's id, suite position, scores, errors and meta, in suite order."""
    from gensr_bench.store import read_run

    return [
        (o.utterance_id, o.index, dict(o.scores), dict(o.errors), dict(o.meta))
        for o in read_run(run_dir).outputs
    ]


def scored_output(
    index: int,
    scores: Mapping[str, float | None],
    uid: str | None = None,
    **meta: Any,
) -> ScoredOutput:
    """A ScoredOutput for utterance ``utt-<index>`` (or ``uid``) with ``scores`` and ``meta``.

    Every ``None`` score gets an error under the same key, as the runner records failures.
    """
    return ScoredOutput(
        utterance_id=uid or f"utt-{index}",
        index=index,
        scores=dict(scores),
        errors={k: "failed in test" for k, v in scores.items() if v is None},
        meta=dict(meta),
    )
