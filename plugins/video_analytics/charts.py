"""Server-side SVG charts for the dashboard (pure: standard library only, no JavaScript, no CDN).

Every chart is a self-contained ``<svg>`` string; every mark carries a ``<title>`` (hover text) and
``data-*`` attributes with its exact value, so a browser test can read back what is drawn. All text
is escaped. Every chart draws a bounded number of marks whatever the data: at most ``MAX_POINTS``
points per line, ``MAX_BINS`` histogram bars, ``MAX_BARS`` bars, and a heat strip bucketed to its
pixel width (the largest heat per bucket, said in its legend).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

from video_analytics.dashboard import bucket_max, bucket_runs, merge_bins, nice_step

W, H = 860, 260
PAD_L, PAD_R, PAD_T, PAD_B = 70, 40, 16, 46
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")
MAX_POINTS = 400
MAX_BINS = 60
MAX_BARS = 30


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _svg(body: str, label: str, width: int = W, height: int = H) -> str:
    return (f"<svg xmlns='http://www.w3.org/2000/svg' role='img' aria-label='{_e(label)}' "
            f"viewBox='0 0 {width} {height}' width='{width}' height='{height}' "
            f"font-family='sans-serif' font-size='11'>{body}</svg>")


def _y_axis(ymax: float, fmt: Callable[[float], str], x0: int, y0: int, h: int, w: int, ticks: int = 4) -> str:
    out = []
    for i in range(ticks + 1):
        v = ymax * i / ticks
        y = y0 - h * i / ticks
        out.append(f"<line x1='{x0}' x2='{x0 + w}' y1='{y:.1f}' y2='{y:.1f}' stroke='#e5e5e5'/>"
                   f"<text x='{x0 - 6}' y='{y + 4:.1f}' text-anchor='end' fill='#555'>{_e(fmt(v))}</text>")
    return "".join(out)


def empty(message: str, width: int = W, height: int = 80) -> str:
    return _svg(f"<text x='{width / 2}' y='{height / 2}' text-anchor='middle' fill='#777'>{_e(message)}</text>",
                message, width, height)


def line_chart(labels: Sequence[str], series: Sequence[tuple[str, Sequence[float | None], Callable[[float], str]]],
               title: str, threshold: tuple[str, float] | None = None) -> str:
    """One line per series over the x ``labels``; each series has its own y scale when there are two
    (left and right axes). ``None`` values leave a gap. ``threshold``: a dashed horizontal line at
    that value on the first series' scale."""
    if not labels:
        return empty(f"{title}: no data")
    if len(labels) > MAX_POINTS:
        k = math.ceil(len(labels) / MAX_POINTS)
        labels = list(labels[::k])
        series = [(f"{name} (max of {k})", bucket_max(values, k), fmt) for name, values, fmt in series]
    iw, ih = W - PAD_L - PAD_R - (50 if len(series) > 1 else 0), H - PAD_T - PAD_B
    x0, y0 = PAD_L, PAD_T + ih
    n = len(labels)
    xs = [x0 + (iw * (i + 0.5) / n) for i in range(n)]
    body = []
    for si, (name, values, fmt) in enumerate(series[:2]):
        known = [v for v in values if v is not None]
        top = max(known + ([threshold[1]] if threshold and si == 0 else []), default=0)
        ymax = nice_step(top * 1.05)
        color = COLORS[si]
        if si == 0:
            body.append(_y_axis(ymax, fmt, x0, y0, ih, iw))
        else:
            for i in range(5):
                y = y0 - ih * i / 4
                body.append(f"<text x='{x0 + iw + 6}' y='{y + 4:.1f}' fill='{color}'>{_e(fmt(ymax * i / 4))}</text>")
        pts = [(x, y0 - ih * v / ymax, v, lab) for x, v, lab in zip(xs, values, labels, strict=True) if v is not None]
        if len(pts) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in pts)
            body.append(f"<polyline fill='none' stroke='{color}' stroke-width='2' points='{path}'/>")
        for x, y, v, lab in pts:
            body.append(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='3.5' fill='{color}' class='point' "
                        f"data-series='{_e(name)}' data-x='{_e(lab)}' data-value='{_e(v)}'>"
                        f"<title>{_e(lab)} {_e(name)}: {_e(fmt(v))}</title></circle>")
        if si == 0 and threshold:
            ty = y0 - ih * threshold[1] / ymax
            body.append(f"<line x1='{x0}' x2='{x0 + iw}' y1='{ty:.1f}' y2='{ty:.1f}' stroke='#d62728' "
                        f"stroke-dasharray='6 4' class='threshold' data-value='{_e(threshold[1])}'/>"
                        f"<text x='{x0 + iw - 4}' y='{ty - 4:.1f}' text-anchor='end' fill='#d62728'>"
                        f"{_e(threshold[0])}</text>")
        body.append(f"<rect x='{x0 + 150 * si}' y='{H - 14}' width='10' height='10' fill='{color}'/>"
                    f"<text x='{x0 + 150 * si + 14}' y='{H - 5}'>{_e(name)}</text>")
    step = max(1, math.ceil(n / 12))
    for i in range(0, n, step):
        body.append(f"<text x='{xs[i]:.1f}' y='{y0 + 16}' text-anchor='middle' fill='#555'>{_e(labels[i])}</text>")
    body.append(f"<line x1='{x0}' x2='{x0 + iw}' y1='{y0}' y2='{y0}' stroke='#999'/>")
    return _svg("".join(body), title)


