"""Old against re-measured leaderboard entries: each output's mean, and the paired DPO - base
difference of each paradigm, as a markdown table (RESULTS.md section 4).

    python benchmarks/reproducibility/compare_entries.py OLD_DIR NEW_DIR

OLD_DIR and NEW_DIR hold ``{fm,ar,mgm}-small{,-dpo}--synth-gsr.json`` (e.g. the entries of the
commit before the re-measurement, ``git show REV:leaderboard/results/X.json``, and
``leaderboard/results``). The paired differences come from ``gensr-bench report --paired``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PARADIGMS = ("fm", "ar", "mgm")
OUTPUTS = ("nisqa_mos", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "estoi", "speaker_sim")


def paired(folder: Path, paradigm: str) -> dict:
    base = folder / f"{paradigm}-small--synth-gsr.json"
    aligned = folder / f"{paradigm}-small-dpo--synth-gsr.json"
    tool = Path(sys.executable).parent / "gensr-bench"
    args = [str(tool), "report", str(base), str(aligned), "--paired", "--format", "json"]
    report = json.loads(subprocess.run(args, capture_output=True, check=True, text=True).stdout)
    return report


def cell(summary: dict | None) -> str:
    return "—" if not summary else f"{summary['mean']:.3f}"


def diff(summary: dict | None) -> str:
    if not summary or summary.get("mean") is None:
        return "—"
    star = "*" if summary["ci_low"] > 0 or summary["ci_high"] < 0 else ""
    return f"{summary['mean']:+.3f} [{summary['ci_low']:+.3f}, {summary['ci_high']:+.3f}]{star}"


def main(old_dir: str, new_dir: str) -> None:
    old_folder, new_folder = Path(old_dir), Path(new_dir)
    print("| entry | output | old mean | re-measured mean |")
    print("|---|---|---|---|")
    reports = {}
    for paradigm in PARADIGMS:
        reports[paradigm] = (paired(old_folder, paradigm), paired(new_folder, paradigm))
        for index, suffix in ((0, ""), (1, "-dpo")):
            old_runs, new_runs = (list(r["runs"].values())[index] for r in reports[paradigm])
            for output in OUTPUTS:
                print(
                    f"| {paradigm}-small{suffix} | {output} | {cell(old_runs.get(output))} "
                    f"| {cell(new_runs.get(output))} |"
                )
    print()
    print("| paradigm | output | DPO - base, old | DPO - base, re-measured |")
    print("|---|---|---|---|")
    for paradigm in PARADIGMS:
        old, new = (next(iter(r["paired_differences"].values())) for r in reports[paradigm])
        for output in OUTPUTS:
            print(f"| {paradigm} | {output} | {diff(old.get(output))} | {diff(new.get(output))} |")


if __name__ == "__main__":
    main(*sys.argv[1:])
