"""`gensr-bench pairs agreement` on a tiny candidate run (two criterion outputs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gensr_bench.alignment.agreement import criterion_agreement
from gensr_bench.alignment.candidates import load_candidates
from gensr_bench.testing import invoke_cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOY_PLUGINS = Path(__file__).parents[1] / "fixtures" / "toy_plugins"


def test_agreement_reports_what_the_library_computes(sft_aligned: Path) -> None:
    candidates = sft_aligned / "candidates"
    args = ["--plugins-dir", str(TOY_PLUGINS), "pairs", "agreement", "--candidates"]
    args += [str(candidates), "--metrics", "level_db,snr_db"]
    shown = invoke_cli([*args, "--format", "json"])
    assert shown.exit_code == 0, shown.stderr
    grouped = {u: [e["scores"] for e in es] for u, es in load_candidates(candidates).items()}
    expected = criterion_agreement(
        grouped, ["level_db", "snr_db"], {"level_db": True, "snr_db": True}
    )
    rows = json.loads(shown.stdout)
    assert [r["output"] for r in rows] == ["level_db", "snr_db"]
    for row, want in zip(rows, expected, strict=True):
        assert row["pairs"] == want.pairs > 0
        assert row["tie_rate"] == pytest.approx(want.tie_rate)
        assert row["decides"] == (pytest.approx(want.decides) if want.decides is not None else None)
    table = invoke_cli(args)
    assert table.exit_code == 0 and "tie rate" in table.stdout and "rho snr_db" in table.stdout
