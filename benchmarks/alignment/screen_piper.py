"""Quick screens for the token models on neural-voice speech (issue 23, item 1).

Both score DNSMOS OVRL and NISQA MOS on piper-gsr-train inputs 300-307, which the piper
fine-tunes (first 300 inputs) never saw, so nothing is tuned on the piper-gsr test suite.

    python benchmarks/alignment/screen_piper.py ceiling CHECKPOINT
        the clean reference; its magnitude with the degraded input's phase (what a model that
        restores magnitudes, as all three here do, could reach); its tokens (the checkpoint's
        tokenizer) with the degraded phase (what AR and MGM could reach); each with the
        smoothing the models apply
    python benchmarks/alignment/screen_piper.py sampling CHECKPOINT [KEY=VALUE ...]...
        identity, then the checkpoint once per settings group (a group is one argument of
        comma-separated KEY=VALUE model options; "" is the defaults)

NISQA's weights: GENSR_BENCH_WEIGHTS_DIR. One torch thread.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gensr_bench.records import Audio, Restoration, Utterance
from gensr_bench_plugins.metrics.dnsmos import Dnsmos
from gensr_bench_plugins.metrics.nisqa import Nisqa
from gensr_bench_plugins.models.generative import features as ft
from gensr_bench_plugins.models.generative.ar import ARSmall
from gensr_bench_plugins.models.generative.base import GenerativeModel
from gensr_bench_plugins.models.generative.fm import FMSmall
from gensr_bench_plugins.models.generative.mgm import MGMSmall
from gensr_bench_plugins.suites.piper import PiperGSRTrain

FIRST, COUNT = 300, 8
PARADIGMS: dict[str, type[GenerativeModel]] = {"ar": ARSmall, "mgm": MGMSmall, "fm": FMSmall}


def inputs() -> list[Utterance]:
    return list(itertools.islice(iter(PiperGSRTrain()), FIRST, FIRST + COUNT))


def load(checkpoint: str, options: dict[str, Any]) -> GenerativeModel:
    manifest = json.loads(Path(checkpoint, "manifest.json").read_text())
    paradigm = manifest.get("paradigm") or manifest["model"].split("-")[0]
    model = PARADIGMS[paradigm](checkpoint=checkpoint, **options)
    model.setup()
    return model


class Judges:
    def __init__(self) -> None:
        self.dnsmos, self.nisqa = Dnsmos(), Nisqa()

    def print(self, name: str, utts: Sequence[Utterance], waves: Sequence[Any], t0: float) -> None:
        outs = []
        for utt, wave in zip(utts, waves, strict=True):
            samples = np.asarray(wave, dtype=np.float64)
            samples = samples / max(1.0, float(np.abs(samples).max()))  # as the runner does
            outs.append(Restoration(utt.id, Audio(samples.astype(np.float32), 16000), name, 0))
        ovrl = [s["dnsmos_ovrl"] for s in self.dnsmos.score_batch(outs, utts)]
        mos = [s["nisqa_mos"] for s in self.nisqa.score_batch(outs, utts)]
        print(
            f"{name:<40} OVRL {np.mean(ovrl):.3f}  NISQA {np.mean(mos):.3f}  "
            f"({time.time() - t0:.0f} s)",
            flush=True,
        )


def ceiling(checkpoint: str) -> None:
    utts, judges = inputs(), Judges()
    model = load(checkpoint, {})
    tok = model.net.tokenizer.double()

    def oracle(utt: Utterance, quantise: bool, smooth: int) -> Any:
        assert utt.reference is not None and utt.degraded is not None
        target = ft.prepare(np.asarray(utt.reference.samples), ft.SAMPLING_DTYPE)
        source = ft.prepare(np.asarray(utt.degraded.samples), ft.SAMPLING_DTYPE)
        logmag = target.logmag
        if quantise:
            logmag = tok.denormalise(tok.decode(tok.encode(tok.normalise(logmag))))
        return ft.synthesise(
            logmag, ft.Prepared(target.wave, source.spec, target.gain), smooth=smooth
        )

    cases: dict[str, Callable[[Utterance], Any]] = {
        "degraded input (identity)": lambda u: u.degraded.samples,  # type: ignore[union-attr]
        "clean reference": lambda u: u.reference.samples,  # type: ignore[union-attr]
        "clean magnitude + degraded phase": lambda u: oracle(u, False, 1),
    }
    for smooth in sorted({1, ft.SMOOTH_FRAMES, MGMSmall.default_smooth}):
        cases[f"clean tokens + degraded phase, smooth {smooth}"] = functools.partial(
            oracle, quantise=True, smooth=smooth
        )
    for name, make in cases.items():
        t0 = time.time()
        judges.print(name, utts, [make(u) for u in utts], t0)


def sampling(checkpoint: str, groups: Sequence[str]) -> None:
    utts, judges = inputs(), Judges()
    judges.print("identity", utts, [u.degraded.samples for u in utts], time.time())  # type: ignore[union-attr]
    for group in groups or [""]:
        options = {}
        for item in filter(None, group.split(",")):
            key, value = item.split("=", 1)
            options[key] = json.loads(value)
        t0 = time.time()
        model = load(checkpoint, options)
        waves = [r.audio.samples for r in model.restore(utts, 0)]
        judges.print(group or "defaults", utts, waves, t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    c = sub.add_parser("ceiling")
    c.add_argument("checkpoint")
    s = sub.add_parser("sampling")
    s.add_argument("checkpoint")
    s.add_argument("groups", nargs="*")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.what == "ceiling":
        ceiling(args.checkpoint)
    else:
        sampling(args.checkpoint, args.groups)


if __name__ == "__main__":
    main()
