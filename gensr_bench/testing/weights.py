"""Weights that cannot ship (non-redistributable licences): find them for a test, or skip
it (fail it under CI)."""

from __future__ import annotations

import os
from pathlib import Path

from gensr_bench import weights as weights_module
from gensr_bench.weights import WeightFile

#: CI systems set ``CI=true``; the project's CI has the weights in ``../shared/weights``.
CI_ENV = "CI"


def in_ci() -> bool:
    """Whether the tests run under CI (``CI=true``, or ``CI=1``), where no weight may be absent."""
    return os.environ.get(CI_ENV, "").strip().lower() in {"true", "1"}


def shared_weights_dir(anchor: str | Path) -> Path | None:
    """``shared/weights`` beside the checkout that holds ``anchor``, or ``None`` outside one.

    The checkout is the nearest folder above ``anchor`` (pass a test's ``__file__``) with a
    ``pyproject.toml``; the project keeps the licensed weights in the folder ``shared`` next to
    it, never inside the repository. The result is where they would be; it need not exist.
    """
    for folder in Path(anchor).resolve().parents:
        if (folder / "pyproject.toml").is_file():
            return folder.parent / "shared" / "weights"
    return None


def require_weights(weight: WeightFile, anchor: str | Path, subfolder: str = "") -> Path:
    """The path of ``weight`` for a test that needs it; skips the test when it is absent.

    Looks where the plugins look (``--weights-dir``, ``GENSR_BENCH_WEIGHTS_DIR``, the cache
    folder), then in ``shared/weights/<subfolder>`` beside the checkout holding ``anchor``
    (see ``shared_weights_dir``). When the file is in none of them the calling test (or
    fixture) is skipped with a reason naming the file and ``GENSR_BENCH_WEIGHTS_DIR``; under
    ``CI=true`` it fails instead, since CI must run every test. A file that is there but has
    the wrong sha256 raises ``WeightsError`` everywhere. Call it inside a test or fixture::

        path = require_weights(WEIGHTS, __file__, "nisqa")
        monkeypatch.setenv(WEIGHTS_ENV, str(path.parent))
    """
    import pytest

    shared = shared_weights_dir(anchor)
    folders = [*weights_module.search_dirs(), *([shared / subfolder] if shared else [])]
    for folder in folders:
        path = folder / weight.filename
        if path.is_file():
            weights_module.verify(weight, path)
            return path
    looked = ", ".join(str(folder) for folder in folders)
    reason = (
        f"needs the weight file {weight.filename!r} ({weight.license or 'licence: see plugin'}), "
        f"not found in {looked}; point {weights_module.WEIGHTS_ENV} at the folder holding it"
    )
    if in_ci():
        pytest.fail(f"{reason} (CI=true: weight-needing tests must run in CI)", pytrace=False)
    pytest.skip(reason)
