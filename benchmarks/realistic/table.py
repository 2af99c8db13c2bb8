"""Markdown table of the headline outputs of several runs or leaderboard entries.

    python benchmarks/realistic/table.py RUN_OR_ENTRY... [--outputs dnsmos_ovrl,nisqa_mos,...]

Each cell is the mean with its 95% bootstrap CI, as `gensr-bench report` prints it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HEADLINE = "dnsmos_ovrl,nisqa_mos,distillmos,pesq_wb,estoi,si_sdr,lsd,speaker_sim,whisper_wer"
LOWER_IS_BETTER = {"lsd", "whisper_wer", "whisper_cer", "wer", "cer"}


def summaries(path: Path) -> tuple[str, dict[str, dict[str, float]]]:
    if path.is_dir():
        doc = json.loads((path / "summary.json").read_text())
        model = doc["config"]["model"]["name"]
        rows = doc["summaries"]
    else:
        doc = json.loads(path.read_text())
        model = doc["model"]["name"]
        rows = doc["summary"]
    if isinstance(rows, dict):
        rows = [{"output": k, **v} for k, v in rows.items()]
    return model, {row["output"]: row for row in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--outputs", default=HEADLINE)
    args = parser.parse_args()
    outputs = args.outputs.split(",")
    arrows = [f"{o} {'↓' if o in LOWER_IS_BETTER else '↑'}" for o in outputs]
    print("| model | " + " | ".join(arrows) + " |")
    print("|---|" + "---|" * len(outputs))
    for path in args.runs:
        model, found = summaries(path)
        cells = []
        for output in outputs:
            row = found.get(output)
            if row is None or row.get("mean") is None:
                cells.append("—")
                continue
            digits = 1 if output == "si_sdr" else 3 if "wer" in output else 2
            low, high = row["ci_low"], row["ci_high"]
            cells.append(f"{row['mean']:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]")
        print(f"| `{model}` | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
