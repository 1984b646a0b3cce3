"""The report's scores section: each scorer's score histogram per domain and per language over the final corpus
(`scores[<name>]` of the `docs` view), and, when the mixture has score buckets, the share of the packed tokens each
bucket got (the manifest's budget rows, `[mixture.score_buckets]`).

`collect_scores` reads the run (report/data.py calls it); report/html.py renders it with `scores_plot`, `score_rows`
and `bucket_rows`. The histograms are counts in `BINS` equal bins over [0, 1], so the same run gives the same page; a perplexity
scorer's (`kind = "perplexity"`, whose `1 / perplexity` sits between 0.0001 and 0.1 on real text) over log10 of the
perplexity, 0 to `LOG10_PERPLEXITY_MAX` (the last bin holds everything above), where prose and its shuffle fall
apart (~1.5 against ~3.2 for SmolLM2 on novels).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

BINS = 20
LOG10_PERPLEXITY_MAX = 4.0  # the axis of a perplexity scorer's histogram: perplexity 1 to 10,000
MAX_PLOTTED = 8  # score keys drawn (the first in name order); the table has them all
MAX_LANGS = 10  # languages drawn per scorer (the most documents first); the rest are summed as "other"


def collect_scores(con: Any, summary: dict[str, Any]) -> dict[str, Any]:
    """`{"bins", "scorers": [{name, docs, mean, by_domain, by_lang}], "buckets": [{bucket, tokens, share}], "models"}`
    (`models`: funnel.json's `scorers`, one entry per `[scorers]` model, see stage/run.py).

    Args:
        con: a `report.views.connect` connection to the run.
        summary: the run's funnel.json (its `shards.budget` rows carry the buckets).
    """
    names = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT unnest(map_keys(scores)) AS k FROM docs WHERE scores IS NOT NULL ORDER BY k"
        ).fetchall()
    ]
    perplexity = {m["name"] for m in summary.get("scorers", []) if m.get("kind") == "perplexity"}
    return {
        "bins": BINS,
        "scorers": [_scorer(con, name, name in perplexity) for name in names],
        "buckets": _buckets(summary),
        "models": summary.get("scorers", []),  # the stage's [scorers] models: what each learnt from, at what cost
    }


def _scorer(con: Any, name: str, perplexity: bool = False) -> dict[str, Any]:
    # A perplexity scorer's bins are over log10(perplexity) = -log10(score); a score of 0 (an empty text) is the last.
    value = f"-log10(greatest(scores[$name], 1e-300)) / {LOG10_PERPLEXITY_MAX}" if perplexity else "scores[$name]"
    bucket = f"least(greatest(CAST(floor({value} * {BINS}) AS INTEGER), 0), {BINS - 1})"
    docs, mean = con.execute(
        "SELECT count(*), avg(scores[$name]) FROM docs WHERE scores[$name] IS NOT NULL", {"name": name}
    ).fetchone()
    hist: dict[str, dict[str, list[int]]] = {"domain": {}, "lang": {}}
    for column in hist:
        rows = con.execute(
            f"SELECT coalesce(CAST({column} AS VARCHAR), 'und'), {bucket}, count(*) FROM docs "
            "WHERE scores[$name] IS NOT NULL GROUP BY ALL ORDER BY ALL",
            {"name": name},
        ).fetchall()
        for group, b, n in rows:
            hist[column].setdefault(group, [0] * BINS)[b] += n
    return {
        "name": name,
        "docs": docs,
        "mean": round(mean, 4) if mean is not None else None,
        "by_domain": hist["domain"],
        "by_lang": _top_langs(hist["lang"]),
        **({"axis": "log10_perplexity"} if perplexity else {}),
    }


def _top_langs(by_lang: dict[str, list[int]]) -> dict[str, list[int]]:
    ranked = sorted(by_lang.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
    top = dict(ranked[:MAX_LANGS])
    if len(ranked) > MAX_LANGS:
        top["other"] = [sum(col) for col in zip(*(counts for _, counts in ranked[MAX_LANGS:]))]
    return top


def _buckets(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Tokens selected per score bucket (rows without a bucket: "unscored"), when any budget row has one."""
    rows = (summary.get("shards") or {}).get("budget") or []
    if not any("bucket" in r for r in rows):
        return []
    tokens: dict[str, int] = {}
    for r in rows:
        key = r.get("bucket") or "unscored"
        tokens[key] = tokens.get(key, 0) + int(r.get("selected_tokens") or 0)
    total = sum(tokens.values())
    return [
        {"bucket": b, "tokens": n, "share": round(n / total, 4) if total else 0.0} for b, n in sorted(tokens.items())
    ]


SCORES_COLUMNS = ["scorer", "by", "group", "documents", "mean (bin centres)"]
BUCKET_COLUMNS = ["score bucket", "tokens selected", "share of tokens"]
NOTE = (
    "Each kept document's score from each [scorers] classifier, counted in bins of 1/{bins} (a perplexity scorer's: "
    "log10 of the perplexity, 0 to 4); the bucket table is the share of the packed tokens each "
    "[mixture.score_buckets] bucket got."
)


def has_scores(section: dict[str, Any] | None) -> bool:
    """Whether the run has anything for the section (a scorer ran, or the mixture planned buckets)."""
    return bool(section and (section["scorers"] or section["buckets"] or section.get("models")))


def score_rows(section: dict[str, Any]) -> list[list[Any]]:
    """One table row per scorer and domain or language: documents and the histogram's mean."""
    return [
        [s["name"], kind, group, sum(counts), _mean(counts)]
        for s in section["scorers"]
        for kind, groups in (("domain", s["by_domain"]), ("language", s["by_lang"]))
        for group, counts in groups.items()
    ]


MODEL_COLUMNS = ["scorer", "mode", "kind", "learnt from", "labels", "annotation cost", "held-out AUC / macro-F1"]


def model_rows(section: dict[str, Any]) -> list[list[Any]]:
    """One row per `[scorers]` model: what it learnt from and, for an LLM's labels, what they cost."""
    rows = []
    for m in section.get("models", []):
        if m.get("trained_on") == "annotations":
            source = "annotations by " + ", ".join(Path(a).name for a in m.get("annotator", []))
        else:
            source = ", ".join(m.get("reference_sets", [])) or m.get("trained_on") or "(a language model)"
        limits = [f"sample {m['sample']:.0%}"] if m.get("sample") is not None else []
        limits += [f"at most {m['sample_max']}"] if m.get("sample_max") is not None else []
        mode = f"{m['mode']} ({', '.join(limits)})" if limits else m["mode"]
        rows.append([m["name"], mode, m.get("kind"), source, m.get("labels"), _cost(m.get("annotation_cost"))])
        # A binary classifier's AUC; a class rubric's (topic, format, safety) macro-F1 over its classes.
        auc, macro_f1 = m.get("heldout_auc"), m.get("heldout_macro_f1")
        rows[-1].append(auc if auc is not None else f"macro-F1 {macro_f1}" if macro_f1 is not None else "")
    return rows


def _cost(cost: dict[str, Any] | None) -> str:
    if not cost:
        return ""
    return (
        f"{cost['prompt_tokens']:,} + {cost['completion_tokens']:,} tokens, {cost['request_seconds']:,} s "
        f"({cost['seconds_per_document']} s/doc)"
    )


def bucket_rows(section: dict[str, Any]) -> list[list[Any]]:
    return [[b["bucket"], b["tokens"], f"{b['share']:.1%}"] for b in section["buckets"]]


def _mean(counts: list[int]) -> float | str:
    n = sum(counts)
    return round(sum((i + 0.5) / len(counts) * c for i, c in enumerate(counts)) / n, 3) if n else ""


def scores_plot(section: dict[str, Any]) -> str | None:
    """One row per score key: its histogram per domain (left) and per language (right), as step lines; at most
    `MAX_PLOTTED` keys in name order (a 24-class topic scorer has 24 keys; the table lists every one)."""
    scorers = section["scorers"][:MAX_PLOTTED]
    if not scorers:
        return None
    import matplotlib
    from matplotlib.figure import Figure

    unit_edges = [i / section["bins"] for i in range(section["bins"] + 1)]
    # The settings report/plots.py renders with: a fixed id salt, text as text, no date: the same run, the same bytes.
    rc = {"svg.hashsalt": "corpusforge", "svg.fonttype": "none", "font.size": 9}
    with matplotlib.rc_context(rc):
        fig = Figure(figsize=(7.5, 2.4 * len(scorers) + 0.3), layout="constrained")
        axes = fig.subplots(len(scorers), 2, squeeze=False)
        for (left, right), s in zip(axes, scorers):
            log_axis = s.get("axis") == "log10_perplexity"
            edges = [e * LOG10_PERPLEXITY_MAX for e in unit_edges] if log_axis else unit_edges
            for ax, (kind, groups) in ((left, ("domain", s["by_domain"])), (right, ("language", s["by_lang"]))):
                for group, counts in groups.items():
                    ax.stairs(counts, edges, label=group)
                ax.set_title(f"{s['name']} by {kind}" + (" (log10 perplexity)" if log_axis else ""), fontsize=8)
                ax.set_xlim(edges[0], edges[-1])
                ax.legend(fontsize=7, frameon=False, ncol=2)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    return text[text.index("<svg") :]
