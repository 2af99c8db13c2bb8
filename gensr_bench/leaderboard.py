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
"""

from __future__ import annotations

import csv
import datetime
import functools
import json
import math
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gensr_bench.errors import GensrError, StoreError
from gensr_bench.interfaces import Publisher
from gensr_bench.records import Audio, ScoredOutput

__all__ = [
    "ENTRY_SCHEMA",
    "SCHEMA_VERSION",
    "BuildReport",
    "Entry",
    "EntryError",
    "InputsFor",
    "Publisher",
    "ReportedTable",
    "add",
    "build",
    "entry_from_run",
    "load_entries",
    "load_entry",
    "load_entry_with_provenance",
    "load_reported",
    "validate_entry",
]

SCHEMA_VERSION = 1
#: File names of entries: ``<model>--<suite>[--<tag>].json``.
ENTRY_SEPARATOR = "--"
TAG_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
#: A marker file: a folder holding it was written by :func:`build` and may be replaced.
SITE_MARKER = ".gensr-leaderboard-site"
#: Columns of a reported CSV that describe a row; every other column holds a figure.
REPORTED_DESCRIPTIVE = ("table", "suite", "model", "paradigm", "aligned", "criterion", "note")
TEMPLATES = Path(__file__).parent / "templates" / "leaderboard"

#: ``inputs(config, utterance_ids) -> {id: (degraded, reference)}`` for listening examples.
InputsFor = Callable[
    [Mapping[str, Any], Sequence[str]], Mapping[str, tuple[Audio | None, Audio | None]]
]


class EntryError(GensrError):
    """A leaderboard entry or results folder is missing, malformed, or would be overwritten."""


# -- schema -----------------------------------------------------------------------------------
_NUMBER_OR_NULL: dict[str, Any] = {"type": ["number", "null"]}
_NAME: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 200}
_COMPONENT: dict[str, Any] = {
    "name": _NAME,
    "version": {"type": "string"},
    "options": {"type": "object"},
}

ENTRY_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "gensr-bench leaderboard result entry",
    "description": "One finished evaluation run: configuration, summaries, per-utterance "
    "scores and provenance. Written by `gensr-bench leaderboard add`. Every number is "
    "finite (no NaN or Infinity); a failed value is null.",
    "type": "object",
    "required": [
        "schema_version",
        "label",
        "model",
        "suite",
        "seed",
        "metrics",
        "summary",
        "utterances",
        "provenance",
        "added_at",
    ],
    "additionalProperties": False,
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "label": {**_NAME, "description": "the name the leaderboard shows"},
        "tag": {
            "type": ["string", "null"],
            "pattern": TAG_PATTERN,
            "description": "distinguishes entries of one model on one suite (e.g. dpo)",
        },
        "base": {
            "type": ["string", "null"],
            "minLength": 1,
            "description": "id (file stem) of the entry this model was aligned from; the "
            "site shows per-utterance paired deltas against it",
        },
        "model": {
            "type": "object",
            "required": ["name", "version", "options"],
            "properties": {
                **_COMPONENT,
                "paradigm": {"type": ["string", "null"]},
                "checkpoint_sha256": {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$"},
            },
        },
        "suite": {
            "type": "object",
            "required": ["name", "version", "options", "fingerprint", "limit"],
            "properties": {
                **_COMPONENT,
                "fingerprint": {"type": "string", "minLength": 1},
                "limit": {"type": ["integer", "null"], "minimum": 1},
            },
        },
        "seed": {"type": "integer"},
        "metrics": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "version", "options", "outputs"],
                "properties": {
                    **_COMPONENT,
                    "outputs": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["name", "higher_is_better"],
                            "additionalProperties": False,
                            "properties": {
                                "name": _NAME,
                                "higher_is_better": {"type": "boolean"},
                            },
                        },
                    },
                },
            },
        },
        "summary": {
            "type": "object",
            "description": "metric output name -> aggregate over the utterances",
            "additionalProperties": {
                "type": "object",
                "required": ["mean", "ci_low", "ci_high", "n_scored", "n_total"],
                "additionalProperties": False,
                "properties": {
                    "mean": _NUMBER_OR_NULL,
                    "ci_low": _NUMBER_OR_NULL,
                    "ci_high": _NUMBER_OR_NULL,
                    "n_scored": {"type": "integer", "minimum": 0},
                    "n_total": {"type": "integer", "minimum": 0},
                },
            },
        },
        "utterances": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["utterance_id", "index", "scores"],
                "additionalProperties": False,
                "properties": {
                    "utterance_id": {"type": "string", "minLength": 1},
                    "index": {"type": "integer", "minimum": 0},
                    "scores": {"type": "object", "additionalProperties": _NUMBER_OR_NULL},
                    "errors": {"type": "object", "additionalProperties": {"type": "string"}},
                    "meta": {"type": "object"},
                    "flags": {"type": "object"},
                },
            },
        },
        "provenance": {"type": "object"},
        "source": {
            "type": "object",
            "description": "where the entry came from (the run folder, for its saved audio)",
            "properties": {"run_dir": {"type": "string"}, "run_id": {"type": "string"}},
        },
        "added_at": {
            "type": "string",
            "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}",
            "description": "ISO 8601 time the entry was added (UTC)",
        },
    },
}


def _location(parts: Iterable[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _non_finite(data: Any, path: tuple[Any, ...] = ()) -> Iterable[tuple[tuple[Any, ...], float]]:
    """Every NaN or infinite float in ``data``, with its location."""
    if isinstance(data, float) and not math.isfinite(data):
        yield path, data
    elif isinstance(data, Mapping):
        for key, value in data.items():
            yield from _non_finite(value, (*path, key))
    elif isinstance(data, (list, tuple)):
        for i, value in enumerate(data):
            yield from _non_finite(value, (*path, i))


def validate_entry(data: Any, source: str | Path = "entry") -> None:
    """Raise :class:`EntryError` naming ``source`` and the first problems when ``data`` is not
    a valid entry: non-finite numbers, the schema, then consistency (summaries and scores name
    declared outputs, utterances are unique, ``n_total`` counts them)."""
    import jsonschema

    # Python's json reads NaN and Infinity, and JSON Schema's "number" accepts them; they
    # are no results (a failed value is null), and the site would show "nan" and sort them.
    bad = list(_non_finite(data))
    if bad:
        where = "; ".join(f"at {_location(path)}: {value}" for path, value in bad[:3])
        more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
        raise EntryError(
            f"{source} is not a valid leaderboard entry: it holds non-finite numbers ({where}"
            f"{more}); every number must be finite, and a failed value is null. Entries are "
            "written by `gensr-bench leaderboard add RUN_DIR`."
        )
    validator = jsonschema.Draft202012Validator(ENTRY_SCHEMA)
    errors = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        shown = []
        for error in errors[:3]:
            message = error.message if len(error.message) <= 200 else error.message[:200] + "..."
            shown.append(f"at {_location(error.absolute_path)}: {message}")
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        raise EntryError(
            f"{source} is not a valid leaderboard entry (schema version {SCHEMA_VERSION}): "
            + "; ".join(shown)
            + more
            + ". Entries are written by `gensr-bench leaderboard add RUN_DIR`."
        )
    declared = [o["name"] for m in data["metrics"] for o in m["outputs"]]
    problems = []
    if len(set(declared)) != len(declared):
        problems.append("an output is declared by two metrics")
    if set(data["summary"]) != set(declared):
        problems.append(
            f"summary names {sorted(data['summary'])} but the metrics declare {sorted(declared)}"
        )
    seen: set[tuple[str, int]] = set()
    for i, utt in enumerate(data["utterances"]):
        stray = sorted(set(utt["scores"]) - set(declared))
        if stray:
            problems.append(f"utterances[{i}] scores undeclared output(s) {stray}")
        key = (utt["utterance_id"], utt["index"])
        if key in seen:
            problems.append(f"utterances[{i}] repeats utterance {utt['utterance_id']!r}")
        seen.add(key)
    for name, summary in data["summary"].items():
        if summary["n_total"] != len(data["utterances"]):
            problems.append(
                f"summary.{name}.n_total is {summary['n_total']} but the entry holds "
                f"{len(data['utterances'])} utterances"
            )
    if problems:
        raise EntryError(
            f"{source} is not a consistent leaderboard entry: {'; '.join(problems[:3])}"
        )


# -- entries ----------------------------------------------------------------------------------
def safe_name(text: str) -> str:
    """A file-name-safe version of ``text`` (letters, digits, ``.``, ``_``, ``-``)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")
    return safe[:120] or "entry"


