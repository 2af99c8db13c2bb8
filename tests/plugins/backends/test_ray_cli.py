"""`gensr-bench run --backend ray` from the command line, with no Ray cluster running yet."""

from __future__ import annotations

from pathlib import Path

from gensr_bench.testing import invoke_cli, readme_code_block, run_rows

TOY_PLUGINS = Path(__file__).parents[2] / "fixtures" / "toy_plugins"
README = Path(__file__).parents[3] / "README.md"


def test_cli_backend_ray_starts_and_stops_its_own_cluster(tmp_path):
    import ray

    assert not ray.is_initialized()
    args = ["--plugins-dir", str(TOY_PLUGINS), "run", "--suite", "test-toy", "--suite-option"]
    args += ["size=6", "--model", "test-noisy-echo", "--metrics", "test-level,test-snr"]
    args += ["--no-cache", "--out"]
    local = invoke_cli([*args, str(tmp_path / "local"), "--workers", "1"])
    assert local.exit_code == 0, local.stdout
    on_ray = invoke_cli([*args, str(tmp_path / "ray"), "--workers", "2", "--backend", "ray"])
    assert on_ray.exit_code == 0, on_ray.stdout + on_ray.stderr
    assert run_rows(tmp_path / "ray") == run_rows(tmp_path / "local")
    assert not ray.is_initialized()
    unknown = invoke_cli([*args, str(tmp_path / "x"), "--backend", "dask"])
    assert unknown.exit_code == 2
    assert "dask" in unknown.stdout + unknown.stderr


def test_the_readme_metric_as_a_local_plugin_runs_on_ray(tmp_path):
    import ray

    plugins = tmp_path / "plugins"
    plugins.mkdir()
    source = readme_code_block(README, "# gensr_bench_loudness/__init__.py")
    (plugins / "loudness.py").write_text(source)
    args = ["--plugins-dir", str(TOY_PLUGINS), "--plugins-dir", str(plugins), "run", "--suite"]
    args += ["test-toy", "--suite-option", "size=4", "--model", "test-echo", "--metrics"]
    args += ["loudness-gap", "--batch-size", "1", "--no-cache", "--out"]
    local = invoke_cli([*args, str(tmp_path / "local"), "--workers", "1"])
    assert local.exit_code == 0, local.stdout + local.stderr
    on_ray = invoke_cli([*args, str(tmp_path / "ray"), "--workers", "2", "--backend", "ray"])
    assert on_ray.exit_code == 0, on_ray.stdout + on_ray.stderr

    rows = run_rows(tmp_path / "ray")
    assert rows == run_rows(tmp_path / "local")
    assert [row[0] for row in rows] == [f"toy-{i:03d}" for i in range(4)]
    assert all(row[3] == {} and isinstance(row[2]["loudness_gap_db"], float) for row in rows)
    assert not ray.is_initialized()
