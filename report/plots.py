"""The report's plots as inline SVG strings (matplotlib, Agg-free SVG backend: no display, no network, no CDN).

Each function takes a section of `report.data.collect` and returns one `<svg>` element, or None when the section
holds nothing to draw (the page then says so in words instead of showing an empty frame). The SVG is
deterministic: no date in its metadata, a fixed id salt, and text kept as text (`svg.fonttype = none`), so the
same run gives the same bytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

KEPT, DROPPED, OTHER, THRESHOLD = "#2e7d32", "#c62828", "#1565c0", "#000000"
MAX_BARS = 20  # categories shown in a bar chart (the rest are summed as "other")


@contextmanager
def _figure(width: float, height: float, layout: str | None = "constrained") -> Iterator[Any]:
    import matplotlib
    from matplotlib.figure import Figure

    # A bare Figure (no pyplot): no GUI backend, no global figure state shared between calls or threads.
    with matplotlib.rc_context(
        {
            "svg.hashsalt": "corpusforge",
            "svg.fonttype": "none",
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    ):
        yield Figure(figsize=(width, height), layout=layout)


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    # Inline: drop the XML declaration and DOCTYPE that precede <svg>.
    return text[text.index("<svg") :]


def _render(width: float, height: float, draw: Any, layout: str | None = "constrained") -> str:
    with _figure(width, height, layout) as fig:
        draw(fig)
        return _svg(fig)


def funnel(rows: list[dict[str, Any]]) -> str | None:
    """Documents out of each step (bars), with what each step dropped or quarantined stacked on top."""
    if not rows:
        return None

    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        steps = [r["step"] for r in rows][::-1]
        out = [r["docs_out"] for r in rows][::-1]
        lost = [r["dropped"] + r["quarantined"] for r in rows][::-1]
        ax.barh(steps, out, color=KEPT, label="out")
        ax.barh(steps, lost, left=out, color=DROPPED, label="dropped / quarantined")
        for y, (o, x) in enumerate(zip(out, lost)):
            ax.text(o + x, y, f" {o:,}", va="center", fontsize=8)
        ax.set_xlabel("documents")
        ax.set_title("Funnel: documents per step")
        ax.legend(loc="lower right", frameon=False)

    return _render(7, 0.45 * len(rows) + 1.2, draw)


def languages(rows: list[dict[str, Any]]) -> str | None:
    """Documents of the final corpus per language."""
    if not rows:
        return None
    rows = _top(rows, "lang", "docs")

    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        ax.bar([r["lang"] for r in rows], [r["docs"] for r in rows], color=OTHER)
        ax.set_ylabel("documents")
        ax.set_title("Languages of the final corpus")
        ax.tick_params(axis="x", rotation=45)

    return _render(7, 3, draw)


def lengths(rows: list[dict[str, Any]]) -> str | None:
    """Box plots of document length (characters) per domain and source; whiskers at p10 / p90."""
    if not rows:
        return None

    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        stats = [
            {
                "label": f"{r['domain']} / {r['source']} ({r['docs']:,})",
                "whislo": max(r["p10"], 1),
                "q1": max(r["p25"], 1),
                "med": max(r["p50"], 1),
                "q3": max(r["p75"], 1),
                "whishi": max(r["p90"], 1),
                "mean": max(r["mean"], 1),
                "fliers": [],
            }
            for r in rows
        ]
        ax.bxp(
            stats[::-1], orientation="horizontal", showmeans=True, patch_artist=True, boxprops={"facecolor": "#bbdefb"}
        )
        ax.set_xscale("log")
        ax.set_xlabel("characters per document (log; whiskers p10-p90, triangle: mean)")
        ax.set_title("Document length per domain / source")

    return _render(7, 0.45 * len(rows) + 1.3, draw)


def quality(items: list[dict[str, Any]], max_panels: int = 9) -> str | None:
    """Score histograms per drop reason, kept (green) and dropped (red), with the threshold as a dashed line."""
    items = [q for q in items if q["dropped_scores"] or q["kept_scores"]][:max_panels]
    if not items:
        return None
    cols = min(3, len(items))
    nrows = math.ceil(len(items) / cols)

    def draw(fig: Any) -> None:
        axes = fig.subplots(nrows, cols, squeeze=False)
        # Fixed margins: the constrained layout solver costs seconds on a grid of histograms.
        fig.subplots_adjust(
            left=0.07,
            right=0.98,
            top=1 - 0.3 / (2.4 * nrows + 0.3),
            bottom=0.5 / (2.4 * nrows + 0.3),
            hspace=0.55,
            wspace=0.28,
        )
        for ax, q in zip(axes.flat, items):
            values = q["dropped_scores"] + q["kept_scores"]
            lo, hi = min(values), max(values)
            if q["threshold"] is not None:
                lo, hi = min(lo, q["threshold"]), max(hi, q["threshold"])
            bins = _bins(lo, hi)
            if q["kept_scores"]:
                ax.hist(q["kept_scores"], bins=bins, color=KEPT, alpha=0.6, histtype="stepfilled", label="kept")
            if q["dropped_scores"]:
                ax.hist(
                    q["dropped_scores"], bins=bins, color=DROPPED, alpha=0.6, histtype="stepfilled", label="dropped"
                )
            if q["threshold"] is not None:
                ax.axvline(
                    q["threshold"],
                    color=THRESHOLD,
                    linestyle="--",
                    linewidth=1.2,
                    label=f"threshold {q['threshold']:g}",
                )
            ax.set_title(q["reason"], fontsize=8)
            ax.legend(fontsize=7, frameon=False)
        for ax in list(axes.flat)[len(items) :]:
            ax.set_visible(False)

    return _render(7.5, 2.4 * nrows + 0.3, draw, layout=None)


def duplicate_clusters(dup: dict[str, Any]) -> str | None:
    """How many duplicate clusters of each size each method found (log counts)."""
    methods = {m: v["size_counts"] for m, v in dup.get("methods", {}).items() if v["size_counts"]}
    if not methods:
        return None

    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        sizes = sorted({int(s) for counts in methods.values() for s in counts})
        width = 0.8 / len(methods)
        for i, (method, counts) in enumerate(sorted(methods.items())):
            xs = [j + i * width for j in range(len(sizes))]
            ax.bar(xs, [counts.get(s, 0) for s in sizes], width=width, label=method, color=[OTHER, "#ef6c00"][i % 2])
        ax.set_xticks([j + width * (len(methods) - 1) / 2 for j in range(len(sizes))], [str(s) for s in sizes])
        ax.set_yscale("log")
        ax.set_xlabel("cluster size (documents)")
        ax.set_ylabel("clusters")
        ax.set_title("Duplicate-cluster sizes")
        ax.legend(frameon=False)

    return _render(7, 3, draw)


def tokens(tok: dict[str, Any]) -> str | None:
    """Tokens per stage and source: the mixture's budget beside the tokens packed into shards."""
    packed = {(p["stage"], p["source"]): p["tokens"] for p in tok.get("packed", [])}
    budget = {b["source"]: b.get("budget_tokens") or 0 for b in tok.get("budget", [])}
    labels = sorted({s for _, s in packed} | set(budget))
    if not labels:
        return None
    stages = sorted({st for st, _ in packed})

    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        series = [("budget", [budget.get(s, 0) for s in labels], "#90a4ae")]
        series += [(f"packed ({st})", [packed.get((st, s), 0) for s in labels], OTHER) for st in stages]
        height = 0.8 / len(series)
        for i, (name, values, color) in enumerate(series):
            ax.barh([j + i * height for j in range(len(labels))], values, height=height, label=name, color=color)
        ax.set_yticks([j + height * (len(series) - 1) / 2 for j in range(len(labels))], labels)
        ax.set_xlabel("tokens")
        ax.set_title("Tokens per stage and source")
        ax.legend(frameon=False)

    return _render(7, 0.35 * len(labels) * (len(stages) + 1) + 1.3, draw)


