"""``outputs:DIR``: outputs made elsewhere, matched to utterances by name and scored."""

from __future__ import annotations

import pickle
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pytest

from gensr_bench.alignment.candidates import CandidateModel
from gensr_bench.audio import write_audio
from gensr_bench.errors import BatchRestorationError, ConfigError, UnknownNameError
from gensr_bench.execution import BatchProcessor, audio_file_name
from gensr_bench.plugins import get_plugin_manager
from gensr_bench.records import Audio
from gensr_bench.registry import Registry
from gensr_bench.testing import (
    LevelMetric,
    check_model_conformance,
    invoke_cli,
    noisy_utterance,
    readme_code_block,
    run_rows,
    shell_commands,
    sine,
    tiny_utterances,
    write_plugin_file,
)
from gensr_bench_plugins.models import outputs
from gensr_bench_plugins.models.outputs import OutputsModel, outputs_class


def model_for(folder: Path) -> OutputsModel:
    return outputs_class(f"outputs:{folder}")()


def write_outputs(folder: Path, ids: list[str], rate: int = 16000, suffix: str = ".wav") -> None:
    for k, uid in enumerate(ids):
        write_audio(folder / f"{uid}{suffix}", sine(200.0 + 50 * k, 0.5, rate))


# -- the name, the hooks, the entry point ---------------------------------------------------
def test_the_hook_resolves_the_prefix_only(tmp_path: Path) -> None:
    cls = outputs.gensr_resolve_model(f"outputs:{tmp_path}")
    assert cls is not None and issubclass(cls, OutputsModel)
    assert cls.name == f"outputs:{tmp_path}" and cls.folder == str(tmp_path)
    assert outputs.gensr_resolve_model("wiener") is None


def test_the_registry_resolves_it_through_the_hook(tmp_path: Path) -> None:
    write_outputs(tmp_path, ["a"])
    pm = get_plugin_manager(plugins_dirs=[], disabled=[], entry_points=False)
    pm.register(outputs, name="models.outputs")
    models = Registry.from_plugins(pm, "models")
    assert "outputs" not in models.names()  # served by the hook, not registered
    model = models.create(f"outputs:{tmp_path}")
    assert isinstance(model, OutputsModel) and model.root == tmp_path.resolve()
    with pytest.raises(UnknownNameError) as info:
        models.get("outptus:x")
    assert "outputs:DIR" in str(info.value) and "gensr-bench ls models" in str(info.value)


def test_entry_point_points_at_this_module() -> None:
    points = {ep.name: ep.value for ep in entry_points(group="gensr_bench")}
    assert points["models.outputs"] == "gensr_bench_plugins.models.outputs"


def test_a_missing_or_empty_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a folder"):
        model_for(tmp_path / "nope")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ConfigError, match=r"holds no audio file.*notes\.txt"):
        model_for(tmp_path)


# -- matching files to utterances -------------------------------------------------------------
def test_it_passes_the_model_conformance_kit(tmp_path: Path) -> None:
    utts = tiny_utterances(3)
    write_outputs(tmp_path, [u.id for u in utts])
    restored = check_model_conformance(outputs_class(f"outputs:{tmp_path}"), utts)
    assert [r.utterance_id for r in restored] == [u.id for u in utts]


def test_files_match_by_saved_name_id_path_or_degraded_file(tmp_path: Path) -> None:
    odd_id = "spk 1:utt?"  # not a safe file name: saved as audio_file_name(id)
    write_audio(tmp_path / audio_file_name(odd_id), sine(300.0))
    (tmp_path / "spk2").mkdir()
    write_audio(tmp_path / "spk2" / "utt5.wav", sine(310.0))
    write_audio(tmp_path / "noisy_07.wav", sine(320.0))
    (tmp_path / "noisy").mkdir()
    write_audio(tmp_path / "noisy" / "b.wav", sine(330.0))
    model = model_for(tmp_path)
    utts = [
        noisy_utterance(odd_id, 0.5),
        noisy_utterance("spk2/utt5", 0.5),
        noisy_utterance("x-7", 0.5, file="data/noisy_07.flac"),  # paired suites: meta "file"
        noisy_utterance("dns-fileid_9", 0.5, noisy_file="noisy/b.wav"),  # DNS: "noisy_file"
    ]
    restored = model.restore(utts, seed=0)
    expected = [sine(f) for f in (300.0, 310.0, 320.0, 330.0)]
    for restoration, want in zip(restored, expected, strict=True):
        assert restoration.audio == want
    assert model.ignored_files((u.id, u.meta) for u in utts) == []


