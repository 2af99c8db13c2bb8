#!/usr/bin/env bash
# The commands behind benchmarks/alignment/RESULTS.md, one stage at a time.
#
#   bash benchmarks/alignment/reproduce.sh PARADIGM STAGE [ARG]
#
# PARADIGM: ar, mgm or fm (the shipped ar-small, mgm-small, fm-small). STAGE:
#   main           candidates (300 synth-gsr-train inputs x 8) -> unanimous pairs on the four
#                  pair metrics -> DPO, then the base and the aligned model on synth-gsr, the
#                  paired report, and the preference-vector summaries (Table 5)
#   single METRIC  the same candidates, pairs on METRIC alone (at most 11 per input, drawn at
#                  random), DPO, eval, report against the base and the multi-metric model
#   gt             the same candidates, the clean reference as the fixed winner, DPO, eval
#   base           the base model on synth-gsr only
# Every step resumes (--resume) where a run stopped. Environment: WORK (default
# ./alignment-work) holds the runs; GENSR_BENCH_WEIGHTS_DIR must point at NISQA's weights
# (../shared/weights/nisqa here); WORKERS (default 2) processes sample and score;
# ALIGN_OPTIONS (optional, space-separated KEY=VALUE) go to every align as --align-option, e.g.
# ALIGN_OPTIONS=log_every=100 evaluates the held-out pairs less often (each pair's draws are
# seeded by the pair, so the trained weights do not change).
set -euo pipefail

P=${1:?paradigm: ar, mgm or fm}
STAGE=${2:?stage: main, single METRIC, gt or base}
WORK=${WORK:-alignment-work}
WORKERS=${WORKERS:-2}
PAIR_METRICS=nisqa_mos,dnsmos_ovrl,estoi,speaker_sim
EVAL_METRICS=nisqa,dnsmos,estoi,speaker-sim
TRAIN=(--suite synth-gsr-train --limit 300 --n 8)
for option in ${ALIGN_OPTIONS:-}; do
    TRAIN+=(--align-option "$option")
done
: "${GENSR_BENCH_WEIGHTS_DIR:?point GENSR_BENCH_WEIGHTS_DIR at the NISQA weights}"
mkdir -p "$WORK/eval"
cd "$WORK"

evaluate() {  # evaluate MODEL NAME: the model on the held-out synth-gsr test suite
    gensr-bench run --model "$1" --suite synth-gsr --metrics "$EVAL_METRICS" \
        --workers "$WORKERS" --out "eval/$2" --resume
}

case "$STAGE" in
base)
    evaluate "$P-small" "$P-small"
    ;;
main)
    gensr-bench align --model "$P-small" "${TRAIN[@]}" --metrics "$PAIR_METRICS" \
        --workers "$WORKERS" --out "$P-dpo" --resume
    gensr-bench pairs stats "$P-dpo/pairs" | tee "$P-dpo.pairs.txt"
    evaluate "$P-dpo" "$P-dpo"
    evaluate "$P-small" "$P-small"
    gensr-bench report "eval/$P-small" "eval/$P-dpo" --paired | tee "$P-dpo.report.txt"
    for features in log-mel speaker; do
        gensr-bench pairs vectors "$P-dpo/pairs" --features "$features" --save "vectors/$features"
    done
    ;;
single)
    METRIC=${3:?single needs a metric output, e.g. nisqa_mos}
    gensr-bench align --model "$P-small" "${TRAIN[@]}" --candidates "$P-dpo/candidates" \
        --metrics "$METRIC" --max-pairs 11 --selection random --out "$P-$METRIC" --resume
    evaluate "$P-$METRIC" "$P-$METRIC"
    gensr-bench report "eval/$P-small" "eval/$P-dpo" "eval/$P-$METRIC" --paired \
        | tee "$P-$METRIC.report.txt"
    ;;
gt)
    gensr-bench align --model "$P-small" "${TRAIN[@]}" --candidates "$P-dpo/candidates" \
        --metrics "$PAIR_METRICS" --winner ground-truth --out "$P-gt" --resume
    evaluate "$P-gt" "$P-gt"
    gensr-bench report "eval/$P-small" "eval/$P-dpo" "eval/$P-gt" --paired | tee "$P-gt.report.txt"
    ;;
*)
    echo "unknown stage $STAGE (main, single METRIC, gt or base)" >&2
    exit 2
    ;;
esac