def histogram(bins: Sequence[dict], title: str, fmt_edge: Callable[[float], str]) -> str:
    """Bars of ``{"lo", "hi", "count"}`` (neighbours merged down to at most ``MAX_BINS``)."""
    if not bins:
        return empty(f"{title}: no data")
    bins = merge_bins(bins, MAX_BINS)
    iw, ih = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    x0, y0 = PAD_L, PAD_T + ih
    ymax = nice_step(max(b["count"] for b in bins) * 1.05)
    bw = iw / len(bins)
    body = [_y_axis(ymax, lambda v: f"{v:,.0f}", x0, y0, ih, iw)]
    for i, b in enumerate(bins):
        h = ih * b["count"] / ymax
        x = x0 + i * bw
        body.append(f"<rect x='{x + 1:.1f}' y='{y0 - h:.1f}' width='{max(bw - 2, 1):.1f}' height='{h:.1f}' "
                    f"fill='{COLORS[0]}' class='bar' data-lo='{_e(b['lo'])}' data-hi='{_e(b['hi'])}' "
                    f"data-value='{b['count']}'><title>{_e(fmt_edge(b['lo']))} – {_e(fmt_edge(b['hi']))}: "
                    f"{b['count']:,} users</title></rect>")
    step = max(1, math.ceil(len(bins) / 10))
    for i in range(0, len(bins) + 1, step):
        edge = bins[i]["lo"] if i < len(bins) else bins[-1]["hi"]
        body.append(f"<text x='{x0 + i * bw:.1f}' y='{y0 + 16}' text-anchor='middle' fill='#555'>{_e(fmt_edge(edge))}</text>")
    body.append(f"<text x='{x0 + iw / 2}' y='{H - 6}' text-anchor='middle' fill='#555'>online time per user</text>")
    return _svg("".join(body), title)


def bar_chart(rows: Sequence[dict], key: str, title: str, fmt: Callable[[float], str]) -> str:
    """Horizontal bars, one per row (the first ``MAX_BARS``), labelled ``vid (kid)``, longest first as given."""
    if not rows:
        return empty(f"{title}: no data", width=420)
    rows = rows[:MAX_BARS]
    width, row_h = 420, 22
    x0, lw = 130, 420 - 130 - 70
    height = PAD_T + row_h * len(rows) + 10
    vmax = max(float(r[key] or 0) for r in rows) or 1.0
    body = []
    for i, r in enumerate(rows):
        y = PAD_T + i * row_h
        w = lw * float(r[key] or 0) / vmax
        label = f"{r['vid']} ({r.get('kid', '')})"
        body.append(f"<text x='{x0 - 6}' y='{y + 14}' text-anchor='end'>{_e(label)}</text>"
                    f"<rect x='{x0}' y='{y + 3}' width='{max(w, 1):.1f}' height='{row_h - 6}' fill='{COLORS[0]}' "
                    f"class='bar' data-vid='{_e(r['vid'])}' data-value='{_e(r[key])}'>"
                    f"<title>{_e(label)}: {_e(fmt(r[key]))}</title></rect>"
                    f"<text x='{x0 + w + 4:.1f}' y='{y + 14}' fill='#333'>{_e(fmt(r[key]))}</text>")
    return _svg("".join(body), title, width, height)


def heat_strip(runs: Sequence[dict], title: str) -> str:
    """A video's timeline (seconds) with each merged run coloured by its heat, and a step line of
    the heat above it. More runs than the strip's pixel width are drawn as one bar per bucket of
    the timeline (``class='bucket'``) with the largest heat in it, as its legend says."""
    if not runs:
        return empty(f"{title}: no segments")
    iw, ih = W - PAD_L - PAD_R, H - PAD_T - PAD_B - 30
    x0, y0 = PAD_L, PAD_T + ih
    marks, step = bucket_runs(runs, iw)
    cls, legend = "run", ""
    if step is not None:
        cls = "bucket"
        legend = f"{len(runs):,} runs drawn as {len(marks):,} bars: the max heat per {step:,} s of the timeline"
        title = f"{title} ({legend})"
    end = max(r["end"] for r in marks) or 1
    hmax = max(r["heat"] for r in marks) or 1
    ymax = nice_step(hmax * 1.05)
    body = [_y_axis(ymax, lambda v: f"{v:,.0f}", x0, y0, ih, iw)]
    for r in marks:
        x, w = x0 + iw * r["start"] / end, iw * (r["end"] - r["start"]) / end
        h = ih * r["heat"] / ymax
        t = r["heat"] / hmax
        color = f"rgb({int(255 * t)},{int(80 + 60 * (1 - t))},{int(255 * (1 - t))})"
        tip = f"{r['start']}–{r['end']} s: {'max ' if step else ''}heat {r['heat']:,}"
        body.append(f"<rect x='{x:.2f}' y='{y0 - h:.2f}' width='{max(w, 0.5):.2f}' height='{h:.2f}' fill='{color}' "
                    f"class='{cls}' data-start='{r['start']}' data-end='{r['end']}' data-value='{r['heat']}'>"
                    f"<title>{_e(tip)}</title></rect>"
                    f"<rect x='{x:.2f}' y='{y0 + 8}' width='{max(w, 0.5):.2f}' height='14' fill='{color}'/>")
    for i in range(6):
        s = end * i / 5
        body.append(f"<text x='{x0 + iw * i / 5:.1f}' y='{y0 + 38}' text-anchor='middle' fill='#555'>{s:,.0f} s</text>")
    if legend:
        body.append(f"<text x='{x0}' y='{H - 4}' fill='#555' class='legend'>{_e(legend)}</text>")
    return _svg("".join(body), title)
