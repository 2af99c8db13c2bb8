"""AnyEnhance inference: MaskGIT decoding of one window and the windowed pass over a recording.

Decoding follows the published inference (``timesteps`` iterations, cosine schedule): all
``vq_layers x n`` tokens start masked; at step ``k`` the ``cos(pi/2 * k/(timesteps-1))`` share
with the highest scores is (re-)masked, the transformer predicts every token, top-k filtering
keeps the best 10% of each distribution, and Gumbel-max sampling at a temperature annealed
linearly to 0 fills the masked positions. The scores are the token critic's (every token can be
re-masked; uniform noise scaled by the remaining steps breaks ties) or, without a critic,
one minus the probability of the sampled token (only newly filled tokens can be re-masked).

Randomness comes from one ``torch.Generator``, drawn in the reference's order and shapes, so a
seed reproduces the reference's tokens exactly.
"""

from __future__ import annotations

import math

import torch

from .codec import DAC
from .network import AnyEnhanceNet
from .settings import TASKS, DecodeSettings


def _log(t: torch.Tensor, eps: float = 1e-20) -> torch.Tensor:
    return torch.log(t.clamp(min=eps))


def _top_k(logits: torch.Tensor, thres: float) -> torch.Tensor:
    """Keep the best ``ceil((1 - thres) * V)`` logits of each distribution, -inf elsewhere."""
    k = math.ceil((1 - thres) * logits.shape[-1])
    values, indices = logits.topk(k, dim=-1)
    return torch.full_like(logits, float("-inf")).scatter(-1, indices, values)


@torch.no_grad()
def decode_window(
    net: AnyEnhanceNet,
    audio: torch.Tensor,
    task: int,
    settings: DecodeSettings,
    generator: torch.Generator,
) -> torch.Tensor:
    """Tokens ``[B, vq_layers, seq_len + prompt_len]`` for ``audio [B, 1, 512 * n]`` (no prompt)."""
    cfg = net.cfg
    transformer = net.transformer
    b, layers, n = audio.shape[0], cfg.vq_layers, cfg.window_tokens
    total = layers * n
    mask_id = transformer.mask_id
    device = audio.device
    ids = torch.full((b, total), mask_id, dtype=torch.long, device=device)
    scores = torch.zeros((b, total), dtype=torch.float32, device=device)
    critic = net.token_critic if settings.use_token_critic else None

    task_embeds = (
        net.task_emb(torch.full((b,), task, dtype=torch.long, device=device))
        .unsqueeze(1)
        .repeat(1, n, 1)
    )
    audio_embeds = net.audio_encoder(audio, task_embeds)
    self_cond_embed: torch.Tensor | None = None
    times = torch.linspace(0, 1, settings.timesteps)  # on the CPU: it only gives a count
    for step in range(settings.timesteps):
        steps_left = settings.timesteps - 1 - step
        mask_share = torch.cos(times[step] * math.pi * 0.5)
        n_masked = max(int((mask_share * total).item()), 1)
        ids = ids.scatter(1, scores.topk(n_masked, dim=-1).indices, mask_id)

        code_embeds = net.embed_codes(ids.reshape(b, layers, n))
        logits, embed = transformer.guided(
            code_embeds, audio_embeds, task_embeds, self_cond_embed, settings.cond_scale
        )
        self_cond_embed = embed if transformer.self_cond else None
        logits = logits.reshape(b, total, -1)

        temperature = settings.temperature * (steps_left / settings.timesteps)
        filtered = _top_k(logits, settings.topk_filter_thres)
        # drawn on the CPU generator, then moved: the same draws on every device
        noise = torch.rand(filtered.shape, generator=generator).to(device)
        gumbel = -_log(-_log(noise))
        predicted = (filtered / max(temperature, 1e-10) + gumbel).argmax(dim=-1)
        is_mask = ids == mask_id
        ids = torch.where(is_mask, predicted, ids)

        if critic is not None:
            critic_embeds = net.embed_codes(ids.reshape(b, layers, n))
            scores = critic(
                critic_embeds, audio_embeds, task_embeds, self_cond_embed, settings.cond_scale
            )
            scores = scores.reshape(b, total)
            jitter = torch.rand(scores.shape, generator=generator).to(device) - 0.5
            scores = scores + jitter * settings.critic_noise_scale * (
                steps_left / settings.timesteps
            )
        else:
            probs = logits.softmax(dim=-1)
            scores = 1 - probs.gather(2, predicted[..., None])[..., 0]
            scores = scores.masked_fill(~is_mask, -1e5)
    return ids.reshape(b, layers, n)


def crossfade(
    chunks: list[torch.Tensor], overlap: int, device: torch.device | str | None = None
) -> torch.Tensor:
    """Join ``[C, T]`` chunks, fading each overlap with the two halves of a Hann window.

    The tail of the joined signal fades out with the window's second half, the next chunk's head
    fades in with its first; shorter chunks use the window's ends, as the reference does. The
    window is made on the chunks' device (no chunks: an empty ``[1, 0]`` on ``device``).
    """
    if not chunks:
        return torch.zeros(1, 0, device=device)
    window = torch.hann_window(overlap * 2, periodic=True, device=chunks[0].device)
    result = chunks[0]
    for chunk in chunks[1:]:
        prev_len = min(overlap, result.shape[-1])
        tail = result[:, -prev_len:] * (
            window[overlap : overlap + prev_len] if prev_len == overlap else window[-prev_len:]
        )
        curr_len = min(overlap, chunk.shape[-1])
        head = chunk[:, :curr_len] * window[:curr_len]
        both = min(prev_len, curr_len)
        result = result.clone()
        result[:, -both:] = tail[:, -both:] + head[:, :both]
        result = torch.cat((result, chunk[:, curr_len:]), dim=1)
    return result


@torch.no_grad()
def enhance(
    net: AnyEnhanceNet,
    codec: DAC,
    signal: torch.Tensor,
    settings: DecodeSettings,
    generator: torch.Generator,
    task: str = "enhancement",
    overlap: int = 1024,
    windows: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Restore ``signal [C, T]`` at 44.1 kHz window by window; returns ``[C, T]``.

    Windows of ``hop x (seq_len + prompt_len)`` samples advance by the window less ``overlap``;
    the last window is aligned to the end of the signal (a signal shorter than a window is
    zero-padded). Each window is decoded and synthesised by the codec, then the windows are
    cross-faded (``crossfade``). ``windows``, when given, receives each window's tokens.
    Runs where ``signal`` is (the network's and codec's device); the random numbers are drawn
    from ``generator`` on the CPU and moved, so a seed gives the same draws on every device.
    """
    window = codec.hop_length * net.cfg.window_tokens
    length = signal.shape[-1]
    hop = window - overlap
    pieces: list[torch.Tensor] = []
    start = 0
    while start < length:
        last = start + window >= length
        segment = signal[:, -window:] if last else signal[:, start : start + window]
        valid = segment.shape[-1]
        padded = valid < window
        if padded:
            segment = torch.nn.functional.pad(segment, (0, window - valid))
        tokens = decode_window(net, segment.unsqueeze(0), TASKS[task], settings, generator)
        if windows is not None:
            windows.append(tokens[0])
        piece = codec.decode(tokens)[0]
        if last:
            if padded:
                piece = piece[:, :valid]
            remaining = length - start
            piece = piece[:, -(remaining or window) :]
        pieces.append(piece)
        # the reference keeps stepping after the last window while start < length: so do we
        start += hop
    return crossfade(pieces, overlap, signal.device)[:, :length]
