"""`publish_artifacts(summary, layout)`: the run's report as Prefect artifacts, on the flow run's Artifacts tab.

One markdown artifact (`corpusforge-<stage>-report`: overview, funnel, top drop reasons with an example each,
the funnel per language, tokenizer fertility per language, duplicate clusters, decontamination hits, token budget,
where the HTML page is) and one table artifact per section (`corpusforge-<stage>-funnel`, `-drop-reasons`,
`-languages`, `-fertility`, `-duplicates`, `-decontam`, `-tokens`, `-quarantine`, and `-scores` / `-score-buckets` when
a `[scorers]` table or `[mixture.score_buckets]` ran). They are built from the same
`report.data.collect` sections as the HTML page, so every excerpt is already redacted. Outside a flow run this does
nothing.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from pipeline.layout import RunLayout
from report.data import collect, scrub_tree
from report.fertility import TOKENIZERS
from report.scores import (
    BUCKET_COLUMNS,
    MODEL_COLUMNS,
    SCORES_COLUMNS,
    bucket_rows,
    has_scores,
    model_rows,
    score_rows,
)

log = logging.getLogger(__name__)


def artifact_key(stage: str, section: str) -> str:
    """A Prefect artifact key (lowercase letters, digits and dashes only) for one section of a stage's report."""
    return re.sub(r"[^a-z0-9-]+", "-", f"corpusforge-{stage}-{section}".lower()).strip("-")


