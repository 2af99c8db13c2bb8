"""The layout of AnyEnhance's published weights folder and the error when it is missing.

Kept free of torch so that registering the model imports nothing heavy.
"""

from __future__ import annotations

from pathlib import Path

from gensr_bench.errors import GensrError

HUB_ID = "amphion/anyenhance"
CONFIG_FILE = "anyenhance-360M-selfcritic-v2.json"
MODEL_FILE = "epoch-1-step-300000-loss-4.3083/model.pt"
CODEC_FILE = "dac/weights.pth"
#: Keys of the reference's state dict that are not part of the network we load.
IGNORED_PREFIXES = ("vq_model.", "audio_encoder.noisy_embed_provider.")


class CheckpointError(GensrError):
    """AnyEnhance's weights folder is missing, incomplete or does not match its config."""


def missing_files_message(
    folder: Path | None, searched: list[Path], name: str = "anyenhance"
) -> str:
    """What is missing, where it was looked for, and how to get it (``name``: the model)."""
    places = ", ".join(str(p) for p in searched) or "(no folder)"
    expected = f"Expected files: {CONFIG_FILE}, {MODEL_FILE} and {CODEC_FILE}"
    if name == "anyenhance":
        how = (
            f"{expected}, from the Hugging Face hub repository {HUB_ID!r}. Get them where "
            f"the hub is reachable with `huggingface-cli download {HUB_ID} --local-dir "
            "<weights>/anyenhance`, copy that folder here,"
        )
    else:
        how = (
            f"{expected}, as `gensr-bench align --model anyenhance ... --out DIR` writes them "
            f"(the base model's weights come from {HUB_ID!r}). Copy DIR to <weights>/{name},"
        )
    return (
        f"{name} weights not found (looked for a {name!r} folder in: {places}). {how} and "
        "point GENSR_BENCH_WEIGHTS_DIR (or --weights-dir) at <weights>, or pass "
        "--model-option checkpoint=<folder>."
    )
