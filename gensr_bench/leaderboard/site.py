"""The static site: :func:`build` renders every entry and the published figures with Jinja2
(autoescaping on: every value of a results file is untrusted), with bar charts and listening
examples."""

from __future__ import annotations

import datetime
import json
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gensr_bench.errors import GensrError
from gensr_bench.leaderboard.entries import (
    Entry,
    config_of,
    load_entries,
    load_reported,
    safe_name,
    unique_slugs,
)
from gensr_bench.leaderboard.schema import EntryError
from gensr_bench.records import Audio, ScoredOutput

#: A marker file: a folder holding it was written by :func:`build` and may be replaced.
SITE_MARKER = ".gensr-leaderboard-site"
# The templates live in gensr_bench/templates/leaderboard, beside this subpackage.
TEMPLATES = Path(__file__).parent.parent / "templates" / "leaderboard"

#: ``inputs(config, utterance_ids) -> {id: (degraded, reference)}`` for listening examples.
InputsFor = Callable[
    [Mapping[str, Any], Sequence[str]], Mapping[str, tuple[Audio | None, Audio | None]]
]


# -- the site ---------------------------------------------------------------------------------
@dataclass
class BuildReport:
    """What :func:`build` wrote: the site folder, counts and notes (e.g. missing audio)."""

    out_dir: Path
    entries: int = 0
    suites: int = 0
    reported_rows: int = 0
    charts: int = 0
    examples: int = 0
    notes: list[str] = field(default_factory=list)


def _num(value: Any, digits: int = 3) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return "—"
    return f"{value:.{digits}f}"


def _signed(value: Any, digits: int = 3) -> str:
    if value is None or not isinstance(value, (int, float)):
        return "—"
    return f"{value:+.{digits}f}"


def _sort_value(value: Any) -> str:
    return "" if value is None or not isinstance(value, (int, float)) else repr(float(value))


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


@dataclass
class _Group:
    """The measured entries of one suite (name, fingerprint, limit)."""

    key: tuple[str, str, int | None]
    slug: str
    entries: list[Entry]
    outputs: list[tuple[str, bool]]

    @property
    def title(self) -> str:
        return self.key[0]

    @property
    def scope(self) -> str:
        limit = self.key[2]
        return "all utterances" if limit is None else f"first {limit} utterances"


def _groups(entries: Sequence[Entry]) -> list[_Group]:
    grouped: dict[tuple[str, str, int | None], list[Entry]] = {}
    for entry in entries:
        grouped.setdefault(entry.suite_key, []).append(entry)
    groups = []
    for key in sorted(grouped, key=lambda k: (k[0], k[2] is not None, k[2] or 0, k[1])):
        members = grouped[key]
        outputs: dict[str, bool] = {}
        for entry in members:
            for name, better in entry.directions.items():
                outputs.setdefault(name, better)
        slug = safe_name(f"{key[0]}-{key[1][:8]}-{'all' if key[2] is None else key[2]}")
        groups.append(_Group(key, slug, members, list(outputs.items())))
    return groups


def _deltas(entry: Entry, base: Entry, outputs: Sequence[tuple[str, bool]]) -> dict[str, Any]:
    from gensr_bench.stats import paired_difference

    mine, theirs = entry.outputs, base.outputs
    deltas = {}
    for name, better in outputs:
        d = paired_difference(mine, theirs, name)
        verdict = ""
        if d.significant and d.mean is not None:
            verdict = "better" if (d.mean > 0) == better else "worse"
        deltas[name] = {
            "mean": d.mean,
            "ci_low": d.ci_low,
            "ci_high": d.ci_high,
            "n": d.n_paired,
            "verdict": verdict,
            "sort": _sort_value(d.mean),
        }
    return deltas


def _best_first(entries: Sequence[Entry], name: str, better: bool) -> list[Entry]:
    """The entries with a mean for output ``name``, best first."""
    scored = [
        e
        for e in entries
        if isinstance((e.data["summary"].get(name) or {}).get("mean"), (int, float))
    ]
    return sorted(
        scored, key=lambda e: (-1 if better else 1) * float(e.data["summary"][name]["mean"])
    )


