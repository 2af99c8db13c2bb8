"""gensr-bench: a plugin-based harness for generative speech restoration."""

from gensr_bench.errors import GensrError
from gensr_bench.hookspecs import hookimpl
from gensr_bench.interfaces import (
    AlignablePolicy,
    Backend,
    FeatureExtractor,
    Metric,
    Publisher,
    RestorationModel,
    Suite,
)
from gensr_bench.records import Audio, Restoration, ScoredOutput, Utterance

__version__ = "0.1.0"

__all__ = [
    "AlignablePolicy",
    "Audio",
    "Backend",
    "FeatureExtractor",
    "GensrError",
    "Metric",
    "Publisher",
    "Restoration",
    "RestorationModel",
    "ScoredOutput",
    "Suite",
    "Utterance",
    "__version__",
    "hookimpl",
]
