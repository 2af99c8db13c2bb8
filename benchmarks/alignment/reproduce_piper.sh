#!/usr/bin/env bash
# The commands behind the neural-voice sections of benchmarks/alignment/RESULTS.md (issue 23),
# one stage at a time:
#
#   bash benchmarks/alignment/reproduce_piper.sh STAGE [PARADIGM]
#
# STAGE:
#   model PARADIGM   fine-tune the shipped PARADIGM-small (ar, mgm or fm) on crops of the first
#                    300 piper-gsr-train utterances (800 steps, lr 3e-4: the fm-piper recipe),
#                    score it on all of piper-gsr with the metrics of the other piper-gsr
#                    entries, and report it paired against identity, its base and wiener
#   jitter           each judge's jitter on the first 100 piper-gsr-train inputs (the file that
#                    --min-margin auto --jitter reads)
# Every step resumes where it stopped (train --resume, run --resume). Environment: WORK
# (default ./piper-work) holds the runs; GENSR_BENCH_WEIGHTS_DIR must point at NISQA's weights;
# WORKERS (default 2).
set -euo pipefail

STAGE=${1:?stage: model PARADIGM, or jitter}
WORK=${WORK:-piper-work}
WORKERS=${WORKERS:-2}
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
ENTRY_METRICS=dnsmos,pesq,stoi,estoi,si-sdr,lsd,speaker-sim,nisqa,distillmos,whisper
mkdir -p "$WORK"

case "$STAGE" in
model)
    P=${2:?paradigm: ar, mgm or fm}
    resume=()
    [ -f "$WORK/$P-piper/train_state.pt" ] && resume=(--resume)
    gensr-bench train --model "$P-small" --suite piper-gsr-train --limit 300 \
        --out "$WORK/$P-piper" "${resume[@]}" \
        --train-option "init=$REPO/plugins/models/generative/checkpoints/$P-small" \
        --train-option steps=800 --train-option lr=3e-4 --train-option warmup=50
    gensr-bench run --model "$WORK/$P-piper" --suite piper-gsr --metrics "$ENTRY_METRICS" \
        --workers "$WORKERS" --out "$WORK/eval-$P-piper" --by degradation --resume
    gensr-bench report "$REPO/leaderboard/results/identity--piper-gsr.json" \
        "$WORK/eval-$P-piper" "$REPO/leaderboard/results/$P-small--piper-gsr.json" \
        "$REPO/leaderboard/results/wiener--piper-gsr.json" --paired \
        | tee "$WORK/$P-piper.report.txt"
    ;;
jitter)
    gensr-bench pairs jitter --suite piper-gsr-train --limit 100 \
        --metrics nisqa,dnsmos,whisper,estoi,speaker-sim --workers "$WORKERS" \
        --out "$WORK/jitter-piper-gsr-train.json"
    ;;
*)
    echo "unknown stage $STAGE (model PARADIGM, or jitter)" >&2
    exit 2
    ;;
esac
