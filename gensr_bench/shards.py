"""Shards: split a run into ``i/N`` parts (round robin over the suite) and merge the finished
parts back into the run they split."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gensr_bench.errors import ConfigError, DiskFullError, disk_full_as_error
from gensr_bench.records import RunResult


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/N"`` -> ``(i, N)`` with ``0 <= i < N``; ConfigError with the fix otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if match is None:
        raise ConfigError(
            f"shard {text!r} is not of the form i/N (e.g. 0/4 for the first of four shards)"
        )
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 0 <= index < count:
        raise ConfigError(
            f"shard {text!r} is out of range: N must be at least 1 and i one of 0 .. N-1 "
            f"(shards of a 4-way split are 0/4, 1/4, 2/4 and 3/4)"
        )
    return index, count


def in_shard(position: int, shard: tuple[int, int] | None) -> bool:
    """Whether the utterance at ``position`` of the suite belongs to ``shard`` (round robin)."""
    return shard is None or position % shard[1] == shard[0]


def shard_size(total: int, shard: tuple[int, int] | None) -> int:
    """How many of ``total`` utterances ``shard`` holds."""
    if shard is None:
        return total
    index, count = shard
    return total // count + (1 if index < total % count else 0)


def merge_runs(
    run_dirs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    by: str | None = None,
) -> RunResult:
    """Join the finished shards ``i/N`` of one run (``--shard``) into the run they split.

    Every shard must have the same configuration apart from ``shard`` and the same ``N``; each
    ``i`` must appear exactly once, and each shard must be finished. The merged store holds
    every shard's rows, the configuration of an unsharded run (so the result compares, reports
    and resumes as one), the shards' sessions, and its summary is computed as ``run_suite``
    computes it: the scores and summaries equal those of one run over the whole suite. Each
    output's direction is read from the shards' own summaries. Saved audio (``audio/``) is
    copied. ``by``: a meta key to break the merged means down by (``RunResult.breakdown``).
    """
    import json
    import shutil

    from gensr_bench.outcome import finish_run
    from gensr_bench.store import RunStore, read_run

    if not run_dirs:
        raise ConfigError("name the shard folders to merge (the --out of each --shard run)")
    shards: dict[int, tuple[Path, dict[str, Any]]] = {}
    directions: dict[str, bool] = {}
    base: dict[str, Any] | None = None
    count: int | None = None
    for run_dir in map(Path, run_dirs):
        recorded = read_run(run_dir, outputs=False)
        config, status = recorded.config or {}, recorded.status
        shard = config.get("shard")
        if shard is None:
            raise ConfigError(
                f"{run_dir} is not a shard: its run was made without --shard i/N; merge only "
                "the parts of one sharded run"
            )
        if status != "finished":
            raise ConfigError(
                f"shard {shard[0]}/{shard[1]} in {run_dir} is not finished; complete it by "
                "rerunning its command with --resume, then merge"
            )
        rest = {k: v for k, v in config.items() if k != "shard"}
        if base is None:
            base, count = rest, int(shard[1])
        elif rest != base:
            differing = sorted(k for k in set(rest) | set(base) if rest.get(k) != base.get(k))
            raise ConfigError(
                f"{run_dir} is a shard of a different run (its configuration differs in "
                f"{differing}); merge the shards of one command line only"
            )
        if int(shard[1]) != count:
            raise ConfigError(
                f"{run_dir} is shard {shard[0]}/{shard[1]}, but the others split the run into "
                f"{count}; all shards must use the same N"
            )
        if int(shard[0]) in shards:
            raise ConfigError(
                f"shard {shard[0]}/{count} given twice: {shards[int(shard[0])][0]} and {run_dir}"
            )
        shards[int(shard[0])] = (run_dir, config)
        try:
            summary = json.loads((run_dir / "summary.json").read_text())
            for item in summary["summaries"]:
                directions[item["output"]] = bool(item["higher_is_better"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"cannot read the summary of shard {shard[0]}/{shard[1]} in {run_dir} "
                f"({exc}); finish it by rerunning its command with --resume"
            ) from exc
    assert base is not None and count is not None
    missing = sorted(set(range(count)) - set(shards))
    if missing:
        raise ConfigError(
            f"cannot merge: shard(s) {', '.join(f'{i}/{count}' for i in missing)} missing; "
            "run them and pass every shard's folder"
        )
    with RunStore(out_dir) as target:
        try:
            target.create(base, resume=False, overwrite=overwrite)
            sessions: list[Any] = []
            provenance: dict[str, Any] = {}
            seen: dict[str, Path] = {}
            for index in range(count):
                run_dir, _ = shards[index]
                # Streamed row by row, so a merge never holds a whole shard in memory.
                with RunStore(run_dir) as source:
                    for output in source.outputs():
                        if output.utterance_id in seen:
                            raise ConfigError(
                                f"utterance {output.utterance_id!r} is in "
                                f"{seen[output.utterance_id]} and in {run_dir}; these shards "
                                "overlap"
                            )
                        seen[output.utterance_id] = run_dir
                        target.write(output)
                    shard_sessions = source.get_info("sessions")
                    shard_provenance = source.get_info("provenance")
                sessions.extend(
                    {**session, "shard": f"{index}/{count}", "run_dir": str(run_dir)}
                    for session in (shard_sessions if isinstance(shard_sessions, list) else [])
                )
                if not provenance and isinstance(shard_provenance, dict):
                    provenance = shard_provenance
                audio = run_dir / "audio"
                if audio.is_dir():
                    shutil.copytree(
                        audio,
                        Path(out_dir) / "audio",
                        dirs_exist_ok=True,
                        copy_function=_copy_file,
                    )
            provenance = {
                **provenance,
                "merged_from": [str(shards[i][0]) for i in range(count)],
            }
            target.set_info("provenance", provenance)
            target.set_info("sessions", sessions)
            # Every row lists every output of the run, in the metrics' order (BatchProcessor).
            first = next(target.outputs(), None)
            names = list(first.scores) if first is not None else []
            ordered = {name: directions[name] for name in names}
            return finish_run(target, base, {**provenance, "sessions": sessions}, ordered, by)
        except DiskFullError as exc:
            # A merge has no --resume: it is redone whole, over its own partial output.
            raise DiskFullError(exc.folder, exc.detail, "rerun the merge with --overwrite") from exc


def _copy_file(source: str, destination: str) -> str:
    """``shutil.copy2`` that raises DiskFullError on a full disk (``copytree`` would collect
    the OSError into a ``shutil.Error`` of strings and lose its errno)."""
    import shutil

    with disk_full_as_error(Path(destination).parent):
        return str(shutil.copy2(source, destination))
