"""`build_ablation_report(out)`: an ablation folder's page, `<out>/report.html` (`python -m flows.ablate`).

The same page as a run's report (report/html.py: its CSS, tables and sections, inline SVG plots, no script and a
Content-Security-Policy of `default-src 'none'`): the proxies' loss curves, the scores per candidate and evaluation
set, the mixtures' realised shares, and with `--search` the regression's fit and the proposed `[mixture]`. It
reads only the folder's files (results.parquet, curves.parquet, ablation.json, search.json, mixture.toml).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from report import plots
from report.html import CSS, escape, html_section, html_table

PAGE = "report.html"


def build_ablation_report(out: Path | str) -> Path:
    """Write `<out>/report.html` for a finished ablation and return its path.

    Raises:
        FileNotFoundError: not an ablation folder (no ablation.json or results.parquet).
    """
    import pyarrow.parquet as pq

    out = Path(out)
    for name in ("ablation.json", "results.parquet"):
        if not (out / name).is_file():
            raise FileNotFoundError(f"{out}: no {name}; run `python -m flows.ablate --out {out}` first")
    meta = json.loads((out / "ablation.json").read_text(encoding="utf-8"))
    rows = pq.read_table(out / "results.parquet").to_pylist()
    curves = pq.read_table(out / "curves.parquet").to_pylist() if (out / "curves.parquet").is_file() else []
    search = meta.get("search")
    proposal = (
        (out / "mixture.toml").read_text(encoding="utf-8") if search and (out / "mixture.toml").is_file() else ""
    )
    page = render_ablation(out, meta, rows, curves, search, proposal)
    path = out / PAGE
    tmp = path.with_name(f".{PAGE}.tmp-{os.getpid()}")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)  # atomic: a reader sees the old page or the new one
    return path


def render_ablation(
    out: Path,
    meta: dict[str, Any],
    rows: list[dict[str, Any]],
    curves: list[dict[str, Any]],
    search: dict[str, Any] | None,
    proposal: str,
) -> str:
    """The page for an ablation's files (see `build_ablation_report`)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>corpusforge ablation: {escape(out.name)}</title><style>{CSS}</style></head><body>",
        f"<h1>corpusforge ablation <code>{escape(out.name)}</code></h1>",
        f'<p class="muted">ablation folder <code>{escape(out.resolve())}</code></p>',
        _overview(meta, rows),
        html_section(
            "curves",
            "Loss curves",
            plots.ablation_curves(curves),
            "",
            note="Training loss of each proxy (nats per proxy token) at every logged step; every candidate is "
            "trained from the same initialisation per seed, on the same number of tokens.",
            empty="No training step was logged.",
        ),
        _scores(rows),
        _mixtures(meta, rows),
    ]
    if search:
        parts.append(_search(search, proposal))
    parts.append("</body></html>\n")
    return "\n".join(p for p in parts if p)


