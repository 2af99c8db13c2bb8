#!/usr/bin/env bash
# The piper-gsr measurements of the realistic-speech issue, resumable (every run uses --resume):
#   1. oracle and identity on the first 30 utterances with the perceptual judges and Whisper
#      (the README's table), then `report --paired`;
#   2. identity, oracle, wiener, deepfilternet3 and the three small models on all 150
#      utterances with every metric that runs offline except PocketSphinx's wer/cer, added to
#      leaderboard/results/.
#      Whisper is the content metric here: PocketSphinx measured 0.70 s of audio per second
#      against Whisper's 9.2 (benchmarks/RESULTS.md), i.e. about 20 CPU-minutes per entry, for
#      the weaker recogniser; add it with OFFLINE=...,wer,cer if you want it.
#   3. deepfilternet3 on all of synth-gsr with the metrics of the other synth-gsr entries
#      (dnsmos, estoi, speaker-sim).
#   GENSR_BENCH_WEIGHTS_DIR=/path/to/nisqa-weights benchmarks/realistic/entries.sh [WORK_DIR]
set -euo pipefail
: "${GENSR_BENCH_WEIGHTS_DIR:?point GENSR_BENCH_WEIGHTS_DIR at the folder holding nisqa.tar}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
work="${1:-$repo/runs/realistic}"
tool="${GENSR_BENCH:-$repo/.venv/bin/gensr-bench}"
workers="${WORKERS:-2}"
judges=nisqa,distillmos,dnsmos,whisper
offline="${OFFLINE:-dnsmos,pesq,stoi,estoi,si-sdr,lsd,speaker-sim,nisqa,distillmos,whisper}"

for model in oracle identity; do
  "$tool" run --model "$model" --suite piper-gsr --limit 30 --metrics "$judges" \
    --workers "$workers" --out "$work/$model-30" --resume
done
"$tool" report "$work/oracle-30" "$work/identity-30" --paired > "$work/oracle-vs-identity-30.txt"

for model in identity oracle wiener deepfilternet3 fm-small mgm-small ar-small; do
  "$tool" run --model "$model" --suite piper-gsr --metrics "$offline" \
    --workers "$workers" --out "$work/$model" --resume --by degradation
done
cd "$repo"
for model in identity oracle wiener deepfilternet3 fm-small mgm-small ar-small; do
  "$tool" leaderboard add "$work/$model" --overwrite
done
"$tool" run --model deepfilternet3 --suite synth-gsr --metrics dnsmos,estoi,speaker-sim \
  --workers "$workers" --out "$work/deepfilternet3-synth-gsr" --resume --by degradation
"$tool" leaderboard add "$work/deepfilternet3-synth-gsr" --overwrite
