"""Weight files that plugins need: where they are looked for, fetched and verified.

A plugin declares its files with ``WeightFile`` records (class attribute ``weight_files`` on a
metric or model). They are looked for, in order, in the folder given with ``--weights-dir``
(``set_weights_dir``), in ``GENSR_BENCH_WEIGHTS_DIR``, and in the user cache folder
(``<cache>/weights``). ``fetch`` downloads a missing file from its URL and checks its sha256;
offline, ``locate`` fails with a message naming the file, the URL and the environment variable.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from gensr_bench.errors import GensrError

WEIGHTS_ENV = "GENSR_BENCH_WEIGHTS_DIR"
_explicit_dir: Path | None = None


class WeightsError(GensrError):
    """A weight file is missing, cannot be downloaded, or has the wrong hash."""


@dataclass(frozen=True)
class WeightFile:
    """One weight file a plugin needs.

    ``filename`` is the name looked for in the weights folders (it may name a subfolder,
    ``voicefixer/vf.ckpt``); ``sha256`` the expected digest
    (``None``: not checked); ``url`` where ``fetch`` downloads it from (``None``: the user must
    provide it); ``license`` a short licence note shown by ``weights list``.
    """

    filename: str
    sha256: str | None = None
    url: str | None = None
    license: str = ""
    description: str = ""


def set_weights_dir(path: str | Path | None) -> None:
    """Use ``path`` first when looking for weights (the CLI's ``--weights-dir``)."""
    global _explicit_dir
    _explicit_dir = Path(path) if path else None
    if _explicit_dir is not None:
        # Worker processes inherit the environment, not this module's state.
        os.environ[WEIGHTS_ENV] = str(_explicit_dir.resolve())


def search_dirs() -> list[Path]:
    """The folders searched for weight files, in order."""
    from gensr_bench.store import cache_dir

    dirs = []
    if _explicit_dir is not None:
        dirs.append(_explicit_dir)
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        dirs.extend(Path(p) for p in env.split(os.pathsep) if p)
    dirs.append(cache_dir() / "weights")
    unique: list[Path] = []
    for directory in dirs:
        if directory not in unique:
            unique.append(directory)
    return unique


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def find(weight: WeightFile) -> Path | None:
    """The first existing copy of ``weight`` in the search folders, or ``None``."""
    for directory in search_dirs():
        candidate = directory / weight.filename
        if candidate.is_file():
            return candidate
    return None


def _missing_message(weight: WeightFile) -> str:
    places = ", ".join(str(d) for d in search_dirs())
    how = (
        f"download it from {weight.url} (or run `gensr-bench weights fetch` while online)"
        if weight.url
        else "obtain it from the plugin's documentation"
    )
    return (
        f"weight file {weight.filename!r} not found (looked in: {places}); {how}, then put it "
        f"in one of those folders, point {WEIGHTS_ENV} at its folder, or pass --weights-dir"
    )


def locate(weight: WeightFile, download: bool = True) -> Path:
    """The path of ``weight``, downloading it into the cache folder when missing and allowed.

    Raises WeightsError naming the file, the URL and the environment variable when it cannot
    be found or fetched, and when a found or fetched file has the wrong sha256.
    """
    path = find(weight)
    if path is None:
        if not (download and weight.url):
            raise WeightsError(_missing_message(weight))
        try:
            path = fetch(weight)
        except WeightsError as exc:
            raise WeightsError(f"{_missing_message(weight)} ({exc})") from exc
    verify(weight, path)
    return path


def verify(weight: WeightFile, path: Path) -> None:
    """Raise WeightsError when ``path`` does not have the expected sha256."""
    if weight.sha256 is None:
        return
    actual = sha256_of(path)
    if actual != weight.sha256:
        raise WeightsError(
            f"{path} has sha256 {actual}, expected {weight.sha256}: the file is corrupt or a "
            f"different version; delete it and fetch {weight.url or weight.filename} again"
        )


def fetch(weight: WeightFile, timeout: float = 60.0) -> Path:
    """Download ``weight`` into the cache folder (atomically) and check its sha256."""
    from gensr_bench.store import cache_dir

    if not weight.url:
        raise WeightsError(f"{weight.filename!r} has no download URL; provide the file yourself")
    target = cache_dir() / "weights" / weight.filename
    # A filename may name a subfolder (``voicefixer/vf.ckpt``); the part file goes beside it.
    target_dir = target.parent
    target_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target_dir, delete=False, suffix=".part") as handle:
        tmp = Path(handle.name)
        try:
            with urllib.request.urlopen(weight.url, timeout=timeout) as response:
                shutil.copyfileobj(response, handle)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise WeightsError(f"could not download {weight.url}: {exc}") from exc
    try:
        verify(weight, tmp)
    except WeightsError:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(target)
    return target
