"""Abstract bases of the components plugins provide: metrics, restoration models, suites,
leaderboard publishers and execution backends.

The core calls these interfaces only; it knows no metric, model or suite by name.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from gensr_bench.records import Audio, Restoration, Utterance
from gensr_bench.weights import WeightFile

if TYPE_CHECKING:
    import numpy as np

    from gensr_bench.execution import BatchProcessor, Processed

PARADIGMS = ("ar", "mgm", "fm", "discriminative", "dsp")


def first_docstring_line(cls: type) -> str:
    """The first line of a class docstring: the one-line description shown by ``ls``."""
    doc = (cls.__doc__ or "").strip()
    return doc.splitlines()[0].strip() if doc else ""


class Component(ABC):
    """What metrics, models and suites share: a registered name, a version and options."""

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    #: Weight files the component needs (see gensr_bench.weights; listed by `weights list`).
    weight_files: ClassVar[tuple[WeightFile, ...]] = ()
    #: Option names the component accepts. The default, none, makes a component that forgets
    #: to declare its options refuse them rather than ignore a misspelt one silently; ``None``
    #: accepts any, for a class that refuses unknown options itself.
    accepted_options: ClassVar[tuple[str, ...] | None] = ()
    #: Whether the component can run on an accelerator: it then reads ``self.device``
    #: (``"cpu"`` or ``"cuda"``, set by the runner before ``setup``) and must not assume CPU
    #: tensors. Where it runs is provenance, not configuration: it is not an option.
    supports_device: ClassVar[bool] = False
    #: Where the component runs (see ``supports_device`` and gensr_bench.devices).
    device: str = "cpu"

    def __init__(self, **options: Any) -> None:
        if self.accepted_options is not None:
            unknown = sorted(set(options) - set(self.accepted_options))
            if unknown:
                import difflib

                from gensr_bench.errors import UnknownOptionError

                hints = [
                    close[0]
                    for key in unknown
                    if (close := difflib.get_close_matches(key, self.accepted_options, n=1))
                ]
                raise UnknownOptionError(
                    f"{self.name!r} has no option {', '.join(unknown)}; "
                    f"available options: {', '.join(self.accepted_options) or '(none)'}"
                    + (f" (did you mean {', '.join(hints)}?)" if hints else "")
                )
        self.options: dict[str, Any] = dict(options)

    @classmethod
    def description(cls) -> str:
        return first_docstring_line(cls)

    def config(self) -> dict[str, Any]:
        """Everything that identifies this component's behaviour, recorded in run results."""
        return {"name": self.name, "version": self.version, "options": dict(self.options)}


class Metric(Component):
    """Scores restorations, one dict of ``outputs`` per utterance.

    Class attributes:
        higher_is_better: a bool for all outputs, or a mapping output -> bool.
        requires_reference: whether the utterance reference is needed.
        sample_rate: the rate the metric scores at; the runner resamples to it (``None``: native).
        outputs: the names of the values ``score_batch`` returns for each utterance.
        min_duration: shortest audio in seconds the metric can score honestly; the runner
            reports shorter audio as ``None`` with an error instead of calling the metric.

    ``score_batch`` may raise: the runner then scores the batch one utterance at a time and
    records ``None`` plus the error for the utterance that fails. A NaN or infinite value is
    recorded as ``None`` with an error too. Never return a made-up number such as 0.0.
    """

    higher_is_better: ClassVar[bool | Mapping[str, bool]] = True
    requires_reference: ClassVar[bool] = False
    sample_rate: ClassVar[int | None] = 16000
    outputs: ClassVar[tuple[str, ...]] = ()
    min_duration: ClassVar[float] = 0.0
    #: Whether ``run`` uses this metric when ``--metrics`` is not given.
    default: ClassVar[bool] = True
    #: Whether scores depend on ``utterance.transcript`` (then it is part of the cache key).
    uses_transcript: ClassVar[bool] = False

    def setup(self) -> None:
        """Load weights or sessions once per worker. Called before the first ``score_batch``."""

    @abstractmethod
    def score_batch(
        self, restorations: Sequence[Restoration], utterances: Sequence[Utterance]
    ) -> list[dict[str, float]]:
        """Score each restoration against its utterance (same order, same length)."""

    @classmethod
    def direction(cls, output: str) -> bool:
        """Whether a larger value of ``output`` is better."""
        if isinstance(cls.higher_is_better, Mapping):
            return bool(cls.higher_is_better[output])
        return bool(cls.higher_is_better)

    def weights_sha256(self) -> dict[str, str]:
        """sha256 of every weight file the metric uses (file name -> hex digest).

        The default hashes the ``weight_files`` that are present.
        """
        from gensr_bench.weights import find, sha256_of

        hashes = {}
        for weight in self.weight_files:
            path = find(weight)
            if path is not None:
                hashes[weight.filename] = sha256_of(path)
        return hashes


