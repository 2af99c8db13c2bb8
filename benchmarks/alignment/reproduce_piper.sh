#!/usr/bin/env bash
# The commands behind the neural-voice sections of benchmarks/alignment/RESULTS.md (issue 23),
# one stage at a time:
#
#   bash benchmarks/alignment/reproduce_piper.sh STAGE [ARGS]
#
# STAGE:
#   model PARADIGM   fine-tune the shipped PARADIGM-small (ar, mgm or fm) on crops of the first
#                    300 piper-gsr-train utterances (800 steps, lr 3e-4: the fm-piper recipe),
#                    score it on all of piper-gsr with the metrics of the other piper-gsr
#                    entries, and report it paired against identity, its base and wiener
#   jitter           each judge's jitter on the first 100 piper-gsr-train inputs (the file that
#                    --min-margin auto --jitter reads)
#   candidates P     the piper base of paradigm P (BASE, default P-piper) samples 8 candidates
#                    for each of the first 100 piper-gsr-train inputs, scored on the four
#                    families and on both content candidates (whisper_cer, estoi); one DPO step
#                    closes the run (its checkpoint is not used)
#   agreement P      `pairs agreement` on those candidates, plain and with the jitter margins:
#                    the measurement that chooses the content metric
#   main P           multi-metric DPO on the candidates (unanimous on NISQA, OVRL, CONTENT and
#                    speaker similarity), evaluated on piper-gsr, paired against the base (claim a)
#   auto P           the same with --min-margin auto (the jitter file): noise-aware unanimity
#   single P OUTPUT  one pair metric alone, at most 11 pairs per input drawn at random (claim b)
#   gt P             the clean reference as the fixed winner (claim c)
#   sft P TARGET     supervised fine-tuning on the winners or the ground-truth (claim d)
#   cross P FROM     P's base trained on paradigm FROM's candidates (claim e)
# Every step resumes where it stopped (train/run/align --resume). Environment: WORK (default
# ./piper-work) holds the runs; GENSR_BENCH_WEIGHTS_DIR must point at NISQA's weights; WORKERS
# (default 2); CONTENT (default whisper_cer) the content criterion; BASE the model to align.
set -euo pipefail

STAGE=${1:?stage: model, jitter, candidates, agreement, main, auto, single, gt, sft or cross}
WORK=${WORK:-piper-work}
WORKERS=${WORKERS:-2}
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
ENTRY_METRICS=dnsmos,pesq,stoi,estoi,si-sdr,lsd,speaker-sim,nisqa,distillmos,whisper
CONTENT=${CONTENT:-whisper_cer}
PAIR_METRICS=nisqa_mos,dnsmos_ovrl,$CONTENT,speaker_sim
SCORED=nisqa_mos,dnsmos_ovrl,whisper_cer,estoi,speaker_sim
EVAL_METRICS=$ENTRY_METRICS  # the leaderboard entry's metrics: one run serves both
JITTER=$REPO/benchmarks/alignment/jitter-piper-gsr-train.json
CANDIDATES=(--suite piper-gsr-train --limit 100 --n 8)
mkdir -p "$WORK"

base_of() { echo "${BASE:-$1-piper}"; }
candidates_of() { echo "$WORK/$1-cands/candidates"; }

evaluate_and_report() {  # evaluate_and_report P NAME: NAME on piper-gsr, paired against P's base
    # The base's committed leaderboard entry when it has one (same suite, seed and metrics).
    local base base_run
    base=$(base_of "$1")
    base_run=$REPO/leaderboard/results/$(basename "$base")--piper-gsr.json
    gensr-bench run --model "$WORK/$2" --suite piper-gsr --metrics "$EVAL_METRICS" \
        --workers "$WORKERS" --out "$WORK/eval-$2" --resume
    if [ ! -f "$base_run" ]; then
        base_run=$WORK/eval-$(basename "$base")
        gensr-bench run --model "$base" --suite piper-gsr --metrics "$EVAL_METRICS" \
            --workers "$WORKERS" --out "$base_run" --resume
    fi
    gensr-bench report "$base_run" "$WORK/eval-$2" --paired | tee "$WORK/$2.report.txt"
}

align_on() {  # align_on P NAME ARGS...: P's base aligned on P's candidates into WORK/NAME
    local p=$1 name=$2
    shift 2
    gensr-bench align --model "$(base_of "$p")" "${CANDIDATES[@]}" \
        --candidates "$(candidates_of "$p")" --out "$WORK/$name" --resume "$@"
    gensr-bench pairs stats "$WORK/$name/pairs" | tee "$WORK/$name.pairs.txt"
    evaluate_and_report "$p" "$name"
}

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
candidates)
    P=${2:?paradigm}
    gensr-bench align --model "$(base_of "$P")" "${CANDIDATES[@]}" --metrics "$SCORED" \
        --workers "$WORKERS" --out "$WORK/$P-cands" --resume \
        --align-option steps=1 --align-option precompute_reference=false
    ;;
agreement)
    P=${2:?paradigm}
    gensr-bench pairs agreement --candidates "$(candidates_of "$P")" --metrics "$SCORED" \
        | tee "$WORK/$P-agreement.txt"
    gensr-bench pairs agreement --candidates "$(candidates_of "$P")" --metrics "$SCORED" \
        --min-margin auto --jitter "$JITTER" | tee "$WORK/$P-agreement-auto.txt"
    ;;
main)
    P=${2:?paradigm}
    align_on "$P" "$P-dpo" --metrics "$PAIR_METRICS"
    ;;
auto)
    P=${2:?paradigm}
    align_on "$P" "$P-dpo-auto" --metrics "$PAIR_METRICS" --min-margin auto --jitter "$JITTER"
    ;;
single)
    P=${2:?paradigm}
    OUTPUT=${3:?single needs one pair output, e.g. nisqa_mos}
    align_on "$P" "$P-$OUTPUT" --metrics "$OUTPUT" --max-pairs 11 --selection random
    ;;
gt)
    P=${2:?paradigm}
    align_on "$P" "$P-gt" --metrics "$PAIR_METRICS" --winner ground-truth
    ;;
sft)
    P=${2:?paradigm}
    TARGET=${3:?sft needs a target: winners or ground-truth}
    align_on "$P" "$P-sft-$TARGET" --metrics "$PAIR_METRICS" --objective sft \
        --sft-target "$TARGET"
    ;;
cross)
    P=${2:?paradigm}
    FROM=${3:?cross needs the paradigm whose candidates to use}
    gensr-bench align --model "$(base_of "$P")" "${CANDIDATES[@]}" \
        --candidates "$(candidates_of "$FROM")" --other-model --metrics "$PAIR_METRICS" \
        --out "$WORK/$P-on-$FROM" --resume
    evaluate_and_report "$P" "$P-on-$FROM"
    ;;
*)
    echo "unknown stage $STAGE (model, jitter, candidates, agreement, main, auto, single, gt," \
        "sft, cross)" >&2
    exit 2
    ;;
esac
