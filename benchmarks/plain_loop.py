"""The plain evaluation loop that side_by_side.py times gensr-bench against.

It is written the way evaluation scripts usually are: one process, one file after another,
each metric library called directly with its defaults (thread settings included):

    python benchmarks/plain_loop.py DIR OUT.json

``DIR`` holds ``noisy/<name>.wav`` and ``clean/<name>.wav``; each noisy file is scored as the
output (the identity "model") against its clean twin with the metrics gensr-bench runs by
default: DNSMOS (speechmos), PESQ wide- and narrow-band (pesq), STOI and ESTOI (pystoi),
SI-SDR (torchmetrics), LSD (librosa STFT, numpy) and speaker similarity (resemblyzer).
``OUT.json`` gets every file's scores, keyed like gensr-bench's outputs, for the comparison.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
import torch
from pesq import pesq
from pystoi import stoi
from resemblyzer import VoiceEncoder, preprocess_wav
from speechmos import dnsmos
from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio


def lsd(estimate: np.ndarray, reference: np.ndarray) -> float:
    spec = [np.abs(librosa.stft(x, n_fft=2048, hop_length=512)) ** 2 for x in (reference, estimate)]
    diff = np.log10(spec[0] + 1e-10) - np.log10(spec[1] + 1e-10)
    return float(np.mean(np.sqrt(np.mean(diff**2, axis=0))))


def main() -> None:
    folder, out = Path(sys.argv[1]), Path(sys.argv[2])
    encoder = VoiceEncoder("cpu", verbose=False)
    results = {}
    for noisy_path in sorted((folder / "noisy").glob("*.wav")):
        noisy, rate = sf.read(noisy_path, dtype="float32")
        clean, _ = sf.read(folder / "clean" / noisy_path.name, dtype="float32")
        n = min(len(noisy), len(clean))
        est, ref = noisy[:n], clean[:n]
        mos = dnsmos.run(noisy, sr=rate)
        sdr = scale_invariant_signal_distortion_ratio(torch.from_numpy(est), torch.from_numpy(ref))
        emb_est = encoder.embed_utterance(preprocess_wav(noisy))
        emb_ref = encoder.embed_utterance(preprocess_wav(clean))
        results[noisy_path.stem] = {
            "dnsmos_sig": mos["sig_mos"],
            "dnsmos_bak": mos["bak_mos"],
            "dnsmos_ovrl": mos["ovrl_mos"],
            "dnsmos_p808": mos["p808_mos"],
            "pesq_wb": pesq(rate, ref, est, "wb"),
            "pesq_nb": pesq(rate, ref, est, "nb"),
            "stoi": stoi(ref, est, rate, extended=False),
            "estoi": stoi(ref, est, rate, extended=True),
            "si_sdr": float(sdr),
            "lsd": lsd(est, ref),
            "speaker_sim": float(
                np.dot(emb_est, emb_ref) / (np.linalg.norm(emb_est) * np.linalg.norm(emb_ref))
            ),
        }
    out.write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
