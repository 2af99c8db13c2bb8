"""Placeholder: the piper-* suites are being written (issue 20)."""

from gensr_bench import Suite, hookimpl


@hookimpl
def gensr_register_suites() -> list[type[Suite]]:
    return []