def synth(rows: list[dict[str, Any]]) -> str | None:
    """Synthetic documents per template, stacked by their fate (kept, or the reason they were dropped)."""
    if not rows:
        return None
    templates = sorted({r["template"] for r in rows})
    fates = sorted({r["fate"] for r in rows}, key=lambda f: (f != "kept", f))
    counts = {(r["template"], r["fate"]): r["docs"] for r in rows}

    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        left = [0] * len(templates)
        for k, fate in enumerate(fates):
            values = [counts.get((t, fate), 0) for t in templates]
            color = KEPT if fate == "kept" else f"C{(k % 9) + 1}"
            ax.barh(templates, values, left=left, label=fate, color=color)
            left = [a + b for a, b in zip(left, values)]
        ax.set_xlabel("synthetic documents")
        ax.set_title("Synthetic documents' fate per template")
        ax.legend(frameon=False, fontsize=7)

    return _render(7, 0.5 * len(templates) + 1.5, draw)


def trainer(train: dict[str, Any]) -> str | None:
    """Loss, learning rate and min/max expert-load share against the optimizer step."""
    points = [p for p in train.get("points", []) if p.get("loss") is not None]
    if not points:
        return None

    def draw(fig: Any) -> None:
        ax_loss, ax_lr, ax_load = fig.subplots(1, 3)
        for stage in sorted({p.get("stage") or "" for p in points}):
            ps = [p for p in points if (p.get("stage") or "") == stage]
            steps = [p["step"] for p in ps]
            ax_loss.plot(steps, [p["loss"] for p in ps], label=stage or None)
            ax_lr.plot(steps, [p.get("lr") or 0 for p in ps])
            if any(p.get("load_max") is not None for p in ps):
                ax_load.plot(steps, [p.get("load_max") for p in ps], color=DROPPED, label="max expert share")
                ax_load.plot(steps, [p.get("load_min") for p in ps], color=OTHER, label="min expert share")
        ax_loss.set_title("loss")
        ax_lr.set_title("learning rate")
        ax_load.set_title("expert load (share of routed tokens)")
        for ax in (ax_loss, ax_lr, ax_load):
            ax.set_xlabel("step")
        if ax_load.lines:
            ax_load.legend(frameon=False, fontsize=7)

    return _render(9, 2.8, draw)


