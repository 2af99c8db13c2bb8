"""Tests of gensr_bench.devices and ``--device``: choices, placement, provenance.

No GPU here: ``cuda`` is refused with how to fix it, ``auto`` falls back to the CPU, and a
faked CUDA availability checks what ``auto`` would choose on a GPU machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gensr_bench import devices
from gensr_bench.devices import onnx_providers, place, resolve_device
from gensr_bench.errors import ConfigError
from gensr_bench.testing import EchoModel, LevelMetric, invoke_cli

TOY_PLUGINS = Path(__file__).parent / "fixtures" / "toy_plugins"


class GpuLevel(LevelMetric):
    """A toy metric that can run on an accelerator."""

    name = "test-gpu-level"
    supports_device = True


def test_cpu_is_always_cpu_and_auto_follows_what_torch_sees(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert resolve_device("cpu") == "cpu"
    monkeypatch.setattr(devices, "cuda_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    with pytest.raises(ConfigError, match=r"--device cuda: torch sees no CUDA device.*auto"):
        resolve_device("cuda")
    monkeypatch.setattr(devices, "cuda_available", lambda: True)
    assert resolve_device("auto") == resolve_device("cuda") == "cuda"
    with pytest.raises(ConfigError, match="unknown device 'tpu'; one of auto, cpu, cuda"):
        resolve_device("tpu")


def test_place_moves_only_components_that_support_a_device() -> None:
    model, plain, capable = EchoModel(), LevelMetric(), GpuLevel()
    placed = place([model, plain, capable], "cuda")
    assert placed == {"test-echo": "cpu", "test-level": "cpu", "test-gpu-level": "cuda"}
    assert capable.device == "cuda" and plain.device == "cpu"
    assert "device" not in capable.config()["options"]  # provenance, not configuration


def test_onnx_sessions_use_the_cpu_provider_without_a_gpu_build() -> None:
    assert onnx_providers("cpu") == ["CPUExecutionProvider"]
    # onnxruntime (CPU build) has no CUDA provider: cuda falls back to the CPU provider.
    assert onnx_providers("cuda")[-1] == "CPUExecutionProvider"


def test_run_records_the_device_and_refuses_cuda_without_one(tmp_path: Path) -> None:
    common = ["--plugins-dir", str(TOY_PLUGINS), "run", "--model", "test-echo"]
    common += ["--suite", "test-toy", "--suite-option", "size=2", "--metrics", "test-level"]
    common += ["--workers", "1"]
    result = invoke_cli([*common, "--out", str(tmp_path / "auto"), "--device", "auto"])
    assert result.exit_code == 0, result.stderr
    summary = json.loads((tmp_path / "auto" / "summary.json").read_text())
    device = summary["provenance"]["device"]
    if devices.cuda_available():  # pragma: no cover - a GPU machine
        assert device["kind"] == "cuda"
    else:
        assert device == {
            "kind": "cpu",
            "name": None,
            "components": {"test-echo": "cpu", "test-level": "cpu"},
        }
        refused = invoke_cli([*common, "--out", str(tmp_path / "cuda"), "--device", "cuda"])
        assert refused.exit_code == 1
        assert "torch sees no CUDA device" in refused.stderr
        assert not (tmp_path / "cuda").exists()  # nothing written
    bad = invoke_cli([*common, "--out", str(tmp_path / "x"), "--device", "gpu"])
    assert bad.exit_code == 2 and "'gpu' is not one of 'auto', 'cpu', 'cuda'" in bad.stderr
