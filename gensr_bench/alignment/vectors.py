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

So a dataset is summed up, for the table, by its count and the sum of its unit vectors
(:class:`VectorSum`): ``pairs vectors --save DIR`` writes that summary as a small JSON file, and
such files stand in for datasets later (datasets built on different machines or days, whose
audio is gone, still go into one table).

The feature extractor is a plugin (hook ``gensr_register_features``): ``log-mel`` and
``speaker`` are built in. ``gensr-bench pairs vectors DATASET...`` prints the table.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
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

    def summed(self) -> VectorSum:
        """What the cosine table needs: the count and the sum of the unit vectors."""
        total = self.units.sum(axis=0)  # (n, d) rows, n may be 0: zeros of width d
        return VectorSum(self.label, len(self.units), total, self.pairs, list(self.skipped))


@dataclass
class VectorSum:
    """A dataset's preference vectors summed up: their count and the sum of the unit rows."""

    label: str
    count: int
    unit_sum: np.ndarray  # (d,)
    pairs: int  # pairs read
    skipped: list[tuple[int, str]] = field(default_factory=list)


#: ``format`` field of a saved summary (``pairs vectors --save``).
SUMMARY_FORMAT = "gensr-bench preference vectors"


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
        return within_cosine(len(a), a.sum(axis=0))
    b = np.asarray(second, dtype=np.float64)
    return across_cosine(len(a), a.sum(axis=0), len(b), b.sum(axis=0))


def within_cosine(count: int, unit_sum: np.ndarray) -> float:
    """Mean cosine over the ordered pairs ``i != j`` of ``count`` unit vectors summing to
    ``unit_sum``: ``(|sum|^2 - n) / (n (n - 1))``."""
    if count < 2:
        raise ConfigError(f"a within-set mean cosine needs at least 2 vectors, got {count}")
    total = np.asarray(unit_sum, dtype=np.float64)
    return float((total @ total - count) / (count * (count - 1)))


def across_cosine(count_a: int, sum_a: np.ndarray, count_b: int, sum_b: np.ndarray) -> float:
    """Mean cosine of every one of ``count_a`` unit vectors against every one of ``count_b``,
    from their sums: ``sum_a . sum_b / (n_a n_b)``."""
    if count_a == 0 or count_b == 0:
        raise ConfigError("an across-set mean cosine needs at least one vector on each side")
    a, b = np.asarray(sum_a, dtype=np.float64), np.asarray(sum_b, dtype=np.float64)
    if a.shape != b.shape:
        raise ConfigError(
            f"vectors of width {a.shape[-1]} and {b.shape[-1]} cannot be compared; use the same "
            "feature extractor for both"
        )
    return float(a @ b / (count_a * count_b))


def cosine_table(
    groups: Sequence[PreferenceVectors | VectorSum],
) -> dict[str, dict[str, float | None]]:
    """label -> label -> mean pairwise cosine (within on the diagonal); ``None`` where a side
    has too few vectors."""
    sums = [g.summed() if isinstance(g, PreferenceVectors) else g for g in groups]
    table: dict[str, dict[str, float | None]] = {}
    for g in sums:
        row: dict[str, float | None] = {}
        for h in sums:
            if g is h:
                row[h.label] = within_cosine(g.count, g.unit_sum) if g.count >= 2 else None
            else:
                row[h.label] = (
                    across_cosine(g.count, g.unit_sum, h.count, h.unit_sum)
                    if g.count and h.count
                    else None
                )
        table[g.label] = row
    return table


def save_summary(
    summary: VectorSum, path: Path, *, features: Mapping[str, Any], **provenance: Any
) -> Path:
    """Write a dataset's summed preference vectors as JSON (``pairs vectors --save``): the
    label, count, sum of unit vectors, the extractor's config and ``provenance`` (e.g. the
    dataset's path and the draw's seed)."""
    payload = {
        "format": SUMMARY_FORMAT,
        "version": 1,
        "label": summary.label,
        "features": dict(features),
        **provenance,
        "pairs_read": summary.pairs,
        "vectors": summary.count,
        "unit_sum": [float(x) for x in summary.unit_sum],
        "skipped": [{"row": r, "reason": why} for r, why in summary.skipped],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1) + "\n")
    return path


def load_summary(path: Path) -> tuple[VectorSum, dict[str, Any]]:
    """(summary, extractor config) of a file written by :func:`save_summary`.

    Raises:
        ConfigError: the file is not such a summary, or its numbers are inconsistent.
    """
    try:
        payload = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read preference-vector summary {path}: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != SUMMARY_FORMAT:
        raise ConfigError(
            f"{path} is not a preference-vector summary (written by `gensr-bench pairs vectors "
            "--save DIR`); give a preference dataset folder or such a file"
        )
    try:
        unit_sum = np.asarray(payload["unit_sum"], dtype=np.float64)
        count = int(payload["vectors"])
        summary = VectorSum(
            str(payload["label"]),
            count,
            unit_sum,
            int(payload["pairs_read"]),
            [(int(s["row"]), str(s["reason"])) for s in payload.get("skipped", [])],
        )
        features = dict(payload["features"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"preference-vector summary {path} is incomplete: {exc}") from exc
    if unit_sum.ndim != 1 or not np.all(np.isfinite(unit_sum)):
        raise ConfigError(f"{path}: unit_sum must be a list of finite numbers")
    if count < 0 or float(np.linalg.norm(unit_sum)) > count + 1e-6:
        raise ConfigError(
            f"{path}: the sum of {count} unit vectors cannot have norm "
            f"{float(np.linalg.norm(unit_sum)):.3f}; the file was changed by hand"
        )
    return summary, features


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
    from gensr_bench.audio import decode_audio_cell

    from .dataset import REBUILD_HINT
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
            at_rate(
                decode_audio_cell(row[role], f"{what} {role} audio", fix=REBUILD_HINT),
                extractor.sample_rate,
            )
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