def _bar_chart(path: Path, title: str, rows: Sequence[tuple[str, Mapping[str, Any]]]) -> bool:
    """A horizontal bar chart of means with 95% CI error bars, first row on top; False when
    nothing to plot."""
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    points = [
        (label if len(label) <= 40 else label[:39] + "…", s["mean"], s["ci_low"], s["ci_high"])
        for label, s in rows
        if isinstance(s.get("mean"), (int, float))
    ]
    if not points:
        return False
    # Labels come from results files: never let matplotlib read '$' as mathtext.
    with rc_context({"text.parse_math": False, "text.usetex": False}):
        fig = Figure(figsize=(6.4, 0.45 * len(points) + 1.1), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        ys = list(range(len(points)))[::-1]
        means = [p[1] for p in points]
        low = [p[1] - p[2] if p[2] is not None else 0.0 for p in points]
        high = [p[3] - p[1] if p[3] is not None else 0.0 for p in points]
        ax.barh(ys, means, xerr=[low, high], color="#4c78a8", ecolor="#222", capsize=4)
        ax.set_yticks(ys, [p[0] for p in points])
        ax.set_title(title, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        fig.savefig(path)
    return True


def _spectrogram(path: Path, audio: Audio) -> None:
    """A small log-magnitude spectrogram (80 dB range) of ``audio`` as a PNG, no axes."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from scipy.signal import stft

    samples = audio.samples
    if len(samples) < 64:
        samples = np.pad(samples, (0, 64 - len(samples)))
    window = min(512, len(samples))
    _, _, spec = stft(samples, fs=audio.sample_rate, nperseg=window, noverlap=window * 3 // 4)
    db = 20 * np.log10(np.maximum(np.abs(spec), 1e-6))
    fig = Figure(figsize=(4.0, 1.6), dpi=80)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    top = float(db.max())
    ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=top - 80, vmax=top)
    ax.set_axis_off()
    fig.subplots_adjust(0, 0, 1, 1)
    fig.savefig(path)


def _pick_examples(outputs: Sequence[ScoredOutput], key: str, n: int) -> list[ScoredOutput]:
    """Up to ``n`` outputs with saved audio, one per value of ``meta[key]`` first."""
    with_audio = [o for o in outputs if isinstance(o.flags.get("audio"), str)]
    chosen: list[ScoredOutput] = []
    seen: set[str] = set()
    for output in with_audio:
        value = str(output.meta.get(key))
        if value not in seen and len(chosen) < n:
            chosen.append(output)
            seen.add(value)
    for output in with_audio:
        if len(chosen) >= n:
            break
        if output not in chosen:
            chosen.append(output)
    return sorted(chosen, key=lambda o: o.index)


def _saved_audio(entry: Entry, output: ScoredOutput) -> Path | None:
    """The file the run saved for ``output``, if its run folder is still there."""
    name = output.flags.get("audio")
    run_dir = (entry.data.get("source") or {}).get("run_dir")
    if not isinstance(name, str) or not isinstance(run_dir, str) or Path(name).name != name:
        return None
    path = Path(run_dir) / "audio" / name
    return path if path.is_file() else None


def _examples(
    entry: Entry,
    base: Entry | None,
    site: Path,
    slug: str,
    key: str,
    n: int,
    inputs: InputsFor | None,
    report: BuildReport,
) -> tuple[list[dict[str, Any]], str | None]:
    """Listening examples of one entry (copied into the site) or a note saying why none."""
    from gensr_bench.audio import read_audio, write_audio

    if n <= 0:
        return [], None
    outputs = entry.outputs
    picked = [o for o in _pick_examples(outputs, key, n) if _saved_audio(entry, o)]
    if not picked:
        saved = any(isinstance(o.flags.get("audio"), str) for o in outputs)
        if saved:
            return [], "The run saved audio, but its run folder is not on this machine."
        return [], "No audio was saved for this run (run it with `gensr-bench run --save-audio`)."
    base_outputs = {(o.utterance_id, o.index): o for o in base.outputs} if base else {}
    sources: Mapping[str, tuple[Audio | None, Audio | None]] = {}
    note = None
    if inputs is not None:
        try:
            sources = inputs(config_of(entry.data), [o.utterance_id for o in picked])
        except GensrError as exc:
            note = f"Degraded and reference audio are not shown: {exc}"
    else:
        note = "Degraded and reference audio are not shown (no suite to read them from)."
    folder = site / "audio" / slug
    folder.mkdir(parents=True, exist_ok=True)
    examples = []
    for number, output in enumerate(picked, start=1):
        degraded, reference = sources.get(output.utterance_id, (None, None))
        clips: list[tuple[str, Audio | None, Path | None]] = [("degraded", degraded, None)]
        if base is not None:
            base_output = base_outputs.get((output.utterance_id, output.index))
            base_file = _saved_audio(base, base_output) if base_output else None
            clips.append((f"base ({base.label})", None, base_file))
        clips.append((entry.label, None, _saved_audio(entry, output)))
        clips.append(("reference", reference, None))
        shown = []
        for role_no, (role, audio, file) in enumerate(clips):
            stem = f"{number}-{role_no}"
            if file is not None:
                audio = read_audio(file)
            if audio is None:
                shown.append({"role": role, "wav": None, "png": None})
                continue
            write_audio(folder / f"{stem}.wav", audio, subtype="PCM_16")
            _spectrogram(folder / f"{stem}.png", audio)
            shown.append(
                {
                    "role": role,
                    "wav": f"../audio/{slug}/{stem}.wav",
                    "png": f"../audio/{slug}/{stem}.png",
                }
            )
        examples.append(
            {
                "utterance_id": output.utterance_id,
                "meta": output.meta.get(key),
                "scores": [(name, _num(v)) for name, v in output.scores.items()],
                "clips": shown,
            }
        )
        report.examples += 1
    return examples, note


def _breakdown(entry: Entry, key: str) -> list[dict[str, Any]]:
    from gensr_bench.stats import group_by, summarise

    outputs = entry.outputs
    if not any(key in o.meta for o in outputs):
        return []
    directions = entry.directions
    rows = []
    for value, members in group_by(outputs, key).items():
        summaries = summarise(members, list(directions), directions.__getitem__)
        rows.append(
            {
                "value": value,
                "n": len(members),
                "cells": [
                    {
                        "mean": _num(s.mean),
                        "ci": f"[{_num(s.ci_low)}, {_num(s.ci_high)}]"
                        if s.mean is not None
                        else "",
                        "sort": _sort_value(s.mean),
                    }
                    for s in summaries
                ],
            }
        )
    return rows


def _provenance_view(prov: Mapping[str, Any]) -> dict[str, Any]:
    """The provenance fields a page shows, read defensively (the file is untrusted)."""

    def get(mapping: Any, *keys: str) -> Any:
        for k in keys:
            mapping = mapping.get(k) if isinstance(mapping, Mapping) else None
        return mapping

    listed = prov.get("plugins")
    plugins = [
        {
            "name": str(p.get("name")),
            "source": str(p.get("source")),
            "version": str(p.get("version")),
        }
        for p in (listed if isinstance(listed, list) else [])
        if isinstance(p, Mapping)
    ]
    sessions = prov.get("sessions")
    wall: list[Any] = []
    if isinstance(sessions, list):
        wall = [s.get("wall_s") for s in sessions if isinstance(s, Mapping)]
    return {
        "version": get(prov, "gensr_bench_version"),
        "commit": get(prov, "git", "commit"),
        "dirty": get(prov, "git", "dirty"),
        "seed": get(prov, "seed"),
        "python": get(prov, "machine", "python"),
        "platform": get(prov, "machine", "platform"),
        "cpu_count": get(prov, "machine", "cpu_count"),
        "wall_s": sum(w for w in wall if isinstance(w, (int, float))) if wall else None,
        "plugins": plugins,
        "weights": prov.get("metric_weights_sha256")
        if isinstance(prov.get("metric_weights_sha256"), Mapping)
        else {},
        "components": prov.get("components") if isinstance(prov.get("components"), Mapping) else {},
    }


def _prepare_out(out_dir: Path) -> Path:
    """A fresh staging folder beside ``out_dir``; refuses to replace a folder that is not a
    site this function built."""
    if out_dir.exists():
        if not out_dir.is_dir():
            raise EntryError(f"--out {out_dir} is a file; pass a folder for the site")
        if any(out_dir.iterdir()) and not (out_dir / SITE_MARKER).exists():
            raise EntryError(
                f"--out {out_dir} is not empty and holds no leaderboard site ({SITE_MARKER} is "
                "missing); refusing to replace it: choose an empty or new folder"
            )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.building-", dir=out_dir.parent))


def build(
    results_dir: str | Path,
    out_dir: str | Path,
    *,
    reported_dir: str | Path | None = None,
    breakdown_key: str = "degradation",
    examples: int = 3,
    inputs: InputsFor | None = None,
    generator: str = "gensr-bench",
) -> BuildReport:
    """Render the site for every entry in ``results_dir`` (and the published figures in
    ``reported_dir``, default ``results_dir/../reported``) into ``out_dir``.

    ``out_dir`` must be new, empty, or a site built here before (it is then replaced whole).
    ``inputs`` gives the degraded and reference audio of utterances for listening examples;
    without it only the model outputs are shown. Returns what was written and notes.
    """
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    results = Path(results_dir)
    out = Path(out_dir)
    entries = load_entries(results)
    reported = load_reported(results.parent / "reported" if reported_dir is None else reported_dir)
    report = BuildReport(out_dir=out, entries=len(entries))
    report.reported_rows = sum(len(t.rows) for t in reported)
    if not entries:
        report.notes.append(f"no entries in {results}: the site shows published figures only")
    by_id = {e.id: e for e in entries}
    slugs = unique_slugs(e.id for e in entries)
    groups = _groups(entries)
    report.suites = len(groups)

    stage = _prepare_out(out)
    try:
        (stage / "models").mkdir()
        (stage / "charts").mkdir()
        (stage / "entries").mkdir()
        (stage / "assets").mkdir()
        for asset in ("leaderboard.css", "leaderboard.js"):
            shutil.copyfile(TEMPLATES / asset, stage / "assets" / asset)
        env = Environment(
            loader=FileSystemLoader(str(TEMPLATES)),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        generated = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        common = {"generator": generator, "generated": generated}

        suite_views = []
        model_pages = []
        for group in groups:
            rows: list[dict[str, Any]] = []
            has_delta = False
            for entry in group.entries:
                base_id = entry.data.get("base")
                base = by_id.get(base_id) if base_id else None
                base_note = None
                if base_id and base is None:
                    base_note = f"base entry {base_id!r} is not in the results"
                elif base is not None and base.suite_key != entry.suite_key:
                    base_note = f"base entry {base_id!r} was measured on another suite"
                    base = None
                deltas = _deltas(entry, base, group.outputs) if base else {}
                has_delta = has_delta or bool(deltas)
                summary = entry.data["summary"]
                cells = []
                for name, _better in group.outputs:
                    s = summary.get(name) or {}
                    cells.append(
                        {
                            "mean": _num(s.get("mean")),
                            "ci": f"[{_num(s.get('ci_low'))}, {_num(s.get('ci_high'))}]"
                            if s.get("mean") is not None
                            else "",
                            "n": f"{s.get('n_scored', 0)}/{s.get('n_total', 0)}" if s else "",
                            "sort": _sort_value(s.get("mean")),
                        }
                    )
                rows.append(
                    {
                        "entry": entry,
                        "slug": slugs[entry.id],
                        "base": base,
                        "base_slug": slugs.get(base.id) if base else None,
                        "base_note": base_note,
                        "n": len(entry.data["utterances"]),
                        "cells": cells,
                        "deltas": [deltas.get(name) for name, _ in group.outputs],
                        "added": str(entry.data["added_at"])[:10],
                    }
                )
                model_pages.append((entry, group, base, base_note, deltas))
            if group.outputs:
                # Best first by the first output; entries without it go last.
                order = {
                    e.id: i for i, e in enumerate(_best_first(group.entries, *group.outputs[0]))
                }
                rows.sort(key=lambda row: order.get(row["entry"].id, len(order)))
            charts = []
            for name, better in group.outputs:
                chart = f"{group.slug}--{safe_name(name)}.png"
                title = f"{name} ({'higher' if better else 'lower'} is better), {group.title}"
                bars = [
                    (e.label, e.data["summary"][name])
                    for e in _best_first(group.entries, name, better)
                ]
                if _bar_chart(stage / "charts" / chart, title, bars):
                    charts.append({"file": f"charts/{chart}", "output": name})
                    report.charts += 1
            suite_views.append(
                {"group": group, "rows": rows, "has_delta": has_delta, "charts": charts}
            )

        paradigms = sorted(
            {e.paradigm for e in entries}
            | {str(r.get("paradigm")) for t in reported for r in t.rows if r.get("paradigm")}
        )
        index_html = env.get_template("index.html").render(
            suites=suite_views,
            reported=reported,
            paradigms=paradigms,
            num=_num,
            signed=_signed,
            sort_value=_sort_value,
            root="",
            **common,
        )
        (stage / "index.html").write_text(index_html)

        for entry, group, base, base_note, deltas in model_pages:
            slug = slugs[entry.id]
            shutil.copyfile(entry.path, stage / "entries" / f"{slug}.json")
            examples_view, examples_note = _examples(
                entry, base, stage, slug, breakdown_key, examples, inputs, report
            )
            if examples_note:
                report.notes.append(f"{entry.id}: {examples_note}")
            failures = [o for o in entry.outputs if o.errors]
            page = env.get_template("model.html").render(
                entry=entry,
                data=entry.data,
                slug=slug,
                group=group,
                base=base,
                base_slug=slugs.get(base.id) if base else None,
                base_note=base_note,
                deltas=deltas,
                breakdown_key=breakdown_key,
                breakdown=_breakdown(entry, breakdown_key),
                examples=examples_view,
                examples_note=examples_note,
                failures=failures,
                prov=_provenance_view(entry.data["provenance"]),
                pretty=_pretty,
                num=_num,
                signed=_signed,
                root="../",
                **common,
            )
            (stage / "models" / f"{slug}.html").write_text(page)
        (stage / SITE_MARKER).write_text("built by gensr-bench leaderboard build\n")
        if out.exists():
            shutil.rmtree(out)
        stage.replace(out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return report
