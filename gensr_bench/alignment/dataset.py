"""The preference dataset for DPO: one row per preference pair, as a HuggingFace ``Dataset``.

Columns follow TRL's preference naming: ``prompt`` (the degraded input audio), ``chosen`` and
``rejected`` (the two restorations' audio), plus the ids, every score of both candidates, the
criterion, the model, its checkpoint hash and the sample rate (see :data:`PREFERENCE_COLUMNS`).

Audio is stored as ``datasets.Audio(decode=False)`` cells ``{"bytes": ..., "path": ...}``
holding float32 WAV files (soundfile, subtype ``FLOAT``): the trainer decodes exactly the
samples that were scored, bit for bit. ``datasets`` never decodes them (its decoder needs
torchcodec); :func:`gensr_bench.audio.decode_audio_cell` decodes a cell with soundfile. For the
same reason the rows are written straight to Arrow, never through ``datasets``' audio encoder.

Typical use::

    ds = build_preference_dataset(pairs, degraded, model="ar-small", checkpoint_sha256=sha)
    save_preference_dataset(ds, "prefs/ar-small")
    pairs = rows_to_pairs(load_preference_dataset("prefs/ar-small"))
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from gensr_bench.audio import decode_audio_cell
from gensr_bench.errors import AudioValidationError, ConfigError, StoreError
from gensr_bench.records import Audio, PreferencePair, Restoration

if TYPE_CHECKING:
    import datasets
    from huggingface_hub import CommitInfo

#: The audio columns, TRL's names: the degraded input and the two candidates.
AUDIO_COLUMNS: Final = ("prompt", "chosen", "rejected")

#: The columns a preference dataset must have (checked on loading).
REQUIRED_COLUMNS: Final = (
    *AUDIO_COLUMNS,
    "input_id",
    "chosen_id",
    "rejected_id",
    "chosen_scores",
    "rejected_scores",
    "criterion",
    "model",
    "checkpoint_sha256",
    "sample_rate",
)
#: Columns written but optional on loading: each candidate's sampling seed (``None`` when it
#: had none); :func:`rows_to_pairs` uses seed 0 when a dataset lacks them.
SEED_COLUMNS: Final = ("chosen_seed", "rejected_seed")
#: Every column :func:`build_preference_dataset` writes, in order.
PREFERENCE_COLUMNS: Final = (*REQUIRED_COLUMNS, *SEED_COLUMNS)

#: The soundfile subtype of the stored WAV files: float32, so audio round-trips exactly.
WAV_SUBTYPE: Final = "FLOAT"
#: How to fix a row whose audio bytes are not audio (the ``fix`` of ``decode_audio_cell``).
REBUILD_HINT: Final = "rebuild the dataset with build_preference_dataset"
#: Audio bytes per Arrow record batch of a built dataset (well below a chunk's 2-GiB limit).
CHUNK_BYTES: Final = 256 * 1024 * 1024


def preference_features() -> datasets.Features:
    """The ``datasets.Features`` of a preference dataset (audio with ``decode=False``).

    ``chosen_scores`` / ``rejected_scores`` are JSON strings, not structs: an Arrow struct
    column has one schema for all rows (the union of every row's keys), so a score a row lacks
    would read back as ``None``, the same as a failed score, and every row would grow every
    other row's keys. A JSON object keeps exactly each candidate's keys, their order and their
    ``None`` values, and Python writes floats in the shortest form that reads back to the same
    double, so scores round-trip bit for bit (NaN and infinities included).
    """
    import datasets

    text = datasets.Value("string")
    seed = datasets.Value("int64")
    return datasets.Features(
        {
            "prompt": datasets.Audio(decode=False),
            "chosen": datasets.Audio(decode=False),
            "rejected": datasets.Audio(decode=False),
            "input_id": text,
            "chosen_id": text,
            "rejected_id": text,
            "chosen_scores": text,
            "rejected_scores": text,
            "criterion": datasets.List(text),
            "model": text,
            "checkpoint_sha256": text,
            "sample_rate": datasets.Value("int64"),
            "chosen_seed": seed,
            "rejected_seed": seed,
        }
    )


# -- audio cells ---------------------------------------------------------------------------------


def encode_audio(audio: Audio, path: str | None = None) -> dict[str, Any]:
    """An undecoded ``datasets.Audio`` cell: ``audio`` as float32 WAV bytes, and ``path``."""
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, audio.samples, audio.sample_rate, format="WAV", subtype=WAV_SUBTYPE)
    return {"bytes": buffer.getvalue(), "path": path}


# -- scores --------------------------------------------------------------------------------------


def _encode_scores(scores: Mapping[str, Any], what: str) -> str:
    """``scores`` as a JSON object (see :func:`preference_features` for why JSON)."""
    plain: dict[str, float | None] = {}
    for name, value in scores.items():
        if not isinstance(name, str):
            raise ConfigError(f"{what}: score names must be strings, got {name!r}")
        if value is None:
            plain[name] = None
            continue
        if isinstance(value, bool):
            raise ConfigError(f"{what}: score {name!r} is a bool ({value}); expected a number")
        try:
            plain[name] = float(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"{what}: score {name!r} is {value!r}, not a number; expected a float or None"
            ) from exc
    return json.dumps(plain, allow_nan=True)


def decode_scores(text: Any, what: str) -> dict[str, Any]:
    """The scores stored by :func:`_encode_scores`: name -> float or ``None``."""
    try:
        scores = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise StoreError(
            f"{what} is not a JSON object of scores ({exc}): {text!r:.80}; rebuild the dataset "
            "with build_preference_dataset"
        ) from exc
    if not isinstance(scores, dict) or not all(
        value is None or (isinstance(value, int | float) and not isinstance(value, bool))
        for value in scores.values()
    ):
        raise StoreError(
            f"{what} must be a JSON object of metric output -> number or null, got {text!r:.80}"
        )
    return scores


# -- building ------------------------------------------------------------------------------------


def _check_seed(seed: Any, what: str) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"{what} seed must be an integer or None, got {seed!r}")
    return int(seed)


def build_preference_dataset(
    pairs: Sequence[PreferencePair],
    degraded: Mapping[str, Audio],
    *,
    model: str,
    checkpoint_sha256: str | None,
    chunk_bytes: int = CHUNK_BYTES,
) -> datasets.Dataset:
    """A preference dataset with one row per pair, in the order of ``pairs``.

    Args:
        pairs: the preference pairs (e.g. from ``unanimous_pairs``).
        degraded: input id -> the degraded input audio, stored as the row's ``prompt``.
        model: the name of the model whose candidates were paired.
        checkpoint_sha256: the hash of the checkpoint that sampled them (``None``: unknown).
        chunk_bytes: audio bytes per Arrow record batch (a chunk of a binary column holds at
            most 2 GiB; thousands of pairs of seconds-long audio exceed that).

    The whole dataset is held in memory (Arrow); save it with :func:`save_preference_dataset`.

    Raises:
        ConfigError: a pair's input has no degraded audio in ``degraded`` (the message names
            the input id), a score is not a number or ``None``, a seed is not an integer, or
            ``model`` / ``checkpoint_sha256`` is not a string.
        AudioValidationError: the degraded, chosen and rejected audio of a pair do not share
            one sample rate (the message names the three ids and their rates).
    """
    import datasets
    import pyarrow as pa

    if not isinstance(model, str) or not model:
        raise ConfigError(f"model must be a non-empty model name, got {model!r}")
    if checkpoint_sha256 is not None and not isinstance(checkpoint_sha256, str):
        raise ConfigError(
            f"checkpoint_sha256 must be a hex string or None, got {checkpoint_sha256!r}"
        )
    features = preference_features()
    schema = features.arrow_schema
    batches: list[pa.RecordBatch] = []
    digest = hashlib.sha256(f"{model}\0{checkpoint_sha256}".encode())
    columns: dict[str, list[Any]] = {name: [] for name in PREFERENCE_COLUMNS}
    chunk = 0  # audio bytes in ``columns``

    def flush() -> None:
        if columns["input_id"]:
            batches.append(pa.RecordBatch.from_pydict(columns, schema=schema))
            for values in columns.values():
                values.clear()

    for index, pair in enumerate(pairs):
        what = f"pair {index} (input {pair.input_id!r})"
        if pair.input_id not in degraded:
            raise ConfigError(
                f"{what}: no degraded audio for input {pair.input_id!r}; pass the degraded "
                "input of every paired input id in `degraded` (input id -> Audio)"
            )
        prompt = degraded[pair.input_id]
        ids = (pair.input_id, pair.chosen.utterance_id, pair.rejected.utterance_id)
        rates = (prompt.sample_rate, pair.chosen.audio.sample_rate, pair.rejected.audio.sample_rate)
        if len(set(rates)) > 1:
            described = ", ".join(
                f"{role} {uid!r} at {rate} Hz"
                for role, uid, rate in zip(("input", "chosen", "rejected"), ids, rates, strict=True)
            )
            raise AudioValidationError(
                f"{what}: the audio of a row must share one sample rate, got {described}; "
                "resample with gensr_bench.audio.resample before building the dataset"
            )
        for column, uid, audio in zip(
            AUDIO_COLUMNS, ids, (prompt, pair.chosen.audio, pair.rejected.audio), strict=True
        ):
            cell = encode_audio(audio, f"{uid}.wav")
            columns[column].append(cell)
            chunk += len(cell["bytes"])
            digest.update(cell["bytes"])
        columns["input_id"].append(ids[0])
        columns["chosen_id"].append(ids[1])
        columns["rejected_id"].append(ids[2])
        columns["chosen_scores"].append(_encode_scores(pair.chosen_scores, f"{what} chosen"))
        columns["rejected_scores"].append(_encode_scores(pair.rejected_scores, f"{what} rejected"))
        columns["criterion"].append([str(output) for output in pair.criterion])
        columns["model"].append(model)
        columns["checkpoint_sha256"].append(checkpoint_sha256)
        columns["sample_rate"].append(rates[0])
        columns["chosen_seed"].append(_check_seed(pair.chosen.seed, f"{what} chosen"))
        columns["rejected_seed"].append(_check_seed(pair.rejected.seed, f"{what} rejected"))
        digest.update(
            "\0".join([*ids, columns["chosen_scores"][-1], columns["rejected_scores"][-1]]).encode()
        )
        if chunk >= chunk_bytes:
            flush()
            chunk = 0
    flush()
    # Straight to Arrow: Dataset.from_dict would run datasets' audio encoder, which imports
    # torchcodec even for cells that are already bytes. The table is built in record batches
    # (a binary column holds at most 2 GiB per chunk), and the fingerprint is the hash of the
    # content computed here, so that datasets does not pickle gigabytes of audio to make one.
    table = pa.Table.from_batches(batches, schema=schema)
    return datasets.Dataset(
        table, info=datasets.DatasetInfo(features=features), fingerprint=digest.hexdigest()[:32]
    )


# -- checking, saving, loading -------------------------------------------------------------------


def _checked(ds: Any, what: str, error: type[Exception]) -> datasets.Dataset:
    """``ds`` if it is a preference dataset, with its audio columns undecoded; else ``error``."""
    import datasets

    if not isinstance(ds, datasets.Dataset):
        raise error(
            f"{what} is not a datasets.Dataset (got {type(ds).__name__}); expected a "
            "preference dataset from build_preference_dataset or load_preference_dataset"
        )
    missing = [name for name in REQUIRED_COLUMNS if name not in ds.column_names]
    if missing:
        raise error(
            f"{what} is not a preference dataset: it lacks the column(s) {', '.join(missing)} "
            f"(it has {', '.join(ds.column_names) or 'none'}); build it with "
            "build_preference_dataset"
        )
    for column in AUDIO_COLUMNS:
        feature = ds.features[column]
        if not isinstance(feature, datasets.Audio):
            raise error(
                f"{what} is not a preference dataset: column {column!r} holds {feature}, "
                "not datasets.Audio"
            )
        if feature.decode:  # never let datasets decode (that needs torchcodec)
            ds = ds.cast_column(column, datasets.Audio(decode=False))
    return ds


def _is_saved_dataset(directory: Path) -> bool:
    return (directory / "state.json").is_file() or (directory / "dataset_info.json").is_file()


def save_preference_dataset(
    ds: datasets.Dataset, directory: str | Path, *, overwrite: bool = False
) -> Path:
    """Save ``ds`` with ``save_to_disk`` into ``directory`` and return its path.

    The dataset is written into a temporary sibling folder first and moved into place, so a
    failed save leaves no half-written dataset, and a dataset loaded from ``directory`` can be
    saved back over it.

    Raises:
        StoreError: ``directory`` is a file, or a non-empty folder and ``overwrite`` is false,
            or a non-empty folder that does not hold a saved dataset (``overwrite`` replaces
            saved datasets only, so it never deletes unrelated files).
        ConfigError: ``ds`` is not a preference dataset.
    """
    ds = _checked(ds, "the dataset to save", ConfigError)
    target = Path(directory).expanduser().absolute()
    replace = False
    if target.exists():
        if not target.is_dir():
            raise StoreError(f"cannot save the preference dataset to {target}: it is a file")
        if any(target.iterdir()):
            if not overwrite:
                raise StoreError(
                    f"{target} is not empty; refusing to overwrite it. Pass overwrite=True to "
                    "replace the dataset saved there, or choose another folder"
                )
            if not _is_saved_dataset(target):
                raise StoreError(
                    f"{target} is not empty and holds no saved dataset (no state.json); "
                    "refusing to delete it even with overwrite=True: choose another folder"
                )
        replace = True
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.saving-", dir=target.parent))
    try:
        # An empty dataset must still get one (empty) shard: with none, load_from_disk fails.
        ds.save_to_disk(str(staging), num_shards=None if len(ds) else 1)
        if replace:
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def load_preference_dataset(directory: str | Path) -> datasets.Dataset:
    """The preference dataset saved in ``directory`` (memory-mapped; audio never decoded).

    Raises:
        StoreError: the folder is missing, is not a folder written by ``save_to_disk``, holds
            a ``DatasetDict``, or lacks a preference column (the message names the path).
    """
    import datasets

    path = Path(directory).expanduser()
    if not path.is_dir():
        raise StoreError(
            f"no preference dataset at {path}: the folder does not exist; build one with "
            "build_preference_dataset and save it with save_preference_dataset"
        )
    try:
        loaded = datasets.load_from_disk(str(path))
    except FileNotFoundError as exc:
        raise StoreError(
            f"{path} is not a saved preference dataset (no dataset written by save_to_disk: "
            f"{exc}); save one with save_preference_dataset"
        ) from exc
    if not isinstance(loaded, datasets.Dataset):
        raise StoreError(
            f"{path} holds a DatasetDict ({', '.join(loaded)}), not a preference dataset; "
            "save a single Dataset with save_preference_dataset"
        )
    return _checked(loaded, str(path), StoreError)


# -- back to records -----------------------------------------------------------------------------


def rows_to_pairs(ds: datasets.Dataset) -> list[PreferencePair]:
    """The preference pairs of ``ds``: the inverse of :func:`build_preference_dataset`.

    Each ``Restoration`` is rebuilt with its id, its decoded audio, the dataset's ``model``,
    its stored seed (0 when the dataset has no seed columns) and empty ``meta``; scores come
    back exactly as stored (``None`` values included), ``criterion`` as a tuple. The degraded
    input is not part of a pair: decode it with ``gensr_bench.audio.decode_audio_cell(
    ds[i]["prompt"])``.

    Raises:
        ConfigError: ``ds`` is not a preference dataset.
        StoreError: a row's scores are not a JSON object of numbers, or its audio is not at
            the row's ``sample_rate``.
        AudioDecodeError: a row's audio cannot be decoded.
    """
    ds = _checked(ds, "the dataset", ConfigError)
    pairs = []
    for index, row in enumerate(ds):
        what = f"row {index} (input {row['input_id']!r})"
        restorations = []
        for role in ("chosen", "rejected"):
            audio = decode_audio_cell(row[role], f"{what} {role} audio", fix=REBUILD_HINT)
            if audio.sample_rate != row["sample_rate"]:
                raise StoreError(
                    f"{what}: the {role} audio is at {audio.sample_rate} Hz but the row's "
                    f"sample_rate is {row['sample_rate']}; rebuild the dataset"
                )
            seed = row.get(f"{role}_seed", 0)
            restorations.append(
                Restoration(
                    utterance_id=row[f"{role}_id"],
                    audio=audio,
                    model=row["model"],
                    seed=None if seed is None else int(seed),
                    meta={},
                )
            )
        pairs.append(
            PreferencePair(
                input_id=row["input_id"],
                chosen=restorations[0],
                rejected=restorations[1],
                chosen_scores=decode_scores(row["chosen_scores"], f"{what} chosen_scores"),
                rejected_scores=decode_scores(row["rejected_scores"], f"{what} rejected_scores"),
                criterion=tuple(row["criterion"]),
            )
        )
    return pairs


def export_to_hub(
    ds: datasets.Dataset,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = True,
    commit_message: str | None = None,
) -> CommitInfo:
    """Upload ``ds`` to the Hugging Face hub as ``repo_id`` (``Dataset.push_to_hub``).

    A thin wrapper: it checks that ``ds`` is a preference dataset, then pushes it as Parquet
    with the audio bytes embedded; the repository is private unless ``private=False``.
    ``token`` defaults to the logged-in user's (``huggingface-cli login`` or ``HF_TOKEN``).
    Needs network access. Returns the hub's ``CommitInfo``.

    Raises:
        ConfigError: ``ds`` is not a preference dataset or ``repo_id`` is empty.
    """
    if not isinstance(repo_id, str) or not repo_id.strip():
        raise ConfigError(
            f"repo_id must name a hub dataset repository, e.g. user/name: {repo_id!r}"
        )
    ds = _checked(ds, "the dataset to export", ConfigError)
    return ds.push_to_hub(repo_id, token=token, private=private, commit_message=commit_message)


__all__ = [
    "AUDIO_COLUMNS",
    "PREFERENCE_COLUMNS",
    "REQUIRED_COLUMNS",
    "SEED_COLUMNS",
    "WAV_SUBTYPE",
    "build_preference_dataset",
    "encode_audio",
    "export_to_hub",
    "load_preference_dataset",
    "preference_features",
    "rows_to_pairs",
    "save_preference_dataset",
]
