"""The built-in synthetic suites: registration, content, determinism, disjoint splits, cache."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pluggy
import pytest

from gensr_bench import hookspecs
from gensr_bench.errors import ConfigError
from gensr_bench.interfaces import Suite
from gensr_bench.records import Utterance
from gensr_bench_plugins.suites import degradations as dg
from gensr_bench_plugins.suites import synth
from gensr_bench_plugins.suites.synth import (
    SUITES,
    SuiteSpec,
    SynthDNSNoReverb,
    SynthDNSWithReverb,
    SynthGSR,
    SynthGSRTrain,
    render,
)

GSR = SuiteSpec("synth-gsr", "gsr", "test")
DNS_REVERB = SuiteSpec("synth-dns-with-reverb", "dns-with-reverb", "test")

META_KEYS = {
    "degradation",
    "chain",
    "recipe",
    "split",
    "voice",
    "rate",
    "pitch",
    "pitch_range",
    "n_sentences",
    "duration_s",
    "level_dbfs",
    "seed",
    *synth.DEGRADATION_PARAMETERS,
}


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GENSR_BENCH_CACHE_DIR", str(tmp_path))
    return tmp_path


def same_utterance(a: Utterance, b: Utterance) -> bool:
    assert a.degraded and b.degraded and a.reference and b.reference
    return (
        a.id == b.id
        and np.array_equal(a.degraded.samples, b.degraded.samples)
        and np.array_equal(a.reference.samples, b.reference.samples)
        and a.transcript == b.transcript
        and a.meta == b.meta
    )


# ----------------------------------------------------------------------------- registration


def test_hook_registers_six_suites_through_pluggy() -> None:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(synth)
    manager.check_pending()
    classes = [cls for answer in manager.hook.gensr_register_suites() for cls in answer]
    names = [cls.name for cls in classes]
    assert names == [
        "synth-gsr",
        "synth-gsr-train",
        "synth-dns-no-reverb",
        "synth-dns-no-reverb-train",
        "synth-dns-with-reverb",
        "synth-dns-with-reverb-train",
    ]
    for cls in classes:
        assert issubclass(cls, Suite)
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", cls.name)
        assert cls.description() and len(cls.description()) < 100
        assert cls.sample_rate == 16000


def test_default_sizes() -> None:
    sizes = {cls.name: cls().full_size() for cls in SUITES}
    assert sizes["synth-gsr"] == sizes["synth-dns-no-reverb"] == 150
    assert sizes["synth-dns-with-reverb"] == 150
    assert sizes["synth-gsr-train"] == sizes["synth-dns-with-reverb-train"] == 1000
    assert len(SynthGSR(limit=7)) == 7
    assert len(SynthGSR(size=5, limit=7)) == 5


# ----------------------------------------------------------------------------- content


@pytest.mark.parametrize("cls", SUITES, ids=lambda cls: cls.name)
def test_utterances_are_well_formed(cls: type[synth.SyntheticSuite]) -> None:
    suite = cls(limit=3)
    utterances = list(suite)
    assert [u.id for u in utterances] == [f"{cls.name}-{i:04d}" for i in range(3)]
    for utt in utterances:
        assert utt.degraded is not None and utt.reference is not None
        for audio in (utt.degraded, utt.reference):
            assert audio.sample_rate == 16000 and audio.samples.dtype == np.float32
            assert np.isfinite(audio.samples).all()
            assert np.max(np.abs(audio.samples)) < 1.0
        assert len(utt.degraded.samples) == len(utt.reference.samples)
        assert 3.0 <= utt.reference.duration <= 8.0
        assert set(utt.meta) >= META_KEYS
        assert utt.meta["split"] == cls.split and utt.meta["recipe"] == cls.recipe
        assert -36.0 <= utt.meta["level_dbfs"] <= -14.0
        assert utt.transcript and utt.meta["n_sentences"] >= 1
        assert not np.allclose(utt.degraded.samples, utt.reference.samples)


def test_degradation_names_and_parameters_match_the_recipe() -> None:
    (no_reverb,) = SynthDNSNoReverb(limit=1)
    assert no_reverb.meta["degradation"] == "noise"
    assert no_reverb.meta["rt60"] is None and not no_reverb.meta["reference_reverberant"]
    assert 0.0 <= no_reverb.meta["snr_db"] <= 19.0
    (with_reverb,) = SynthDNSWithReverb(limit=1)
    assert with_reverb.meta["degradation"] == "noise+reverb"
    assert 0.3 <= with_reverb.meta["rt60"] <= 1.0 and with_reverb.meta["reference_reverberant"]
    assert with_reverb.meta["noise_type"] in dg.NOISE_TYPES


def test_gsr_chains_always_degrade_and_stay_in_range() -> None:
    counts: Counter[str] = Counter()
    for seed in range(2000):
        stages, params = synth.draw_chain("gsr", np.random.default_rng(seed))
        assert stages and set(stages) <= set(synth.DEGRADATION_ORDER)
        assert stages == [s for s in ("reverb", "noise", "clipping", "bandwidth") if s in stages]
        counts.update(stages)
        if "noise" in stages:
            assert params["noise_type"] in dg.NOISE_TYPES and -5 <= params["snr_db"] <= 20
        if "reverb" in stages:
            assert 0.1 <= params["rt60"] <= 1.0
        if "clipping" in stages:
            assert 0.06 <= params["clip_threshold"] <= 0.9
        if "bandwidth" in stages:
            assert 1000 <= params["cutoff_hz"] <= 6000 and 2 <= params["filter_order"] <= 10
            assert params["filter_type"] in dg.FILTER_TYPES
        else:
            assert params["cutoff_hz"] is None and params["filter_type"] is None
    assert counts["noise"] > counts["reverb"] > counts["clipping"]  # p = 0.75, 0.5, 0.35


def test_measured_snr_matches_meta_for_noise_only_utterances() -> None:
    for utt in SynthDNSNoReverb(limit=3):
        assert utt.degraded is not None and utt.reference is not None
        measured = dg.measure_snr_db(utt.reference.samples, utt.degraded.samples)
        assert measured == pytest.approx(utt.meta["snr_db"], abs=0.05)
    noise_only = next(
        r for r in (render(GSR, i) for i in range(60)) if r.meta["degradation"] == "noise"
    )
    measured = dg.measure_snr_db(noise_only.reference, noise_only.degraded)
    assert measured == pytest.approx(noise_only.meta["snr_db"], abs=0.05)


def test_with_reverb_reference_is_the_reverberant_speech() -> None:
    rendering = render(DNS_REVERB, 0)
    dry, reference = rendering.dry.astype(np.float64), rendering.reference.astype(np.float64)
    # Not the dry speech, even after the best scaling ...
    scale = np.dot(dry, reference) / np.dot(dry, dry)
    residual = np.sum((reference - scale * dry) ** 2) / np.sum(reference**2)
    assert residual > 0.05
    # ... and the noise sits on top of the reverberant reference at the meta SNR.
    measured = dg.measure_snr_db(reference, rendering.degraded)
    assert measured == pytest.approx(rendering.meta["snr_db"], abs=0.05)
    # The reverberant reference decays for longer after the speech stops than the dry one.
    loud = np.nonzero(np.abs(dry) > 0.01 * np.max(np.abs(dry)))[0][-1]
    tail = slice(loud + 800, loud + 3200)
    assert np.sum(reference[tail] ** 2) > 10 * np.sum(dry[tail] ** 2)


def test_voice_and_sentences_come_from_the_suite_split() -> None:
    for cls in (SynthGSR, SynthGSRTrain):
        sentences = set(synth.split_sentences(cls.split))
        voices = set(synth.split_voices(cls.split))
        for utt in cls(limit=2):
            assert utt.meta["voice"] in voices
            assert utt.transcript is not None
            spoken = re.findall(r"[^.?!]+[.?!]", utt.transcript)
            assert spoken and all(s.strip() in sentences for s in spoken)


# ----------------------------------------------------------------------------- splits


def test_sentence_bank_is_large_and_varied() -> None:
    bank = synth.sentence_bank()
    assert len(bank) >= 300
    assert len(set(bank)) == len(bank)
    words = [len(s.split()) for s in bank]
    assert min(words) <= 4 and max(words) >= 13


def test_train_and_test_use_disjoint_sentences_and_voices() -> None:
    test_sentences, train_sentences = (set(synth.split_sentences(s)) for s in synth.SPLITS)
    assert test_sentences and train_sentences and not test_sentences & train_sentences
    assert test_sentences | train_sentences == set(synth.sentence_bank())
    assert not set(synth.VARIANTS["test"]) & set(synth.VARIANTS["train"])
    assert not set(synth.split_voices("test")) & set(synth.split_voices("train"))


# ----------------------------------------------------------------------------- determinism, cache


def test_generation_is_deterministic() -> None:
    first, second = render(GSR, 4), render(GSR, 4)
    np.testing.assert_array_equal(first.degraded, second.degraded)
    np.testing.assert_array_equal(first.reference, second.reference)
    assert first.meta == second.meta and first.transcript == second.transcript
    other = render(GSR, 5)
    assert other.meta["seed"] != first.meta["seed"] and other.transcript != first.transcript


def test_cache_returns_identical_utterances(cache_dir: Path) -> None:
    cold = list(SynthGSR(limit=3))
    folder = SynthGSR().cache_dir()
    assert folder.parent == cache_dir / "suites"
    assert sorted(p.name for p in folder.iterdir()) == [f"{u.id}.utt" for u in cold]
    warm = list(SynthGSR(limit=3))
    uncached = list(SynthGSR(limit=3, cache=False))
    for a, b, c in zip(cold, warm, uncached, strict=True):
        assert same_utterance(a, b) and same_utterance(a, c)


def test_limit_gives_the_first_utterances_of_the_full_suite() -> None:
    full = list(SynthDNSNoReverb(size=4, cache=False))
    limited = list(SynthDNSNoReverb(size=4, limit=2, cache=False))
    assert len(limited) == 2
    assert all(same_utterance(a, b) for a, b in zip(full, limited, strict=False))


def test_sizes_share_cached_utterances_but_not_fingerprints() -> None:
    small, large = SynthGSR(size=2), SynthGSR(size=3)
    assert small.cache_dir() == large.cache_dir()
    assert small.fingerprint() != large.fingerprint()
    assert all(same_utterance(a, b) for a, b in zip(small, large, strict=False))


def test_iteration_is_lazy() -> None:
    suite = SynthGSRTrain()
    iterator = suite.iter_utterances()
    next(iterator)
    assert len(list(suite.cache_dir().iterdir())) == 1


def test_corrupt_cache_files_are_regenerated() -> None:
    (first,) = SynthGSR(limit=1)
    path = SynthGSR().cache_dir() / f"{first.id}.utt"
    content = path.read_bytes()
    for broken in (b"not an utterance", content[:-4], b"XXXXXXXX" + content[8:]):
        assert synth.decode_utterance(broken) is None
    path.write_bytes(content[: len(content) // 2])  # as a crash mid-write without the rename
    (again,) = SynthGSR(limit=1)
    assert same_utterance(first, again)
    assert path.stat().st_size > 1000


def test_unwritable_cache_warns_and_still_yields(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("GENSR_BENCH_CACHE_DIR", str(blocker))
    with pytest.warns(UserWarning, match="cannot write the suite cache"):
        utterances = list(SynthGSR(limit=2))
    assert len(utterances) == 2


# ----------------------------------------------------------------------------- options


def test_fingerprint_changes_with_options_and_suite() -> None:
    base = SynthGSR().fingerprint()
    assert SynthGSR().fingerprint() == base
    assert SynthGSR(limit=3).fingerprint() == base  # limit takes a prefix: same suite
    assert SynthGSR(cache=False).fingerprint() == base  # caching does not change content
    assert SynthGSR(size=10).fingerprint() != base
    assert SynthGSR(seed=1).fingerprint() != base
    assert SynthGSR(seed=1).cache_key() != SynthGSR().cache_key()
    assert len({cls().fingerprint() for cls in SUITES}) == len(SUITES)


def test_fingerprint_covers_generator_version_and_sentence_bank(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = SynthGSR().fingerprint()
    monkeypatch.setattr(synth, "GENERATOR_VERSION", "test-bump")
    bumped = SynthGSR().fingerprint()
    monkeypatch.undo()
    monkeypatch.setattr(synth, "sentences_sha256", lambda: "a different bank")
    assert len({base, bumped, SynthGSR().fingerprint()}) == 3


def test_seed_option_draws_another_suite() -> None:
    (default,) = SynthGSR(limit=1, cache=False)
    (other,) = SynthGSR(limit=1, seed=1, cache=False)
    assert not same_utterance(default, other)


def test_options_are_validated() -> None:
    with pytest.raises(ConfigError, match="no option sizee; available options: size, seed"):
        SynthGSR(sizee=3)
    with pytest.raises(ConfigError, match="at least 1"):
        SynthGSR(size=0)
    with pytest.raises(ConfigError, match="integer"):
        SynthGSR(size="many")
    with pytest.raises(ConfigError, match="true or false"):
        SynthGSR(cache="maybe")
    parsed = SynthGSR(size="12", cache="false")  # as given on a command line
    assert parsed.full_size() == 12 and parsed.use_cache is False
    assert parsed.options == {"size": 12, "cache": False}
