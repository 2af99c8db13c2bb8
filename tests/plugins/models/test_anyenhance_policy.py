"""AnyEnhance as an AlignablePolicy (MGM): windows, shared masks, log-probabilities, DPO steps,
the saved folder, and ``anyenhance-dpo`` (on the tiny fixture model)."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from gensr_bench.alignment.trainer import AlignConfig, AlignmentExample, DPOTrainer
from gensr_bench.records import Utterance
from gensr_bench_plugins.models.anyenhance import AnyEnhance, AnyEnhanceDPO
from gensr_bench_plugins.models.anyenhance.layout import (
    CODEC_FILE,
    CONFIG_FILE,
    MODEL_FILE,
    CheckpointError,
)
from gensr_bench_plugins.models.anyenhance.testing import noise_audio, published_layout

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "anyenhance"
RATE = 44100


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return published_layout(FIXTURE, tmp_path / "weights" / "anyenhance")


def _pairs(model: AnyEnhance, count: int) -> list[AlignmentExample]:
    examples = []
    for i in range(count):
        degraded = noise_audio(0.15 + 0.03 * i, i)
        utt = Utterance(id=f"u{i}", degraded=degraded)
        chosen, rejected = model.sample([utt], n=2, seed=i, sampling={"timesteps": 3})[0]
        examples.append(AlignmentExample(f"u{i}", degraded, chosen.audio, rejected.audio))
    return examples


def test_masks_are_shared_per_pair_and_the_logprob_sums_the_masked_codes(folder: Path) -> None:
    model = AnyEnhance(checkpoint=str(folder), timesteps=3)
    examples = _pairs(model, 2)
    degraded = [e.degraded for e in examples] * 2
    outputs = [e.chosen for e in examples] + [e.rejected for e in examples]
    batch = model.policy_batch(degraded, outputs)
    assert len(batch) == 4
    # 0.15 s and 0.18 s at 44.1 kHz: two windows of 4096 samples each, the second padded
    assert batch.owner.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert batch.valid[1].sum() == 5 and batch.valid[0].all()

    def masks(seed: int) -> torch.Tensor:
        gens = [torch.Generator().manual_seed(seed + i) for i in range(2)]
        return model.alignment_inputs(batch, gens)[0]

    (mask,) = model.alignment_inputs(batch, [torch.Generator().manual_seed(s) for s in (0, 1)])
    assert torch.equal(mask, masks(0)) and not torch.equal(mask, masks(5))
    assert not (mask & ~batch.valid[:, None, :]).any(), "padding is never masked"
    assert all(mask[batch.owner == i].any() for i in range(4))

    module = model.trainable_module()  # as the trainer does first: parameters become trainable
    logp = model.sequence_logprob(batch, mask)
    assert logp.shape == (4,) and torch.isfinite(logp).all() and (logp < 0).all()
    reference = copy.deepcopy(model)
    assert reference.loaded is not None and model.loaded is not None
    assert reference.loaded.codec is model.loaded.codec, "the frozen codec is shared"
    assert reference.loaded.net is not model.loaded.net
    assert torch.equal(reference.sequence_logprob(batch, mask), logp)
    # the term of one item does not depend on the others in the batch
    single = model.policy_batch(degraded[:1], outputs[:1])
    alone = model.sequence_logprob(single, mask[batch.owner == 0])
    assert torch.allclose(alone, logp[:1], atol=1e-5)

    logp.sum().backward()
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)


def test_a_few_dpo_steps_move_the_policy_and_save_a_folder_that_restores(
    folder: Path, tmp_path: Path
) -> None:
    model = AnyEnhance(checkpoint=str(folder), timesteps=3)
    examples = _pairs(model, 2)
    before = {k: v.clone() for k, v in model.trainable_module().state_dict().items()}
    config = AlignConfig(steps=2, batch_size=2, warmup=0, lr=1e-3, log_every=1)
    out = tmp_path / "aligned"
    DPOTrainer(model, examples, config, out).train()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"] == "anyenhance" and manifest["base_checkpoint_sha256"]
    after = model.trainable_module().state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)

    for name in (CONFIG_FILE, MODEL_FILE, CODEC_FILE, "manifest.json"):
        assert (out / name).is_file(), name
    aligned = AnyEnhance(checkpoint=str(out), timesteps=3)
    aligned.setup()
    assert aligned.loaded is not None
    for key, value in aligned.loaded.net.state_dict().items():
        assert torch.equal(value, after[key]), key
    utt = Utterance(id="x", degraded=noise_audio(0.1, 9))
    assert aligned.restore([utt], seed=0)[0].audio.samples.shape == (4410,)


def test_supervised_loss_is_the_masked_token_cross_entropy(folder: Path) -> None:
    model = AnyEnhance(checkpoint=str(folder), timesteps=3)
    [example] = _pairs(model, 1)
    batch = model.policy_batch([example.degraded], [example.chosen])
    loss = model.supervised_loss(batch, torch.Generator().manual_seed(0))
    vocab = 16  # the fixture's num_tokens: a uniform guess costs log(16)
    assert loss.ndim == 0 and 0 < float(loss) < 3 * np.log(vocab)


def test_anyenhance_dpo_reads_its_own_folder_and_says_how_to_make_one(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = folder.parent
    monkeypatch.setattr(
        "gensr_bench_plugins.models.anyenhance.model.search_dirs", lambda: [weights]
    )
    with pytest.raises(CheckpointError) as error:
        AnyEnhanceDPO()
    message = str(error.value)
    assert "anyenhance-dpo" in message and "gensr-bench align --model anyenhance" in message
    shutil.copytree(folder, weights / "anyenhance-dpo")
    model = AnyEnhanceDPO(timesteps=2)
    assert model.folder == weights / "anyenhance-dpo"
    utt = Utterance(id="y", degraded=noise_audio(0.05, 3))
    assert model.restore([utt], seed=1)[0].model == "anyenhance-dpo"


def test_align_and_run_work_from_the_command_line_on_the_tiny_weights(
    folder: Path, tmp_path: Path
) -> None:
    """The issue's acceptance as a user types it: `align --model anyenhance ... steps=2` on the
    tiny fixture as the weights folder, then `run --model OUT` restores the aligned model."""
    from gensr_bench.testing import invoke_cli

    plugins = ["--plugins-dir", str(FIXTURE.parent / "toy_plugins")]
    suite = ["--suite", "test-toy", "--suite-option", "size=3", "--suite-option", "seconds=0.2"]
    out = tmp_path / "aligned"
    model = ["--model", "anyenhance", "--model-option", f"checkpoint={folder}"]
    steps = ["--align-option", "steps=2", "--align-option", "batch_size=2"]
    rest = ["--metrics", "level_db", "--n", "3", "--workers", "1", "--out", str(out), *steps]
    aligned = invoke_cli([*plugins, "align", *model, *suite, *rest])
    assert aligned.exit_code == 0, aligned.stderr
    assert "aligned anyenhance (dpo): 2/2 steps" in aligned.stdout
    run_out = ["--workers", "1", "--out", str(tmp_path / "run")]
    restored = invoke_cli(
        [*plugins, "run", "--model", str(out), *suite, "--metrics", "test-level", *run_out]
    )
    assert restored.exit_code == 0, restored.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["config"]["model"]["options"]["checkpoint"] == str(out)
    assert summary["summaries"][0]["n_scored"] == 3
