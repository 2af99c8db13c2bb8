"""`gensr_bench.errors`: the one-line reason an exception becomes in a record or a message."""

from __future__ import annotations

from gensr_bench.errors import ConfigError, MetricError, describe


def test_our_own_errors_read_as_written() -> None:
    assert describe(ConfigError("--limit must be positive")) == "--limit must be positive"
    assert describe(MetricError("no speech found")) == "no speech found"


def test_foreign_errors_carry_their_type() -> None:
    assert describe(ValueError("bad shape")) == "ValueError: bad shape"
    assert describe(RuntimeError()) == "RuntimeError: "
