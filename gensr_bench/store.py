"""SQLite stores: one per run (its per-utterance scores, for resume) and a shared score cache.

The run store lives at ``OUT/results.sqlite``. Each scored utterance is committed as soon as it
arrives, so a killed run loses at most the utterances in flight, and ``--resume`` skips the
finished ones. The cache maps (metric name + version + options, output audio hash, reference
hash, scoring rate) to a metric's values so unchanged work is never scored twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from gensr_bench.errors import RESUME_HINT, StoreError, disk_full_as_error
from gensr_bench.records import RunResult, ScoredOutput

RUN_DB = "results.sqlite"
CACHE_ENV = "GENSR_BENCH_CACHE_DIR"
SCHEMA_VERSION = 1
#: How to go on when the score cache's disk is full (the cache lives outside the run folder).
CACHE_FULL_HINT = (
    f"{RESUME_HINT} (or pass --no-cache, or set {CACHE_ENV} to a folder on another disk)"
)


def cache_dir() -> Path:
    """``GENSR_BENCH_CACHE_DIR`` if set, else the user cache dir of gensr-bench."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    import platformdirs

    return Path(platformdirs.user_cache_dir("gensr-bench"))


def _connect(path: Path, *, timeout: float = 60.0) -> sqlite3.Connection:
    """Open ``path`` in WAL mode, waiting up to ``timeout`` seconds for other processes.

    Switching a new database to WAL can report "database is locked" at once, without waiting,
    while another process (a scoring worker) opens it at the same moment; that switch is retried
    here until ``timeout``.
    """
    connection = sqlite3.connect(str(path), timeout=timeout, isolation_level=None)
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                connection.close()
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
    connection.execute("PRAGMA synchronous=NORMAL")
    return connection


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


class RunStore:
    """Per-utterance results of one run, keyed by utterance id.

    A writer uses it as a context manager (``with RunStore(out) as store:``), which closes the
    connection however the block ends; a reader calls :func:`read_run` instead.
    """

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / RUN_DB
        self._db: sqlite3.Connection | None = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            if not self.path.exists():
                raise StoreError(
                    f"no results store at {self.path}; is {self.out_dir} the --out folder of a "
                    "gensr-bench run?"
                )
            self._db = _connect(self.path)
        return self._db

    def exists(self) -> bool:
        return self.path.exists()

    def create(self, config: Mapping[str, Any], *, resume: bool, overwrite: bool) -> None:
        """Open the store for a run with ``config``.

        A new folder gets a new store. An existing store is continued with ``resume`` when its
        configuration matches, replaced with ``overwrite``, and refused otherwise.
        """
        # A full disk stops a run with DiskFullError; SQLite rolls the failed statement back,
        # so the rows committed before it stay, and --resume continues from them.
        with disk_full_as_error(self.out_dir):
            self._create(config, resume=resume, overwrite=overwrite)

    def _create(self, config: Mapping[str, Any], *, resume: bool, overwrite: bool) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.exists() and overwrite:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        existed = self.exists()
        if existed and not resume:
            raise StoreError(
                f"{self.out_dir} already holds a run ({self.count()} utterances scored); pass "
                "--resume to continue it, --overwrite to replace it, or choose another --out"
            )
        self._db = _connect(self.path)
        self.db.executescript(
            """
            CREATE TABLE IF NOT EXISTS run_info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS outputs (
                utterance_id TEXT PRIMARY KEY,
                idx INTEGER NOT NULL,
                scores TEXT NOT NULL,
                errors TEXT NOT NULL,
                meta TEXT NOT NULL,
                flags TEXT NOT NULL,
                timings TEXT NOT NULL
            );
            """
        )
        if existed:
            saved = self.get_info("config")
            if saved is not None and saved != json.loads(_dumps(config)):
                diff = sorted(
                    k
                    for k in set(saved) | set(config)
                    if saved.get(k) != json.loads(_dumps(config.get(k)))
                )
                raise StoreError(
                    f"cannot resume {self.out_dir}: its configuration differs in {diff}; rerun "
                    "with the same options, or use --overwrite / another --out"
                )
        else:
            self.set_info("schema", SCHEMA_VERSION)
            self.set_info("config", config)

    def set_info(self, key: str, value: Any) -> None:
        with disk_full_as_error(self.out_dir):
            self.db.execute(
                "INSERT OR REPLACE INTO run_info (key, value) VALUES (?, ?)", (key, _dumps(value))
            )

    def get_info(self, key: str) -> Any:
        row = self.db.execute("SELECT value FROM run_info WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def done_ids(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT utterance_id FROM outputs")}

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM outputs").fetchone()[0])

    def write(self, output: ScoredOutput) -> None:
        """Commit one scored utterance (replacing an earlier row for the same id).

        Raises DiskFullError naming the run folder when the disk is full (nothing committed
        before is lost)."""
        row = (
            output.utterance_id,
            output.index,
            # Scores and errors keep the metrics' order (tables list outputs in it).
            json.dumps(dict(output.scores)),
            json.dumps(dict(output.errors)),
            _dumps(dict(output.meta)),
            _dumps(dict(output.flags)),
            _dumps(dict(output.timings)),
        )
        with disk_full_as_error(self.out_dir):
            self.db.execute("INSERT OR REPLACE INTO outputs VALUES (?, ?, ?, ?, ?, ?, ?)", row)

    def outputs(self) -> Iterator[ScoredOutput]:
        """Every scored utterance, in suite order."""
        query = "SELECT utterance_id, idx, scores, errors, meta, flags, timings FROM outputs"
        for row in self.db.execute(query + " ORDER BY idx"):
            yield ScoredOutput(
                utterance_id=row[0],
                index=row[1],
                scores=json.loads(row[2]),
                errors=json.loads(row[3]),
                meta=json.loads(row[4]),
                flags=json.loads(row[5]),
                timings=json.loads(row[6]),
            )

    def close(self) -> None:
        """Close the connection (if open); closing again does nothing."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def has_run(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a run store (opens nothing)."""
    return (Path(run_dir) / RUN_DB).exists()


