"""Training inputs for ``gensr-bench align``: the held-out split, the examples, the config.

The last step of :mod:`gensr_bench.alignment.pipeline` (which re-exports these names):
:func:`held_out_split` splits the inputs, :func:`alignment_examples` (DPO),
:func:`winner_examples` and :func:`reference_examples` (SFT) make what the trainer takes, and
:func:`align_config` checks the ``--align-option`` values.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from gensr_bench.errors import ConfigError
from gensr_bench.interfaces import item_seed
from gensr_bench.records import Audio, PreferencePair, Utterance

if TYPE_CHECKING:
    from .trainer import AlignConfig, AlignmentExample

#: AlignConfig fields ``--align-option`` cannot set (they have their own flags or are internal).
RESERVED_ALIGN_FIELDS: Final = ("objective", "extra")


def held_out_split(
    input_ids: Sequence[str], fraction: float, seed: int
) -> tuple[list[str], list[str]]:
    """``(train, held_out)`` input ids: a ``fraction`` of the inputs, drawn by ``seed``.

    Each input's rank is ``item_seed(seed, "held-out:" + id)``, so the split depends only on
    the seed and the set of inputs. With ``fraction > 0`` and two inputs or more at least one
    input is held out and at least one is kept for training. Both lists keep the input order.

    Raises:
        ConfigError: ``fraction`` is not in ``[0, 1)``.
    """
    if not (isinstance(fraction, int | float) and 0 <= fraction < 1 and math.isfinite(fraction)):
        raise ConfigError(f"the held-out fraction must be in [0, 1), got {fraction!r}")
    ids = list(dict.fromkeys(input_ids))
    count = 0
    if fraction > 0 and len(ids) >= 2:
        count = min(len(ids) - 1, max(1, round(fraction * len(ids))))
    ranked = sorted(ids, key=lambda uid: (item_seed(seed, f"held-out:{uid}"), uid))
    held = set(ranked[:count])
    return [u for u in ids if u not in held], [u for u in ids if u in held]


def alignment_examples(
    pairs: Sequence[PreferencePair],
    degraded: Mapping[str, Audio],
    input_ids: Iterable[str],
) -> list[AlignmentExample]:
    """One DPO example per pair of the given inputs (chosen and rejected audio)."""
    from .trainer import AlignmentExample

    keep = set(input_ids)
    return [
        AlignmentExample(
            pair.input_id, degraded[pair.input_id], pair.chosen.audio, pair.rejected.audio
        )
        for pair in pairs
        if pair.input_id in keep
    ]


def winner_examples(
    pairs: Sequence[PreferencePair], degraded: Mapping[str, Audio], input_ids: Iterable[str]
) -> list[AlignmentExample]:
    """SFT targets: every distinct chosen output of the given inputs' pairs (no loser)."""
    from .trainer import AlignmentExample

    keep = set(input_ids)
    seen: set[str] = set()
    out = []
    for pair in pairs:
        if pair.input_id in keep and pair.chosen.utterance_id not in seen:
            seen.add(pair.chosen.utterance_id)
            out.append(AlignmentExample(pair.input_id, degraded[pair.input_id], pair.chosen.audio))
    return out


def reference_examples(
    utterances: Mapping[str, Utterance], degraded: Mapping[str, Audio], input_ids: Iterable[str]
) -> list[AlignmentExample]:
    """SFT targets: the clean reference of each given input, at the degraded audio's rate.

    Raises:
        ConfigError: an input has no clean reference.
    """
    from .pipeline import at_rate
    from .trainer import AlignmentExample

    out = []
    for uid in input_ids:
        reference = utterances[uid].reference
        if reference is None:
            raise ConfigError(
                f"--sft-target ground-truth needs every input's clean reference; {uid!r} has "
                "none: use --sft-target winners"
            )
        rate = degraded[uid].sample_rate
        out.append(AlignmentExample(uid, degraded[uid], at_rate(reference, rate)))
    return out


def align_option_names() -> list[str]:
    """The AlignConfig fields ``--align-option`` may set."""
    from .trainer import AlignConfig

    return [f.name for f in dataclasses.fields(AlignConfig) if f.name not in RESERVED_ALIGN_FIELDS]


def align_config(options: Mapping[str, Any], *, objective: str, seed: int) -> AlignConfig:
    """An :class:`AlignConfig` from ``--align-option`` values (``seed`` unless they set one).

    Values are checked against the field's type: numbers for ``float`` fields (``beta`` may be
    ``null``: the paradigm's default), whole numbers for ``int`` fields, ``true`` / ``false``
    for ``bool`` fields.

    Raises:
        ConfigError: an unknown key (the message lists the valid ones) or a value of the wrong
            type, or what ``AlignConfig`` itself refuses.
    """
    from .trainer import AlignConfig

    valid = align_option_names()
    unknown = sorted(set(options) - set(valid))
    if unknown:
        reserved = [k for k in unknown if k in RESERVED_ALIGN_FIELDS]
        hint = " (objective has its own flag, --objective)" if "objective" in reserved else ""
        raise ConfigError(
            f"unknown alignment option {', '.join(unknown)}{hint}; valid keys: {', '.join(valid)}"
        )
    types = {f.name: str(f.type) for f in dataclasses.fields(AlignConfig)}
    values: dict[str, Any] = {"seed": seed}
    for key, value in options.items():
        values[key] = _coerce(key, value, types[key])
    return AlignConfig(objective=objective, **values)


def _coerce(key: str, value: Any, annotation: str) -> Any:
    kind = annotation.split("|")[0].strip()
    if value is None and "None" in annotation:
        return None
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise ConfigError(f"alignment option {key} takes true or false, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"alignment option {key} takes a number, got {value!r}")
    if kind == "int":
        if float(value) != int(value):
            raise ConfigError(f"alignment option {key} takes a whole number, got {value!r}")
        return int(value)
    return float(value)
