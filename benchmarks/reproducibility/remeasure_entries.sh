#!/usr/bin/env bash
# Re-measures the six generative leaderboard entries (their outputs changed when restoration
# moved to float64, RESULTS.md section 4) and replaces them in leaderboard/results/.
#   GENSR_BENCH_WEIGHTS_DIR=/path/to/nisqa-weights benchmarks/reproducibility/remeasure_entries.sh [WORK_DIR]
# Resumable: rerun it after an interruption (every run uses --resume).
set -euo pipefail
: "${GENSR_BENCH_WEIGHTS_DIR:?point GENSR_BENCH_WEIGHTS_DIR at the folder holding nisqa.tar}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
work="${1:-$repo/runs/remeasure}"
tool="${GENSR_BENCH:-$repo/.venv/bin/gensr-bench}"
for model in fm-small fm-small-dpo ar-small ar-small-dpo mgm-small mgm-small-dpo; do
  "$tool" run --model "$model" --suite synth-gsr --metrics nisqa,dnsmos,estoi,speaker-sim \
    --workers "${WORKERS:-2}" --out "$work/$model" --resume
done
cd "$repo"
for paradigm in fm ar mgm; do
  "$tool" leaderboard add "$work/$paradigm-small" --overwrite
  "$tool" leaderboard add "$work/$paradigm-small-dpo" --base "$paradigm-small--synth-gsr" --overwrite
done