def in_flow_run() -> bool:
    """True inside a Prefect flow run (where artifacts attach to the run), False anywhere else."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    return ctx is not None and ctx.flow_run is not None


def publish_artifacts(summary: dict[str, Any], layout: RunLayout, data: dict[str, Any] | None = None) -> None:
    """Publish the run's report as markdown and table artifacts of the current flow run; a no-op outside one.

    Args:
        summary: the stage summary `run_stage` returned (also in `<run>/funnel.json`).
        layout: the run's layout (the report sections are read from its files unless `data` is given).
        data: `report.data.collect(layout.root)`'s sections when the caller has them (the HTML page's).
    """
    if not in_flow_run():
        return
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    stage = summary["stage"]
    try:
        data = data if data is not None else collect(layout.root)
    except FileNotFoundError as e:  # no published corpus (a failed stage): the funnel alone still helps
        log.warning("report: %s; publishing the funnel only", e)
        data = None
    # NOTE: an artifact that cannot be published must not fail a run whose data is complete and correct.
    try:
        if data is None:
            create_table_artifact(
                table=_funnel_only(summary),
                key=artifact_key(stage, "funnel"),
                description=f"corpusforge stage {stage}: documents per step",
            )
            return
        create_markdown_artifact(
            markdown=markdown(data, layout),
            key=artifact_key(stage, "report"),
            description=f"corpusforge stage {stage}: run report",
        )
        for section, rows, what in tables(data):
            if rows:
                create_table_artifact(
                    table=rows, key=artifact_key(stage, section), description=f"corpusforge stage {stage}: {what}"
                )
    except Exception as e:
        log.warning("report: publishing Prefect artifacts failed (%s: %s)", type(e).__name__, e)


def tables(data: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]], str]]:
    """(section key, rows, description) of each table artifact."""
    tok = data["tokens"]
    budget = {b["source"]: b for b in tok["budget"]}
    packed = {p["source"]: p for p in tok["packed"]}
    token_rows = [
        {
            "stage": (packed.get(s) or {}).get("stage", data["overview"]["stage"]),
            "domain": (budget.get(s) or packed.get(s) or {}).get("domain"),
            "source": s,
            "budget_tokens": (budget.get(s) or {}).get("budget_tokens"),
            "selected_tokens": (budget.get(s) or {}).get("selected_tokens"),
            "packed_tokens": (packed.get(s) or {}).get("tokens", 0),
        }
        for s in sorted(set(budget) | set(packed))
    ]
    dup_rows = [
        {
            "method": m,
            "clusters": v["clusters"],
            "duplicates_dropped": v["duplicates"],
            "size_counts": ", ".join(f"{k}: {n}" for k, n in sorted(v["size_counts"].items())),
        }
        for m, v in sorted(data["duplicates"]["methods"].items())
    ]
    return [
        ("funnel", data["funnel"], "documents in and out of each step"),
        ("drop-reasons", data["drop_reasons"], "top drop reasons with a redacted example each"),
        ("quarantine", data["quarantine"], "records that could not be read, with a redacted excerpt"),
        ("languages", data["languages"], "documents in, kept, dropped (top reasons) and tokens per language"),
        ("fertility", data["fertility"], "tokenizer tokens per character and per word per language"),
        ("duplicates", dup_rows + [dict(r) for r in data["duplicates"]["largest"]], "duplicate clusters"),
        ("decontam", data["decontam"], "documents dropped for overlapping an evaluation set"),
        ("tokens", token_rows, "token budget and packed tokens per stage and source"),
        ("scores", _score_table(data), "each scorer's documents and mean score per domain and language"),
        ("score-buckets", _bucket_table(data), "the share of the packed tokens each score bucket got"),
    ]


def _score_table(data: dict[str, Any]) -> list[dict[str, Any]]:
    section = data.get("scores")
    keys = ["scorer", "by", "group", "documents", "mean"]
    return [dict(zip(keys, row)) for row in score_rows(section)] if section else []


def _bucket_table(data: dict[str, Any]) -> list[dict[str, Any]]:
    section = data.get("scores")
    return [dict(zip(("bucket", "tokens", "share"), row)) for row in bucket_rows(section)] if section else []


def markdown(data: dict[str, Any], layout: RunLayout) -> str:
    """The report as one markdown document (what the Prefect UI shows on the run's Artifacts tab)."""
    ov = data["overview"]
    holds = "holds" if ov["count_invariant_holds"] else "**BROKEN**"
    lines = [
        f"# corpusforge stage `{ov['stage']}`",
        "",
        f"records read {ov['records_read']:,} = kept {ov['docs_final']:,} + dropped {ov['dropped']:,} + "
        f"quarantined {ov['quarantined']:,} (count invariant {holds})",
    ]
    if ov.get("total_tokens") is not None:
        lines[-1] += f"; {ov['num_shards'] or 0} shard(s), {ov['total_tokens']:,} tokens ({ov['tokenizer']})."
    lines += ["", f"Full report with plots: `{layout.report / 'index.html'}`", "", "## Funnel", ""]
    lines += _md_table(
        ["step", "in", "out", "dropped", "quarantined", "modified", "top reasons"],
        [
            [r["step"], r["docs_in"], r["docs_out"], r["dropped"], r["quarantined"], r["modified"], r["top_reasons"]]
            for r in data["funnel"]
        ],
    )
    sections: list[tuple[str, list[str], list[list[Any]]]] = [
        (
            "Top drop reasons",
            ["reason", "step", "documents", "source", "example (redacted)"],
            [[r["reason"], r["step"], r["docs"], r["source"], r["example"]] for r in data["drop_reasons"]],
        ),
        (
            "Quarantine",
            ["source", "reason", "records", "excerpt (redacted)"],
            [[r["source"], r["reason"], r["records"], r["example"]] for r in data["quarantine"]],
        ),
        (
            "Languages",
            ["language", "in", "kept", "dropped", "top drop reasons", "tokens packed"],
            [
                [r["lang"], r["docs_in"], r["docs"], r["dropped"], r["top_reasons"], r["tokens"]]
                for r in data["languages"]
            ],
        ),
        (
            "Tokenizer fertility (tokens per word)",
            ["language", "words", *TOKENIZERS],
            [[r["lang"], r["words"], *(r[f"{t}_per_word"] for t in TOKENIZERS)] for r in data["fertility"]],
        ),
        (
            "Duplicate clusters",
            ["method", "clusters", "documents dropped"],
            [[m, v["clusters"], v["duplicates"]] for m, v in sorted(data["duplicates"]["methods"].items())],
        ),
        (
            "Decontamination hits",
            ["evaluation set", "documents", "max overlap", "example (redacted)"],
            [[r["eval_set"], r["docs"], r["max_overlap"], r["example"]] for r in data["decontam"]],
        ),
        (
            "Tokens per source",
            ["domain", "source", "budget", "selected"],
            [[b["domain"], b["source"], b["budget_tokens"], b["selected_tokens"]] for b in data["tokens"]["budget"]],
        ),
    ]
    if has_scores(data.get("scores")):  # only runs with a [scorers] table or score buckets have the section
        sections += [
            ("Scorer models", MODEL_COLUMNS, model_rows(data["scores"])),
            ("Scores", SCORES_COLUMNS, score_rows(data["scores"])),
            ("Tokens per score bucket", BUCKET_COLUMNS, bucket_rows(data["scores"])),
        ]
    for title, cols, rows in sections:
        lines += ["", f"## {title}", ""]
        lines += _md_table(cols, rows) if rows else ["(none)"]
    if data["train"]["points"]:
        last = data["train"]["points"][-1]
        lines += [
            "",
            "## Trainer",
            "",
            f"{len(data['train']['points'])} logged steps; step {last['step']}, "
            f"loss {last['loss']:.4f}, lr {last.get('lr') or 0:.2e}",
        ]
    return "\n".join(lines) + "\n"


def _funnel_only(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return scrub_tree(
        [
            {
                "step": r["step"],
                "docs_in": r["docs_in"],
                "docs_out": r["docs_out"],
                "dropped": sum(r.get("dropped", {}).values()),
            }
            for r in summary.get("funnel", [])
        ]
    )


def _md(value: Any) -> str:
    """A markdown table cell: no pipe, no HTML, no line break."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    text = "" if value is None else str(value)
    return " ".join(text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").split())


def _md_table(columns: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(_md(v) for v in r) + " |" for r in rows]
    return out
