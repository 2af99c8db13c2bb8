"""Tests of gensr_bench.regression and ``gensr-bench check``: paired regression checks of runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gensr_bench.cli import check as check_command
from gensr_bench.cli import main
from gensr_bench.errors import ConfigError
from gensr_bench.regression import (
    FLOAT_FLOOR,
    NOT_COMPARABLE,
    PASS,
    REGRESSION,
    NotComparable,
    check_runs,
    compare_machines,
)
from gensr_bench.testing import scored_output

TOY_PLUGINS = Path(__file__).parent / "fixtures" / "toy_plugins"
SIZE = 20


def toy_run(
    out: Path,
    model: str = "test-echo",
    size: int = SIZE,
    metrics: str = "test-level,test-snr",
    **options: object,
) -> str:
    args = [
        "--plugins-dir",
        str(TOY_PLUGINS),
        "run",
        "--suite",
        "test-toy",
        "--suite-option",
        f"size={size}",
    ]
    args += ["--model", model, "--metrics", metrics, "--workers", "1", "--out", str(out)]
    for key, value in options.items():
        args += ["--model-option", f"{key}={json.dumps(value)}"]
    assert main(args) == 0
    return str(out)


def check(
    capsys: pytest.CaptureFixture[str], baseline: str, candidate: str, *extra: str
) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(
        [
            "--plugins-dir",
            str(TOY_PLUGINS),
            "check",
            "--baseline",
            baseline,
            "--candidate",
            candidate,
            *extra,
        ]
    )
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("runs")
    subset = [f"toy-{i:03d}" for i in range(0, SIZE, 2)]
    return {
        "base": toy_run(root / "base"),
        "again": toy_run(root / "again"),
        "noisy": toy_run(root / "noisy", "test-noisy-echo", noise=0.05, ids=subset),
        "quieter": toy_run(root / "quieter", gain=0.99),
        "small": toy_run(root / "small", size=6),
        "level-only": toy_run(root / "level-only", metrics="test-level"),
    }


def test_identical_runs_pass(runs: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = check(capsys, runs["base"], runs["again"])
    assert code == PASS
    assert "PASS" in out and "REGRESSION" not in out and "same" in out
    assert "+0.0000 [+0.0000, +0.0000]" in out and f" {SIZE} " in out


def test_noise_on_a_subset_fails_naming_the_metric(
    runs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = check(capsys, runs["base"], runs["noisy"])
    assert code == REGRESSION
    assert "FAIL: significant regression beyond tolerance on snr_db" in out
    # Noise raises the level: better by this metric's direction, not a regression.
    level_row = next(line for line in out.splitlines() if line.startswith("level_db"))
    assert "better" in level_row
    code, out, _ = check(capsys, runs["base"], runs["noisy"], "--format", "json")
    data = json.loads(out)
    assert code == REGRESSION and data["regressions"] == ["snr_db"] and not data["passed"]
    snr = next(o for o in data["outputs"] if o["output"] == "snr_db")
    assert snr["difference"]["ci_high"] < 0 and snr["difference"]["n_paired"] == SIZE
    code, out, _ = check(capsys, runs["base"], runs["noisy"], "--format", "github")
    assert code == REGRESSION
    assert "::error title=gensr-bench check: snr_db::snr_db regressed" in out
    assert "::notice title=gensr-bench check::" in out
    # A tolerance larger than the whole interval lets it pass.
    code, _, _ = check(capsys, runs["base"], runs["noisy"], "--tolerance", "snr_db=100")
    assert code == PASS


def test_a_tiny_change_within_tolerance_passes(
    runs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # gain 0.99 lowers every level by 0.087 dB: significant, so it fails without a tolerance ...
    code, out, _ = check(capsys, runs["base"], runs["quieter"])
    assert code == REGRESSION and "level_db" in out.splitlines()[-1]
    # ... and passes with one of 0.1 dB.
    code, out, _ = check(
        capsys,
        runs["base"],
        runs["quieter"],
        "--tolerance",
        "level_db=0.1",
        "--tolerance",
        "snr_db=0.5",
    )
    assert code == PASS, out
    assert "-0.0873" in out


def test_runs_on_different_suites_or_metrics_are_not_compared(
    runs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = check(capsys, runs["base"], runs["small"])
    assert code == NOT_COMPARABLE
    assert "different suites" in err and "fingerprint" in err
    code, _, err = check(capsys, runs["base"], runs["level-only"])
    assert code == NOT_COMPARABLE and "lacks metric output(s) snr_db" in err
    code, _, err = check(capsys, runs["base"], runs["again"], "--tolerance", "pesq=0.1")
    assert code == NOT_COMPARABLE and "names output(s) pesq" in err
    code, _, err = check(capsys, runs["base"], runs["again"], "--tolerance", "level_db=abc")
    assert code == NOT_COMPARABLE and "must be a number" in err
    code, _, err = check(capsys, runs["base"], str(Path(runs["base"]).parent / "missing"))
    assert code == NOT_COMPARABLE and "no results store" in err
    code, out, _ = check(capsys, runs["base"], runs["small"], "--format", "github")
    assert code == NOT_COMPARABLE and out.startswith("::error title=gensr-bench check::")


def _run(
    label: str, values: list[float], fingerprint: str = "f"
) -> tuple[str, dict[str, object], list]:
    config = {"suite": {"name": "s", "fingerprint": fingerprint, "limit": None}}
    return label, config, [scored_output(i, {"wer": v}) for i, v in enumerate(values)]


def test_lower_is_better_outputs_regress_upwards() -> None:
    base = _run("a", [0.1 * i for i in range(12)])
    worse = _run("b", [0.1 * i + 0.05 for i in range(12)])
    better = _run("c", [0.1 * i - 0.05 for i in range(12)])
    assert check_runs(base, worse, {"wer": False}).exit_code == REGRESSION
    report = check_runs(base, better, {"wer": False})
    assert report.exit_code == PASS and report.checks[0].verdict == "better"
    assert check_runs(base, worse, {"wer": False}, {"wer": 0.06}).exit_code == PASS
    # Read as higher-is-better, the same numbers swap roles.
    assert check_runs(base, better, {"wer": True}).exit_code == REGRESSION


def test_check_runs_refuses_what_it_cannot_judge() -> None:
    base = _run("a", [1.0, 2.0])
    with pytest.raises(NotComparable, match="unknown whether higher is better"):
        check_runs(base, base, {})
    with pytest.raises(NotComparable, match=r"different suites.*on the baseline's suite"):
        check_runs(base, _run("b", [1.0, 2.0], fingerprint="g"), {"wer": False})
    limited = _run("c", [1.0])
    limited[1]["suite"] = {"name": "s", "fingerprint": "f", "limit": 1}
    with pytest.raises(NotComparable, match="leaderboard add RUN --limit 1"):
        check_runs(base, limited, {"wer": False})
    with pytest.raises(ConfigError, match="alpha"):
        check_runs(base, base, {"wer": False}, alpha=1.5)
    with pytest.raises(ConfigError, match="must be >= 0"):
        check_runs(base, base, {"wer": False}, {"wer": -1.0})


def test_float_rounding_is_the_same_not_a_regression() -> None:
    # Another machine: every utterance 1.5e-8 lower. The paired interval excludes 0, so
    # without a floor this is a significant regression at the default tolerance of 0.
    values = [0.3 + 0.01 * i for i in range(30)]
    base = _run("a", values)
    rounded = _run("b", [v - 1.5e-8 for v in values])
    strict = check_runs(base, rounded, {"wer": True}, floor=0.0)
    assert strict.exit_code == REGRESSION and strict.checks[0].difference.ci_high < 0
    report = check_runs(base, rounded, {"wer": True})
    assert report.exit_code == PASS
    assert report.checks[0].verdict == "same" and report.checks[0].floor == FLOAT_FLOOR
    # Rounding upwards is no improvement either ...
    up = check_runs(base, _run("c", [v + 1.5e-8 for v in values]), {"wer": True})
    assert up.checks[0].verdict == "same" and not up.checks[0].improved
    # ... while a change just beyond the floor still counts.
    worse = check_runs(base, _run("d", [v - 3 * FLOAT_FLOOR for v in values]), {"wer": True})
    assert worse.exit_code == REGRESSION
    with pytest.raises(ConfigError, match="--floor must be >= 0"):
        check_runs(base, base, {"wer": True}, floor=-1.0)


def test_check_floor_option(runs: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    defaults = {p.name: p.default for p in check_command.params}
    assert defaults["floor"] == FLOAT_FLOOR
    # A floor above the whole gain-0.99 change (0.087 dB) hides it; the default does not.
    code, out, _ = check(capsys, runs["base"], runs["quieter"], "--floor", "1")
    assert code == PASS and "REGRESSION" not in out
    code, _, err = check(capsys, runs["base"], runs["again"], "--floor", "-0.1")
    assert code == NOT_COMPARABLE and "--floor must be >= 0" in err


# -- failed scores (issue 19, point 1) --------------------------------------------------------
@pytest.fixture(scope="module")
def failed_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A baseline, a candidate whose every output is NaN (every score fails) and one whose
    outputs are NaN on half of the utterances."""
    root = tmp_path_factory.mktemp("failed")
    half = [f"toy-{i:03d}" for i in range(0, SIZE, 2)]
    return {
        "base": toy_run(root / "base"),
        "all-nan": toy_run(root / "all-nan", gain=float("nan")),
        "half-nan": toy_run(root / "half-nan", "test-noisy-echo", noise=float("nan"), ids=half),
    }