def ablation_curves(rows: list[dict[str, Any]]) -> str | None:
    """The proxies' training loss against the optimizer step, one line per candidate and seed (an ablation's
    curves.parquet rows: candidate, seed, step, loss)."""
    points = [r for r in rows if r.get("loss") is not None]
    if not points:
        return None
    lines = sorted({(r["candidate"], r["seed"]) for r in points})
    candidates = list(dict.fromkeys(c for c, _ in lines))

    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        colors = _colors(len(candidates))
        for cand, seed in lines:
            ps = sorted((r["step"], r["loss"]) for r in points if r["candidate"] == cand and r["seed"] == seed)
            first_seed = seed == min(s for c, s in lines if c == cand)
            ax.plot(
                [p[0] for p in ps],
                [p[1] for p in ps],
                color=colors[candidates.index(cand)],
                lw=1,
                label=cand if first_seed else None,
            )
        ax.set_xlabel("step")
        ax.set_ylabel("training loss (nats per token)")
        ax.set_title("Proxy training loss per candidate (one line per seed)")
        if len(candidates) <= 16:
            ax.legend(frameon=False, fontsize=7, ncol=2)

    return _render(8, 3.2, draw)


def search_fit(candidates: list[dict[str, Any]], proposal: dict[str, Any] | None = None) -> str | None:
    """The mixture search's regression: each proxy's measured target against the fit's prediction (filled) and the
    leave-one-out prediction (hollow), with the line where they agree; the trained proposal (its `measured` and
    `predicted_realised`) as a star, when there is one."""
    if not candidates:
        return None
    extra = [proposal["measured"], proposal["predicted_realised"]] if proposal else []

    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        measured = [c["measured"] for c in candidates]
        ax.scatter(measured, [c["predicted"] for c in candidates], color=OTHER, label="fit", zorder=3)
        ax.scatter(
            measured,
            [c["loo_predicted"] for c in candidates],
            facecolors="none",
            edgecolors=DROPPED,
            label="leave-one-out",
            zorder=3,
        )
        if proposal:
            ax.scatter(*extra, marker="*", s=90, color=KEPT, label="proposal, trained", zorder=4)
        values = measured + [c["predicted"] for c in candidates] + [c["loo_predicted"] for c in candidates] + extra
        lo, hi = min(values), max(values)
        pad = (hi - lo) * 0.05 or 0.01
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color=THRESHOLD, lw=0.8, ls="--")
        for c in candidates:
            ax.annotate(
                c["candidate"], (c["measured"], c["predicted"]), fontsize=6, xytext=(3, 3), textcoords="offset points"
            )
        ax.set_xlabel("measured bits per byte")
        ax.set_ylabel("predicted bits per byte")
        ax.set_title("Mixture search: the regression's fit")
        ax.legend(frameon=False, fontsize=7)

    return _render(5, 4, draw)


def _colors(n: int) -> list[Any]:
    """`n` distinct colours (tab10, then tab20's, then a colormap's)."""
    from matplotlib import colormaps

    if n <= 10:
        return [colormaps["tab10"](i) for i in range(n)]
    if n <= 20:
        return [colormaps["tab20"](i) for i in range(n)]
    return [colormaps["viridis"](i / max(n - 1, 1)) for i in range(n)]


def _top(rows: list[dict[str, Any]], label: str, value: str) -> list[dict[str, Any]]:
    if len(rows) <= MAX_BARS:
        return rows
    head, rest = rows[: MAX_BARS - 1], rows[MAX_BARS - 1 :]
    return [*head, {label: "other", value: sum(r[value] for r in rest)}]


def _bins(lo: float, hi: float, n: int = 30) -> list[float]:
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    step = (hi - lo) / n
    return [lo + i * step for i in range(n + 1)]