def _unique_slugs(ids: Iterable[str]) -> dict[str, str]:
    """id -> a file-name-safe slug, distinct even where two ids differ only in unsafe or
    upper-case characters (entries are untrusted files; file systems may ignore case)."""
    slugs: dict[str, str] = {}
    taken: set[str] = set()
    for key in ids:
        slug = base = safe_name(key)
        n = 2
        while slug.lower() in taken:
            slug, n = f"{base}-{n}", n + 1
        taken.add(slug.lower())
        slugs[key] = slug
    return slugs


def entry_id(model: str, suite: str, tag: str | None = None) -> str:
    """The file stem of an entry: ``<model>--<suite>[--<tag>]``."""
    parts = [safe_name(model), safe_name(suite)] + ([safe_name(tag)] if tag else [])
    return ENTRY_SEPARATOR.join(parts)


def _read_run(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any], list[ScoredOutput]]:
    from gensr_bench.store import RunStore

    store = RunStore(run_dir)
    if not store.exists():
        nested = sorted(p.parent.name for p in run_dir.glob("*/results.sqlite"))
        hint = (
            f"; it holds runs in sub-folders ({', '.join(nested)}): add each of them"
            if nested
            else "; pass the --out folder of a finished `gensr-bench run`"
        )
        raise EntryError(f"{run_dir} holds no run: {store.path} does not exist{hint}")
    try:
        config = store.get_info("config")
        provenance = store.get_info("provenance") or {}
        sessions = store.get_info("sessions")
        status = store.get_info("status")
        outputs = list(store.outputs())
    except (StoreError, OSError, ValueError) as exc:
        raise EntryError(f"cannot read the run in {run_dir}: {exc}") from exc
    finally:
        store.close()
    if not isinstance(config, dict):
        raise EntryError(f"{store.path} records no run configuration; is it a gensr-bench run?")
    if status != "finished":
        raise EntryError(
            f"the run in {run_dir} is not finished ({len(outputs)} utterances scored); finish "
            "it with `gensr-bench run ... --out DIR --resume` before adding it"
        )
    if sessions is not None:
        provenance = {**provenance, "sessions": sessions}
    return config, provenance, outputs


