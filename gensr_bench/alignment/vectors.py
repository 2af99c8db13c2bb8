"""Preference vectors: do different models' preference pairs point the same way?

The GenSR-Pref paper's Table 5 compares, within and across paradigms, the directions in which
the unanimous multi-metric preference moves the output: for every pair, the feature vector of the
chosen output minus that of the rejected one, ``v = f(chosen) - f(rejected)``. The statistic is
the mean pairwise cosine similarity of those vectors: within one dataset over all ordered pairs
``i != j``, across two datasets over all ``(i, j)``. A value near 0 means the preference has no
shared direction; a within-dataset value above 0 means a consistent one, and an across-dataset
value near the within values means the paradigms agree on it.

With unit vectors ``u`` the means have closed forms (no n x n matrix is built):

* within ``A`` (``n`` vectors): ``(|sum u|^2 - n) / (n (n - 1))``
* across ``A`` and ``B``: ``(sum_A u) . (sum_B u) / (n_A n_B)``

The feature extractor is a plugin (hook ``gensr_register_features``): ``log-mel`` and
``speaker`` are built in. ``gensr-bench pairs vectors DATASET...`` prints the table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from gensr_bench.errors import ConfigError, GensrError

if TYPE_CHECKING:
    import datasets

    from gensr_bench.interfaces import FeatureExtractor


@dataclass
class PreferenceVectors:
    """The preference vectors of one dataset, as unit rows, and the pairs that gave none."""

    label: str
    units: np.ndarray  # (n, d), each row of norm 1
    pairs: int  # pairs read
    #: (row index, reason) of pairs without a vector: the extractor failed, or the chosen and
    #: rejected outputs have identical features (a zero vector has no direction).
    skipped: list[tuple[int, str]] = field(default_factory=list)


def unit_rows(vectors: np.ndarray, *, atol: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    """(rows of ``vectors`` scaled to norm 1, mask of the rows kept): zero rows are dropped.

    Raises:
        ConfigError: ``vectors`` is not a 2-D array of finite numbers.
    """
    array = np.asarray(vectors, dtype=np.float64)
    if array.ndim != 2:
        raise ConfigError(f"preference vectors must be a 2-D array, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ConfigError("preference vectors contain NaN or infinite values")
    norms = np.linalg.norm(array, axis=1)
    keep = norms > atol
    return array[keep] / norms[keep, None], keep


def mean_pairwise_cosine(first: np.ndarray, second: np.ndarray | None = None) -> float:
    """Mean cosine similarity of unit rows: over ``i != j`` within ``first`` when ``second`` is
    ``None``, else over every row of ``first`` against every row of ``second``.

    Raises:
        ConfigError: fewer than two rows within, an empty side across, or differing widths.
    """
    a = np.asarray(first, dtype=np.float64)
    if second is None:
        n = len(a)
        if n < 2:
            raise ConfigError(f"a within-set mean cosine needs at least 2 vectors, got {n}")
        total = a.sum(axis=0)
        return float((total @ total - n) / (n * (n - 1)))
    b = np.asarray(second, dtype=np.float64)
    if len(a) == 0 or len(b) == 0:
        raise ConfigError("an across-set mean cosine needs at least one vector on each side")
    if a.shape[1] != b.shape[1]:
        raise ConfigError(
            f"vectors of width {a.shape[1]} and {b.shape[1]} cannot be compared; use the same "
            "feature extractor for both"
        )
    return float(a.sum(axis=0) @ b.sum(axis=0) / (len(a) * len(b)))


def cosine_table(groups: Sequence[PreferenceVectors]) -> dict[str, dict[str, float | None]]:
    """label -> label -> mean pairwise cosine (within on the diagonal); ``None`` where a side
    has too few vectors."""
    table: dict[str, dict[str, float | None]] = {}
    for g in groups:
        row: dict[str, float | None] = {}
        for h in groups:
            if g is h:
                row[h.label] = mean_pairwise_cosine(g.units) if len(g.units) >= 2 else None
            else:
                row[h.label] = (
                    mean_pairwise_cosine(g.units, h.units)
                    if len(g.units) and len(h.units)
                    else None
                )
        table[g.label] = row
    return table


def sample_indices(total: int, limit: int | None, seed: int) -> list[int]:
    """All ``range(total)``, or ``limit`` of them drawn without replacement (sorted)."""
    if limit is None or limit >= total:
        return list(range(total))
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(total, size=limit, replace=False))


def preference_vectors(
    ds: datasets.Dataset,
    extractor: FeatureExtractor,
    label: str,
    *,
    indices: Sequence[int] | None = None,
    progress: Callable[[int], object] | None = None,
) -> PreferenceVectors:
    """``f(chosen) - f(rejected)`` for the rows ``indices`` of a preference dataset (all rows
    when ``None``), the audio resampled to the extractor's rate as metrics see it.
    ``progress(1)`` is called after each row.

    A pair whose features fail (the extractor raises a ``GensrError``, e.g. no speech found)
    or whose vector is zero is skipped and listed, never given a made-up vector.

    Raises:
        AudioDecodeError: a row's audio cannot be decoded.
        ConfigError: the extractor returns vectors that are not 1-D or change length.
    """
    from .dataset import decode_row_audio
    from .pipeline import at_rate

    extractor.setup()
    rows = range(len(ds)) if indices is None else indices
    vectors: list[np.ndarray] = []
    kept_rows: list[int] = []
    skipped: list[tuple[int, str]] = []
    width: int | None = None
    for index in rows:
        row = ds[int(index)]
        what = f"row {index} (input {row['input_id']!r})"
        signals = [
            at_rate(decode_row_audio(row[role], what=f"{what} {role} audio"), extractor.sample_rate)
            for role in ("chosen", "rejected")
        ]
        try:
            features = [np.asarray(extractor.extract(a.samples), np.float64) for a in signals]
        except GensrError as exc:
            skipped.append((int(index), f"{extractor.name}: {exc}"))
            if progress is not None:
                progress(1)
            continue
        for vector in features:
            if vector.ndim != 1 or (width is not None and vector.shape[0] != width):
                raise ConfigError(
                    f"feature extractor {extractor.name!r} returned a vector of shape "
                    f"{vector.shape} for {what} (expected 1-D of length {width or 'fixed'})"
                )
            width = vector.shape[0]
        vectors.append(features[0] - features[1])
        kept_rows.append(int(index))
        if progress is not None:
            progress(1)
    units, keep = unit_rows(np.array(vectors) if vectors else np.zeros((0, width or 0)))
    skipped.extend(
        (row_index, "the chosen and rejected features are identical (a zero vector)")
        for row_index, kept in zip(kept_rows, keep, strict=True)
        if not kept
    )
    return PreferenceVectors(label, units, len(rows), sorted(skipped))


def format_table(table: Mapping[str, Mapping[str, float | None]]) -> list[list[Any]]:
    """Rows of the cosine table for printing: label, then one cell per column."""
    labels = list(table)
    return [
        [g, *("-" if table[g][h] is None else f"{table[g][h]:+.3f}" for h in labels)]
        for g in labels
    ]
