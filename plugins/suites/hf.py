"""``hf:<dataset id or local directory>[:split]`` suites: evaluate on a Hugging Face dataset.

Any suite name starting with ``hf:`` is served by this plugin (through the
``gensr_resolve_suite`` hook), e.g. ``hf:/data/my-set``, ``hf:/data/my-set:validation`` or
``hf:user/noisy-speech:test``.

Where the data comes from
    If the id is an existing local directory, it is read with ``datasets.load_from_disk`` (a
    folder written by ``save_to_disk``; for a ``DatasetDict`` the split is the one named, else
    ``test``, else the only split); a local folder that ``load_from_disk`` cannot read is handed
    to ``datasets.load_dataset`` (e.g. an ``audiofolder`` layout). Any other id is loaded from
    the hub with ``datasets.load_dataset(id, split=split or "test")``, which needs network
    access or a cached copy: offline, save the dataset with ``save_to_disk`` and pass the
    directory instead.

Parsing the name
    ``hf:<id>[:split]``: the text after ``hf:`` is taken whole when it is an existing directory,
    otherwise the part after its last ``:`` is the split. Hub ids never contain ``:``; a local
    path that contains ``:`` works only without a split (pass the split as the ``split``
    option instead).

Options (``--suite-option KEY=VALUE``)
    ``degraded``: the audio column restored (default ``noisy``, else the first audio column
    other than ``clean``); ``reference``: the clean audio column (default ``clean`` when
    present; ``none`` for no reference); ``transcript``: the text column (default ``text`` or
    ``transcript`` when present; ``none`` for none); ``id``: the column of utterance ids
    (default ``id`` when present, else the row index, zero-padded); ``split``: the split (the
    name's own split wins).

Audio is never decoded by ``datasets`` (that needs torchcodec): audio columns are cast to
``Audio(decode=False)`` and their ``bytes`` (else their ``path``) are decoded with soundfile,
to mono float32 at the file's native rate. An unreadable row gives an Utterance with
``error`` set, so a run reports it and goes on. Other scalar columns are copied into each
utterance's ``meta`` (useful for ``--by``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from gensr_bench import Suite, hookimpl
from gensr_bench.audio import decode_audio_cell
from gensr_bench.errors import AudioDecodeError, ConfigError, GensrError
from gensr_bench.records import Utterance

PREFIX = "hf:"
DEFAULT_SPLIT = "test"
_NONE = {"", "none", "null"}


def parse_name(name: str) -> tuple[str, str | None]:
    """``hf:<id>[:split]`` -> (id, split or None). See the module docstring for the rules."""
    if not name.startswith(PREFIX):
        raise ConfigError(f"not an hf suite name: {name!r}; expected hf:<dataset>[:split]")
    rest = name[len(PREFIX) :]
    if not rest:
        raise ConfigError(
            f"suite name {name!r} names no dataset; expected hf:<dataset id or dir>[:split]"
        )
    if Path(rest).is_dir() or ":" not in rest:
        return rest, None
    dataset_id, _, split = rest.rpartition(":")
    if not dataset_id:
        raise ConfigError(f"suite name {name!r} names no dataset before the split")
    return dataset_id, split or None


OFFLINE_HINT = (
    "save it on a machine with network access (`datasets.load_dataset(...)` then "
    "`.save_to_disk(DIR)`), copy DIR here and run with --suite hf:DIR[:split]"
)


def load_split(dataset_id: str, split: str | None) -> tuple[Any, str | None, Path | None]:
    """The ``datasets.Dataset`` for ``dataset_id`` and ``split``, the split actually used and
    the local directory it came from (None for the hub)."""
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - datasets is a dependency
        raise ConfigError("hf: suites need the `datasets` package: pip install datasets") from exc

    local = Path(dataset_id).expanduser()
    if local.is_dir():
        try:
            loaded = datasets.load_from_disk(str(local))
        except FileNotFoundError:
            # Not a save_to_disk folder: let load_dataset read it (audiofolder, parquet, ...).
            try:
                ds = datasets.load_dataset(str(local), split=split or DEFAULT_SPLIT)
            except Exception as exc:
                raise ConfigError(
                    f"cannot read the dataset directory {local} ({type(exc).__name__}: {exc}); "
                    "expected a folder written by `save_to_disk` or one `load_dataset` reads"
                ) from exc
            return ds, split or DEFAULT_SPLIT, local
        if isinstance(loaded, datasets.DatasetDict):
            names = list(loaded)
            if split is not None:
                chosen = split
            elif DEFAULT_SPLIT in loaded:
                chosen = DEFAULT_SPLIT
            elif len(names) == 1:
                chosen = names[0]
            else:
                raise ConfigError(
                    f"dataset {local} has splits {', '.join(names)} and none is "
                    f"{DEFAULT_SPLIT!r}; name one: hf:{local}:<split>"
                )
            if chosen not in loaded:
                raise ConfigError(
                    f"dataset {local} has no split {chosen!r}; available: {', '.join(names)}"
                )
            return loaded[chosen], chosen, local
        return loaded, split, local

    chosen = split or DEFAULT_SPLIT
    try:
        ds = datasets.load_dataset(dataset_id, split=chosen)
    except Exception as exc:
        offline = bool(getattr(datasets.config, "HF_HUB_OFFLINE", False))
        state = "offline mode is on (HF_HUB_OFFLINE)" if offline else "the hub could not serve it"
        raise GensrError(
            f"cannot load dataset {dataset_id!r} split {chosen!r} from the Hugging Face hub: "
            f"{state} ({type(exc).__name__}: {exc}). It is not a local directory either; "
            + OFFLINE_HINT
        ) from exc
    return ds, chosen, None


class HfSuite(Suite):
    """A Hugging Face dataset (hf:<id or dir>[:split]); audio decoded with soundfile."""

    dataset_id: ClassVar[str]
    split: ClassVar[str | None]
    #: ``split`` (when the name gives none) and the column of each role.
    accepted_options = ("split", "degraded", "reference", "transcript", "id")

    def __init__(self, limit: int | None = None, **options: Any) -> None:
        super().__init__(limit=limit, **options)
        split = self.split or _text_option(options, "split")
        raw, self.used_split, self._base_dir = load_split(self.dataset_id, split)
        self._source_fingerprint = str(getattr(raw, "_fingerprint", "") or "")
        self.columns = self._map_columns(raw)
        self._rows = len(raw)
        self._dataset = self._prepare(raw)

    # -- column mapping ----------------------------------------------------------------------
    def _map_columns(self, ds: Any) -> dict[str, str | None]:
        import datasets

        features = ds.features
        available = list(features)
        audio_cols = [c for c in available if isinstance(features[c], datasets.Audio)]

        def check(role: str, column: str) -> str:
            if column not in features:
                raise ConfigError(
                    f"hf suite {self.name!r}: the {role} column {column!r} does not exist; "
                    f"available columns: {', '.join(available)} (set it with "
                    f"--suite-option {role}=COLUMN)"
                )
            return column

        def audio(role: str, column: str) -> str:
            check(role, column)
            if column not in audio_cols:
                raise ConfigError(
                    f"hf suite {self.name!r}: the {role} column {column!r} is not audio "
                    f"({features[column]}); audio columns: {', '.join(audio_cols) or '(none)'}"
                )
            return column

        chosen = _text_option(self.options, "degraded")
        if chosen is not None:
            degraded = audio("degraded", chosen)
        elif "noisy" in audio_cols:
            degraded = "noisy"
        else:
            others = [c for c in audio_cols if c != "clean"] or audio_cols
            if not others:
                raise ConfigError(
                    f"hf suite {self.name!r}: the dataset has no Audio column; available "
                    f"columns: {', '.join(available)}. Cast one with "
                    "`ds.cast_column(COLUMN, datasets.Audio())` before save_to_disk"
                )
            degraded = others[0]

        reference: str | None
        if "reference" in self.options:
            chosen = _text_option(self.options, "reference")
            reference = None if chosen is None else audio("reference", chosen)
        else:
            reference = "clean" if "clean" in audio_cols and degraded != "clean" else None

        transcript: str | None
        if "transcript" in self.options:
            chosen = _text_option(self.options, "transcript")
            transcript = None if chosen is None else check("transcript", chosen)
        else:
            transcript = next((c for c in ("text", "transcript") if c in features), None)

        uid: str | None
        if "id" in self.options:
            chosen = _text_option(self.options, "id")
            uid = None if chosen is None else check("id", chosen)
        else:
            uid = "id" if "id" in features else None
        return {"degraded": degraded, "reference": reference, "transcript": transcript, "id": uid}

    def _prepare(self, ds: Any) -> Any:
        import datasets

        used = {c for c in self.columns.values() if c is not None}
        self._meta_columns = [
            c
            for c, feature in ds.features.items()
            if c not in used and isinstance(feature, datasets.Value)
        ]
        ds = ds.select_columns(sorted(used | set(self._meta_columns)))
        for role in ("degraded", "reference"):
            column = self.columns[role]
            if column is not None:
                ds = ds.cast_column(column, datasets.Audio(decode=False))
        return ds

    # -- Suite interface ---------------------------------------------------------------------
    def full_size(self) -> int:
        return self._rows

    def iter_utterances(self) -> Iterator[Utterance]:
        width = max(6, len(str(self._rows)))
        cols = self.columns
        for index, row in enumerate(self._dataset):
            uid = f"{index:0{width}d}" if cols["id"] is None else str(row[cols["id"]])
            transcript = None if cols["transcript"] is None else row[cols["transcript"]]
            meta: dict[str, object] = {"row": index}
            if self.used_split is not None:
                meta["split"] = self.used_split
            for column in self._meta_columns:
                value = row[column]
                if value is None or isinstance(value, str | int | float | bool):
                    meta[column] = value
            try:
                degraded = decode_audio_cell(
                    row[cols["degraded"]], self._what(index, "degraded"), self._base_dir
                )
                reference = (
                    None
                    if cols["reference"] is None
                    else decode_audio_cell(
                        row[cols["reference"]], self._what(index, "reference"), self._base_dir
                    )
                )
            except AudioDecodeError as exc:
                yield Utterance(uid, None, None, transcript, meta, error=str(exc))
                continue
            yield Utterance(uid, degraded, reference, transcript, meta)

    def _what(self, index: int, role: str) -> str:
        return f"{self.name} row {index} column {self.columns[role]!r}"

    def config(self) -> dict[str, Any]:
        config = super().config()
        config["columns"] = dict(self.columns)
        config["split"] = self.used_split
        return config

    def fingerprint(self) -> str:
        payload = json.dumps(
            {
                "name": self.name,
                "version": self.version,
                "dataset": self._source_fingerprint,
                "split": self.used_split,
                "columns": self.columns,
                "rows": self._rows,
            },
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def __reduce__(self) -> tuple[Any, ...]:
        # The class is made at run time: pickle by suite name so worker processes rebuild it.
        return (_rebuild, (self.name, self.limit, dict(self.options)))


def _text_option(options: dict[str, Any], key: str) -> str | None:
    value = options.get(key)
    if value is None:
        return None
    text = str(value)
    return None if text.strip().lower() in _NONE else text


def suite_class(name: str) -> type[Suite]:
    """A Suite subclass serving ``name`` (``hf:<id>[:split]``); nothing is loaded yet."""
    dataset_id, split = parse_name(name)
    return type(
        "HfSuite",
        (HfSuite,),
        {"name": name, "dataset_id": dataset_id, "split": split, "__module__": __name__},
    )


def _rebuild(name: str, limit: int | None, options: dict[str, Any]) -> Suite:
    return suite_class(name)(limit=limit, **options)


@hookimpl
def gensr_resolve_suite(name: str) -> type[Suite] | None:
    if not name.startswith(PREFIX):
        return None
    return suite_class(name)


@hookimpl
def gensr_suggest_names(kind: str) -> list[str]:
    if kind != "suites":
        return []
    return [f"{PREFIX}<dataset id or saved folder>[:split] (a Hugging Face dataset)"]
