#!/usr/bin/env bash
# Builds the wheel from this checkout, installs it (not editable) into a fresh virtual
# environment with install.sh, and runs the installed tool from outside the checkout:
# `ls models`, `align --help` and a two-utterance run. CI runs it after the tests; a package
# missing from the wheel (as gensr_bench.alignment once was) fails here, not at a user's.
#   scripts/wheel_smoke.sh [WORK_DIR]     (default: a new temporary folder, removed afterwards)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-}"
if [ -z "$work" ]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work/src" "$work/dist"
# Build from the files git knows (tracked, or new and not ignored), never from build leftovers.
(cd "$repo" && git ls-files -z --cached --others --exclude-standard) \
  | (cd "$repo" && xargs -0 cp --parents -t "$work/src")
python="${GENSR_SMOKE_PYTHON:-$repo/.venv/bin/python}"
(cd "$work/src" && "$python" -m pip wheel --quiet --no-deps --no-build-isolation -w "$work/dist" .)
wheel="$(ls "$work"/dist/gensr_bench-*.whl)"
echo "wheel smoke: built $(basename "$wheel")"
if ! GENSR_VENV="$work/venv" GENSR_PACKAGE="$wheel" "$repo/install.sh" >"$work/install.log" 2>&1; then
  tail -40 "$work/install.log"
  echo "wheel smoke: installing the wheel failed (log above)" >&2
  exit 1
fi
tool="$work/venv/bin/gensr-bench"
cd "$work"  # outside the checkout: only the installed wheel can be imported
"$work/venv/bin/python" - <<'PY'
import gensr_bench, gensr_bench_plugins
for module in (gensr_bench, gensr_bench_plugins):
    assert "site-packages" in module.__file__, f"{module.__name__} imported from {module.__file__}"
PY
"$tool" ls models
"$tool" align --help >/dev/null
GENSR_BENCH_CACHE_DIR="$work/cache" GENSR_BENCH_DATA="$work/data" "$tool" run --model wiener \
  --suite synth-gsr --limit 2 --metrics si-sdr,stoi --workers 1 --out "$work/run"
echo "wheel smoke: OK"
