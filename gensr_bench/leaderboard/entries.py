"""Result entries: a finished run frozen into a JSON file (:func:`add`), read back
(:func:`load_entry`, :func:`load_entries`), and tables of published figures
(:func:`load_reported`)."""

from __future__ import annotations

import csv
import datetime
import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gensr_bench.errors import StoreError
from gensr_bench.leaderboard.schema import (
    ENTRY_SEPARATOR,
    SCHEMA_VERSION,
    TAG_PATTERN,
    EntryError,
    validate_entry,
)
from gensr_bench.records import ScoredOutput

#: Columns of a reported CSV that describe a row; every other column holds a figure.
REPORTED_DESCRIPTIVE = ("table", "suite", "model", "paradigm", "aligned", "criterion", "note")


# -- entries ----------------------------------------------------------------------------------
def safe_name(text: str) -> str:
    """A file-name-safe version of ``text`` (letters, digits, ``.``, ``_``, ``-``)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")
    return safe[:120] or "entry"


def unique_slugs(ids: Iterable[str]) -> dict[str, str]:
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
    from gensr_bench.store import RUN_DB, has_run, read_run

    if not has_run(run_dir):
        nested = sorted(p.parent.name for p in run_dir.glob(f"*/{RUN_DB}"))
        hint = (
            f"; it holds runs in sub-folders ({', '.join(nested)}): add each of them"
            if nested
            else "; pass the --out folder of a finished `gensr-bench run`"
        )
        raise EntryError(f"{run_dir} holds no run: {run_dir / RUN_DB} does not exist{hint}")
    try:
        run = read_run(run_dir)
    except (StoreError, OSError, ValueError) as exc:
        raise EntryError(f"cannot read the run in {run_dir}: {exc}") from exc
    if run.config is None:
        raise EntryError(
            f"{run_dir / RUN_DB} records no run configuration; is it a gensr-bench run?"
        )
    if run.status != "finished":
        raise EntryError(
            f"the run in {run_dir} is not finished ({run.count} utterances scored); finish "
            "it with `gensr-bench run ... --out DIR --resume` before adding it"
        )
    provenance = run.provenance or {}
    if run.sessions is not None:
        provenance = {**provenance, "sessions": run.sessions}
    return run.config, provenance, list(run.outputs)


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


def config_of(data: Mapping[str, Any]) -> dict[str, Any]:
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
    return config_of(data), _outputs_of(data), dict(data["provenance"])


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
