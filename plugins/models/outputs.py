"""``outputs:DIR``: score outputs made elsewhere, as if a model had just made them.

``gensr-bench run --model outputs:DIR --suite S`` reads each utterance's output from a file in
``DIR`` instead of restoring it: the file named after the utterance id, as ``run --save-audio``
writes it (``OUT/audio/<id>.wav``), or after the degraded file the suite read (see
``gensr_bench_plugins.common.output_files`` for the exact order). Any format libsndfile reads, at
any sample rate: the runner resamples each output to every metric's rate and records it.

* A missing output gives that utterance ``None`` scores and an error naming the file expected;
  the run goes on.
* Files that match no utterance of the run are listed once when it ends.
* The run's config records the folder (absolute) and a sha256 over every audio file in it (also
  the provenance's ``model_checkpoint_sha256``), so ``check`` and the leaderboard compare what
  was scored; a changed folder cannot be ``--resume``-d into the same run.
* ``sample_rate`` is the files' own rate (the most common one when they differ; the config
  lists them all); the input is never used.

The name resolves through the ``gensr_resolve_model`` hook, so no model is registered as
``outputs``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gensr_bench import RestorationModel, hookimpl
from gensr_bench.errors import BatchRestorationError, ConfigError, describe
from gensr_bench.records import Restoration, Utterance

from ..common.output_files import OutputFolder

PREFIX = "outputs:"


class OutputsModel(RestorationModel):
    """Scores audio files made elsewhere: outputs:DIR reads DIR/<utterance id>.wav.

    Subclassed per folder by :func:`outputs_class`; ``folder`` is the one named after the
    prefix. Takes no options; the seed is ignored.
    """

    name = "outputs"
    version = "1"
    paradigm = "dsp"
    folder: str = ""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        root = Path(self.folder).expanduser()
        if not self.folder or not root.is_dir():
            raise ConfigError(
                f"model {self.name!r}: {root} is not a folder; name the folder of output "
                f"files after {PREFIX!r}, e.g. --model outputs:runs/x/audio (a folder written "
                "by `gensr-bench run --save-audio --out runs/x`)"
            )
        self.root = root.resolve()
        self.files = OutputFolder.scan(self.root)
        if not self.files.by_name:
            found = ", ".join(f"{path} ({why})" for path, why in self.files.skipped[:5])
            raise ConfigError(
                f"model {self.name!r}: {self.root} holds no audio file"
                + (f" (found {found})" if found else " (it is empty)")
                + "; put one output per utterance there, named <utterance id>.wav"
            )
        self.rates = self.files.sample_rates()
        if self.rates:  # the files' own rate, reported as it is (inputs are never used)
            most = max(self.rates, key=lambda rate: (self.rates[rate], rate))
            self.sample_rate = most  # type: ignore[misc]
        self._sha256: str | None = None

    def restore(self, batch: Sequence[Utterance], seed: int) -> list[Restoration]:
        outcomes: list[Restoration | str] = []
        for utt in batch:
            try:
                audio, rel = self.files.read(utt.id, utt.meta)
            except Exception as exc:
                outcomes.append(describe(exc))
                continue
            outcomes.append(Restoration(utt.id, audio, self.name, seed, {"file": rel}))
        if any(isinstance(outcome, str) for outcome in outcomes):
            raise BatchRestorationError(outcomes)
        return [outcome for outcome in outcomes if isinstance(outcome, Restoration)]

    def files_sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = self.files.sha256()
        return self._sha256

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "folder": str(self.root),
            "files": len(self.files.audio_files()),
            "files_sha256": self.files_sha256(),
            "sample_rates": sorted(self.rates),
        }

    def checkpoint_hash(self) -> str | None:
        return self.files_sha256()

    def sampling_refusal(self) -> str | None:
        return (
            f"its outputs are files in {self.root}, one per utterance, whatever the seed; "
            "align a model that samples (see `gensr-bench ls models`)"
        )

    def ignored_files(
        self, utterances: Iterable[tuple[str, Mapping[str, Any]]]
    ) -> list[tuple[str, str]]:
        return self.files.unmatched(utterances)

    def __reduce__(self) -> tuple[Any, ...]:
        # The class is made at run time: rebuilt by name in worker processes, with the folder's
        # scan carried along rather than redone.
        return (rebuild, (self.name,), self.__dict__)


def outputs_class(name: str) -> type[OutputsModel]:
    """An OutputsModel subclass serving ``name`` (``outputs:DIR``); nothing is read yet."""
    return type(
        "OutputsModel",
        (OutputsModel,),
        {
            "name": name,
            "folder": name[len(PREFIX) :],
            "__module__": __name__,
            "__doc__": OutputsModel.__doc__,
        },
    )


def rebuild(name: str) -> OutputsModel:
    """An unpickled model: its class made again from ``name``; the state is set by pickle."""
    cls = outputs_class(name)
    return cls.__new__(cls)


@hookimpl
def gensr_resolve_model(name: str) -> type[RestorationModel] | None:
    if not name.startswith(PREFIX):
        return None
    return outputs_class(name)


@hookimpl
def gensr_suggest_names(kind: str) -> list[str]:
    if kind != "models":
        return []
    return [f"{PREFIX}DIR (score output files made elsewhere: DIR/<utterance id>.wav)"]
