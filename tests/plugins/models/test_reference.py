"""identity and oracle: exact pass-through of the degraded input and of the reference."""

from __future__ import annotations

from importlib.metadata import entry_points

import numpy as np
import pytest

from gensr_bench import GensrError
from gensr_bench.errors import AudioValidationError, ConfigError
from gensr_bench.plugins import get_plugin_manager
from gensr_bench.records import Utterance
from gensr_bench.registry import Registry
from gensr_bench.testing import noisy_utterance, tiny_utterances
from gensr_bench_plugins.models import reference
from gensr_bench_plugins.models.reference import Identity, MissingReferenceError, Oracle


def test_hook_registers_both_classes() -> None:
    assert reference.gensr_register_models() == [Identity, Oracle]


def test_registry_indexes_them_by_name() -> None:
    pm = get_plugin_manager(plugins_dirs=[], disabled=[], entry_points=False)
    pm.register(reference, name="models.reference")
    models = Registry.from_plugins(pm, "models")
    assert models.get("identity") is Identity
    assert models.get("oracle") is Oracle


def test_entry_point_points_at_this_module() -> None:
    points = {ep.name: ep.value for ep in entry_points(group="gensr_bench")}
    assert points["models.reference"] == "gensr_bench_plugins.models.reference"


@pytest.mark.parametrize("cls", [Identity, Oracle])
def test_class_contract(cls: type[Identity] | type[Oracle]) -> None:
    assert cls.paradigm == "dsp"
    assert cls.sample_rate == 16000
    assert cls.version
    assert cls.description()
    assert cls().config() == {"name": cls.name, "version": cls.version, "options": {}}


def test_identity_returns_the_degraded_arrays() -> None:
    batch = tiny_utterances(3)
    out = Identity().restore(batch, seed=7)
    assert [r.utterance_id for r in out] == [u.id for u in batch]
    for restoration, utt in zip(out, batch, strict=True):
        assert utt.degraded is not None
        np.testing.assert_array_equal(restoration.audio.samples, utt.degraded.samples)
        assert restoration.audio.sample_rate == utt.degraded.sample_rate
        assert restoration.model == "identity"
        assert restoration.seed == 7


def test_oracle_returns_the_reference_arrays() -> None:
    batch = tiny_utterances(3)
    out = Oracle().restore(batch, seed=3)
    assert [r.utterance_id for r in out] == [u.id for u in batch]
    for restoration, utt in zip(out, batch, strict=True):
        assert utt.reference is not None
        np.testing.assert_array_equal(restoration.audio.samples, utt.reference.samples)
        assert restoration.model == "oracle"
        assert restoration.seed == 3


def test_oracle_without_reference_says_the_suite_has_none() -> None:
    utt = noisy_utterance("no-ref")
    bare = Utterance(id=utt.id, degraded=utt.degraded, reference=None)
    with pytest.raises(MissingReferenceError) as info:
        Oracle().restore([bare], seed=0)
    assert isinstance(info.value, GensrError)
    message = str(info.value)
    assert "'no-ref'" in message
    assert "no references" in message
    assert "'oracle' cannot run" in message


def test_identity_without_degraded_audio_is_a_clear_error() -> None:
    broken = Utterance(id="unreadable", degraded=None, error="cannot decode x.wav")
    with pytest.raises(AudioValidationError, match=r"'unreadable'.*cannot decode x\.wav"):
        Identity().restore([broken], seed=0)


@pytest.mark.parametrize("cls", [Identity, Oracle])
def test_options_are_refused(cls: type[Identity] | type[Oracle]) -> None:
    with pytest.raises(ConfigError, match=r"has no option gain; available options: \(none\)"):
        cls(gain=2)


def test_sample_gives_n_identical_candidates() -> None:
    batch = tiny_utterances(2)
    candidates = Identity().sample(batch, n=3, seed=0)
    assert [len(c) for c in candidates] == [3, 3]
    assert [r.seed for r in candidates[0]] == [0, 1, 2]
    for per_input, utt in zip(candidates, batch, strict=True):
        assert utt.degraded is not None
        for restoration in per_input:
            np.testing.assert_array_equal(restoration.audio.samples, utt.degraded.samples)