@dataclass(frozen=True)
class StoredRun:
    """What a run folder records, read at once by :func:`read_run` (the store is closed)."""

    out_dir: Path
    config: dict[str, Any] | None
    """The run's configuration; ``None`` when the store records none (not a gensr-bench run)."""
    provenance: dict[str, Any] | None
    sessions: list[Any] | None
    status: str | None
    """``"finished"`` once the run's summary was written; ``None`` before."""
    count: int
    """How many utterances are scored (also when ``outputs`` was not read)."""
    outputs: tuple[ScoredOutput, ...]
    """Every scored utterance in suite order; empty when read with ``outputs=False``."""


def read_run(run_dir: str | Path, *, outputs: bool = True) -> StoredRun:
    """Read the run in ``run_dir`` (its config, provenance, sessions, status and scored
    outputs) and close its store again; with ``outputs=False`` the outputs are only counted.

    Raises:
        StoreError: ``run_dir`` holds no run store (the message says what to pass instead).
    """
    with RunStore(run_dir) as store:
        config = store.get_info("config")
        provenance = store.get_info("provenance")
        sessions = store.get_info("sessions")
        status = store.get_info("status")
        scored = tuple(store.outputs()) if outputs else ()
        count = len(scored) if outputs else store.count()
    return StoredRun(
        out_dir=store.out_dir,
        config=config if isinstance(config, dict) else None,
        provenance=provenance if isinstance(provenance, dict) else None,
        sessions=sessions if isinstance(sessions, list) else None,
        status=status if isinstance(status, str) else None,
        count=count,
        outputs=scored,
    )


class ScoreCache:
    """Metric values keyed by content: (metric identity, output hash, reference hash, rate).

    A context manager: ``with ScoreCache() as cache:`` closes the connection however the block
    ends (a worker's unpickled copy opens its own).
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else cache_dir() / "scores.sqlite"
        self._db: sqlite3.Connection | None = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            with disk_full_as_error(self.path.parent, CACHE_FULL_HINT):
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = _connect(self.path)
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
                )
        return self._db

    @staticmethod
    def key(metric_identity: str, output_hash: str, reference_hash: str | None) -> str:
        raw = f"{metric_identity}|{output_hash}|{reference_hash or '-'}"
        return hashlib.sha256(raw.encode()).hexdigest()

    def prepare(self) -> None:
        """Create the cache file and its table now (before worker processes open it)."""
        _ = self.db

    def get(self, key: str) -> dict[str, float] | None:
        row = self.db.execute("SELECT value FROM scores WHERE key = ?", (key,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def put_many(self, items: Mapping[str, Mapping[str, float]]) -> None:
        if not items:
            return
        rows = [(k, _dumps(dict(v))) for k, v in items.items()]
        with disk_full_as_error(self.path.parent, CACHE_FULL_HINT), self.db:
            self.db.executemany("INSERT OR REPLACE INTO scores (key, value) VALUES (?, ?)", rows)

    def close(self) -> None:
        """Close the connection (if open); closing again does nothing."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "_db": None}


def result_to_dict(result: RunResult) -> dict[str, Any]:
    """A JSON-ready summary of a run."""
    return {
        "run_id": result.run_id,
        "n_utterances": result.n_utterances,
        "config": dict(result.config),
        "provenance": dict(result.provenance),
        "summaries": [asdict(s) for s in result.summaries],
    }


def write_exports(store: RunStore, result: RunResult) -> tuple[Path, Path]:
    """Write ``summary.json`` and ``scores.jsonl`` (one line per utterance) beside the store.

    Each file is written whole to a temporary name and then renamed, so a full disk (raised as
    DiskFullError) leaves the previous file, never a truncated one."""
    summary_path = store.out_dir / "summary.json"
    scores_path = store.out_dir / "scores.jsonl"
    summary = json.dumps(result_to_dict(result), indent=2, sort_keys=True, default=str)
    _replace_file(summary_path, [summary])
    _replace_file(scores_path, (_dumps(asdict(output)) + "\n" for output in store.outputs()))
    return summary_path, scores_path


def _replace_file(path: Path, chunks: Iterable[str]) -> None:
    """Write ``chunks`` to ``path`` through a temporary file, removed again when writing fails."""
    tmp = path.with_name(path.name + ".tmp")
    with disk_full_as_error(path.parent):
        try:
            with tmp.open("w") as handle:
                for chunk in chunks:
                    handle.write(chunk)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        tmp.replace(path)
