"""Provenance: the CPU and the components recorded with a run."""

from __future__ import annotations

import sys
from pathlib import Path

from gensr_bench.runner import (
    collect_provenance,
    cpu_info,
)
from gensr_bench.testing import (
    EchoModel,
    ToySuite,
)

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 sse4_1 sse4_2 avx avx2 fma f16c avx512f avx512bw avx512vl avx512_vnni \
avx512_bf16 amx_tile amx_bf16 amx_int8 sha_ni

processor\t: 1
model name\t: Another CPU
flags\t\t: fpu sse2
"""


def test_cpu_info_names_the_model_and_its_numeric_instruction_sets() -> None:
    cpu = cpu_info(CPUINFO)
    assert cpu["model"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert cpu["flags"] == sorted(cpu["flags"])
    assert {"avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"} <= set(cpu["flags"])
    assert not {"fpu", "sse2", "sha_ni"} & set(cpu["flags"])  # no bearing on float rounding


def test_cpu_info_does_not_import_torch_for_its_capability(monkeypatch) -> None:
    import torch

    assert cpu_info(CPUINFO)["torch_capability"] == torch.backends.cpu.get_cpu_capability()
    monkeypatch.delitem(sys.modules, "torch")
    assert cpu_info(CPUINFO)["torch_capability"] is None
    assert "torch" not in sys.modules


def test_cpu_info_without_proc_cpuinfo_falls_back_to_the_platform(monkeypatch) -> None:
    import platform

    monkeypatch.setattr(platform, "processor", lambda: "x86_64")
    cpu = cpu_info("")
    assert cpu["model"] == "x86_64" and cpu["flags"] == []


def test_provenance_records_the_cpu_and_the_models_waveform_tolerance() -> None:
    class Declared(EchoModel):
        waveform_tolerance = 2.5e-7

    provenance = collect_provenance(None, Declared(), ToySuite(size=1), [], seed=0)
    assert provenance["components"]["model"]["waveform_tolerance"] == 2.5e-7
    cpu = provenance["machine"]["cpu"]
    assert set(cpu) == {"model", "flags", "torch_capability"}
    assert isinstance(cpu["flags"], list) and all(isinstance(f, str) for f in cpu["flags"])
    if Path("/proc/cpuinfo").is_file():
        assert cpu["model"] == cpu_info()["model"] and cpu["model"]
    undeclared = collect_provenance(None, EchoModel(), ToySuite(size=1), [], seed=0)
    assert undeclared["components"]["model"]["waveform_tolerance"] is None
