"""Shared test fixtures and a conformance kit for plugin authors.

Use these instead of copy-pasting helpers into test files::

    from gensr_bench.testing import noisy_utterance, check_metric_conformance
    check_metric_conformance(MyMetric)

Everything here is small and fast: tiny synthetic audio, no weights, no network. Every name is
importable from ``gensr_bench.testing``; the modules group them by theme:

- ``conformance``: the kits for plugin authors (``check_metric_conformance`` ...)
- ``toys``: toy models, metrics and suites (``EchoModel``, ``LevelMetric``, ``ToySuite`` ...)
- ``signals``: synthetic audio, utterances and preference pairs
- ``runs``: local plugin files, README examples, the command line, run rows and scores
- ``weights``: licensed weights for a test (skip when absent, fail under CI)
- ``nets``: tiny WavLM networks and torch thread settings
- ``browser``: headless Chromium for the leaderboard site

Two modules are imported by their own path, not from here: ``fixtures`` (pytest fixtures
shared by several test folders, such as ``one_torch_thread``; it needs pytest) and
``alignment`` (tiny ``align`` / ``pairs build`` runs on the toy plugins and the brute-force
count of their pairs).

Fixtures specific to one first-party plugin live with that plugin's tests, not here.
"""

from __future__ import annotations

from gensr_bench.testing.browser import CHROMIUM_HELP, headless_chromium
from gensr_bench.testing.conformance import (
    check_metric_conformance,
    check_model_conformance,
    check_suite_conformance,
)
from gensr_bench.testing.nets import tiny_wavlm, tiny_wavlm_dir, torch_threads
from gensr_bench.testing.runs import (
    CliResult,
    Row,
    invoke_cli,
    readme_code_block,
    run_rows,
    scored_output,
    shell_commands,
    toy_cli_run,
    write_plugin_file,
)
from gensr_bench.testing.signals import (
    add_noise,
    as_restorations,
    noisy_utterance,
    sine,
    tiny_preference_pairs,
    tiny_utterances,
    utterance_digest,
    voiced_signal,
)
from gensr_bench.testing.toys import (
    EchoModel,
    LevelMetric,
    ListSuite,
    NoisyEchoModel,
    SnrMetric,
    ToySuite,
)
from gensr_bench.testing.weights import CI_ENV, in_ci, require_weights, shared_weights_dir

__all__ = [
    "CHROMIUM_HELP",
    "CI_ENV",
    "CliResult",
    "EchoModel",
    "LevelMetric",
    "ListSuite",
    "NoisyEchoModel",
    "Row",
    "SnrMetric",
    "ToySuite",
    "add_noise",
    "as_restorations",
    "check_metric_conformance",
    "check_model_conformance",
    "check_suite_conformance",
    "headless_chromium",
    "in_ci",
    "invoke_cli",
    "noisy_utterance",
    "readme_code_block",
    "require_weights",
    "run_rows",
    "scored_output",
    "shared_weights_dir",
    "shell_commands",
    "sine",
    "tiny_preference_pairs",
    "tiny_utterances",
    "tiny_wavlm",
    "tiny_wavlm_dir",
    "torch_threads",
    "toy_cli_run",
    "utterance_digest",
    "voiced_signal",
    "write_plugin_file",
]
