"""Placeholder: the whisper metric is being written (issue 20)."""

from gensr_bench import Metric, hookimpl


@hookimpl
def gensr_register_metrics() -> list[type[Metric]]:
    return []
