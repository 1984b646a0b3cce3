"""`build_report(run_dir)`: the run's report as one self-contained HTML page, `<run>/report/index.html`.

The page holds its CSS and its plots (inline SVG) and nothing else: no script, no font, no image or stylesheet
from anywhere, and a Content-Security-Policy of `default-src 'none'` so that a browser would refuse to fetch
anything even if something slipped in. It opens offline, from a file, on any machine.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.layout import RunLayout
from report import plots
from report.data import collect
from report.fertility import TOKENIZERS
from report.scores import (
    BUCKET_COLUMNS,
    MODEL_COLUMNS,
    NOTE,
    SCORES_COLUMNS,
    bucket_rows,
    has_scores,
    model_rows,
    score_rows,
    scores_plot,
)

INDEX = "index.html"

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1100px;
padding:1.5rem;color:#1b1b1b}
h1{font-size:1.5rem;margin:0 0 .25rem} h2{font-size:1.15rem;margin:2rem 0 .5rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0;font-size:13px;width:100%}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f6f8} td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.x{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;word-break:break-word}
figure.plot{margin:.5rem 0} figure.plot svg{max-width:100%;height:auto}
.ok{color:#2e7d32} .bad{color:#c62828} .muted{color:#666} dl{display:grid;grid-template-columns:max-content 1fr;
gap:.15rem 1rem} dt{color:#555}
"""


def build_report(run_dir: Path | str, data: dict[str, Any] | None = None) -> Path:
    """Write `<run>/report/index.html` for the finished run in `run_dir` and return its path.

    Args:
        run_dir: a run directory the stage finished (it has funnel.json and a published corpus).
        data: the run's `report.data.collect(run_dir)` sections when the caller has them already (the stage flow
            hands the same sections to `publish_artifacts`: read once, ~0.3 s), else they are read here.

    Raises:
        FileNotFoundError: not a finished run (the message names the command that makes one).
    """
    layout = RunLayout(Path(run_dir))
    page = render(data if data is not None else collect(layout.root))
    layout.report.mkdir(parents=True, exist_ok=True)
    path = layout.report / INDEX
    tmp = path.with_name(f".{INDEX}.tmp-{os.getpid()}")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)  # atomic: a reader sees the old page or the new one, never half of one
    return path


def render(data: dict[str, Any]) -> str:
    """The page for the sections `report.data.collect` returned: what the stage did to the documents (funnel, drops,
    quarantine, languages), what it kept (lengths, quality, duplicates, decontamination, tokens), then synth and
    training when they ran."""
    ov = data["overview"]
    parts = [
        *_head(ov),
        _overview(ov),
        *_what_happened(data),
        _fertility(data["fertility"]),
        *_what_was_kept(data),
        _scores(data.get("scores")),
        _tokens(data["tokens"]),
    ]
    if data["synth"]:
        parts.append(
            html_section(
                "synth",
                "Synthetic documents per template",
                plots.synth(data["synth"]),
                html_table(
                    ["template", "fate", "documents"], [[r["template"], r["fate"], r["docs"]] for r in data["synth"]]
                ),
            )
        )
    if data["train"]["points"]:
        parts.append(_train(data["train"]))
    parts.append("</body></html>\n")
    return "\n".join(p for p in parts if p)


def _head(ov: dict[str, Any]) -> list[str]:
    """The document head (a strict Content-Security-Policy: no script, no request) and the title lines."""
    return [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>corpusforge report: {escape(ov['stage'])}</title><style>{CSS}</style></head><body>",
        f"<h1>corpusforge stage <code>{escape(ov['stage'])}</code></h1>",
        f'<p class="muted">run directory <code>{escape(ov["run_dir"])}</code></p>',
    ]


def _what_happened(data: dict[str, Any]) -> list[str]:
    """Funnel, drop reasons, quarantine and languages: where the documents went."""
    return [
        html_section(
            "funnel",
            "Funnel",
            plots.funnel(data["funnel"]),
            html_table(
                ["step", "in", "out", "dropped", "quarantined", "modified", "top reasons", "cached"],
                [
                    [
                        r["step"],
                        r["docs_in"],
                        r["docs_out"],
                        r["dropped"],
                        r["quarantined"],
                        r["modified"],
                        r["top_reasons"],
                        "yes" if r["cached"] else "",
                    ]
                    for r in data["funnel"]
                ],
            ),
        ),
        html_section(
            "drop-reasons",
            "Top drop reasons, with an example each",
            None,
            html_table(
                ["reason", "step", "documents", "source", "example's language", "its threshold", "example (redacted)"],
                [
                    [r["reason"], r["step"], r["docs"], r["source"], r["lang"], _blank(r["threshold"]), r["example"]]
                    for r in data["drop_reasons"]
                ],
                mono=6,
            ),
            empty="No document was dropped.",
        ),
        html_section(
            "quarantine",
            "Quarantined records",
            None,
            html_table(
                ["source", "reason", "records", "first location", "excerpt (redacted)"],
                [[r["source"], r["reason"], r["records"], r["location"], r["example"]] for r in data["quarantine"]],
                mono=4,
            ),
            empty="No record was quarantined.",
        ),
        html_section(
            "languages",
            "Languages",
            plots.languages(data["languages"]),
            html_table(
                ["language", "in", "kept", "dropped", "top drop reasons", "characters kept", "tokens packed"],
                [
                    [r["lang"], r["docs_in"], r["docs"], r["dropped"], r["top_reasons"], r["chars"], r["tokens"]]
                    for r in data["languages"]
                ],
            ),
            note="A document's language is language ID's label (the source's, or unknown, for a document dropped "
            "before language ID ran); in = kept + dropped; tokens packed count repeats." + _fallback_line(data),
            empty="No document reached the filters.",
        ),
    ]


