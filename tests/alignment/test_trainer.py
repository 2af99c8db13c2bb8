"""The DPO trainer on tiny models of the three paradigms."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gensr_bench.alignment.trainer import (  # noqa: E402
    LOG_FILE,
    REFERENCE_FILE,
    STATE_FILE,
    AlignConfig,
    AlignmentExample,
    DPOTrainer,
    dpo_term,
)
from gensr_bench.errors import ConfigError  # noqa: E402
from gensr_bench.records import Audio  # noqa: E402
from gensr_bench.testing import noisy_utterance  # noqa: E402
from gensr_bench_plugins.models.generative.ar import ARSmall  # noqa: E402
from gensr_bench_plugins.models.generative.base import GenerativeModel  # noqa: E402
from gensr_bench_plugins.models.generative.fm import FMSmall  # noqa: E402
from gensr_bench_plugins.models.generative.mgm import MGMSmall  # noqa: E402
from gensr_bench_plugins.models.generative.testing import (  # noqa: E402
    tiny_generative_checkpoint,
    tiny_spectral_tokenizer,
)

MODELS: dict[str, type[GenerativeModel]] = {cls.name: cls for cls in (ARSmall, MGMSmall, FMSmall)}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tokenizer = tiny_spectral_tokenizer()
    root = tmp_path_factory.mktemp("ckpt")
    return {
        name: tiny_generative_checkpoint(root / name, name, tokenizer, dropout=0.1)
        for name in MODELS
    }


def fresh(name: str, checkpoints: dict[str, Path]) -> GenerativeModel:
    model = MODELS[name](checkpoint=str(checkpoints[name]))
    model.setup()
    return model


def examples(n: int = 6, seconds: float = 0.25) -> list[AlignmentExample]:
    """Pairs whose winner is the clean speech and loser a noisier version of the input."""
    out = []
    for i in range(n):
        utt = noisy_utterance(f"u{i}", seconds=seconds, snr_db=10.0, seed=i)
        assert utt.degraded is not None and utt.reference is not None
        rng = np.random.default_rng(100 + i)
        worse = utt.degraded.samples + 0.05 * rng.standard_normal(len(utt.degraded.samples))
        out.append(
            AlignmentExample(
                utt.id,
                utt.degraded,
                utt.reference,
                Audio(worse.astype(np.float32), utt.degraded.sample_rate),
            )
        )
    return out


def weights(model: GenerativeModel) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.trainable_module().state_dict().items()}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_first_step_loss_is_log2_and_reference_stays_frozen(
    name: str, checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    model = fresh(name, checkpoints)
    config = AlignConfig(steps=3, batch_size=3, lr=1e-3, warmup=0, log_every=1)
    trainer = DPOTrainer(model, examples(), config, tmp_path)
    before = weights(model)
    trainer.train()
    first = trainer.history[0]
    assert first["dpo_loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert first["rewards/chosen"] == pytest.approx(0.0, abs=1e-6)
    after = weights(model)
    assert any(not torch.equal(before[k], after[k]) for k in before), "the policy moved"
    assert trainer.reference is not None
    for k, v in trainer.reference.trainable_module().state_dict().items():
        assert torch.equal(v, before[k]), f"reference changed at {k}"
    assert all(not p.requires_grad for p in trainer.reference.trainable_module().parameters())
    assert trainer.history[-1]["dpo_loss"] != pytest.approx(math.log(2), abs=1e-6)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_precomputed_reference_terms_equal_the_live_reference(
    name: str, checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    data = examples(5)
    model = fresh(name, checkpoints)
    trainer = DPOTrainer(model, data, AlignConfig(steps=1, batch_size=2), tmp_path)
    terms = trainer.precompute()
    assert (tmp_path / REFERENCE_FILE).exists()
    # One pair at a time gives the same draws and so the same terms as batches of two.
    for i, example in enumerate(data):
        live = trainer._reference_terms([example], [trainer._pair_generator(i, 0)])
        torch.testing.assert_close(live, terms[i], rtol=1e-4, atol=1e-4)


def test_dpo_raises_the_winners_likelihood_relative_to_the_losers(
    checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    data = examples(4)
    model = fresh("ar-small", checkpoints)
    config = AlignConfig(steps=12, batch_size=4, lr=3e-3, warmup=0, log_every=1)
    trainer = DPOTrainer(model, data, config, tmp_path, eval_examples=data)
    trainer.train()
    first, last = trainer.history[0], trainer.history[-1]
    assert first["margin"] == pytest.approx(0.0, abs=1e-6)
    assert last["dpo_loss"] < first["dpo_loss"]
    assert last["margin"] > 0 and last["reward_accuracy"] == 1.0
    assert last["eval_reward_accuracy"] == 1.0
    assert last["eval_margin"] > 0


def test_training_reports_the_reference_precomputation(
    checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    seen: list[tuple[int, int]] = []
    trainer = DPOTrainer(
        fresh("ar-small", checkpoints), examples(5), AlignConfig(steps=1, batch_size=2), tmp_path
    )
    trainer.train(reference_progress=lambda done, total: seen.append((done, total)))
    assert seen == [(2, 5), (4, 5), (5, 5)]
    # Resumed by a new trainer, the saved terms are read back: nothing to compute or report.
    seen.clear()
    again = DPOTrainer(
        fresh("ar-small", checkpoints), examples(5), AlignConfig(steps=2, batch_size=2), tmp_path
    )
    again.train(resume=True, reference_progress=lambda done, total: seen.append((done, total)))
    assert seen == [] and again.step == 2


def test_fm_dpo_lowers_the_winners_error_relative_to_the_losers(
    checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    data = examples(4)
    model = fresh("fm-small", checkpoints)
    config = AlignConfig(steps=12, batch_size=4, lr=3e-3, warmup=0, log_every=12, beta=50.0)
    trainer = DPOTrainer(model, data, config, tmp_path, eval_examples=data)
    before = trainer.evaluate()
    assert before["eval_margin"] == pytest.approx(0.0, abs=1e-6)
    trainer.train()
    assert trainer.evaluate()["eval_margin"] > 0


def test_resume_gives_the_same_weights_as_one_run(
    checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    data = examples(5)
    # sft_weight: the supervised term's dropout must resume exactly too
    config = AlignConfig(steps=4, batch_size=2, lr=1e-3, warmup=2, log_every=1, sft_weight=0.5)
    straight = fresh("mgm-small", checkpoints)
    DPOTrainer(straight, data, config, tmp_path / "a").train()

    first = fresh("mgm-small", checkpoints)
    half = AlignConfig(**{**config.to_dict(), "steps": 2})
    DPOTrainer(first, data, half, tmp_path / "b").train()
    with pytest.raises(ConfigError, match="--resume"):
        DPOTrainer(fresh("mgm-small", checkpoints), data, config, tmp_path / "b").train()
    second = fresh("mgm-small", checkpoints)  # the base model again: its copy is the reference
    resumed = DPOTrainer(second, data, config, tmp_path / "b")
    resumed.train(resume=True)
    assert resumed.step == 4
    for k, v in weights(straight).items():
        torch.testing.assert_close(weights(second)[k], v, rtol=0, atol=1e-6)
    lines = (tmp_path / "b" / LOG_FILE).read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3, 4]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_held_out_evaluation_does_not_change_the_trained_weights(
    name: str, checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    pairs = examples(6)
    data, held_out = pairs[:4], pairs[4:]
    # sft_weight: the supervised term trains with dropout, so a stray draw would show too
    config = AlignConfig(steps=4, batch_size=2, lr=1e-3, warmup=2, log_every=4, sft_weight=0.5)
    rarely = fresh(name, checkpoints)
    DPOTrainer(rarely, data, config, tmp_path / "a", eval_examples=held_out).train()
    often = fresh(name, checkpoints)
    every_step = AlignConfig(**{**config.to_dict(), "log_every": 1})
    DPOTrainer(often, data, every_step, tmp_path / "b", eval_examples=held_out).train()
    logged = [json.loads(line) for line in (tmp_path / "b" / LOG_FILE).read_text().splitlines()]
    assert len(logged) == 4 and all("eval_reward_accuracy" in entry for entry in logged)
    for k, v in weights(rarely).items():
        torch.testing.assert_close(weights(often)[k], v, rtol=0, atol=0)


def test_checkpoint_restores_through_the_model_and_records_the_recipe(
    checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    model = fresh("fm-small", checkpoints)
    config = AlignConfig(steps=2, batch_size=2, lr=1e-3, warmup=0)
    manifest = DPOTrainer(model, examples(3), config, tmp_path, manifest={"note": "t"}).train()
    assert (tmp_path / STATE_FILE).exists()
    saved = json.loads((tmp_path / "manifest.json").read_text())
    assert saved["model"] == "fm-small" and saved["note"] == "t"
    assert saved["alignment"]["beta"] == 1000.0 and saved["alignment"]["steps_done"] == 2
    assert saved["base_checkpoint_sha256"] is not None
    assert manifest["alignment"]["paradigm"] == "fm"
    restored = FMSmall(checkpoint=str(tmp_path))
    restored.setup()
    for k, v in weights(model).items():  # half precision on disk
        torch.testing.assert_close(weights(restored)[k], v, rtol=1e-2, atol=1e-3)


def test_sft_lowers_the_supervised_loss_on_the_targets(
    checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    data = [AlignmentExample(e.input_id, e.degraded, e.chosen) for e in examples(4)]
    model = fresh("ar-small", checkpoints)
    config = AlignConfig(objective="sft", steps=10, batch_size=4, lr=3e-3, warmup=0, log_every=5)
    trainer = DPOTrainer(model, data, config, tmp_path)
    assert trainer.reference is None
    trainer.train()
    assert trainer.history[-1]["sft_loss"] < trainer.history[0]["sft_loss"]
    with pytest.raises(ConfigError, match="rejected output"):
        DPOTrainer(fresh("ar-small", checkpoints), data, AlignConfig(), tmp_path / "x")


def test_bad_configs_are_refused() -> None:
    with pytest.raises(ConfigError, match="objective"):
        AlignConfig(objective="ppo")
    with pytest.raises(ConfigError, match="steps"):
        AlignConfig(steps=0)
    with pytest.raises(ConfigError, match="lr"):
        AlignConfig(lr=0)
    with pytest.raises(ConfigError, match="no pairs"):
        DPOTrainer(MGMSmall(), [], AlignConfig(), Path("unused"))


@pytest.mark.parametrize("name", ["ar-small", "mgm-small"])
def test_token_mean_divides_each_term_by_the_tokens_it_sums(
    name: str, checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    model = fresh(name, checkpoints)
    data = examples(3)
    config = AlignConfig(steps=1, batch_size=3, token_mean=True, log_every=1)
    trainer = DPOTrainer(model, data, config, tmp_path)
    batch, inputs = trainer._paired(data, [trainer._pair_generator(i, 0) for i in range(3)])
    counts = model.scored_tokens(batch, *inputs)
    bins = batch.cond.shape[-1]
    if name == "ar-small":  # every bin of every valid target frame
        assert torch.equal(counts, batch.valid.sum(-1) * bins)
    else:  # the masked tokens of valid frames
        assert torch.equal(counts, (inputs[0] & batch.valid[..., None]).sum((-1, -2)))
    assert bool((counts > 0).all())
    summed = dpo_term(model, batch, inputs)
    torch.testing.assert_close(dpo_term(model, batch, inputs, token_mean=True), summed / counts)
    trainer.train()  # policy == reference at the first step: the loss is still log 2
    assert trainer.history[0]["dpo_loss"] == pytest.approx(math.log(2), abs=1e-5)


def test_token_mean_is_refused_where_there_are_no_tokens(
    checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    model = fresh("fm-small", checkpoints)
    with pytest.raises(ConfigError, match="token_mean applies to token models"):
        DPOTrainer(model, examples(2), AlignConfig(token_mean=True), tmp_path)
