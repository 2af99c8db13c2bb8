"""The static leaderboard: result entries (JSON files), published figures, and the site.

A *result entry* is one finished run frozen into a JSON file, ``leaderboard/results/
<model>--<suite>[--tag].json`` (:func:`add`): the model, suite and metric configuration, the
summary of every metric output (mean, 95% CI, n scored / n total), every utterance's scores
(``None`` for a failure) and meta, and the run's provenance. :data:`ENTRY_SCHEMA` is its JSON
schema; :func:`load_entry` reads an entry back as ``(config, outputs)``, the same pair a run
folder gives, so ``gensr-bench check --baseline <entry>.json`` compares against it.

*Reported rows* are figures published elsewhere (``leaderboard/reported/*.csv``, each citing
its source). They are shown in their own tables, badged *reported*, and never sorted or ranked
together with the measured entries: the measurements were made under other conditions.

:func:`build` renders the site with Jinja2 (autoescaping on: every value of a results file is
untrusted) into a folder that opens from disk, with no network: an index with one table per
suite (sortable by any column, 95% CIs, a paradigm filter, aligned-vs-base deltas), a page per
entry (configuration, checkpoint hash, versions, a breakdown by an utterance meta key,
listening examples when the run saved audio), and bar charts with CI error bars (PNG).

Nothing here knows a metric, model or suite by name: output directions come from the entries
themselves, and audio inputs for listening examples from a callable the caller passes.

The package: :mod:`.schema` (the entry schema and validation), :mod:`.entries` (entries and
published figures) and :mod:`.site` (the site); every name is importable from here.
"""

from __future__ import annotations

from gensr_bench.interfaces import Publisher
from gensr_bench.leaderboard.entries import (
    REPORTED_DESCRIPTIVE,
    Entry,
    ReportedTable,
    add,
    dumps_entry,
    entry_from_run,
    entry_id,
    load_entries,
    load_entry,
    load_entry_with_provenance,
    load_reported,
    safe_name,
    write_entry,
)
from gensr_bench.leaderboard.schema import (
    ENTRY_SCHEMA,
    ENTRY_SEPARATOR,
    SCHEMA_VERSION,
    TAG_PATTERN,
    EntryError,
    validate_entry,
)
from gensr_bench.leaderboard.site import SITE_MARKER, TEMPLATES, BuildReport, InputsFor, build

__all__ = [
    "ENTRY_SCHEMA",
    "ENTRY_SEPARATOR",
    "REPORTED_DESCRIPTIVE",
    "SCHEMA_VERSION",
    "SITE_MARKER",
    "TAG_PATTERN",
    "TEMPLATES",
    "BuildReport",
    "Entry",
    "EntryError",
    "InputsFor",
    "Publisher",
    "ReportedTable",
    "add",
    "build",
    "dumps_entry",
    "entry_from_run",
    "entry_id",
    "load_entries",
    "load_entry",
    "load_entry_with_provenance",
    "load_reported",
    "safe_name",
    "validate_entry",
    "write_entry",
]