def entry_from_run(
    run_dir: str | Path,
    metric_outputs: Mapping[str, Mapping[str, bool]],
    *,
    tag: str | None = None,
    base: str | None = None,
    label: str | None = None,
    limit: int | None = None,
    now: datetime.datetime | None = None,
) -> dict[str, Any]:
    """The entry (a JSON-ready dict) of the finished run in ``run_dir``.

    ``metric_outputs`` maps each metric name of the run to its outputs and whether higher is
    better (the CLI reads them from the registered metric classes). ``limit`` keeps only the
    first ``limit`` utterances, as a run with ``--limit`` would have scored them (the suite
    and the per-utterance seeds do not depend on the limit), e.g. for a quick CI baseline.
    """
    from gensr_bench.stats import summarise

    run_dir = Path(run_dir)
    config, provenance, outputs = _read_run(run_dir)
    if tag is not None and not re.match(TAG_PATTERN, tag):
        raise EntryError(f"tag {tag!r} is invalid: use lowercase letters, digits, '.', '_', '-'")
    suite = dict(config.get("suite") or {})
    if limit is not None:
        if limit < 1:
            raise EntryError(f"limit must be at least 1, got {limit}")
        recorded = suite.get("limit")
        if recorded is not None and limit > recorded:
            raise EntryError(
                f"the run in {run_dir} scored only its first {recorded} utterances; "
                f"a limit of {limit} needs a longer run"
            )
        outputs = [o for o in outputs if o.index < limit]
        suite["limit"] = limit
    metrics = []
    for metric in config.get("metrics") or []:
        described = metric_outputs.get(metric.get("name"))
        if described is None:
            raise EntryError(
                f"metric {metric.get('name')!r} of the run in {run_dir} is not registered, so "
                "its outputs and their directions are unknown; install the plugin that "
                "provides it"
            )
        metrics.append(
            {
                **metric,
                "outputs": [{"name": n, "higher_is_better": bool(h)} for n, h in described.items()],
            }
        )
    directions = {o["name"]: o["higher_is_better"] for m in metrics for o in m["outputs"]}
    undeclared = sorted({n for o in outputs for n in o.scores} - set(directions))
    if undeclared:
        raise EntryError(
            f"the run in {run_dir} has scores for {undeclared}, which no metric of its "
            "configuration declares; is the installed metric plugin another version?"
        )
    summaries = summarise(
        outputs, list(directions), directions.__getitem__, seed=int(config.get("seed", 0))
    )
    components = provenance.get("components") or {}
    model_component = components.get("model") if isinstance(components, dict) else None
    paradigm = model_component.get("paradigm") if isinstance(model_component, dict) else None
    model = dict(config.get("model") or {})
    model_name = str(model.get("name", "?"))
    entry: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "label": label or (f"{model_name}-{tag}" if tag else model_name),
        "tag": tag,
        "base": base,
        "model": {
            **model,
            "paradigm": paradigm,
            "checkpoint_sha256": provenance.get("model_checkpoint_sha256"),
        },
        "suite": suite,
        "seed": config.get("seed", 0),
        "metrics": metrics,
        "summary": {
            s.output: {
                "mean": s.mean,
                "ci_low": s.ci_low,
                "ci_high": s.ci_high,
                "n_scored": s.n_scored,
                "n_total": s.n_total,
            }
            for s in summaries
        },
        "utterances": [
            {
                "utterance_id": o.utterance_id,
                "index": o.index,
                "scores": dict(o.scores),
                "errors": dict(o.errors),
                "meta": dict(o.meta),
                "flags": dict(o.flags),
            }
            for o in outputs
        ],
        "provenance": provenance,
        "source": {"run_dir": str(run_dir.resolve()), "run_id": run_dir.resolve().name},
        "added_at": (now or datetime.datetime.now(datetime.UTC)).isoformat(timespec="seconds"),
    }
    validate_entry(entry, run_dir)
    return entry


def dumps_entry(entry: Mapping[str, Any]) -> str:
    """An entry as JSON text: indented, with one line per utterance (the utterances come last)
    so files stay small and their diffs readable."""
    head = {k: v for k, v in entry.items() if k != "utterances"}
    text = json.dumps(head, indent=2, allow_nan=False)
    lines = [json.dumps(u, allow_nan=False, separators=(",", ":")) for u in entry["utterances"]]
    body = "[\n    " + ",\n    ".join(lines) + "\n  ]" if lines else "[]"
    return text[: -len("\n}")] + f',\n  "utterances": {body}\n}}\n'


