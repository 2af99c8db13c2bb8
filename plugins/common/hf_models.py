"""Loading Hugging Face transformers models from a hub id or a local folder, and hashing them.

Used by the ``speechbertscore`` and ``speaker-sim-wavlm`` metrics: the ``model`` option names a
hub id or a folder written by ``save_pretrained``; ``model_source`` resolves it,
``load_pretrained`` loads it (offline when asked, with an error that says how to provide the
model), and ``model_weight_hashes`` records the weight files' sha256 without the network.
transformers and huggingface_hub are imported inside the functions that need them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from gensr_bench.errors import ConfigError, GensrError
from gensr_bench.weights import WeightsError, sha256_of

__all__ = [
    "WEIGHT_FILE_PATTERNS",
    "ModelSource",
    "how_to_provide",
    "hub_offline",
    "import_transformers",
    "load_pretrained",
    "model_source",
    "model_weight_hashes",
    "quiet_progress_bars",
    "weight_files_in",
]

#: Weight files ``save_pretrained`` writes (single file or shards), hashed for run records.
WEIGHT_FILE_PATTERNS = (
    "model.safetensors",
    "model-*-of-*.safetensors",
    "pytorch_model.bin",
    "pytorch_model-*-of-*.bin",
)
_HUB_WEIGHT_ENTRY_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
_TRUE_VALUES = {"1", "true", "yes", "on"}

T = TypeVar("T")


@dataclass(frozen=True)
class ModelSource:
    """Where a transformers model comes from.

    ``name`` is the option as given; ``directory`` the resolved local folder (``None`` for a
    hub id); ``revision`` the hub revision asked for (``None``: the default branch).
    """

    name: str
    directory: Path | None
    revision: str | None = None

    @property
    def label(self) -> str:
        """The folder or the hub id, as it reads in messages and run records."""
        return str(self.directory) if self.directory is not None else self.name


def _looks_like_path(text: str) -> bool:
    """Whether ``text`` is meant as a folder rather than a hub id (``owner/name``)."""
    return (
        text.startswith((".", "/", "~"))
        or "\\" in text
        or text.count("/") > 1
        or Path(text).is_absolute()
    )


def how_to_provide(metric: str, hub_id: str) -> str:
    """The sentence that tells a user how to give a metric its model."""
    return (
        f"download it where the Hugging Face hub is reachable (`hf download {hub_id} "
        f"--local-dir DIR`, or `from_pretrained(...).save_pretrained(DIR)`), then pass the "
        f"folder: --metric-option {metric}.model=/path/to/dir"
    )


def model_source(model: Any, revision: Any, metric: str, hub_id: str) -> ModelSource:
    """Resolve the ``model`` option: an existing folder, else a hub id.

    Raises ConfigError for a value that is not a non-empty string, and WeightsError for a
    path-like value (absolute, ``./``, ``~``, or more than one ``/``) that is not a folder.
    ``hub_id`` is the metric's default model, named in the message.
    """
    if not isinstance(model, str) or not model.strip():
        raise ConfigError(
            f"{metric}: option model must be a hub id or a folder path, got {model!r}; "
            f"e.g. --metric-option {metric}.model=/path/to/dir"
        )
    path = Path(model).expanduser()
    if path.is_dir():
        return ModelSource(model, path.resolve())
    if _looks_like_path(model):
        raise WeightsError(
            f"{metric}: model folder {model!r} does not exist; expected a folder written by "
            f"save_pretrained (config.json plus model.safetensors or pytorch_model.bin). To "
            f"get one, {how_to_provide(metric, hub_id)}"
        )
    return ModelSource(model, None, str(revision) if revision else None)


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE`` asks for no network access.

    Read at every call: huggingface_hub reads these once at import, so a later change (as in
    a test) would otherwise go unnoticed and loading would retry the network for a while.
    """
    return any(
        os.environ.get(variable, "").strip().lower() in _TRUE_VALUES
        for variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def import_transformers(metric: str) -> Any:
    """The transformers module, or a GensrError saying how to install it."""
    try:
        import transformers
    except ImportError as exc:
        raise GensrError(
            f"the {metric} metric needs transformers; install it with `pip install transformers` "
            "(it must keep the installed torch)"
        ) from exc
    return transformers


@contextmanager
def quiet_progress_bars() -> Iterator[None]:
    """Run the block without transformers' progress bars ("Loading weights"), restoring the
    caller's setting after: every worker process loads the model, and bars there are noise."""
    from transformers.utils import logging as transformers_logging

    enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            transformers_logging.enable_progress_bar()


def load_pretrained(
    loader: Callable[..., T], source: ModelSource, metric: str, hub_id: str, what: str = "model"
) -> T:
    """``loader(name_or_path, ...)`` (a ``from_pretrained``) for ``source``.

    A folder is read with ``local_files_only``; a hub id too when ``hub_offline()``. Raises
    WeightsError that names the source, the cause and how to provide the model (``what``
    names the part being loaded, e.g. "feature extractor").
    """
    kwargs: dict[str, Any] = {}
    if source.directory is not None:
        target = str(source.directory)
        kwargs["local_files_only"] = True
    else:
        target = source.name
        kwargs["local_files_only"] = hub_offline()
        if source.revision:
            kwargs["revision"] = source.revision
    try:
        with quiet_progress_bars():
            return loader(target, **kwargs)
    except (OSError, ValueError) as exc:
        if source.directory is not None:
            where = (
                f"folder {target!r} (it must hold what save_pretrained writes: config.json, "
                "model.safetensors or pytorch_model.bin, and preprocessor_config.json for a "
                "feature extractor)"
            )
        else:
            where = (
                f"hub id {target!r} (the hub is unreachable or offline and the local "
                "Hugging Face cache has no copy)"
            )
        cause = " ".join(str(exc).split()).rstrip(".")
        hint = how_to_provide(metric, hub_id if source.directory is not None else source.name)
        raise WeightsError(
            f"{metric}: could not load the {what} from {where}: {cause}. To provide it, {hint}"
        ) from exc


def weight_files_in(directory: Path) -> list[Path]:
    """The weight files ``save_pretrained`` wrote into ``directory``, sorted by name."""
    found = {path for pattern in WEIGHT_FILE_PATTERNS for path in directory.glob(pattern)}
    return sorted((path for path in found if path.is_file()), key=lambda path: path.name)


def model_weight_hashes(source: ModelSource) -> dict[str, str]:
    """sha256 of the model's weight files, for run records; never touches the network.

    A folder: ``"<folder name>/<file>" -> sha256``. A hub id whose snapshot is in the local
    Hugging Face cache: ``"hub:<id>@<commit>/<file>" -> sha256``. Otherwise the hub id and the
    revision asked for are recorded, unhashed: ``"hub:<id>" -> "revision ...; not cached"``.
    """
    if source.directory is not None:
        return {
            f"{source.directory.name}/{path.name}": sha256_of(path)
            for path in weight_files_in(source.directory)
        }
    revision = source.revision or "main"
    unhashed = {
        f"hub:{source.name}": f"revision {revision}; not in the local Hugging Face cache, unhashed"
    }
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return unhashed
    for filename in _HUB_WEIGHT_ENTRY_FILES:
        try:
            cached = try_to_load_from_cache(source.name, filename, revision=source.revision)
        except ValueError:  # not a valid repository id
            return unhashed
        if isinstance(cached, str):
            snapshot = Path(cached).parent  # .../snapshots/<commit>/<file>
            return {
                f"hub:{source.name}@{snapshot.name}/{path.name}": sha256_of(path)
                for path in weight_files_in(snapshot)
            } or unhashed
    return unhashed
