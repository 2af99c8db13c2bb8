"""The JSON schema of a leaderboard result entry and its validation (non-finite numbers, the
schema, then consistency); :class:`EntryError` for every entry problem."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gensr_bench.errors import GensrError

SCHEMA_VERSION = 1
#: File names of entries: ``<model>--<suite>[--<tag>].json``.
ENTRY_SEPARATOR = "--"
TAG_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"


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