def _overview(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    tok = meta.get("proxy_tokenizer", {}).get("name", "")
    note = " (UTF-8 bytes: bits per byte do not depend on the tokenizer)" if tok == "utf8_bytes" else ""
    items = [
        ("candidates", f"{len(meta.get('candidates', {})):,}"),
        ("budget", f"{meta.get('steps', 0):,} steps x {meta.get('tokens_per_step', 0):,} tokens per proxy"),
        ("proxy", f"{escape(meta.get('proxy'))}, tokenizer {escape(tok)}{escape(note)}"),
        ("seeds", f"{meta.get('seeds', 1)} per candidate"),
        ("evaluation", f"{escape(', '.join(meta.get('eval_sets', [])))}; {meta.get('eval_items', 0)} items each"),
        ("proxy config sha256", f"<code>{escape(meta.get('proxy_config_sha256', ''))[:16]}</code>"),
    ]
    if rows:
        wall = sum({(r["candidate"], r["seed"]): r["train_wall_s"] or 0 for r in rows}.values())
        items.append(("training wall time", f"{wall:,.1f} s in all"))
    body = "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in items)
    return f'<section id="overview"><h2>Overview</h2><dl>{body}</dl></section>'


def _scores(rows: list[dict[str, Any]]) -> str:
    """One row per (evaluation set, candidate): bits per byte (mean, spread over seeds), accuracy, rank."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["eval_set"], r["candidate"]), []).append(r)
    table = []
    for (eval_set, cand), mine in groups.items():
        bpb = np.array([r["bpb"] for r in mine if r["bpb"] is not None], dtype=np.float64)
        acc = [r["acc"] for r in mine if r["acc"] is not None]
        norm = [r["acc_norm"] for r in mine if r["acc_norm"] is not None]
        table.append(
            [
                eval_set,
                cand,
                len(mine),
                round(float(bpb.mean()), 4) if bpb.size else None,
                round(float(bpb.std(ddof=1)), 4) if bpb.size > 1 else None,
                round(float(np.mean(acc)), 4) if acc else None,
                round(float(np.mean(norm)), 4) if norm else None,
            ]
        )
    table.sort(key=lambda t: (t[0], float("inf") if t[3] is None else t[3]))
    return html_section(
        "scores",
        "Scores per candidate",
        None,
        html_table(["evaluation set", "candidate", "seeds", "bits per byte", "spread (sd)", "acc", "acc_norm"], table),
        note="Bits per byte on held-out text (lower is better), best first within each set; acc and acc_norm are "
        "multiple-choice accuracy by log-likelihood (lm-evaluation-harness's cloze scoring), for sets with choices.",
        empty="No score was recorded.",
    )


def _mixtures(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    shares = {r["candidate"]: json.loads(r["mixture"]) for r in rows if r.get("mixture")}
    if not shares:
        return ""
    domains = sorted({d for s in shares.values() for d in s["domains"]})
    table = [[c] + [round(s["domains"].get(d, 0.0), 4) for d in domains] for c, s in shares.items()]
    runs = {c.get("run") for c in meta.get("candidates", {}).values() if isinstance(c, dict)}
    return html_section(
        "mixtures",
        "Mixtures: realised shares of the training tokens",
        None,
        html_table(["candidate", *domains], table),
        note=f"Mixtures over the corpus of {', '.join(sorted(r for r in runs if r))}; shares of proxy tokens as "
        "sampled (a source capped by max_repeats gives its share to the others).",
    )


def _search(search: dict[str, Any], proposal: str) -> str:
    r2 = "n/a" if search.get("r2") is None else f"{search['r2']:.3f}"
    loo = "n/a" if search.get("loo_r2") is None else f"{search['loo_r2']:.3f}"
    table = [
        [c["candidate"], round(c["measured"], 4), round(c["predicted"], 4), round(c["loo_predicted"], 4)]
        for c in search["candidates"]
    ]
    coef = ", ".join(f"{u} {w:+.3f}" for u, w in search["coefficients"].items())
    body = html_table(["candidate", "measured", "predicted", "leave-one-out"], table)
    body += f"<p>Coefficients (bits per byte per unit share): {escape(coef)}; intercept {search['intercept']:.4f}.</p>"
    body += _proposal_check(search)
    if proposal:
        body += f"<h3>Proposed <code>[mixture]</code> (mixture.toml)</h3><pre>{escape(proposal)}</pre>"
    trained = search["proposal"] if "measured" in search["proposal"] else None
    return html_section(
        "search",
        "Mixture search (RegMix)",
        plots.search_fit(search["candidates"], trained),
        body,
        note=f"A ridge regression from the {search['over']} shares of {len(search['candidates'])} proxies to "
        f"{search['target']} bits per byte: R² {r2} in sample, {loo} leave-one-out. The proposal is the mean of "
        f"the best {search['proposal']['top']} of {search['proposal']['samples']:,} mixtures drawn from the same "
        f"Dirichlet, predicted {search['proposal']['predicted']:.4f}.",
    )


def _proposal_check(search: dict[str, Any]) -> str:
    """The proposal as trained: measured vs predicted, and against the best of the draws (per seed too)."""
    prop = search["proposal"]
    if "measured" not in prop:
        return ""

    def seeds(values: list[float]) -> str:
        return ", ".join(f"{v:.4f}" for v in values)

    table = [
        [
            prop["candidate"],
            round(prop["measured"], 4),
            round(prop["predicted_realised"], 4),
            seeds(prop["measured_seeds"]),
        ],
        [
            f"best draw: {prop['best_draw']}",
            round(prop["best_draw_measured"], 4),
            None,
            seeds(prop["best_draw_seeds"]),
        ],
    ]
    verdict = "beats" if prop["beats_best_draw"] else "does not beat"
    shares = ", ".join(f"{u} {x:.3f}" for u, x in prop["realised_shares"].items())
    asked = ", ".join(f"{u} {x:.3f}" for u, x in prop["shares"].items())
    return (
        "<h3>The proposal, trained</h3>"
        + html_table(["candidate", "measured", "predicted", "per seed"], table)
        + f"<p>Trained on the proposed mixture with the same budget, seeds and evaluation (asked shares: "
        f"{escape(asked)}; realised under the repeat caps: {escape(shares)}): measured minus predicted "
        f"{prop['error']:+.4f}; it {verdict} the best of the "
        f"{search['k']} draws, rank {prop['rank']} of {len(search['candidates']) + 1} mixtures.</p>"
    )
