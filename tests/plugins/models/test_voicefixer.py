"""The ``voicefixer`` model: weights from our folder only, clear errors, and an end-to-end run.

The real checkpoints cannot be downloaded here, so the tests save randomly initialised
networks of the package's architecture in the files the loader expects and run them through
the same loading code. Random networks give noise-like audio: these tests check the plumbing
(files, shapes, lengths, determinism, errors), not restoration quality.
"""

from __future__ import annotations

import importlib.machinery
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from gensr_bench import weights
from gensr_bench.records import Audio, Utterance
from gensr_bench.testing import invoke_cli
from gensr_bench.weights import WeightsError

torch = pytest.importorskip("torch")
pytest.importorskip("torchlibrosa")
# Never ``import voicefixer``: its __init__ downloads the checkpoints from Zenodo.
if importlib.machinery.PathFinder.find_spec("voicefixer") is None:
    pytest.skip("the voicefixer package is not installed (see install.sh)", allow_module_level=True)

from gensr_bench_plugins.models import voicefixer as vf  # noqa: E402
from gensr_bench_plugins.models.voicefixer import networks  # noqa: E402

TOY_PLUGINS = Path(__file__).resolve().parents[2] / "fixtures" / "toy_plugins"
FILES = (vf.RESTORER_WEIGHTS.filename, vf.VOCODER_WEIGHTS.filename)


def _random_like(shape: tuple[int, ...], name: str, generator: torch.Generator) -> torch.Tensor:
    """Uniform weights scaled by fan-in (as torch's default initialisers), BN statistics of a
    unit normal; cheap to draw for the 83M-parameter analysis module."""
    if name.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.long)
    if name.endswith("running_var"):
        return torch.ones(shape)
    if name.endswith("running_mean"):
        return torch.zeros(shape)
    bound = 1 / math.sqrt(math.prod(shape[1:]) if len(shape) > 1 else 10)
    return torch.empty(shape).uniform_(-bound, bound, generator=generator)


def write_random_checkpoints(folder: Path, seed: int = 0) -> Path:
    """Save random VoiceFixer weights as ``folder/voicefixer/{vf.ckpt,model.ckpt-...pt}``:
    the analysis module as a flat state dict (its generator's weights drawn on the shapes of
    the package's network), the vocoder as ``{"generator": state}`` of the package's
    generator with its own random initialisation. Returns ``folder`` (a weights folder)."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    restorer = networks.build_restorer(device="meta")
    state = {
        f"generator.{name}": _random_like(tuple(tensor.shape), name, generator)
        for name, tensor in restorer.generator.state_dict().items()
    }
    (folder / "voicefixer").mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / vf.RESTORER_WEIGHTS.filename)
    torch.save({"generator": networks.build_vocoder().state_dict()}, folder / FILES[1])
    return folder


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_checkpoints(tmp_path_factory.mktemp("weights"))


@pytest.fixture(autouse=True)
def only_our_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No weights folder but the test's own; HOME elsewhere, so a download by the package
    (into ~/.cache/voicefixer) would show."""
    monkeypatch.setenv("GENSR_BENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(weights.WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(weights, "_explicit_dir", None)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _run_args(weights_folder: Path, out: Path, seconds: float = 0.1) -> list[str]:
    return [
        "--plugins-dir", str(TOY_PLUGINS), "--weights-dir", str(weights_folder),
        "run", "--model", "voicefixer", "--suite", "test-toy",
        "--suite-option", "size=1", "--suite-option", f"seconds={seconds}",
        "--metrics", "test-level,test-snr", "--workers", "1", "--out", str(out),
        "--save-audio", "--no-cache",
    ]  # fmt: skip


def test_it_is_registered_with_its_two_weight_files() -> None:
    result = invoke_cli(["weights", "list"])
    assert result.exit_code == 0, result.stdout
    listed = [line for line in result.stdout.splitlines() if line.startswith("voicefixer")]
    assert len(listed) == 2
    for filename in FILES:
        assert any(filename in line and "missing" in line for line in listed)
    assert vf.VoiceFixer.sample_rate == 44100
    assert vf.VoiceFixer.paradigm == "discriminative"
    # No hash is published for these files, and none is made up.
    assert all(weight.sha256 is None for weight in vf.VoiceFixer.weight_files)
    assert all(weight.url and "zenodo.org" in weight.url for weight in vf.VoiceFixer.weight_files)


def test_missing_weights_exit_1_naming_files_folder_urls_and_command(tmp_path: Path) -> None:
    empty = tmp_path / "empty-weights"
    empty.mkdir()
    result = invoke_cli(_run_args(empty, tmp_path / "run"))
    assert result.exit_code == 1, result.stdout
    message = result.stdout + result.stderr
    for filename in FILES:
        assert filename in message
    assert str(empty) in message
    for weight in vf.VoiceFixer.weight_files:
        assert str(weight.url) in message
    assert "gensr-bench weights fetch voicefixer" in message
    assert "--weights-dir" in message


def test_one_missing_file_is_named_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "w" / "voicefixer").mkdir(parents=True)
    (tmp_path / "w" / FILES[0]).write_bytes(b"")
    monkeypatch.setenv(weights.WEIGHTS_ENV, str(tmp_path / "w"))
    with pytest.raises(WeightsError) as info:
        vf.VoiceFixer()
    assert FILES[1] in str(info.value) and "needs 1 checkpoint" in str(info.value)


