"""``command``: an inference script run once per batch, its outputs read back by name."""

from __future__ import annotations

import math
import os
import shlex
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from gensr_bench.alignment.candidates import CandidateModel
from gensr_bench.errors import BatchRestorationError, ConfigError, UnknownOptionError
from gensr_bench.execution import BatchProcessor
from gensr_bench.testing import (
    LevelMetric,
    check_model_conformance,
    invoke_cli,
    noisy_utterance,
    readme_code_block,
    run_rows,
    shell_commands,
    tiny_utterances,
    toy_cli_run,
)
from gensr_bench_plugins.models import command
from gensr_bench_plugins.models.command import CommandModel

TOY_PLUGINS = Path(__file__).resolve().parents[2] / "fixtures" / "toy_plugins"
PYTHON = shlex.quote(sys.executable)

#: Halves every input; an optional third argument names an input stem to leave out, and a
#: fourth an exit status to end with after printing to stderr.
ATTENUATE = """\
import sys
from pathlib import Path

import soundfile

in_dir, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
skip = sys.argv[3] if len(sys.argv) > 3 else ""
for path in sorted(in_dir.glob("*.wav")):
    if path.stem != skip:
        audio, rate = soundfile.read(path, dtype="float32")
        soundfile.write(out_dir / path.name, 0.5 * audio, rate, subtype="FLOAT")
if len(sys.argv) > 4:
    print("loading weights", file=sys.stderr)
    print("RuntimeError: CUDA out of memory", file=sys.stderr)
    sys.exit(int(sys.argv[4]))
"""

HANG = "import time\ntime.sleep(60)\n"


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "attenuate.py"
    path.write_text(ATTENUATE)
    return path


def attenuate_cmd(script: Path, *extra: str) -> str:
    return " ".join([PYTHON, shlex.quote(str(script)), "{input_dir}", "{output_dir}", *extra])