def _what_was_kept(data: dict[str, Any]) -> list[str]:
    """Lengths, quality scores, duplicate clusters and decontamination hits."""
    return [
        html_section(
            "lengths",
            "Document length per domain and source",
            plots.lengths(data["lengths"]),
            html_table(
                ["domain", "source", "documents", "p10", "median", "p90", "max", "mean"],
                [
                    [r["domain"], r["source"], r["docs"], r["p10"], r["p50"], r["p90"], r["max"], r["mean"]]
                    for r in data["lengths"]
                ],
            ),
            empty="The final corpus is empty.",
        ),
        html_section(
            "quality",
            "Quality scores and thresholds",
            plots.quality(data["quality"]),
            html_table(
                ["reason", "dropped", "threshold", "threshold per language of the dropped (documents)"],
                [[q["reason"], q["dropped"], _blank(q["threshold"]), _by_language(q)] for q in data["quality"]],
            ),
            note="Lineage records a score for dropped documents only, so each histogram shows the dropped side "
            "of its threshold (the stage's, as English has it); language ID also shows the scores of the documents "
            "it kept. Other languages are judged against their own row (FineWeb-2's per-language thresholds, "
            "language ID's per-language scores): the last column.",
            empty="No filter recorded a score.",
        ),
        _duplicates(data["duplicates"]),
        html_section(
            "decontam",
            "Decontamination hits",
            None,
            html_table(
                ["evaluation set", "documents dropped", "max overlap", "source", "example (redacted)"],
                [[r["eval_set"], r["docs"], r["max_overlap"], r["source"], r["example"]] for r in data["decontam"]],
                mono=4,
            ),
            empty="No document overlapped an evaluation set.",
        ),
    ]


# --- sections ----------------------------------------------------------------------------------------------


def _overview(ov: dict[str, Any]) -> str:
    holds = ov["count_invariant_holds"]
    check = (
        f'<span class="{"ok" if holds else "bad"}">records read {ov["records_read"]:,} '
        f"{'=' if holds else '≠'} kept {ov['docs_final']:,} + dropped {ov['dropped']:,} + quarantined "
        f"{ov['quarantined']:,}</span>"
    )
    items = [("documents", check)]
    if ov.get("total_tokens") is not None:
        items.append(
            (
                "shards",
                f"{ov['num_shards'] or 0:,} shard(s), {ov['total_tokens']:,} tokens, tokenizer "
                f"{escape(ov['tokenizer'])}, seq_len {ov['seq_len']:,}",
            )
        )
    if ov.get("dry_run"):
        items.append(("shards", "dry run: no shards written"))
    if ov.get("sources_without_files"):
        items.append(
            (
                "warning",
                f'<span class="bad">no input file matched for source(s) '
                f"{escape(', '.join(ov['sources_without_files']))}</span>",
            )
        )
    if ov.get("executor"):
        items.append(("executor", escape(f"{ov['executor'].get('kind')} x {ov['executor'].get('workers')}")))
    body = "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in items)
    return f'<section id="overview"><h2>Overview</h2><dl>{body}</dl></section>'


def _scores(section: dict[str, Any] | None) -> str:
    """Score histograms per domain and language, and the tokens per score bucket (report/scores.py)."""
    if section is None or not has_scores(section):
        return ""
    body = html_table(MODEL_COLUMNS, model_rows(section)) + html_table(SCORES_COLUMNS, score_rows(section))
    body += html_table(BUCKET_COLUMNS, bucket_rows(section))
    note = NOTE.format(bins=section["bins"])
    return html_section("scores", "Scores per domain and language", scores_plot(section), body, note=note)


