"""Server-side SVG charts for the dashboard (no JavaScript, no CDN; no Airflow, no I/O but reading
its templates).

Every chart is a self-contained ``<svg>`` (``markupsafe.Markup``) rendered from a Jinja2 template in
``templates/`` with autoescaping, so every text in it is escaped; this module only computes where
the marks go. Every mark carries a ``<title>`` (hover text) and ``data-*`` attributes with its exact
value, so a browser test can read back what is drawn. Every chart draws a bounded number of marks
whatever the data: at most ``MAX_POINTS`` points per line, ``MAX_BINS`` histogram bars, ``MAX_BARS``
bars, and a heat strip bucketed to its pixel width (the largest heat per bucket, said in its legend).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from video_analytics.dashboard import bucket_max, bucket_runs, merge_bins, nice_step

W, H = 860, 260
PAD_L, PAD_R, PAD_T, PAD_B = 70, 40, 16, 46
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")
MAX_POINTS = 400
MAX_BINS = 60
MAX_BARS = 30

_TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"), autoescape=True,
                         undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _render(template: str, label: str, width: int = W, height: int = H, **context) -> Markup:
    return Markup(_TEMPLATES.get_template(template).render(label=label, width=width, height=height, **context))


def _ticks(ymax: float, fmt: Callable[[float], str], y0: int, h: int, ticks: int = 4) -> list[dict]:
    """The y axis' grid lines: ``{"y", "ty" (its label's baseline), "text"}`` from 0 to ``ymax``."""
    out = []
    for i in range(ticks + 1):
        y = y0 - h * i / ticks
        out.append({"y": f"{y:.1f}", "ty": f"{y + 4:.1f}", "text": fmt(ymax * i / ticks)})
    return out


def empty(message: str, width: int = W, height: int = 80) -> Markup:
    return _render("empty.svg", message, width, height)


def line_chart(labels: Sequence[str], series: Sequence[tuple[str, Sequence[float | None], Callable[[float], str]]],
               title: str, threshold: tuple[str, float] | None = None, top: float | None = None,
               shared: bool = False) -> Markup:
    """One line per series over the x ``labels``; each series has its own y scale when there are two
    (left and right axes). ``None`` values leave a gap: the line breaks there. ``threshold``: a dashed horizontal line at
    that value on the first series' scale; ``top``: the first scale's top when no value passes it (a
    share's 100%). ``shared``: every series (up to ``len(COLORS)``) on the first series' scale, one axis.
    More than ``MAX_POINTS`` labels: the largest value of each
    run of k neighbours, the series named ``(max of k)``."""
    if not labels:
        return empty(f"{title}: no data")
    if len(labels) > MAX_POINTS:
        k = math.ceil(len(labels) / MAX_POINTS)
        labels = list(labels[::k])
        series = [(f"{name} (max of {k})", bucket_max(values, k), fmt) for name, values, fmt in series]
    series = series[:len(COLORS)] if shared else series[:2]
    iw, ih = W - PAD_L - PAD_R - (50 if len(series) > 1 and not shared else 0), H - PAD_T - PAD_B
    x0, y0 = PAD_L, PAD_T + ih
    n = len(labels)
    xs = [x0 + (iw * (i + 0.5) / n) for i in range(n)]
    axes, lines, thr = [], [], None
    everything = [v for _, values, _ in series for v in values if v is not None]
    for si, (name, values, fmt) in enumerate(series):
        if si == 0 or not shared:  # a scale of its own (shared: the first one's, over every series)
            known = everything if shared else [v for v in values if v is not None]
            ymax = nice_step(max(known + ([threshold[1]] if threshold and si == 0 else []), default=0) * 1.05)
            if si == 0 and top is not None and max(known, default=0) <= top:
                ymax = top
            axes.append(_ticks(ymax, fmt, y0, ih))
        runs: list[list[dict]] = [[]]
        for x, v, lab in zip(xs, values, labels, strict=True):
            if v is None:
                runs.append([])  # no value: the line breaks (a day without results is a gap)
            else:
                runs[-1].append({"x": f"{x:.1f}", "y": f"{y0 - ih * v / ymax:.1f}", "value": v, "label": lab,
                                 "text": fmt(v)})
        lines.append({"name": name, "color": COLORS[si], "points": [p for r in runs for p in r],
                      "runs": [r for r in runs if len(r) > 1], "legend_x": x0 + (210 if shared else 150) * si})
        if si == 0 and threshold:
            ty = y0 - ih * threshold[1] / ymax
            thr = {"y": f"{ty:.1f}", "ty": f"{ty - 4:.1f}", "value": threshold[1], "label": threshold[0]}
    step = max(1, math.ceil(n / 12))
    xlabels = [{"x": f"{xs[i]:.1f}", "text": labels[i]} for i in range(0, n, step)]
    return _render("line.svg", title, left=axes[0] if axes else [], right=axes[1] if len(axes) > 1 else [],
                   lines=lines, threshold=thr, xlabels=xlabels, x0=x0, x1=x0 + iw, y0=y0)


def histogram(bins: Sequence[dict], title: str, fmt_edge: Callable[[float], str]) -> Markup:
    """Bars of ``{"lo", "hi", "count"}`` (neighbours merged down to at most ``MAX_BINS``)."""
    if not bins:
        return empty(f"{title}: no data")
    bins = merge_bins(bins, MAX_BINS)
    iw, ih = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    x0, y0 = PAD_L, PAD_T + ih
    ymax = nice_step(max(b["count"] for b in bins) * 1.05)
    bw = iw / len(bins)
    bars = []
    for i, b in enumerate(bins):
        h = ih * b["count"] / ymax
        bars.append({"x": f"{x0 + i * bw + 1:.1f}", "y": f"{y0 - h:.1f}", "w": f"{max(bw - 2, 1):.1f}",
                     "h": f"{h:.1f}", "lo": b["lo"], "hi": b["hi"], "count": b["count"],
                     "lo_text": fmt_edge(b["lo"]), "hi_text": fmt_edge(b["hi"])})
    step = max(1, math.ceil(len(bins) / 10))
    xlabels = [{"x": f"{x0 + i * bw:.1f}", "text": fmt_edge(bins[i]["lo"] if i < len(bins) else bins[-1]["hi"])}
               for i in range(0, len(bins) + 1, step)]
    return _render("histogram.svg", title, left=_ticks(ymax, lambda v: f"{v:,.0f}", y0, ih), bars=bars,
                   xlabels=xlabels, color=COLORS[0], x0=x0, x1=x0 + iw, y0=y0)


def bar_chart(rows: Sequence[dict], key: str, title: str, fmt: Callable[[float], str]) -> Markup:
    """Horizontal bars, one per row (the first ``MAX_BARS``, with a note of the rest), labelled
    ``vid (category)`` (its ``category``, else its ``kid``), longest first as given."""
    if not rows:
        return empty(f"{title}: no data", width=420)
    more = f"{len(rows) - MAX_BARS:,} more not shown" if len(rows) > MAX_BARS else ""
    rows = rows[:MAX_BARS]
    width, row_h = 420, 22
    x0, lw = 130, 420 - 130 - 70
    vmax = max(float(r[key] or 0) for r in rows) or 1.0
    bars = []
    for i, r in enumerate(rows):
        w = lw * float(r[key] or 0) / vmax
        bars.append({"y": PAD_T + i * row_h, "w": f"{max(w, 1):.1f}", "tx": f"{x0 + w + 4:.1f}", "vid": r["vid"],
                     "value": r[key], "label": f"{r['vid']} ({r.get('category', r.get('kid', ''))})", "text": fmt(r[key])})
    height = PAD_T + row_h * len(rows) + 10 + (14 if more else 0)
    return _render("bars.svg", title, width, height, bars=bars, more=more, x0=x0, row_h=row_h, color=COLORS[0])


HEAT_WIDTH = W - PAD_L - PAD_R  # the heat strip's pixels: at most one mark each


def heat_strip(runs: Sequence[dict], title: str, count: int | None = None, step: int | None = None) -> Markup:
    """A video's timeline (seconds) with each merged run coloured by its heat, and a step line of
    the heat above it. More runs than the strip's pixel width are drawn as one bar per bucket of
    the timeline (``class='bucket'``) with the largest heat in it, as its legend says. ``count`` given:
    ``runs`` are already ``bucket_runs(runs, HEAT_WIDTH)`` of ``count`` runs, ``step`` seconds per bucket."""
    if not runs:
        return empty(f"{title}: no segments")
    iw, ih = HEAT_WIDTH, H - PAD_T - PAD_B - 30
    x0, y0 = PAD_L, PAD_T + ih
    if count is None:
        count = len(runs)
        runs, step = bucket_runs(runs, iw)
    legend = ""
    if step is not None:
        legend = f"{count:,} runs drawn as {len(runs):,} bars: the max heat per {step:,} s of the timeline"
        title = f"{title} ({legend})"
    end = max(r["end"] for r in runs) or 1
    hmax = max(r["heat"] for r in runs) or 1
    ymax = nice_step(hmax * 1.05)
    marks = []
    for r in runs:
        h, t = ih * r["heat"] / ymax, r["heat"] / hmax
        marks.append({"x": f"{x0 + iw * r['start'] / end:.2f}", "w": f"{max(iw * (r['end'] - r['start']) / end, 0.5):.2f}",
                      "y": f"{y0 - h:.2f}", "h": f"{h:.2f}", "start": r["start"], "end": r["end"], "heat": r["heat"],
                      "color": f"rgb({int(255 * t)},{int(80 + 60 * (1 - t))},{int(255 * (1 - t))})"})
    xlabels = [{"x": f"{x0 + iw * i / 5:.1f}", "text": f"{end * i / 5:,.0f} s"} for i in range(6)]
    return _render("heat.svg", title, left=_ticks(ymax, lambda v: f"{v:,.0f}", y0, ih), marks=marks, xlabels=xlabels,
                   legend=legend, cls="bucket" if step else "run", x0=x0, x1=x0 + iw, y0=y0)