def test_any_format_at_any_rate_is_read_at_its_own_rate(tmp_path: Path) -> None:
    write_outputs(tmp_path, ["a", "b"], rate=22050, suffix=".flac")
    model = model_for(tmp_path)
    assert model.sample_rate == 22050  # reported as the files are
    assert model.config()["sample_rates"] == [22050]
    (restoration,) = model.restore([noisy_utterance("b", 0.5)], seed=0)
    assert restoration.audio.sample_rate == 22050
    # The runner resamples to each metric's rate and records it.
    processor = BatchProcessor(model, [LevelMetric()])
    ((scored, _),) = processor.process([(0, noisy_utterance("a", 0.5))], seed=0)
    assert scored.errors == {} and scored.scores["level_db"] is not None
    assert scored.flags["resampled"]["test-level"] == "22050->16000"


def test_two_files_for_one_utterance_are_an_error_not_a_guess(tmp_path: Path) -> None:
    write_outputs(tmp_path, ["a"], suffix=".wav")
    write_outputs(tmp_path, ["a"], suffix=".flac")
    with pytest.raises(BatchRestorationError) as info:
        model_for(tmp_path).restore([noisy_utterance("a", 0.5)], seed=0)
    assert "2 files could be the output of utterance 'a'" in info.value.outcomes[0]


def test_a_missing_file_fails_that_utterance_only_naming_the_file(tmp_path: Path) -> None:
    write_outputs(tmp_path, ["utt-0", "utt-2"])
    model = model_for(tmp_path)
    utts = tiny_utterances(3)
    with pytest.raises(BatchRestorationError) as info:
        model.restore(utts, seed=0)
    first, missing, last = info.value.outcomes
    assert not isinstance(first, str) and not isinstance(last, str)
    assert isinstance(missing, str) and str(tmp_path.resolve() / "utt-1.wav") in missing
    # The runner scores the others and records the reason on the missing one.
    processor = BatchProcessor(model, [LevelMetric()])
    results = [scored for scored, _ in processor.process(list(enumerate(utts)), seed=0)]
    assert [s.scores["level_db"] is None for s in results] == [False, True, False]
    assert "expected " + str(tmp_path.resolve() / "utt-1.wav") in results[1].errors["level_db"]


def test_files_no_utterance_used_are_listed_with_why(tmp_path: Path) -> None:
    write_outputs(tmp_path, ["utt-0", "utt-1", "stray"])
    (tmp_path / "log.txt").write_text("x")
    (tmp_path / ".hidden.wav").write_bytes(b"")
    model = model_for(tmp_path)
    listed = dict(model.ignored_files([("utt-0", {}), ("utt-1", {}), ("utt-9", {})]))
    assert set(listed) == {"stray.wav", "log.txt", ".hidden.wav"}
    assert "matches no utterance" in listed["stray.wav"]
    assert listed["log.txt"] == "not an audio file libsndfile reads"
    assert listed[".hidden.wav"] == "hidden file"


# -- provenance, workers, candidates ------------------------------------------------------------
def test_config_records_the_folder_and_a_hash_of_its_files(tmp_path: Path) -> None:
    write_outputs(tmp_path, ["a", "b"])
    model = model_for(tmp_path)
    config = model.config()
    assert config["folder"] == str(tmp_path.resolve()) and config["files"] == 2
    assert config["files_sha256"] == model.checkpoint_hash()
    write_audio(tmp_path / "b.wav", Audio(np.zeros(800, np.float32), 16000))
    assert model_for(tmp_path).checkpoint_hash() != config["files_sha256"]


def test_the_model_pickles_for_worker_processes(tmp_path: Path) -> None:
    write_outputs(tmp_path, ["a"])
    model = model_for(tmp_path)
    copy = pickle.loads(pickle.dumps(model))
    assert type(copy).name == model.name and copy.root == model.root
    (restored,) = copy.restore([noisy_utterance("a", 0.5)], seed=0)
    assert restored.audio == sine(200.0, 0.5)


def test_it_cannot_sample_candidates_for_alignment(tmp_path: Path) -> None:
    write_outputs(tmp_path, ["a"])
    model = model_for(tmp_path)
    assert model.sampling_refusal() is not None
    with pytest.raises(ConfigError, match="cannot sample candidates: its outputs are files"):
        CandidateModel(model)


# -- the command line: oracle's saved audio scores exactly as oracle did ------------------------
def cli_run(*args: str) -> str:
    result = invoke_cli([*args, "--metrics", "si-sdr,lsd", "--workers", "1", "--no-cache"])
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.stdout