def _duplicates(dup: dict[str, Any]) -> str:
    rows = [[m, v["clusters"], v["duplicates"]] for m, v in sorted(dup["methods"].items())]
    body = html_table(["method", "clusters", "documents dropped as duplicates"], rows)
    if dup["largest"]:
        body += html_table(
            ["method", "cluster size", "source", "survivor (redacted)"],
            [[r["method"], r["size"], r["source"], r["survivor"]] for r in dup["largest"]],
            mono=3,
        )
    has_any = any(v["clusters"] for v in dup["methods"].values())
    return html_section(
        "duplicates",
        "Duplicate clusters",
        plots.duplicate_clusters(dup),
        body,
        note=None if has_any else "No duplicate cluster was found.",
    )


def _blank(value: float | None) -> float | str:
    return "" if value is None else value


def _by_language(q: dict[str, Any]) -> str:
    """ "th 0.9 (12), en 0.8 (3)": the threshold each language of a reason's dropped documents had."""
    return ", ".join(f"{r['lang']} {_blank(r['threshold'])} ({r['dropped']:,})" for r in q.get("by_language") or [])


def _fallback_line(data: dict[str, Any]) -> str:
    """The documents whose language has no word segmenter here, per language (one sentence; empty if none)."""
    counts = data.get("segmentation_fallback") or {}
    if not counts:
        return ""
    listed = ", ".join(f"{lang} {n:,}" for lang, n in counts.items())
    return f" Judged with the fallback word rules (no segmenter installed for the language): {listed} documents."


def _fertility(rows: list[dict[str, Any]]) -> str:
    columns = ["language", "documents", "characters", "words"]
    for name in TOKENIZERS:
        columns += [f"{name} tokens/char", f"{name} tokens/word"]
    table = [
        [r["lang"], r["docs"], r["chars"], r["words"]]
        + [r.get(f"{name}_{unit}") for name in TOKENIZERS for unit in ("per_char", "per_word")]
        for r in rows
    ]
    note = (
        "Tokens per character and per word on a sample of each language's documents (words as the prose "
        "filters segment them, punctuation left out; report/fertility.py)."
    )
    return html_section(
        "fertility",
        "Tokenizer fertility per language",
        None,
        html_table(columns, table),
        note=note,
        empty="No prose document with a language in the final corpus.",
    )


def _tokens(tok: dict[str, Any]) -> str:
    body = ""
    if tok["budget"]:
        body += html_table(
            ["domain", "source", "documents", "available", "share", "budget", "epochs", "selected"],
            [
                [
                    b["domain"],
                    b["source"],
                    b["docs"],
                    b["available_tokens"],
                    b["share"],
                    b["budget_tokens"],
                    b["epochs"],
                    b["selected_tokens"],
                ]
                for b in tok["budget"]
            ],
        )
    if tok["packed"]:
        body += html_table(
            ["stage", "domain", "source", "tokens packed"],
            [[p["stage"], p["domain"], p["source"], p["tokens"]] for p in tok["packed"]],
        )
    return html_section(
        "tokens",
        "Token budget per stage and source",
        plots.tokens(tok),
        body,
        empty="The stage has not tokenized (no budget, no shards).",
    )


def _train(train: dict[str, Any]) -> str:
    last = train["points"][-1]
    note = f"{len(train['points'])} logged steps; last step {last['step']}, loss {last['loss']:.4f}"
    return html_section("train", "Trainer", plots.trainer(train), "", note=note)


# --- building blocks ---------------------------------------------------------------------------------------


def escape(value: Any) -> str:
    """`value` as HTML text (None as empty), quotes escaped too: it also goes into attributes."""
    return html.escape("" if value is None else str(value), quote=True)


def _cell(value: Any, mono: bool) -> str:
    if isinstance(value, bool):
        return f"<td>{'yes' if value else ''}</td>"
    if isinstance(value, int):
        return f'<td class="n">{value:,}</td>'
    if isinstance(value, float):
        return f'<td class="n">{value:,.0f}</td>' if abs(value) >= 1000 else f'<td class="n">{value:.4g}</td>'
    return f'<td class="x">{escape(value)}</td>' if mono else f"<td>{escape(value)}</td>"


def html_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], mono: int | None = None) -> str:
    """An HTML table; `mono`: the index of a column of document text (monospace, wrapped)."""
    if not rows:
        return ""
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(v, i == mono) for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_section(
    anchor: str, title: str, svg: str | None, body: str, note: str | None = None, empty: str | None = None
) -> str:
    parts = [f'<section id="{anchor}"><h2>{escape(title)}</h2>']
    if note:
        parts.append(f'<p class="muted">{escape(note)}</p>')
    if svg:
        parts.append(f'<figure class="plot" data-plot="{anchor}">{svg}</figure>')
    if body:
        parts.append(body)
    elif not svg and empty:
        parts.append(f'<p class="muted">{escape(empty)}</p>')
    parts.append("</section>")
    return "".join(parts)
