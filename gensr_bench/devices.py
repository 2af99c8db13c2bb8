"""Where models, metrics and training run: ``--device auto|cpu|cuda``.

The harness never needs an accelerator: ``cpu`` is the default and every test runs there.
A component that can use one declares ``supports_device = True`` and reads ``self.device``
(``"cpu"`` or ``"cuda"``) in ``setup``; the runner places the components before they are
sent to workers, and the run's provenance records where each ran. Nothing here imports torch
unless a device other than ``cpu`` is asked for.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from gensr_bench.errors import ConfigError

if TYPE_CHECKING:
    from gensr_bench.interfaces import Component

#: What ``--device`` accepts. ``auto``: cuda when torch sees a CUDA device, else cpu.
DEVICE_CHOICES = ("auto", "cpu", "cuda")


def cuda_available() -> bool:
    """Whether torch sees a CUDA device (``False`` when torch is missing)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return bool(torch.cuda.is_available())


def resolve_device(choice: str) -> str:
    """``cpu`` or ``cuda`` for a ``--device`` choice.

    Raises:
        ConfigError: an unknown choice, or ``cuda`` where torch sees no CUDA device.
    """
    if choice not in DEVICE_CHOICES:
        raise ConfigError(f"unknown device {choice!r}; one of {', '.join(DEVICE_CHOICES)}")
    if choice == "cpu":
        return "cpu"
    available = cuda_available()
    if choice == "auto":
        return "cuda" if available else "cpu"
    if not available:
        raise ConfigError(
            "--device cuda: torch sees no CUDA device here (torch.cuda.is_available() is "
            "False: no GPU, or a CPU-only torch build); use --device cpu, or --device auto "
            "to take a GPU only where there is one"
        )
    return "cuda"


def place(components: Iterable[Component], device: str) -> dict[str, str]:
    """Put every component that supports a device on ``device`` (others stay on the CPU).

    Returns where each component runs, by name (recorded in provenance).
    """
    placed = {}
    for component in components:
        if component.supports_device:
            component.device = device
        placed[component.name] = component.device
    return placed


def device_description(device: str) -> dict[str, str | None]:
    """What provenance records of a device: its kind and, for cuda, the GPU's name."""
    if device != "cuda":
        return {"kind": device, "name": None}
    import torch

    return {"kind": device, "name": torch.cuda.get_device_name(0)}


def onnx_providers(device: str) -> list[str]:
    """onnxruntime execution providers for ``device``: the CUDA provider first when asked for
    and installed (``onnxruntime-gpu``), else the CPU provider alone."""
    import onnxruntime

    if device == "cuda" and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]
