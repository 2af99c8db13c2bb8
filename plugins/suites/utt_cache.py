"""The ``.utt`` disk cache of the generated suites: one small file per utterance.

Where (:func:`cache_root`), the file layout (:func:`encode_utterance` / :func:`decode_utterance`)
and atomic writes. Every cached utterance is 16 kHz (the generated suites' rate).
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from contextlib import suppress
from pathlib import Path

import numpy as np

from gensr_bench.records import Audio, Utterance

#: The rate of every cached utterance.
SAMPLE_RATE = 16000


def cache_root() -> Path:
    """``$GENSR_BENCH_CACHE_DIR``, else the platform's user cache folder for gensr-bench."""
    configured = os.environ.get("GENSR_BENCH_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("gensr-bench"))


# One file per utterance, read with a single read() call (an .npz costs 3-4x more: zipfile
# reads in chunks and checks CRCs). Layout, little-endian:
#   8 bytes magic | uint32 info length | uint32 degraded length | uint32 reference length
#   | info (UTF-8 JSON: id, transcript, meta) | degraded float32 | reference float32
_CACHE_MAGIC = b"GSRBUTT1"
_CACHE_HEADER = struct.Struct("<8sIII")
CACHE_SUFFIX = ".utt"


def encode_utterance(utterance: Utterance) -> bytes:
    """The cache file content of ``utterance`` (see the layout above)."""
    assert utterance.degraded is not None and utterance.reference is not None
    info = json.dumps(
        {"id": utterance.id, "transcript": utterance.transcript, "meta": dict(utterance.meta)}
    ).encode("utf-8")
    degraded = utterance.degraded.samples.astype("<f4", copy=False)
    reference = utterance.reference.samples.astype("<f4", copy=False)
    header = _CACHE_HEADER.pack(_CACHE_MAGIC, len(info), len(degraded), len(reference))
    return b"".join((header, info, degraded.tobytes(), reference.tobytes()))


def decode_utterance(data: bytes) -> Utterance | None:
    """The utterance in a cache file's content, or ``None`` when it is not a complete one."""
    if len(data) < _CACHE_HEADER.size:
        return None
    magic, n_info, n_degraded, n_reference = _CACHE_HEADER.unpack_from(data)
    if magic != _CACHE_MAGIC or len(data) != _CACHE_HEADER.size + n_info + 4 * (
        n_degraded + n_reference
    ):
        return None
    offset = _CACHE_HEADER.size
    try:
        info = json.loads(data[offset : offset + n_info].decode("utf-8"))
    except ValueError:  # JSON and Unicode errors alike
        return None
    offset += n_info
    degraded = np.frombuffer(data, "<f4", n_degraded, offset).astype(np.float32)
    offset += 4 * n_degraded
    reference = np.frombuffer(data, "<f4", n_reference, offset).astype(np.float32)
    return Utterance(
        id=info["id"],
        degraded=Audio(degraded, SAMPLE_RATE),
        reference=Audio(reference, SAMPLE_RATE),
        transcript=info["transcript"],
        meta=info["meta"],
    )


def write_atomic(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` via a temporary file and a rename (never half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.replace(temporary, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(temporary)
        raise


def read_cached(path: Path) -> Utterance | None:
    """The cached utterance at ``path``, or ``None`` when it is missing or unreadable."""
    try:
        data = path.read_bytes()
    except OSError:  # missing (the usual case) or unreadable: generate it
        return None
    return decode_utterance(data)  # None for a corrupt file: regenerated and overwritten