def test_saved_oracle_audio_scores_exactly_as_oracle(tmp_path: Path) -> None:
    saved = tmp_path / "A"
    cli_run("run", "--model", "oracle", "--suite", "synth-gsr", "--limit", "4", "--save-audio",
            "--out", str(saved))  # fmt: skip
    cli_run("run", "--model", f"outputs:{saved / 'audio'}", "--suite", "synth-gsr", "--limit",
            "4", "--out", str(tmp_path / "B"))  # fmt: skip
    oracle, again = run_rows(saved), run_rows(tmp_path / "B")
    assert [row[:4] for row in again] == [row[:4] for row in oracle]  # ids, scores, no errors
    assert all(row[3] == {} for row in again)

    # One output gone, one stray file: the gone one fails naming its file, the stray is listed
    # once, and the run goes on.
    audio = saved / "audio"
    (audio / "synth-gsr-0001.wav").rename(audio / "stray.wav")
    out = cli_run("run", "--model", f"outputs:{audio}", "--suite", "synth-gsr", "--limit", "4",
                  "--out", str(tmp_path / "C"))  # fmt: skip
    rows = {row[0]: row for row in run_rows(tmp_path / "C")}
    assert rows["synth-gsr-0001"][2] == {"si_sdr": None, "lsd": None}
    assert str(audio.resolve() / "synth-gsr-0001.wav") in rows["synth-gsr-0001"][3]["si_sdr"]
    assert rows["synth-gsr-0002"][2] == dict(oracle[2][2])
    assert "note: the model ignored 1 file(s) in its folder:" in out
    assert out.count("stray.wav") == 1


# -- the README's example, run as written (on cheap metrics) ---------------------------------
README = Path(__file__).resolve().parents[3] / "README.md"
TOY_PLUGINS = Path(__file__).resolve().parents[2] / "fixtures" / "toy_plugins"
CHEAP = ["--metrics", "si-sdr,lsd", "--workers", "1", "--no-cache"]


def test_the_readme_outputs_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    block = readme_code_block(README, "# outputs:DIR, e.g. the oracle's saved outputs scored again")
    commands = shell_commands(block)
    assert [c[:3] for c in commands] == [["run", "--model", "oracle"], ["run", "--model",
            "outputs:runs/oracle-5/audio"]]  # fmt: skip
    monkeypatch.chdir(tmp_path)
    for args in commands:
        result = invoke_cli([*args, *CHEAP])
        assert result.exit_code == 0, result.stdout + result.stderr
    assert "the model ignored" not in result.stdout  # each saved file matched its utterance
    oracle, scored = (
        run_rows(tmp_path / "runs/oracle-5"),
        run_rows(tmp_path / "runs/audio--synth-gsr"),
    )
    assert len(scored) == 5 and [row[:4] for row in scored] == [row[:4] for row in oracle]


#: Two suites and a group that stands for both (as ``dns`` stands for its two subsets).
GROUP_PLUGIN = """
    from gensr_bench import Suite, hookimpl
    from gensr_bench.testing import noisy_utterance


    class PartA(Suite):
        \"\"\"Two utterances, a-0 and a-1.\"\"\"

        name = "part-a"

        def iter_utterances(self):
            for i in range(2):
                yield noisy_utterance(f"{self.name[-1]}-{i}", 0.5, seed=i)

        def full_size(self):
            return 2


    class PartB(PartA):
        \"\"\"Two utterances, b-0 and b-1.\"\"\"

        name = "part-b"


    class Both(PartA):
        \"\"\"part-a and part-b, reported separately.\"\"\"

        name = "both-parts"
        subsets = ("part-a", "part-b")


    @hookimpl
    def gensr_register_suites():
        return [PartA, PartB, Both]
"""


def test_a_suite_of_subsets_lists_the_files_no_subset_used_once(tmp_path: Path) -> None:
    plugin = write_plugin_file(tmp_path / "plugins", GROUP_PLUGIN)
    folder = tmp_path / "outputs"
    write_outputs(folder, ["a-0", "a-1", "b-0", "b-1", "stray"])
    result = invoke_cli(
        ["--plugins-dir", str(TOY_PLUGINS), "--plugins-dir", str(plugin.parent), "run",
         "--model", f"outputs:{folder}", "--suite", "both-parts", "--metrics", "test-level",
         "--workers", "1", "--no-cache", "--out", str(tmp_path / "run")]
    )  # fmt: skip
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout.count("ignored") == 1
    assert "note: over part-a, part-b, the model ignored 1 file(s) in its folder:" in result.stdout
    assert "    stray.wav: matches no utterance" in result.stdout
    for part in ("part-a", "part-b"):
        assert all(row[3] == {} for row in run_rows(tmp_path / "run" / part))
