"""How different are a model's candidates? Spread of DNSMOS OVRL and unanimous pairs.

For each input utterance the model draws ``--n`` candidates with the paper's sampling
settings (``RestorationModel.sample``); every candidate is scored with DNSMOS and speaker
similarity. Per input it records the spread (max - min) of DNSMOS OVRL and the number of
*unanimous* pairs: (a, b) with a better than b on every one of DNSMOS OVRL, SIG, BAK and
speaker similarity, the pairs a multi-metric preference builder can use.

    python experiments/candidate_diversity.py --model fm-small --limit 50 --n 8

Rows are appended to ``--out`` (JSON lines) as they finish, so a rerun resumes; the summary
is printed and written next to it (``.summary.json``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from gensr_bench.audio import limit_peak
from gensr_bench.plugins import get_plugin_manager
from gensr_bench.records import Restoration
from gensr_bench.registry import Registries
from gensr_bench.runner import score_each

KEYS = ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "speaker_sim")


def unanimous_pairs(scores: list[dict[str, float | None]], keys: tuple[str, ...] = KEYS) -> int:
    """Pairs of candidates where one is strictly better than the other on every key."""
    count = 0
    for a, b in itertools.combinations(scores, 2):
        values = [(a.get(k), b.get(k)) for k in keys]
        if any(x is None or y is None for x, y in values):
            continue
        if all(x > y for x, y in values) or all(x < y for x, y in values):  # type: ignore[operator]
            count += 1
    return count


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    spreads = np.array([row["ovrl_spread"] for row in rows])
    pairs = np.array([row["unanimous_pairs"] for row in rows])
    return {
        "inputs": len(rows),
        "ovrl_spread": {
            "mean": round(float(spreads.mean()), 3),
            "min": round(float(spreads.min()), 3),
            "p25": round(float(np.percentile(spreads, 25)), 3),
            "median": round(float(np.median(spreads)), 3),
            "p75": round(float(np.percentile(spreads, 75)), 3),
            "max": round(float(spreads.max()), 3),
        },
        "inputs_with_unanimous_pair": int((pairs > 0).sum()),
        "unanimous_pairs_per_input_mean": round(float(pairs.mean()), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model name or checkpoint folder")
    parser.add_argument("--suite", default="synth-gsr-train")
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    reg = Registries.from_plugins(get_plugin_manager())
    folder = Path(args.model)
    if folder.is_dir():
        name = json.loads((folder / "manifest.json").read_text())["model"]
        model = reg.models.create(name, checkpoint=str(folder))
    else:
        name = args.model
        model = reg.models.create(name)
    metrics = [reg.metrics.create("dnsmos"), reg.metrics.create("speaker-sim")]
    for metric in metrics:
        metric.setup()
    out = args.out or Path("experiments/results") / f"diversity-{name}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {}
    if out.exists():
        done = {r["id"]: r for r in map(json.loads, out.read_text().splitlines()) if r}
    suite = reg.suites.create(args.suite, limit=args.limit)
    with out.open("a") as handle:
        for utt in tqdm(list(suite), desc=f"{name} x{args.n}", unit="input", file=sys.stderr):
            if utt.id in done:
                continue
            candidates = model.sample([utt], args.n, args.seed)[0]
            limited = [
                Restoration(c.utterance_id, limit_peak(c.audio)[0], c.model, c.seed, c.meta)
                for c in candidates
            ]
            scores: list[dict[str, float | None]] = [{} for _ in limited]
            errors: list[dict[str, str]] = [{} for _ in limited]
            for metric in metrics:
                for i, result in enumerate(score_each(metric, limited, [utt] * len(limited))):
                    if isinstance(result, str):  # a failed metric is None plus its error
                        scores[i].update(dict.fromkeys(metric.outputs))
                        errors[i].update(dict.fromkeys(metric.outputs, result))
                    else:
                        scores[i].update(result)
            ovrl = [float(v) for s in scores if (v := s.get("dnsmos_ovrl")) is not None]
            row = {
                "id": utt.id,
                "degradation": utt.meta.get("degradation"),
                "scores": scores,
                "errors": errors,
                "sampling": [c.meta.get("sampling") for c in candidates],
                "ovrl_spread": float(max(ovrl) - min(ovrl)) if ovrl else None,
                "unanimous_pairs": unanimous_pairs(scores),
            }
            handle.write(json.dumps(row) + "\n")
            handle.flush()
            done[utt.id] = row
    rows = [r for r in done.values() if r["ovrl_spread"] is not None]
    summary = {"model": name, "suite": args.suite, "n": args.n, **summarise(rows)}
    out.with_suffix(".summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