# -- registration and options -----------------------------------------------------------------
def test_hook_registers_the_class_and_the_entry_point_points_here() -> None:
    assert command.gensr_register_models() == [CommandModel]
    points = {ep.name: ep.value for ep in entry_points(group="gensr_bench")}
    assert points["models.command"] == "gensr_bench_plugins.models.command"
    assert any("command" in line for line in command.gensr_suggest_names("models"))
    assert command.gensr_suggest_names("suites") == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "needs the command to run"),
        ({"cmd": "python infer.py {input_dir}"}, "cmd must contain {output_dir}"),
        ({"cmd": "x {input_dir} {output_dir} {checkpoint}"}, "unknown placeholder(s) {checkpoint}"),
        ({"cmd": "x {input_dir} {output_dir} {"}, "cannot read the placeholders"),
        ({"cmd": "x '{input_dir} {output_dir}"}, "cannot split cmd"),
        ({"cmd": "x {input_dir} {output_dir}", "timeout": 0}, "must be positive"),
        ({"cmd": "x {input_dir} {output_dir}", "timeout": "soon"}, "must be numbers"),
        ({"cmd": "x {input_dir} {output_dir}", "shell": "maybe"}, "true or false"),
        ({"cmd": "x {input_dir} {output_dir} {seed:04d}"}, "cannot fill in the placeholders"),
    ],
)
def test_bad_options_are_refused_before_any_work(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        CommandModel(**options)
    assert message in str(info.value)


def test_an_unknown_option_is_a_usage_error() -> None:
    with pytest.raises(UnknownOptionError, match="did you mean timeout"):
        CommandModel(cmd="x {input_dir} {output_dir}", timout=3)


def test_placeholders_fill_each_argument_without_a_shell() -> None:
    model = CommandModel(cmd="infer --in {input_dir} --rate={sample_rate} -s {seed} {output_dir}")
    values = {"input_dir": "/t/in put", "output_dir": "/t/out", "sample_rate": "16000", "seed": "7"}
    assert model.arguments(values) == [
        "infer", "--in", "/t/in put", "--rate=16000", "-s", "7", "/t/out"
    ]  # fmt: skip
    shell = CommandModel(cmd="cd {input_dir} && infer . {output_dir}", shell=True)
    assert shell.arguments(values) == ["/bin/sh", "-c", "cd '/t/in put' && infer . /t/out"]


# -- restoring --------------------------------------------------------------------------------
def test_it_passes_the_model_conformance_kit(script: Path) -> None:
    utts = tiny_utterances(3)
    restored = check_model_conformance(CommandModel, utts, cmd=attenuate_cmd(script))
    for restoration, utt in zip(restored, utts, strict=True):
        assert utt.degraded is not None
        assert restoration.audio.samples.tolist() == (0.5 * utt.degraded.samples).tolist()


def test_attenuation_by_half_lowers_the_level_by_6_02_db(tmp_path: Path, script: Path) -> None:
    echo = toy_cli_run(tmp_path / "echo", TOY_PLUGINS, "test-echo", size=3, metrics="test-level")
    halved = toy_cli_run(
        tmp_path / "cmd", TOY_PLUGINS, "command", size=3, metrics="test-level",
        cmd=attenuate_cmd(script),
    )  # fmt: skip
    drops = [
        after[2]["level_db"] - before[2]["level_db"]
        for before, after in zip(run_rows(echo), run_rows(halved), strict=True)
    ]
    assert drops == pytest.approx([20 * math.log10(0.5)] * 3, abs=1e-4)


def test_a_missing_output_fails_that_utterance_with_the_stderr_tail(script: Path) -> None:
    utts = tiny_utterances(3)
    model = CommandModel(cmd=attenuate_cmd(script, "utt-1", "0"))
    results = [
        s for s, _ in BatchProcessor(model, [LevelMetric()]).process(list(enumerate(utts)), 0)
    ]
    assert [s.scores["level_db"] is None for s in results] == [False, True, False]
    error = results[1].errors["level_db"]
    assert "{output_dir}/utt-1.wav" in error and "exited 0" in error
    assert "CUDA out of memory" in error


def test_a_failing_command_fails_its_batch_with_the_stderr_tail(script: Path) -> None:
    model = CommandModel(cmd=attenuate_cmd(script, "-", "3"))
    with pytest.raises(BatchRestorationError) as info:
        model.restore(tiny_utterances(2), seed=0)
    assert len(info.value.outcomes) == 2
    for outcome in info.value.outcomes:
        assert isinstance(outcome, str)
        assert "exited with status 3" in outcome
        assert outcome.endswith("loading weights | RuntimeError: CUDA out of memory")


def test_a_program_that_does_not_exist_is_named() -> None:
    model = CommandModel(cmd="no-such-program-gensr {input_dir} {output_dir}")
    with pytest.raises(BatchRestorationError) as info:
        model.restore(tiny_utterances(1), seed=0)
    assert "cannot start 'no-such-program-gensr'" in info.value.outcomes[0]


def test_a_hanging_command_times_out_once_per_batch_naming_the_option(tmp_path: Path) -> None:
    hang = tmp_path / "hang.py"
    hang.write_text(HANG)
    cmd = f"{PYTHON} {shlex.quote(str(hang))} {{input_dir}} {{output_dir}}"
    model = CommandModel(cmd=cmd, timeout=1)
    utts = tiny_utterances(3)
    start = time.perf_counter()
    results = [
        s for s, _ in BatchProcessor(model, [LevelMetric()]).process(list(enumerate(utts)), 0)
    ]
    elapsed = time.perf_counter() - start
    for scored in results:
        assert scored.scores["level_db"] is None
        assert "did not finish within 1 s (option timeout)" in scored.errors["level_db"]
        assert "--model-option timeout=SECONDS" in scored.errors["level_db"]
    assert elapsed < 3.5, "the batch must not be retried utterance by utterance after a timeout"


def test_the_failing_run_goes_on_through_the_command_line(tmp_path: Path, script: Path) -> None:
    out = toy_cli_run(
        tmp_path / "run", TOY_PLUGINS, "command", size=2, metrics="test-level",
        cmd=attenuate_cmd(script, "-", "2"),
    )  # fmt: skip
    rows = run_rows(out)
    assert len(rows) == 2
    assert all("exited with status 2" in row[3]["level_db"] for row in rows)


# -- rates and seeds --------------------------------------------------------------------------
def test_inputs_are_written_at_the_sample_rate_option(script: Path) -> None:
    model = CommandModel(cmd=attenuate_cmd(script), sample_rate=8000)
    assert model.sample_rate == 8000
    processor = BatchProcessor(model, [LevelMetric()])
    ((scored, _),) = processor.process([(0, noisy_utterance("a", 0.5))], seed=0)
    assert scored.errors == {}
    assert scored.flags["resampled"] == {"model": "16000->8000", "test-level": "8000->16000"}


def test_candidates_need_the_seed_in_the_command(script: Path) -> None:
    fixed = CommandModel(cmd=attenuate_cmd(script))
    with pytest.raises(ConfigError, match=r"cannot sample candidates: its cmd takes no \{seed\}"):
        CandidateModel(fixed)
    seeded = CommandModel(cmd=attenuate_cmd(script, "{seed}"))
    assert seeded.sampling_refusal() is None
    CandidateModel(seeded)


def test_align_refuses_a_command_without_seed_before_any_work(tmp_path: Path, script: Path) -> None:
    out = tmp_path / "aligned"
    args = ["align", "--model", "command", "--model-option", f"cmd={attenuate_cmd(script)}"]
    result = invoke_cli([*args, "--suite", "synth-gsr", "--metrics", "si-sdr", "--out", str(out)])
    assert result.exit_code == 1
    assert "model 'command' cannot sample candidates: its cmd takes no {seed}" in (
        result.stdout + result.stderr
    )
    assert not out.exists()


# -- the README's example, run as written (on a cheap metric) --------------------------------
README = Path(__file__).resolve().parents[3] / "README.md"
SCRIPT_LINE = "# attenuate.py: a stand-in for your inference script (halves every input)"
COMMAND_LINE = "# command: any script that reads {input_dir} and writes {output_dir}"


def test_the_readme_command_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = readme_code_block(README, SCRIPT_LINE)
    block = readme_code_block(README, COMMAND_LINE)
    (tmp_path / "attenuate.py").write_text(script)
    monkeypatch.chdir(tmp_path)
    # The README says `python`: the one running the tests, with soundfile installed.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    (args,) = shell_commands(block)
    assert args[:4] == ["run", "--model", "command", "--suite"]
    result = invoke_cli([*args, "--metrics", "si-sdr", "--workers", "1", "--no-cache"])
    assert result.exit_code == 0, result.stdout + result.stderr
    rows = run_rows(tmp_path / "runs" / "command--synth-gsr")
    assert len(rows) == 5 and all(row[3] == {} for row in rows)
    # Halving changes no scale-invariant SDR: the scores are the degraded input's.
    identity = invoke_cli(
        ["run", "--model", "identity", "--suite", "synth-gsr", "--limit", "5", "--out", "id",
         "--metrics", "si-sdr", "--workers", "1", "--no-cache"]
    )  # fmt: skip
    assert identity.exit_code == 0
    for halved, same in zip(rows, run_rows(tmp_path / "id"), strict=True):
        assert halved[2]["si_sdr"] == pytest.approx(same[2]["si_sdr"], abs=1e-3)