def test_a_candidate_whose_scores_all_failed_fails(
    failed_runs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = check(capsys, failed_runs["base"], failed_runs["all-nan"])
    assert code == REGRESSION and "PASS" not in out
    for name in ("level_db", "snr_db"):
        row = next(line for line in out.splitlines() if line.startswith(name))
        assert f" 0/{SIZE} " in row and row.endswith("MISSING")
        assert f"FAIL: {name}: candidate scored 0 of {SIZE} utterances the baseline scored" in out
    # The candidate's own reason for the first failure is shown.
    assert "e.g. toy-000: output of model 'test-echo' for 'toy-000' contains" in out
    code, out, _ = check(capsys, failed_runs["base"], failed_runs["all-nan"], "--format", "json")
    data = json.loads(out)
    assert code == REGRESSION and not data["passed"] and data["regressions"] == []
    assert [(m["output"], m["n_baseline"], m["n_candidate"]) for m in data["missing"]] == [
        ("level_db", SIZE, 0),
        ("snr_db", SIZE, 0),
    ]
    code, out, _ = check(capsys, failed_runs["base"], failed_runs["all-nan"], "--format", "github")
    assert code == REGRESSION
    assert (
        "::error title=gensr-bench check: snr_db::snr_db: candidate scored 0 of 20 utterances "
        "the baseline scored" in out
    )
    assert "fewer utterances scored than the baseline on level_db, snr_db" in out


def test_a_half_failed_candidate_fails_unless_missing_is_allowed(
    failed_runs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    base, half = failed_runs["base"], failed_runs["half-nan"]
    n = SIZE // 2
    code, out, _ = check(capsys, base, half)
    assert code == REGRESSION and "PASS" not in out
    assert f"FAIL: snr_db: candidate scored {n} of {SIZE} utterances the baseline scored" in out
    assert "--allow-missing" in out
    # The utterances both scored are the same: allowed, it passes with a warning on each output.
    code, out, _ = check(capsys, base, half, "--allow-missing")
    assert code == PASS and "PASS" in out
    assert f"warning (--allow-missing): level_db: candidate scored {n} of {SIZE}" in out
    row = next(line for line in out.splitlines() if line.startswith("level_db"))
    assert f" {n}/{SIZE} " in row and f"same ({n} missing, allowed)" in row
    code, out, _ = check(capsys, base, half, "--allow-missing", "--format", "json")
    data = json.loads(out)
    assert code == PASS and data["passed"] and data["allow_missing"]
    assert {m["output"]: m["n_candidate"] for m in data["missing"]} == {"level_db": n, "snr_db": n}
    code, out, _ = check(capsys, base, half, "--allow-missing", "--format", "github")
    assert code == PASS
    assert f"::warning title=gensr-bench check: level_db::level_db: candidate scored {n}" in out
    assert "::error" not in out


def test_check_runs_counts_what_the_candidate_failed_or_lacks() -> None:
    base = _run("a", [0.1 * i for i in range(10)])
    label, config, outputs = _run("b", [0.1 * i for i in range(10)])
    # One failed score, one utterance missing from the candidate altogether.
    outputs[3] = scored_output(3, {"wer": None})
    candidate = (label, config, outputs[:-1])
    report = check_runs(base, candidate, {"wer": False})
    (result,) = report.checks
    assert report.exit_code == REGRESSION and not report.passed and not report.regressions
    assert (result.difference.n_paired, result.difference.n_baseline, result.n_missing) == (
        8,
        10,
        2,
    )
    assert result.verdict == "MISSING"
    assert result.missing_message == (
        "wer: candidate scored 8 of 10 utterances the baseline scored (e.g. utt-3: failed in test)"
    )
    allowed = check_runs(base, candidate, {"wer": False}, allow_missing=True)
    assert allowed.exit_code == PASS and allowed.checks[0].verdict == "same (2 missing, allowed)"
    # A failure the baseline has too is no missing score; an extra one of the candidate's is.
    both_failed = _run("c", [0.1 * i for i in range(10)])
    both_failed[2][3] = scored_output(3, {"wer": None})
    assert check_runs(both_failed, (label, config, outputs), {"wer": False}).exit_code == PASS
    only_tail = check_runs(both_failed, candidate, {"wer": False})
    assert only_tail.checks[0].missing_message.endswith("(e.g. utt-9: not in the candidate)")


def test_check_refuses_a_negative_seed(
    runs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = check(capsys, runs["base"], runs["again"], "--seed", "-5")
    assert code == NOT_COMPARABLE and "--seed" in err and "-5" in err
    with pytest.raises(ConfigError, match="--seed must be >= 0"):
        check_runs(_run("a", [1.0, 2.0]), _run("b", [1.0, 2.0]), {"wer": True}, seed=-5)


# -- CPUs of the two runs (issue 19, point 13) ------------------------------------------------
XEON = {"model": "Intel(R) Xeon(R) Platinum 8480+", "flags": ["avx2", "avx512f", "fma"]}
EPYC = {"model": "AMD EPYC 9654 96-Core Processor", "flags": ["avx2", "fma"]}


def _provenance(cpu: dict[str, object] | None, tolerance: object = None) -> dict[str, object]:
    machine: dict[str, object] = {"hostname": "h", "cpu_count": 4}
    if cpu is not None:
        machine["cpu"] = {**cpu, "torch_capability": "AVX512"}
    model: dict[str, object] = {"name": "m", "version": "1"}
    if tolerance is not None:
        model["waveform_tolerance"] = tolerance
    return {"machine": machine, "components": {"model": model}}


def test_compare_machines_names_both_cpus_and_the_declared_tolerance() -> None:
    differ = compare_machines(_provenance(XEON, 1e-4), _provenance(EPYC, 1e-4))
    assert differ.same_cpu is False
    assert differ.flags_only_baseline == ["avx512f"] and differ.flags_only_candidate == []
    note = differ.note()
    assert "ran on different CPUs" in note
    assert XEON["model"] in note and EPYC["model"] in note and "avx512f" in note
    assert "waveform tolerance the model declares: 0.0001" in note
    assert "not declared" in compare_machines(_provenance(XEON), _provenance(EPYC)).note()
    # Same model name, other ISA flags (a VM hiding AVX-512): still another CPU.
    masked = compare_machines(_provenance(XEON), _provenance({**XEON, "flags": ["avx2", "fma"]}))
    assert masked.same_cpu is False and masked.flags_only_baseline == ["avx512f"]
    same = compare_machines(_provenance(XEON), _provenance(dict(XEON)))
    assert same.same_cpu is True and "same CPU" in same.note()
    # Runs made before CPU provenance, no provenance at all, or a malformed one: unknown.
    for old in (_provenance(None), None, {"machine": "x"}, {"machine": {"cpu": {"flags": 3}}}):
        unknown = compare_machines(old, _provenance(EPYC))
        assert unknown.same_cpu is None
        assert unknown.note().startswith("CPU unknown for the baseline")
        assert f"the candidate ran on {EPYC['model']}" in unknown.note()
        assert unknown.to_dict()["baseline_cpu"] is None
    assert compare_machines(_provenance(XEON, True), None).baseline_tolerance is None


def test_check_reports_the_cpus_in_text_json_and_github(
    runs: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    from gensr_bench.store import RunStore

    def with_provenance(name: str, provenance: dict[str, object]) -> str:
        folder = tmp_path / name
        shutil.copytree(runs["base"], folder)
        store = RunStore(folder)
        try:
            store.set_info("provenance", provenance)
        finally:
            store.close()
        return str(folder)

    xeon = with_provenance("xeon", _provenance(XEON, 2e-3))
    epyc = with_provenance("epyc", _provenance(EPYC, 2e-3))
    old = with_provenance("old", _provenance(None))
    code, out, _ = check(capsys, xeon, epyc)
    assert code == PASS
    note = next(line for line in out.splitlines() if line.startswith("note:"))
    assert "different CPUs" in note and XEON["model"] in note and EPYC["model"] in note
    assert "waveform tolerance the model declares: 0.002" in note
    code, out, _ = check(capsys, xeon, epyc, "--format", "json")
    machines = json.loads(out)["machines"]
    assert machines["same_cpu"] is False
    assert machines["baseline_cpu"] == {"model": XEON["model"], "flags": XEON["flags"]}
    assert machines["candidate_cpu"]["model"] == EPYC["model"]
    assert machines["waveform_tolerance"] == {"baseline": 2e-3, "candidate": 2e-3}
    code, out, _ = check(capsys, xeon, epyc, "--format", "github")
    assert code == PASS
    warning = next(line for line in out.splitlines() if line.startswith("::warning"))
    assert warning.startswith("::warning title=gensr-bench check: CPU::baseline and candidate")
    assert EPYC["model"] in warning
    code, out, _ = check(capsys, old, epyc)
    assert code == PASS and "note: CPU unknown for the baseline" in out
    code, out, _ = check(capsys, old, epyc, "--format", "json")
    assert json.loads(out)["machines"]["same_cpu"] is None


def test_compare_machines_notes_runs_made_on_different_devices() -> None:
    cpu_run = _provenance(XEON)
    gpu_run = {**_provenance(XEON), "device": {"kind": "cuda", "name": "NVIDIA H100"}}
    differ = compare_machines(cpu_run, gpu_run)
    assert (differ.baseline_device, differ.candidate_device) == ("cpu", "cuda")
    assert not differ.same_device
    assert "different devices (baseline cpu, candidate cuda)" in differ.device_note()
    assert differ.to_dict()["devices"] == {"baseline": "cpu", "candidate": "cuda"}
    same = compare_machines(cpu_run, {**cpu_run, "device": {"kind": "cpu", "name": None}})
    assert same.same_device and same.device_note() == ""  # no device recorded: the CPU
