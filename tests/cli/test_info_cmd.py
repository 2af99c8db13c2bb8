"""`gensr-bench ls` and `gensr-bench plugins`."""

from __future__ import annotations

from gensr_bench.cli import main


def test_ls_and_plugins_list_builtins(capsys):
    assert main(["ls", "metrics"]) == 0
    out = capsys.readouterr().out
    for name in ("dnsmos", "pesq", "stoi", "estoi", "si-sdr", "lsd", "speaker-sim"):
        assert f"\n{name} " in out
    assert main(["ls", "models"]) == 0
    out = capsys.readouterr().out
    assert "wiener" in out and "\ncommand " in out
    # Names no plugin registers but one resolves are listed after the table.
    assert "\nalso: outputs:DIR (score output files made elsewhere" in out
    assert main(["ls", "suites"]) == 0
    assert "synth-dns-with-reverb-train" in capsys.readouterr().out
    for kind, names in (
        ("backends", ("local", "ray")),
        ("features", ("log-mel", "speaker")),
        ("publishers", ("files",)),
    ):
        assert main(["ls", kind]) == 0
        out = capsys.readouterr().out
        for name in names:
            assert f"\n{name} " in out
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    for plugin in ("metrics.dnsmos", "features.log_mel", "features.speaker"):
        assert plugin in out