def test_foreign_checkpoints_are_refused_clearly(tmp_path: Path) -> None:
    torch.save({"model": torch.zeros(1)}, tmp_path / "vocoder.pt")
    with pytest.raises(networks.VoiceFixerCheckpointError, match="no 'generator' entry"):
        networks.load_vocoder(tmp_path / "vocoder.pt")
    torch.save({"encoder.weight": torch.zeros(1)}, tmp_path / "vf.ckpt")
    with pytest.raises(networks.VoiceFixerCheckpointError, match=r"no 'generator\.\*' weights"):
        networks.load_restorer(tmp_path / "vf.ckpt")
    torch.save({"generator": {"x": np.arange(3)}}, tmp_path / "pickled.pt")
    with pytest.raises(networks.VoiceFixerCheckpointError, match="unsafe_load=true"):
        networks.load_vocoder(tmp_path / "pickled.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(networks.VoiceFixerCheckpointError, match="not a readable"):
        networks.load_vocoder(tmp_path / "junk.pt")


def test_vocoder_weights_with_the_old_weight_norm_names_load_the_same(
    weights_dir: Path, tmp_path: Path
) -> None:
    """The published vocoder predates torch's parametrised weight norm: its keys are
    ``weight_g`` / ``weight_v``. Both spellings give the same folded network."""
    state = torch.load(weights_dir / FILES[1], weights_only=True)["generator"]
    old = {
        key.replace("parametrizations.weight.original0", "weight_g").replace(
            "parametrizations.weight.original1", "weight_v"
        ): value
        for key, value in state.items()
    }
    assert any(key.endswith("weight_g") for key in old)
    torch.save({"generator": old}, tmp_path / "old.pt")
    new_net = networks.load_vocoder(weights_dir / FILES[1])
    old_net = networks.load_vocoder(tmp_path / "old.pt")
    for (name, a), (_, b) in zip(
        new_net.state_dict().items(), old_net.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    assert not any("parametrizations" in key for key in new_net.state_dict())


def test_run_end_to_end_on_random_weights(
    weights_dir: Path, tmp_path: Path, only_our_weights: Path
) -> None:
    out = tmp_path / "run"
    result = invoke_cli(_run_args(weights_dir, out, seconds=0.1))
    assert result.exit_code == 0, result.stdout + result.stderr
    (wav,) = sorted((out / "audio").glob("*.wav"))
    samples, rate = sf.read(wav, dtype="float64")
    assert rate == 44100
    # The 0.1-s toy utterance at 16 kHz, resampled to 44.1 kHz by the runner: 4410 samples.
    assert samples.shape == (4410,)
    assert np.isfinite(samples).all() and np.abs(samples).max() <= 1.0
    assert np.abs(samples).max() > 0.0
    # Nothing went to the package's own cache folder (it downloads there on import).
    assert not (only_our_weights / ".cache" / "voicefixer").exists()
    stand_in = sys.modules["voicefixer"]
    assert not hasattr(stand_in, "VoiceFixer"), "the package's downloading __init__ ran"


def test_outputs_equal_the_packages_own_inference_and_are_deterministic(
    weights_dir: Path, only_our_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The package's ``VoiceFixer.restore_inmem`` (mode 0, CPU) on the same random weights,
    which it reads from ``~/.cache/voicefixer`` (HOME is a temporary folder here). Its module
    ``voicefixer.base`` imports under the plugin's stand-in packages, so nothing downloads.
    With ``precision=float32`` (the package's precision) the samples are identical; the
    default float64 stays within float32 rounding of them."""
    import importlib
    import shutil

    cache = only_our_weights / ".cache" / "voicefixer"
    for source, target in (
        (FILES[0], "analysis_module/checkpoints/vf.ckpt"),
        (FILES[1], "synthesis_module/44100/model.ckpt-1490000_trimed.pt"),
    ):
        (cache / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(weights_dir / source, cache / target)
    monkeypatch.setattr("urllib.request.urlretrieve", _no_download)
    networks.package_modules()  # the stand-ins, in case no other test installed them
    with monkeypatch.context() as patch:
        # The package initialises its GRUs orthogonally (seconds of QR), then loads vf.ckpt
        # over them: skip the initialisation, not the loading.
        patch.setattr(torch.nn.init, "orthogonal_", lambda tensor, *args, **kwargs: tensor)
        package = importlib.import_module("voicefixer.base").VoiceFixer()
    rng = np.random.default_rng(3)
    signal = (0.1 * rng.standard_normal(4410)).astype(np.float32)
    expected = package.restore_inmem(signal, cuda=False, mode=0)[0]

    weights.set_weights_dir(weights_dir)
    model = vf.VoiceFixer(precision="float32")
    utterance = Utterance("noise", Audio(signal, 44100))
    # Any seed: mode 0 draws nothing (the package has no seed at all).
    first = model.restore([utterance], seed=7)[0].audio
    assert first.sample_rate == 44100 and first.samples.dtype == np.float32
    np.testing.assert_array_equal(first.samples, expected)
    # Shorter than the STFT's reflect padding allows (1025 samples; the package fails on it):
    # padded with zeros, then cut back to the input's length.
    short = model.restore([Utterance("short", Audio(signal[:600], 44100))], seed=0)[0].audio
    assert short.samples.shape == (600,) and np.isfinite(short.samples).all()
    assert model.checkpoint_hash() is not None and len(model.checkpoint_hash() or "") == 64


def _no_download(*args: object, **kwargs: object) -> None:
    raise AssertionError(f"the voicefixer package tried to download {args[:1]}")


def test_options_are_checked(weights_dir: Path) -> None:
    from gensr_bench.errors import ConfigError, UnknownOptionError

    weights.set_weights_dir(weights_dir)
    with pytest.raises(ConfigError, match="precision"):
        vf.VoiceFixer(precision="float16")
    with pytest.raises(ConfigError, match="unsafe_load"):
        vf.VoiceFixer(unsafe_load="maybe")
    with pytest.raises(UnknownOptionError, match="device"):
        vf.VoiceFixer(devcie="cpu")
    with pytest.raises(ConfigError, match="not one of cpu, cuda"):
        vf.VoiceFixer(device="gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            vf.VoiceFixer(device="cuda")
    assert vf.VoiceFixer().config()["settings"] == {"precision": "float64", "mode": 0}


def test_runs_where_it_is_placed_unless_its_device_option_says_otherwise(
    weights_dir: Path,
) -> None:
    from gensr_bench.devices import place

    weights.set_weights_dir(weights_dir)
    assert vf.VoiceFixer.supports_device
    model = vf.VoiceFixer()
    assert model.device == "cpu"
    assert place([model], "cuda") == {"voicefixer": "cuda"}
    pinned = vf.VoiceFixer(device="CPU")
    assert place([pinned], "cuda") == {"voicefixer": "cpu"}
