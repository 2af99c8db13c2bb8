"""Weight files: search order, download with hash check, clear errors offline."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from gensr_bench import weights
from gensr_bench.cli import main
from gensr_bench.testing import require_weights, shared_weights_dir, write_plugin_file
from gensr_bench.weights import WeightFile, WeightsError


@pytest.fixture()
def dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("GENSR_BENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GENSR_BENCH_WEIGHTS_DIR", raising=False)
    monkeypatch.setattr(weights, "_explicit_dir", None)
    source = tmp_path / "source"
    source.mkdir()
    (source / "w.bin").write_bytes(b"weights v1")
    return tmp_path, source


def _spec(source: Path, **kw) -> WeightFile:
    digest = hashlib.sha256(b"weights v1").hexdigest()
    return WeightFile(
        kw.pop("filename", "w.bin"),
        sha256=kw.pop("sha256", digest),
        url=kw.pop("url", (source / "w.bin").as_uri()),
        **kw,
    )


def test_env_dir_is_searched_before_the_cache(dirs, monkeypatch):
    tmp, source = dirs
    monkeypatch.setenv("GENSR_BENCH_WEIGHTS_DIR", str(source))
    assert weights.locate(_spec(source)) == source / "w.bin"
    assert weights.search_dirs()[-1] == tmp / "cache" / "weights"


def test_explicit_dir_comes_first(dirs, monkeypatch):
    tmp, source = dirs
    other = tmp / "other"
    other.mkdir()
    (other / "w.bin").write_bytes(b"weights v1")
    monkeypatch.setenv("GENSR_BENCH_WEIGHTS_DIR", str(source))
    weights.set_weights_dir(other)
    assert weights.find(_spec(source)) == other / "w.bin"


def test_missing_file_is_downloaded_and_checked(dirs):
    tmp, source = dirs
    path = weights.locate(_spec(source))
    assert path == tmp / "cache" / "weights" / "w.bin"
    assert path.read_bytes() == b"weights v1"
    assert not list(path.parent.glob("*.part"))


def test_a_file_in_a_subfolder_is_found_and_downloaded_there(dirs, monkeypatch):
    tmp, source = dirs
    spec = _spec(source, filename="family/w.bin")
    path = weights.locate(spec)
    assert path == tmp / "cache" / "weights" / "family" / "w.bin"
    assert path.read_bytes() == b"weights v1"
    assert not list(path.parent.glob("*.part"))
    mine = tmp / "mine"
    (mine / "family").mkdir(parents=True)
    (mine / "family" / "w.bin").write_bytes(b"weights v1")
    weights.set_weights_dir(mine)
    assert weights.find(spec) == mine / "family" / "w.bin"


def test_wrong_hash_is_refused_and_not_kept(dirs):
    tmp, source = dirs
    with pytest.raises(WeightsError, match="expected 0000"):
        weights.locate(_spec(source, sha256="0" * 64))
    assert not (tmp / "cache" / "weights" / "w.bin").exists()


def test_offline_error_names_file_url_and_env_var(dirs):
    _, source = dirs
    spec = _spec(source, url="http://127.0.0.1:9/w.bin")
    with pytest.raises(WeightsError) as info:
        weights.locate(spec)
    message = str(info.value)
    assert "'w.bin' not found" in message
    assert "http://127.0.0.1:9/w.bin" in message
    assert "GENSR_BENCH_WEIGHTS_DIR" in message
    assert "--weights-dir" in message


def test_no_download_when_not_allowed(dirs):
    _, source = dirs
    with pytest.raises(WeightsError, match="not found"):
        weights.locate(_spec(source), download=False)


def test_weights_commands_list_fetch_verify(dirs, capsys):
    tmp, source = dirs
    plugins = tmp / "plugins"
    digest = hashlib.sha256(b"weights v1").hexdigest()
    write_plugin_file(
        plugins,
        f"""
        from gensr_bench import hookimpl
        from gensr_bench.testing import LevelMetric
        from gensr_bench.weights import WeightFile

        class Weighted(LevelMetric):
            '''A metric with a weight file.'''
            name = "test-weighted"
            weight_files = (WeightFile("w.bin", sha256={digest!r},
                                       url={(source / "w.bin").as_uri()!r}, license="test"),)

        @hookimpl
        def gensr_register_metrics():
            return [Weighted]
    """,
    )
    base = ["--plugins-dir", str(plugins), "weights"]
    assert main([*base, "list"]) == 0
    assert "missing" in capsys.readouterr().out
    assert main([*base, "fetch", "test-weighted"]) == 0
    assert "w.bin at" in capsys.readouterr().out
    assert main([*base, "verify"]) == 0
    assert "w.bin: ok" in capsys.readouterr().out
    (tmp / "cache" / "weights" / "w.bin").write_bytes(b"tampered")
    assert main([*base, "verify"]) == 1
    assert "MISMATCH" in capsys.readouterr().out


# -- gensr_bench.testing.require_weights: tests that need weights which cannot ship ------------


@pytest.fixture()
def checkout(dirs, monkeypatch):
    """A fake checkout (``repo/pyproject.toml``, a test file) with ``shared/`` beside it."""
    tmp, _ = dirs
    monkeypatch.delenv("CI", raising=False)
    test_file = tmp / "repo" / "tests" / "test_x.py"
    test_file.parent.mkdir(parents=True)
    (tmp / "repo" / "pyproject.toml").write_text("")
    test_file.write_text("")
    return test_file, tmp / "shared" / "weights" / "sub"


def test_require_weights_skips_naming_the_variable_when_absent(checkout, dirs):
    test_file, shared = checkout
    with pytest.raises(pytest.skip.Exception) as info:
        require_weights(_spec(dirs[1]), test_file, "sub")
    reason = str(info.value)
    assert "'w.bin'" in reason
    assert "GENSR_BENCH_WEIGHTS_DIR" in reason
    assert str(shared) in reason


@pytest.mark.parametrize("value", ["true", "True", "1"])
def test_require_weights_fails_under_ci_when_absent(checkout, dirs, monkeypatch, value):
    test_file, _ = checkout
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match=r"GENSR_BENCH_WEIGHTS_DIR.*CI=true"):
        require_weights(_spec(dirs[1]), test_file, "sub")


def test_require_weights_skips_when_ci_is_false(checkout, dirs, monkeypatch):
    test_file, _ = checkout
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        require_weights(_spec(dirs[1]), test_file, "sub")


def test_require_weights_finds_shared_beside_the_checkout(checkout, dirs):
    test_file, shared = checkout
    shared.mkdir(parents=True)
    (shared / "w.bin").write_bytes(b"weights v1")
    assert shared_weights_dir(test_file) == shared.parent
    assert require_weights(_spec(dirs[1]), test_file, "sub") == shared / "w.bin"


def test_require_weights_prefers_the_env_folder(checkout, dirs, monkeypatch):
    test_file, shared = checkout
    _, source = dirs
    shared.mkdir(parents=True)
    (shared / "w.bin").write_bytes(b"weights v1")
    monkeypatch.setenv("GENSR_BENCH_WEIGHTS_DIR", str(source))
    assert require_weights(_spec(source), test_file, "sub") == source / "w.bin"


def test_require_weights_refuses_a_wrong_file(checkout, dirs):
    test_file, shared = checkout
    shared.mkdir(parents=True)
    (shared / "w.bin").write_bytes(b"something else")
    with pytest.raises(WeightsError, match="sha256"):
        require_weights(_spec(dirs[1]), test_file, "sub")


def test_shared_weights_dir_outside_a_checkout(tmp_path):
    assert shared_weights_dir(tmp_path / "loose_test.py") is None