def add(
    run_dir: str | Path,
    results_dir: str | Path,
    metric_outputs: Mapping[str, Mapping[str, bool]],
    *,
    tag: str | None = None,
    base: str | None = None,
    label: str | None = None,
    limit: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the entry of the finished run in ``run_dir`` to
    ``results_dir/<model>--<suite>[--tag].json`` and return its path.

    See :func:`entry_from_run` for the entry and :func:`write_entry` for where it goes.
    """
    entry = entry_from_run(run_dir, metric_outputs, tag=tag, base=base, label=label, limit=limit)
    return write_entry(entry, results_dir, limit=limit, overwrite=overwrite)


def write_entry(
    entry: Mapping[str, Any],
    results_dir: str | Path,
    *,
    limit: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``entry`` to ``results_dir/<model>--<suite>[--tag | --first<limit>].json``.

    Refuses to replace an existing file unless ``overwrite``; the entry's ``base`` must name
    an entry (file stem) that exists in ``results_dir``.
    """
    results = Path(results_dir)
    base, tag = entry.get("base"), entry.get("tag")
    if base is not None and not (results / f"{base}.json").is_file():
        known = ", ".join(sorted(p.stem for p in results.glob("*.json"))) or "(none)"
        raise EntryError(
            f"base entry {base!r} is not in {results} ({results / (base + '.json')} does not "
            f"exist); entries there: {known}"
        )
    stem = entry_id(entry["model"]["name"], entry["suite"]["name"], tag)
    if limit is not None and tag is None:
        stem += f"{ENTRY_SEPARATOR}first{limit}"
    path = results / f"{stem}.json"
    if path.exists() and not overwrite:
        raise EntryError(
            f"{path} already exists; pass --overwrite to replace it, or --tag NAME to add "
            "this run as another entry"
        )
    results.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(dumps_entry(entry))
    tmp.replace(path)
    return path


def _read_entry_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise EntryError(f"no leaderboard entry at {path}: the file does not exist") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise EntryError(f"cannot read leaderboard entry {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise EntryError(f"{path} is not JSON ({exc}); is it a leaderboard entry?") from exc
    validate_entry(data, path)
    return dict(data)


def _outputs_of(data: Mapping[str, Any]) -> list[ScoredOutput]:
    return [
        ScoredOutput(
            utterance_id=u["utterance_id"],
            index=u["index"],
            scores=dict(u["scores"]),
            errors=dict(u.get("errors") or {}),
            meta=dict(u.get("meta") or {}),
            flags=dict(u.get("flags") or {}),
        )
        for u in data["utterances"]
    ]


def _config_of(data: Mapping[str, Any]) -> dict[str, Any]:
    model = {k: v for k, v in data["model"].items() if k not in ("paradigm", "checkpoint_sha256")}
    metrics = [{k: v for k, v in m.items() if k != "outputs"} for m in data["metrics"]]
    return {"model": model, "suite": dict(data["suite"]), "metrics": metrics, "seed": data["seed"]}


def load_entry(path: str | Path) -> tuple[dict[str, Any], list[ScoredOutput]]:
    """An entry read back as ``(config, outputs)``: the run configuration (as the run folder
    recorded it) and every utterance's ScoredOutput in suite order (timings are not kept).

    Raises :class:`EntryError` for a missing, unreadable or invalid file.
    """
    config, outputs, _ = load_entry_with_provenance(path)
    return config, outputs


def load_entry_with_provenance(
    path: str | Path,
) -> tuple[dict[str, Any], list[ScoredOutput], dict[str, Any]]:
    """:func:`load_entry` and the run's provenance, as the run folder recorded it."""
    data = _read_entry_file(Path(path))
    return _config_of(data), _outputs_of(data), dict(data["provenance"])


@dataclass(frozen=True)
class Entry:
    """A validated entry file and what the site derives from it."""

    id: str
    path: Path
    data: Mapping[str, Any]

    @property
    def label(self) -> str:
        return str(self.data["label"])

    @property
    def paradigm(self) -> str:
        return str(self.data["model"].get("paradigm") or "unknown")

    @property
    def suite_key(self) -> tuple[str, str, int | None]:
        suite = self.data["suite"]
        return str(suite["name"]), str(suite["fingerprint"]), suite["limit"]

    @functools.cached_property
    def directions(self) -> dict[str, bool]:
        return {
            o["name"]: o["higher_is_better"] for m in self.data["metrics"] for o in m["outputs"]
        }

    @functools.cached_property
    def outputs(self) -> tuple[ScoredOutput, ...]:
        """Every utterance's ScoredOutput, built once (the site reads them several times)."""
        return tuple(_outputs_of(self.data))


def load_entries(results_dir: str | Path) -> list[Entry]:
    """Every ``*.json`` entry in ``results_dir`` (validated), sorted by file name."""
    results = Path(results_dir)
    if not results.is_dir():
        raise EntryError(
            f"results folder {results} does not exist; add a run with "
            "`gensr-bench leaderboard add RUN_DIR --results DIR`"
        )
    return [
        Entry(path.stem, path, _read_entry_file(path)) for path in sorted(results.glob("*.json"))
    ]


# -- reported figures -------------------------------------------------------------------------
@dataclass(frozen=True)
class ReportedTable:
    """Published figures for one suite from one source file (never mixed with measurements)."""

    source_file: str
    citation: str
    notes: tuple[str, ...]
    suite: str
    columns: tuple[str, ...]
    descriptive: tuple[str, ...]
    rows: tuple[Mapping[str, Any], ...]


def load_reported(reported_dir: str | Path) -> list[ReportedTable]:
    """Tables of published figures from ``reported_dir/*.csv``.

    The CSV format: ``#`` comment lines first (the first one is the citation, the others are
    shown as notes), then a header with ``suite`` and ``model`` columns, optional descriptive
    columns (:data:`REPORTED_DESCRIPTIVE`), and one column per reported figure; an empty cell
    means "not reported". Rows are grouped by suite, in file order.
    """
    folder = Path(reported_dir)
    if not folder.is_dir():
        return []
    tables: list[ReportedTable] = []
    for path in sorted(folder.glob("*.csv")):
        comments: list[str] = []
        body: list[str] = []
        for line in path.read_text().splitlines():
            if line.startswith("#") and not body:
                comments.append(line.lstrip("#").strip())
            elif line.strip():
                body.append(line)
        reader = csv.DictReader(body)
        header = list(reader.fieldnames or [])
        if "suite" not in header or "model" not in header:
            raise EntryError(
                f"{path}: a reported-figures CSV needs 'suite' and 'model' columns, got {header}"
            )
        descriptive = tuple(c for c in header if c in REPORTED_DESCRIPTIVE and c != "suite")
        figures = tuple(c for c in header if c not in REPORTED_DESCRIPTIVE)
        by_suite: dict[str, list[dict[str, Any]]] = {}
        for line_no, raw in enumerate(reader, start=len(comments) + 2):
            row: dict[str, Any] = {c: (raw.get(c) or "").strip() for c in descriptive}
            for column in figures:
                text = (raw.get(column) or "").strip()
                try:
                    row[column] = float(text) if text else None
                except ValueError as exc:
                    raise EntryError(
                        f"{path}, line {line_no}: {column}={text!r} is not a number (leave the "
                        "cell empty for a figure that was not reported)"
                    ) from exc
            by_suite.setdefault((raw.get("suite") or "").strip() or "(no suite)", []).append(row)
        citation = comments[0] if comments else path.name
        for suite, rows in by_suite.items():
            tables.append(
                ReportedTable(
                    path.name,
                    citation,
                    tuple(comments[1:]),
                    suite,
                    figures,
                    descriptive,
                    tuple(rows),
                )
            )
    return tables


# -- the site ---------------------------------------------------------------------------------
@dataclass
class BuildReport:
    """What :func:`build` wrote: the site folder, counts and notes (e.g. missing audio)."""

    out_dir: Path
    entries: int = 0
    suites: int = 0
    reported_rows: int = 0
    charts: int = 0
    examples: int = 0
    notes: list[str] = field(default_factory=list)


def _num(value: Any, digits: int = 3) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return "—"
    return f"{value:.{digits}f}"


def _signed(value: Any, digits: int = 3) -> str:
    if value is None or not isinstance(value, (int, float)):
        return "—"
    return f"{value:+.{digits}f}"


def _sort_value(value: Any) -> str:
    return "" if value is None or not isinstance(value, (int, float)) else repr(float(value))


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


@dataclass
class _Group:
    """The measured entries of one suite (name, fingerprint, limit)."""

    key: tuple[str, str, int | None]
    slug: str
    entries: list[Entry]
    outputs: list[tuple[str, bool]]

    @property
    def title(self) -> str:
        return self.key[0]

    @property
    def scope(self) -> str:
        limit = self.key[2]
        return "all utterances" if limit is None else f"first {limit} utterances"


def _groups(entries: Sequence[Entry]) -> list[_Group]:
    grouped: dict[tuple[str, str, int | None], list[Entry]] = {}
    for entry in entries:
        grouped.setdefault(entry.suite_key, []).append(entry)
    groups = []
    for key in sorted(grouped, key=lambda k: (k[0], k[2] is not None, k[2] or 0, k[1])):
        members = grouped[key]
        outputs: dict[str, bool] = {}
        for entry in members:
            for name, better in entry.directions.items():
                outputs.setdefault(name, better)
        slug = safe_name(f"{key[0]}-{key[1][:8]}-{'all' if key[2] is None else key[2]}")
        groups.append(_Group(key, slug, members, list(outputs.items())))
    return groups


def _deltas(entry: Entry, base: Entry, outputs: Sequence[tuple[str, bool]]) -> dict[str, Any]:
    from gensr_bench.stats import paired_difference

    mine, theirs = entry.outputs, base.outputs
    deltas = {}
    for name, better in outputs:
        d = paired_difference(mine, theirs, name)
        verdict = ""
        if d.significant and d.mean is not None:
            verdict = "better" if (d.mean > 0) == better else "worse"
        deltas[name] = {
            "mean": d.mean,
            "ci_low": d.ci_low,
            "ci_high": d.ci_high,
            "n": d.n_paired,
            "verdict": verdict,
            "sort": _sort_value(d.mean),
        }
    return deltas


def _best_first(entries: Sequence[Entry], name: str, better: bool) -> list[Entry]:
    """The entries with a mean for output ``name``, best first."""
    scored = [
        e
        for e in entries
        if isinstance((e.data["summary"].get(name) or {}).get("mean"), (int, float))
    ]
    return sorted(
        scored, key=lambda e: (-1 if better else 1) * float(e.data["summary"][name]["mean"])
    )


def _bar_chart(path: Path, title: str, rows: Sequence[tuple[str, Mapping[str, Any]]]) -> bool:
    """A horizontal bar chart of means with 95% CI error bars, first row on top; False when
    nothing to plot."""
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    points = [
        (label if len(label) <= 40 else label[:39] + "…", s["mean"], s["ci_low"], s["ci_high"])
        for label, s in rows
        if isinstance(s.get("mean"), (int, float))
    ]
    if not points:
        return False
    # Labels come from results files: never let matplotlib read '$' as mathtext.
    with rc_context({"text.parse_math": False, "text.usetex": False}):
        fig = Figure(figsize=(6.4, 0.45 * len(points) + 1.1), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        ys = list(range(len(points)))[::-1]
        means = [p[1] for p in points]
        low = [p[1] - p[2] if p[2] is not None else 0.0 for p in points]
        high = [p[3] - p[1] if p[3] is not None else 0.0 for p in points]
        ax.barh(ys, means, xerr=[low, high], color="#4c78a8", ecolor="#222", capsize=4)
        ax.set_yticks(ys, [p[0] for p in points])
        ax.set_title(title, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        fig.savefig(path)
    return True


def _spectrogram(path: Path, audio: Audio) -> None:
    """A small log-magnitude spectrogram (80 dB range) of ``audio`` as a PNG, no axes."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from scipy.signal import stft

    samples = audio.samples
    if len(samples) < 64:
        samples = np.pad(samples, (0, 64 - len(samples)))
    window = min(512, len(samples))
    _, _, spec = stft(samples, fs=audio.sample_rate, nperseg=window, noverlap=window * 3 // 4)
    db = 20 * np.log10(np.maximum(np.abs(spec), 1e-6))
    fig = Figure(figsize=(4.0, 1.6), dpi=80)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    top = float(db.max())
    ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=top - 80, vmax=top)
    ax.set_axis_off()
    fig.subplots_adjust(0, 0, 1, 1)
    fig.savefig(path)


def _pick_examples(outputs: Sequence[ScoredOutput], key: str, n: int) -> list[ScoredOutput]:
    """Up to ``n`` outputs with saved audio, one per value of ``meta[key]`` first."""
    with_audio = [o for o in outputs if isinstance(o.flags.get("audio"), str)]
    chosen: list[ScoredOutput] = []
    seen: set[str] = set()
    for output in with_audio:
        value = str(output.meta.get(key))
        if value not in seen and len(chosen) < n:
            chosen.append(output)
            seen.add(value)
    for output in with_audio:
        if len(chosen) >= n:
            break
        if output not in chosen:
            chosen.append(output)
    return sorted(chosen, key=lambda o: o.index)


def _saved_audio(entry: Entry, output: ScoredOutput) -> Path | None:
    """The file the run saved for ``output``, if its run folder is still there."""
    name = output.flags.get("audio")
    run_dir = (entry.data.get("source") or {}).get("run_dir")
    if not isinstance(name, str) or not isinstance(run_dir, str) or Path(name).name != name:
        return None
    path = Path(run_dir) / "audio" / name
    return path if path.is_file() else None


def _examples(
    entry: Entry,
    base: Entry | None,
    site: Path,
    slug: str,
    key: str,
    n: int,
    inputs: InputsFor | None,
    report: BuildReport,
) -> tuple[list[dict[str, Any]], str | None]:
    """Listening examples of one entry (copied into the site) or a note saying why none."""
    from gensr_bench.audio import read_audio, write_audio

    if n <= 0:
        return [], None
    outputs = entry.outputs
    picked = [o for o in _pick_examples(outputs, key, n) if _saved_audio(entry, o)]
    if not picked:
        saved = any(isinstance(o.flags.get("audio"), str) for o in outputs)
        if saved:
            return [], "The run saved audio, but its run folder is not on this machine."
        return [], "No audio was saved for this run (run it with `gensr-bench run --save-audio`)."
    base_outputs = {(o.utterance_id, o.index): o for o in base.outputs} if base else {}
    sources: Mapping[str, tuple[Audio | None, Audio | None]] = {}
    note = None
    if inputs is not None:
        try:
            sources = inputs(_config_of(entry.data), [o.utterance_id for o in picked])
        except GensrError as exc:
            note = f"Degraded and reference audio are not shown: {exc}"
    else:
        note = "Degraded and reference audio are not shown (no suite to read them from)."
    folder = site / "audio" / slug
    folder.mkdir(parents=True, exist_ok=True)
    examples = []
    for number, output in enumerate(picked, start=1):
        degraded, reference = sources.get(output.utterance_id, (None, None))
        clips: list[tuple[str, Audio | None, Path | None]] = [("degraded", degraded, None)]
        if base is not None:
            base_output = base_outputs.get((output.utterance_id, output.index))
            base_file = _saved_audio(base, base_output) if base_output else None
            clips.append((f"base ({base.label})", None, base_file))
        clips.append((entry.label, None, _saved_audio(entry, output)))
        clips.append(("reference", reference, None))
        shown = []
        for role_no, (role, audio, file) in enumerate(clips):
            stem = f"{number}-{role_no}"
            if file is not None:
                audio = read_audio(file)
            if audio is None:
                shown.append({"role": role, "wav": None, "png": None})
                continue
            write_audio(folder / f"{stem}.wav", audio, subtype="PCM_16")
            _spectrogram(folder / f"{stem}.png", audio)
            shown.append(
                {
                    "role": role,
                    "wav": f"../audio/{slug}/{stem}.wav",
                    "png": f"../audio/{slug}/{stem}.png",
                }
            )
        examples.append(
            {
                "utterance_id": output.utterance_id,
                "meta": output.meta.get(key),
                "scores": [(name, _num(v)) for name, v in output.scores.items()],
                "clips": shown,
            }
        )
        report.examples += 1
    return examples, note


def _breakdown(entry: Entry, key: str) -> list[dict[str, Any]]:
    from gensr_bench.stats import group_by, summarise

    outputs = entry.outputs
    if not any(key in o.meta for o in outputs):
        return []
    directions = entry.directions
    rows = []
    for value, members in group_by(outputs, key).items():
        summaries = summarise(members, list(directions), directions.__getitem__)
        rows.append(
            {
                "value": value,
                "n": len(members),
                "cells": [
                    {
                        "mean": _num(s.mean),
                        "ci": f"[{_num(s.ci_low)}, {_num(s.ci_high)}]"
                        if s.mean is not None
                        else "",
                        "sort": _sort_value(s.mean),
                    }
                    for s in summaries
                ],
            }
        )
    return rows


def _provenance_view(prov: Mapping[str, Any]) -> dict[str, Any]:
    """The provenance fields a page shows, read defensively (the file is untrusted)."""

    def get(mapping: Any, *keys: str) -> Any:
        for k in keys:
            mapping = mapping.get(k) if isinstance(mapping, Mapping) else None
        return mapping

    listed = prov.get("plugins")
    plugins = [
        {
            "name": str(p.get("name")),
            "source": str(p.get("source")),
            "version": str(p.get("version")),
        }
        for p in (listed if isinstance(listed, list) else [])
        if isinstance(p, Mapping)
    ]
    sessions = prov.get("sessions")
    wall: list[Any] = []
    if isinstance(sessions, list):
        wall = [s.get("wall_s") for s in sessions if isinstance(s, Mapping)]
    return {
        "version": get(prov, "gensr_bench_version"),
        "commit": get(prov, "git", "commit"),
        "dirty": get(prov, "git", "dirty"),
        "seed": get(prov, "seed"),
        "python": get(prov, "machine", "python"),
        "platform": get(prov, "machine", "platform"),
        "cpu_count": get(prov, "machine", "cpu_count"),
        "wall_s": sum(w for w in wall if isinstance(w, (int, float))) if wall else None,
        "plugins": plugins,
        "weights": prov.get("metric_weights_sha256")
        if isinstance(prov.get("metric_weights_sha256"), Mapping)
        else {},
        "components": prov.get("components") if isinstance(prov.get("components"), Mapping) else {},
    }


def _prepare_out(out_dir: Path) -> Path:
    """A fresh staging folder beside ``out_dir``; refuses to replace a folder that is not a
    site this function built."""
    if out_dir.exists():
        if not out_dir.is_dir():
            raise EntryError(f"--out {out_dir} is a file; pass a folder for the site")
        if any(out_dir.iterdir()) and not (out_dir / SITE_MARKER).exists():
            raise EntryError(
                f"--out {out_dir} is not empty and holds no leaderboard site ({SITE_MARKER} is "
                "missing); refusing to replace it: choose an empty or new folder"
            )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.building-", dir=out_dir.parent))


def build(
    results_dir: str | Path,
    out_dir: str | Path,
    *,
    reported_dir: str | Path | None = None,
    breakdown_key: str = "degradation",
    examples: int = 3,
    inputs: InputsFor | None = None,
    generator: str = "gensr-bench",
) -> BuildReport:
    """Render the site for every entry in ``results_dir`` (and the published figures in
    ``reported_dir``, default ``results_dir/../reported``) into ``out_dir``.

    ``out_dir`` must be new, empty, or a site built here before (it is then replaced whole).
    ``inputs`` gives the degraded and reference audio of utterances for listening examples;
    without it only the model outputs are shown. Returns what was written and notes.
    """
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    results = Path(results_dir)
    out = Path(out_dir)
    entries = load_entries(results)
    reported = load_reported(results.parent / "reported" if reported_dir is None else reported_dir)
    report = BuildReport(out_dir=out, entries=len(entries))
    report.reported_rows = sum(len(t.rows) for t in reported)
    if not entries:
        report.notes.append(f"no entries in {results}: the site shows published figures only")
    by_id = {e.id: e for e in entries}
    slugs = _unique_slugs(e.id for e in entries)
    groups = _groups(entries)
    report.suites = len(groups)

    stage = _prepare_out(out)
    try:
        (stage / "models").mkdir()
        (stage / "charts").mkdir()
        (stage / "entries").mkdir()
        (stage / "assets").mkdir()
        for asset in ("leaderboard.css", "leaderboard.js"):
            shutil.copyfile(TEMPLATES / asset, stage / "assets" / asset)
        env = Environment(
            loader=FileSystemLoader(str(TEMPLATES)),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        generated = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        common = {"generator": generator, "generated": generated}

        suite_views = []
        model_pages = []
        for group in groups:
            rows: list[dict[str, Any]] = []
            has_delta = False
            for entry in group.entries:
                base_id = entry.data.get("base")
                base = by_id.get(base_id) if base_id else None
                base_note = None
                if base_id and base is None:
                    base_note = f"base entry {base_id!r} is not in the results"
                elif base is not None and base.suite_key != entry.suite_key:
                    base_note = f"base entry {base_id!r} was measured on another suite"
                    base = None
                deltas = _deltas(entry, base, group.outputs) if base else {}
                has_delta = has_delta or bool(deltas)
                summary = entry.data["summary"]
                cells = []
                for name, _better in group.outputs:
                    s = summary.get(name) or {}
                    cells.append(
                        {
                            "mean": _num(s.get("mean")),
                            "ci": f"[{_num(s.get('ci_low'))}, {_num(s.get('ci_high'))}]"
                            if s.get("mean") is not None
                            else "",
                            "n": f"{s.get('n_scored', 0)}/{s.get('n_total', 0)}" if s else "",
                            "sort": _sort_value(s.get("mean")),
                        }
                    )
                rows.append(
                    {
                        "entry": entry,
                        "slug": slugs[entry.id],
                        "base": base,
                        "base_slug": slugs.get(base.id) if base else None,
                        "base_note": base_note,
                        "n": len(entry.data["utterances"]),
                        "cells": cells,
                        "deltas": [deltas.get(name) for name, _ in group.outputs],
                        "added": str(entry.data["added_at"])[:10],
                    }
                )
                model_pages.append((entry, group, base, base_note, deltas))
            if group.outputs:
                # Best first by the first output; entries without it go last.
                order = {
                    e.id: i for i, e in enumerate(_best_first(group.entries, *group.outputs[0]))
                }
                rows.sort(key=lambda row: order.get(row["entry"].id, len(order)))
            charts = []
            for name, better in group.outputs:
                chart = f"{group.slug}--{safe_name(name)}.png"
                title = f"{name} ({'higher' if better else 'lower'} is better), {group.title}"
                bars = [
                    (e.label, e.data["summary"][name])
                    for e in _best_first(group.entries, name, better)
                ]
                if _bar_chart(stage / "charts" / chart, title, bars):
                    charts.append({"file": f"charts/{chart}", "output": name})
                    report.charts += 1
            suite_views.append(
                {"group": group, "rows": rows, "has_delta": has_delta, "charts": charts}
            )

        paradigms = sorted(
            {e.paradigm for e in entries}
            | {str(r.get("paradigm")) for t in reported for r in t.rows if r.get("paradigm")}
        )
        index_html = env.get_template("index.html").render(
            suites=suite_views,
            reported=reported,
            paradigms=paradigms,
            num=_num,
            signed=_signed,
            sort_value=_sort_value,
            root="",
            **common,
        )
        (stage / "index.html").write_text(index_html)

        for entry, group, base, base_note, deltas in model_pages:
            slug = slugs[entry.id]
            shutil.copyfile(entry.path, stage / "entries" / f"{slug}.json")
            examples_view, examples_note = _examples(
                entry, base, stage, slug, breakdown_key, examples, inputs, report
            )
            if examples_note:
                report.notes.append(f"{entry.id}: {examples_note}")
            failures = [o for o in entry.outputs if o.errors]
            page = env.get_template("model.html").render(
                entry=entry,
                data=entry.data,
                slug=slug,
                group=group,
                base=base,
                base_slug=slugs.get(base.id) if base else None,
                base_note=base_note,
                deltas=deltas,
                breakdown_key=breakdown_key,
                breakdown=_breakdown(entry, breakdown_key),
                examples=examples_view,
                examples_note=examples_note,
                failures=failures,
                prov=_provenance_view(entry.data["provenance"]),
                pretty=_pretty,
                num=_num,
                signed=_signed,
                root="../",
                **common,
            )
            (stage / "models" / f"{slug}.html").write_text(page)
        (stage / SITE_MARKER).write_text("built by gensr-bench leaderboard build\n")
        if out.exists():
            shutil.rmtree(out)
        stage.replace(out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return report