def item_seed(seed: int, utterance_id: str) -> int:
    """The seed for one utterance: models draw per-item randomness from it, so an output
    depends only on (seed, utterance) and never on how the runner batched or resumed."""
    digest = hashlib.sha256(f"{seed}:{utterance_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


class RestorationModel(Component):
    """Restores degraded speech.

    ``restore(batch, seed)`` must be deterministic for a seed *and independent of the batch
    composition*: draw each utterance's randomness from ``item_seed(seed, utterance.id)``.
    When some utterances of a batch cannot be restored and the others can, ``restore`` raises
    :class:`~gensr_bench.errors.BatchRestorationError` with one outcome per utterance (a
    Restoration or the reason it failed); any other exception fails the batch, and the runner
    then retries its utterances one at a time.
    """

    paradigm: ClassVar[str] = "dsp"
    sample_rate: ClassVar[int] = 16000
    #: The largest absolute difference of output samples expected between two x86 CPUs for the
    #: same checkpoint, input and seed; None when not declared. Provenance records it, and
    #: ``check`` shows it when a baseline and a candidate ran on different CPUs.
    waveform_tolerance: ClassVar[float | None] = None

    def setup(self) -> None:
        """Load weights once per worker. Called before the first ``restore``."""

    @abstractmethod
    def restore(self, batch: Sequence[Utterance], seed: int) -> list[Restoration]:
        """Restore each utterance; inputs arrive at ``sample_rate``."""

    def sample(
        self,
        batch: Sequence[Utterance],
        n: int,
        seed: int,
        sampling: Mapping[str, Any] | None = None,
    ) -> list[list[Restoration]]:
        """``n`` candidates per utterance; by default ``restore`` with seeds seed .. seed+n-1."""
        per_seed = [self.restore(batch, seed + k) for k in range(n)]
        return [[per_seed[k][i] for k in range(n)] for i in range(len(batch))]

    def checkpoint_hash(self) -> str | None:
        """sha256 of the weights the model restores with; ``None`` for weightless models."""
        return None

    def sampling_refusal(self) -> str | None:
        """Why ``sample`` cannot draw distinct candidates, or ``None`` (the default) when it can.

        A model whose outputs do not depend on the seed (files made elsewhere, a script run
        without one) would give ``n`` identical candidates, so no preference pair; alignment
        refuses such a model with this reason before sampling anything.
        """
        return None

    def ignored_files(
        self, utterances: Iterable[tuple[str, Mapping[str, Any]]]
    ) -> list[tuple[str, str]]:
        """Files the model was pointed at that no utterance of a run used, each ``(path, why)``.

        ``utterances`` are the run's ``(id, meta)``, read lazily (the default reads none).
        ``run`` lists the answer once at its end, as it lists ``Suite.ignored_files``: a model
        that reads outputs from a folder names every file there it did not match. The default,
        for models that read no folder, is none.
        """
        return []

    #: Whether ``fit`` trains this model (``gensr-bench train --model NAME``).
    trainable: ClassVar[bool] = False

    @classmethod
    def fit(
        cls,
        suite: Suite,
        out_dir: Path,
        *,
        seed: int = 0,
        resume: bool = False,
        max_minutes: float | None = None,
        options: Mapping[str, Any] | None = None,
        command: str = "",
        progress: Callable[[int, int, float], None] | None = None,
    ) -> dict[str, Any]:
        """Train the model on ``suite`` into the checkpoint folder ``out_dir``.

        ``options`` are the model's training options; ``progress(step, total, loss)`` is
        called after every step. Returns the checkpoint's manifest. ``resume`` continues an
        interrupted run in ``out_dir``; ``max_minutes`` stops early (keeping a checkpoint).
        """
        from gensr_bench.errors import ConfigError

        raise ConfigError(f"model {cls.name!r} cannot be trained (it has no training recipe)")


class AlignablePolicy(ABC):
    """What preference alignment (DPO) needs from a model, beyond restoring.

    A model that can be aligned subclasses both ``RestorationModel`` and this class, and
    implements the method of its paradigm: ``sequence_logprob`` for token models (AR, MGM),
    ``velocity_error`` for flow matching (FM). ``policy_batch`` turns (degraded input, model
    output) audio pairs into the model's own batch. Training-only randomness (dropout,
    condition dropout) is off in these calls, so a deep copy gives identical numbers.
    """

    paradigm: ClassVar[str]

    @abstractmethod
    def trainable_module(self) -> Any:
        """The ``torch.nn.Module`` whose parameters alignment updates."""

    @abstractmethod
    def policy_batch(self, degraded: Sequence[Audio], outputs: Sequence[Audio]) -> Any:
        """The model's batch for ``(degraded input, output)`` pairs."""

    def sequence_logprob(self, batch: Any, positions: Any) -> Any:
        """Token models: summed log-probability ``Tensor[B]`` of the output's tokens at
        ``positions`` (MGM: the masked tokens; AR: the target frames), padding excluded."""
        raise NotImplementedError(f"{type(self).__name__} is not a token model")

    def scored_tokens(self, batch: Any, positions: Any) -> Any:
        """Token models: how many tokens ``sequence_logprob`` sums, ``Tensor[B]`` (for the
        per-token mean of ``AlignConfig.token_mean``)."""
        raise NotImplementedError(
            f"{type(self).__name__} does not count the tokens it scores, so the alignment "
            "option token_mean cannot be used with it"
        )

    def velocity_error(self, batch: Any, t: Any, noise: Any) -> Any:
        """Flow models: per-sample velocity error ``Tensor[B]`` at times ``t`` and ``noise``."""
        raise NotImplementedError(f"{type(self).__name__} is not a flow-matching model")

    @abstractmethod
    def alignment_inputs(self, batch: Any, generators: Sequence[Any]) -> tuple[Any, ...]:
        """The random arguments of the paradigm's term for a batch of ``2B`` outputs (the
        chosen outputs of ``B`` pairs, then their rejected outputs, as built by
        ``policy_batch``), drawn pair by pair from ``generators`` (one ``torch.Generator``
        per pair, so a pair's draw never depends on the batch it is in).

        AR: ``(positions,)``, every valid frame. MGM: ``(mask,)``, one random mask per pair
        element. FM: ``(t, noise)``, one draw per pair shared by its chosen and rejected
        output (Diffusion-DPO). The term is then ``sequence_logprob(batch, *inputs)`` or
        ``velocity_error(batch, *inputs)``, and the reference sees the same inputs."""

    def supervised_loss(self, batch: Any, generator: Any) -> Any:
        """The model's own training loss on ``policy_batch`` pairs whose outputs are the
        targets (scalar tensor): what the SFT baselines and the trainer's optional
        supervised term on winners minimise."""
        raise NotImplementedError(f"{type(self).__name__} has no supervised loss")

    def save_trainable(self, directory: Path, manifest: Mapping[str, Any]) -> Path:
        """Save the current weights of ``trainable_module()`` as a checkpoint folder that the
        model (and ``--model DIR``) restores from; ``manifest`` is recorded with it."""
        raise NotImplementedError(f"{type(self).__name__} cannot save its weights")


class Suite(Component):
    """A set of utterances to evaluate on. Iteration is lazy so memory stays flat."""

    sample_rate: ClassVar[int] = 16000

    def __init__(self, limit: int | None = None, **options: Any) -> None:
        super().__init__(**options)
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be a positive number of utterances, got {limit}")
        self.limit = limit

    @abstractmethod
    def iter_utterances(self) -> Iterator[Utterance]:
        """Yield every utterance of the full suite, in a fixed order."""

    @abstractmethod
    def full_size(self) -> int:
        """Number of utterances in the full suite (ignoring ``limit``)."""

    def __iter__(self) -> Iterator[Utterance]:
        return itertools.islice(self.iter_utterances(), self.limit)

    def __len__(self) -> int:
        size = self.full_size()
        return size if self.limit is None else min(size, self.limit)

    #: Names of suites this one stands for: ``run`` evaluates each and reports them separately
    #: (e.g. ``dns`` = ``dns-no-reverb`` + ``dns-with-reverb``). Empty for an ordinary suite.
    subsets: ClassVar[tuple[str, ...]] = ()

    def verify(self) -> Any:
        """A ``gensr_bench.data.VerifyReport`` on the local data's completeness.

        The default counts the utterances and lists those that could not be loaded.
        """
        from gensr_bench.data import VerifyReport

        found, broken = 0, []
        for utt in self.iter_utterances():
            found += 1
            if utt.error is not None:
                broken.append(f"{utt.id}: {utt.error}")
        return VerifyReport(self.name, "", self.full_size(), found, missing=broken)

    def ignored_files(self) -> list[tuple[str, str]]:
        """Files in the suite's data folder that it does not read, each ``(path, why)``.

        ``suite verify`` and ``run`` list them, so no file is skipped without a word. A suite
        that reads a folder lists every file there it neither reads nor reports otherwise
        (hidden files, other file types, ...); the default, for suites that read no folder,
        is none.
        """
        return []

    def fingerprint(self) -> str:
        """A hash that changes whenever the suite's content could change."""
        payload = json.dumps(
            {"name": self.name, "version": self.version, "options": self.options},
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


class Publisher(Component):
    """Puts a built leaderboard site somewhere (``gensr-bench leaderboard build --publisher``).

    Registered by the hook ``gensr_register_publishers``. ``publish`` receives the folder the
    site was rendered into (complete, openable from disk) and the ``--publish-option`` values;
    it returns a one-line description of where the site now is, which the CLI prints. A
    publisher raises a ``GensrError`` subclass when it cannot publish.
    """

    @abstractmethod
    def publish(self, site_dir: Path, options: Mapping[str, Any]) -> str:
        """Publish the site in ``site_dir``; return where it went (a path or an address)."""


#: One batch of a run: (position in the suite, utterance) pairs.
Batch = list[tuple[int, Utterance]]


class Backend(Component):
    """Where a run's batches are restored and scored (``gensr-bench run --backend NAME``).

    Registered by the hook ``gensr_register_backends``; ``local`` (this machine, worker
    processes) is the default. ``map_batches`` receives the run's
    :class:`~gensr_bench.runner.BatchProcessor` (picklable: model, metrics, the score cache's
    path) and an iterator of batches, and yields each batch's processed results as it
    completes, in any order. A backend must load the processor once per worker, never once per
    batch, keep a bounded number of batches in flight (memory stays flat as the suite grows),
    and leave the scores unchanged: the results of a batch are those of
    ``processor.process(batch, seed)``. Options come from ``--backend-option KEY=VALUE``.
    """

    @abstractmethod
    def map_batches(
        self,
        processor: BatchProcessor,
        batches: Iterator[Batch],
        seed: int,
        *,
        workers: int,
        plugin_dirs: Sequence[str] = (),
    ) -> Iterator[list[Processed]]:
        """Process every batch with ``workers`` workers; yield each batch's results."""


class FeatureExtractor(Component):
    """Turns one signal into a fixed-length feature vector (``gensr-bench pairs vectors``).

    Registered by the hook ``gensr_register_features``. The preference-vector analysis takes,
    for every preference pair, ``extract(chosen) - extract(rejected)`` and compares those
    directions by cosine similarity, within and across models. ``extract`` receives mono float32
    samples at ``sample_rate`` (the caller resamples) and returns a 1-D float array whose length
    does not depend on the signal's duration. ``setup`` loads weights once, before the first
    ``extract``. Options come from ``--feature-option KEY=VALUE``.
    """

    sample_rate: ClassVar[int] = 16000

    def setup(self) -> None:
        """Load weights or sessions once. Called before the first ``extract``."""

    @abstractmethod
    def extract(self, samples: np.ndarray) -> np.ndarray:
        """The feature vector of mono ``samples`` at ``sample_rate`` (1-D, fixed length)."""
