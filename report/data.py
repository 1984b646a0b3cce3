"""Read a finished run into the report's sections: one JSON-able dict that the HTML page and the Prefect
artifacts both render, so the two always show the same numbers.

Sources: `<run>/funnel.json` (the stage summary), `<run>/steps/*/_STEP.json` (each step's merged stats and the
dedup steps' cluster statistics), the DuckDB views of `report.views.connect` (docs, lineage, quarantine, ingested,
shards), `<run>/train/log.jsonl` when the trainer ran. Every text that comes from a document (examples, URLs,
paths, quarantine excerpts) goes through `report.redact` first. Nothing here depends on the clock, so the same
run gives the same report.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

from pipeline.layout import RunLayout
from report.redact import excerpt, scrub
from report.scores import collect_scores
from report.thresholds import LanguageThresholds, filter_tables, threshold

log = logging.getLogger(__name__)

TOP_REASONS = 12  # drop reasons listed with an example
TOP_CLUSTERS = 10  # duplicate clusters listed with their survivor
TOP_LANG_REASONS = 3  # drop reasons listed per language
FERTILITY_LANGS = 30  # languages of the final corpus (the most documents first) measured for tokenizer fertility
FERTILITY_CHARS = 20_000  # characters sampled per language for it (whole documents in a seeded order, the last cut)
MAX_SCORES = 20_000  # scores per reason kept for a histogram (a deterministic sample beyond that)
TOP_REASON_LANGS = 8  # languages listed per scored drop reason, with the threshold each had


def collect(run_dir: Path | str, filters: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Every section of the report of the finished run in `run_dir`.

    Args:
        run_dir: a run directory with `funnel.json` and a published corpus (`python -m flows.stage ... --out DIR`).
        filters: the run's `[filters.*]` tables when the caller has its stage config loaded already (the stage
            flow); else they are read from the config the run's funnel names (`report.thresholds.filter_tables`).

    Raises:
        FileNotFoundError: the run has no funnel.json or no finished corpus (the message names the command to run).
    """
    from report.views import connect

    layout = RunLayout(Path(run_dir))
    if not layout.funnel.is_file():
        raise FileNotFoundError(
            f"no funnel.json in {layout.root}; run `python -m flows.stage <stage> --out "
            f"{layout.root}` to completion first"
        )
    summary = json.loads(layout.funnel.read_text(encoding="utf-8"))
    tables = filters if filters is not None else filter_tables(summary)
    by_lang = LanguageThresholds(tables)
    con = connect(layout.root)
    try:
        report: dict[str, Any] = {
            "overview": _overview(summary),
            "funnel": _funnel(summary),
            "drop_reasons": _drop_reasons(con, by_lang),
            "quarantine": _quarantine(con),
            "languages": _languages(con),
            "segmentation_fallback": _segmentation_fallback(layout),
            "fertility": _fertility(con),
            "lengths": _lengths(con),
            "quality": _quality(con, tables, by_lang),
            "duplicates": _duplicates(con, layout),
            "decontam": _decontam(con),
            "scores": collect_scores(con, summary),
            "tokens": _tokens(con, summary),
            "synth": _synth(con),
            "train": _train(layout, summary),
        }
    finally:
        con.close()
    return report


# --- sections --------------------------------------------------------------------------------------------


def _overview(summary: dict[str, Any]) -> dict[str, Any]:
    shards = summary.get("shards") or {}
    return {
        "stage": summary["stage"],
        "run_dir": summary.get("run_dir", ""),
        "records_read": summary["records_read"],
        "docs_final": summary["docs_final"],
        "dropped": summary["dropped"],
        "quarantined": summary["quarantined"],
        "count_invariant_holds": summary["records_read"]
        == summary["docs_final"] + summary["dropped"] + summary["quarantined"],
        "tokenizer": shards.get("tokenizer"),
        "seq_len": shards.get("seq_len"),
        "total_tokens": shards.get("total_tokens"),
        "num_shards": shards.get("num_shards"),
        "dry_run": bool(shards.get("dry_run", False)),
        "sources_without_files": summary.get("sources_without_files") or [],
        "executor": summary.get("executor"),
    }


def _funnel(summary: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for r in summary["funnel"]:
        reasons = {**r.get("quarantined", {}), **r.get("dropped", {})}
        top = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        rows.append(
            {
                "step": r["step"],
                "docs_in": r["docs_in"],
                "docs_out": r["docs_out"],
                "dropped": sum(r.get("dropped", {}).values()),
                "quarantined": sum(r.get("quarantined", {}).values()),
                "modified": sum(r.get("modified", {}).values()),
                "top_reasons": ", ".join(f"{k} ({v:,})" for k, v in top),
                "cached": bool(r.get("skipped")),
            }
        )
    return rows


def _drop_reasons(con: Any, by_lang: LanguageThresholds) -> list[dict[str, Any]]:
    """The most frequent drop reasons, each with one example (the smallest doc id: deterministic), its language and
    the threshold the reason had for that language."""
    rows = con.sql(
        f"""WITH d AS (SELECT step, reason, count(*) AS docs, min(doc_id) AS example,
                             arg_min(coalesce(lang, 'unknown'), doc_id) AS lang FROM lineage
                      WHERE action = 'dropped' GROUP BY ALL)
            SELECT d.step, d.reason, d.docs, d.lang, i.source, i.domain, i.text, i.path, i.url
            FROM d LEFT JOIN ingested i ON i.id = d.example
            ORDER BY d.docs DESC, d.reason, d.step LIMIT {TOP_REASONS}"""
    ).fetchall()
    return [
        {
            "step": step,
            "reason": reason,
            "docs": docs,
            "lang": lang,
            "threshold": by_lang.of(reason, lang),
            "source": source or "",
            "domain": domain or "",
            "example": excerpt(text, path),
            "url": excerpt(url, None, 100),
        }
        for step, reason, docs, lang, source, domain, text, path, url in rows
    ]


def _quarantine(con: Any) -> list[dict[str, Any]]:
    rows = con.sql(
        """SELECT source, reason, count(*) AS records, arg_min(excerpt, location) AS excerpt,
                  min(location) AS location
           FROM quarantine GROUP BY ALL ORDER BY records DESC, source, reason"""
    ).fetchall()
    return [
        {"source": s, "reason": r, "records": n, "example": excerpt(e), "location": excerpt(loc, None, 100)}
        for s, r, n, e, loc in rows
    ]


def _languages(con: Any) -> list[dict[str, Any]]:
    """The funnel per language: documents in (kept + dropped), kept in the final corpus (`docs`) with their
    characters, dropped with the top reasons, and tokens packed into the stage's shards (repeats included).

    A document's language is the one lineage recorded with its last decision: language ID's label, or the source's
    for a document dropped before language ID ran ("unknown" when neither). Quarantined records have none.
    """
    has_lang = "lang" in con.sql("SELECT * FROM lineage LIMIT 0").columns  # a run from before the column: unknown
    lang = "coalesce(lang, 'unknown')" if has_lang else "'unknown'"
    reasons: dict[str, list[tuple[str, int]]] = {}
    for code, reason, n in con.sql(
        f"""SELECT {lang} AS lang, reason, count(*) AS n FROM lineage WHERE action = 'dropped'
            GROUP BY ALL ORDER BY lang, n DESC, reason"""
    ).fetchall():
        reasons.setdefault(code, []).append((reason, n))
    kept_sql = "SELECT coalesce(lang, 'unknown'), count(*), sum(length(text))::BIGINT FROM docs GROUP BY ALL"
    kept = {code: (docs, chars or 0) for code, docs, chars in con.sql(kept_sql).fetchall()}
    tokens_sql = """SELECT coalesce(d.lang, 'unknown'), sum(s.num_tokens)::BIGINT
                    FROM shards s JOIN docs d ON d.id = s.doc_id GROUP BY ALL"""
    tokens = dict(con.sql(tokens_sql).fetchall())
    rows = []
    for code in set(reasons) | set(kept):
        docs, chars = kept.get(code, (0, 0))
        dropped = sum(n for _, n in reasons.get(code, []))
        top = ", ".join(f"{r} ({n:,})" for r, n in reasons.get(code, [])[:TOP_LANG_REASONS])
        row = {"lang": code, "docs_in": docs + dropped, "docs": docs, "dropped": dropped, "top_reasons": top}
        rows.append({**row, "chars": chars, "tokens": int(tokens.get(code) or 0)})
    return sorted(rows, key=lambda r: (-r["docs"], -r["docs_in"], r["lang"]))


def _fertility(con: Any) -> list[dict[str, Any]]:
    """Tokens per character and per word of each tokenizer (`report.fertility`) on a sample of every language of
    the final corpus but code: up to `FERTILITY_CHARS` characters of its documents in a seeded order."""
    from report.fertility import fertility

    rows = con.sql(
        f"""WITH top AS (SELECT lang FROM docs WHERE lang IS NOT NULL AND domain <> 'code'
                         GROUP BY lang ORDER BY count(*) DESC, lang LIMIT {FERTILITY_LANGS}),
                 ordered AS (SELECT d.lang, d.text, sum(length(d.text)) OVER (PARTITION BY d.lang
                                 ORDER BY hash(d.id), d.id) - length(d.text) AS before
                             FROM docs d JOIN top USING (lang) WHERE d.domain <> 'code')
            SELECT lang, substr(text, 1, {FERTILITY_CHARS} - before::BIGINT) FROM ordered
            WHERE before < {FERTILITY_CHARS} ORDER BY lang, before"""
    ).fetchall()
    texts: dict[str, list[str]] = {}
    for code, text in rows:
        texts.setdefault(code, []).append(text)
    return fertility(texts)


def _lengths(con: Any) -> list[dict[str, Any]]:
    """Document length (characters) per domain and source of the final corpus, as box-plot statistics."""
    rows = con.sql(
        """SELECT domain, source, count(*) AS docs, min(n), quantile_cont(n, 0.1), quantile_cont(n, 0.25),
                  quantile_cont(n, 0.5), quantile_cont(n, 0.75), quantile_cont(n, 0.9), max(n), avg(n)
           FROM (SELECT domain, source, length(text) AS n FROM docs) GROUP BY ALL ORDER BY domain, source"""
    ).fetchall()
    keys = ("min", "p10", "p25", "p50", "p75", "p90", "max", "mean")
    return [
        {"domain": d, "source": s, "docs": n, **{k: round(float(v), 1) for k, v in zip(keys, vals)}}
        for d, s, n, *vals in rows
    ]


def _quality(con: Any, tables: dict[str, dict[str, Any]], by_lang: LanguageThresholds) -> list[dict[str, Any]]:
    """Score distributions per scored drop reason, with the threshold the filter applied: `threshold` is the stage's
    (English's), `by_language` the one each language of the dropped documents had (FineWeb-2's rows, language ID's
    per-language scores).

    Lineage records a score only for dropped documents, so each histogram shows the dropped side of its
    threshold; language ID is the exception: every kept document carries its `lang_score`, so its plot shows
    both sides.
    """
    out = []
    kept_lang = [
        r[0]
        for r in con.sql(
            f"SELECT lang_score FROM docs WHERE lang_score IS NOT NULL ORDER BY hash(id), id LIMIT {MAX_SCORES}"
        ).fetchall()
    ]
    reasons = con.sql(
        """SELECT reason, count(*) FROM lineage WHERE action = 'dropped' AND score IS NOT NULL
           AND step NOT IN ('dedup_exact', 'dedup_minhash') GROUP BY ALL ORDER BY 2 DESC, 1"""
    ).fetchall()
    # Every reason's sample and languages in one scan of the lineage each (the view reads every step's Parquet
    # files: a query per reason took ~3 s of a 20,000-document run's report); the same rows, in the same order.
    scores: dict[str, list[float]] = defaultdict(list)
    for reason, score in con.sql(
        f"""SELECT reason, score FROM lineage WHERE action = 'dropped' AND score IS NOT NULL
            QUALIFY row_number() OVER (PARTITION BY reason ORDER BY hash(doc_id), doc_id) <= {MAX_SCORES}
            ORDER BY reason, hash(doc_id), doc_id"""
    ).fetchall():
        scores[reason].append(score)
    langs: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for reason, lang, k in con.sql(
        f"""SELECT reason, coalesce(lang, 'unknown') AS lang, count(*) AS k FROM lineage
            WHERE action = 'dropped' AND score IS NOT NULL GROUP BY reason, lang
            QUALIFY row_number() OVER (PARTITION BY reason ORDER BY k DESC, lang) <= {TOP_REASON_LANGS}
            ORDER BY reason, k DESC, lang"""
    ).fetchall():
        langs[reason].append((lang, k))
    for reason, n in reasons:
        item = {
            "reason": reason,
            "dropped": n,
            "dropped_scores": [round(float(s), 6) for s in scores[reason]],
            "kept_scores": [],
            "threshold": threshold(reason, tables),
            "by_language": [
                {"lang": lang, "dropped": k, "threshold": by_lang.of(reason, lang)} for lang, k in langs[reason]
            ],
        }
        if reason == "langid_low_score":
            item["kept_scores"] = [round(float(s), 6) for s in kept_lang]
        out.append(item)
    if kept_lang and not any(q["reason"] == "langid_low_score" for q in out):
        out.insert(
            0,
            {
                "reason": "langid_low_score",
                "dropped": 0,
                "dropped_scores": [],
                "kept_scores": [round(float(s), 6) for s in kept_lang],
                "threshold": threshold("langid_low_score", tables),
                "by_language": [],
            },
        )
    return out


def _segmentation_fallback(layout: RunLayout) -> dict[str, int]:
    """Language -> documents the filter steps judged with the fallback word rules (no segmenter for the language
    here: filters/segmenters.py), from the steps' merged stats; most documents first."""
    from filters.base import FALLBACK_COUNT_PREFIX

    counts: dict[str, int] = {}
    for step in ("filter", "synth_filter"):
        marker = layout.step_marker(step)
        if not marker.is_file():
            continue
        extra = (json.loads(marker.read_text(encoding="utf-8")).get("stats") or {}).get("extra") or {}
        for key, n in extra.items():
            if key.startswith(FALLBACK_COUNT_PREFIX):
                lang = key.removeprefix(FALLBACK_COUNT_PREFIX)
                counts[lang] = counts.get(lang, 0) + int(n)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _duplicates(con: Any, layout: RunLayout) -> dict[str, Any]:
    """Cluster-size counts per dedup method (from the clustering steps' reduce stats) and the largest clusters."""
    methods = {}
    for method, step in (("exact", "dedup_exact_keys"), ("minhash", "dedup_minhash_edges")):
        marker = layout.step_marker(step)
        if not marker.is_file():
            continue
        reduce = json.loads(marker.read_text(encoding="utf-8")).get("reduce") or {}
        methods[method] = {
            "clusters": reduce.get("clusters", 0),
            "duplicates": reduce.get("duplicates", 0),
            "size_counts": {int(k): v for k, v in (reduce.get("cluster_size_counts") or {}).items()},
        }
    rows = con.sql(
        f"""SELECT l.step, l.dup_cluster_id, l.dup_cluster_size, d.source, d.text, d.path FROM lineage l
            JOIN ingested d ON d.id = l.doc_id
            WHERE l.action = 'kept' AND l.dup_cluster_id IS NOT NULL
            ORDER BY l.dup_cluster_size DESC, l.step, l.dup_cluster_id LIMIT {TOP_CLUSTERS}"""
    ).fetchall()
    largest = [
        {
            "method": step.removeprefix("dedup_").removesuffix("_dedup"),
            "size": size,
            "source": source,
            "survivor": excerpt(text, path),
        }
        for step, _cid, size, source, text, path in rows
    ]
    return {"methods": methods, "largest": largest}


def _decontam(con: Any) -> list[dict[str, Any]]:
    rows = con.sql(
        """SELECT l.reason, count(*) AS docs, max(l.score) AS max_overlap, min(l.doc_id) AS example
           FROM lineage l WHERE l.action = 'dropped' AND l.step = 'decontam' GROUP BY ALL ORDER BY docs DESC, reason"""
    ).fetchall()
    out = []
    for reason, docs, max_overlap, example in rows:
        # fetchall, not fetchone: a half-read result blocks the connection's next query (DuckDB 1.5+).
        rows = con.execute("SELECT text, path, source FROM ingested WHERE id = ? LIMIT 1", [example]).fetchall()
        text, path, source = rows[0] if rows else (None, None, None)
        out.append(
            {
                "eval_set": reason.removeprefix("decontam_"),
                "docs": docs,
                "max_overlap": round(float(max_overlap or 0), 4),
                "source": source or "",
                "example": excerpt(text, path),
            }
        )
    return out


def _tokens(con: Any, summary: dict[str, Any]) -> dict[str, Any]:
    """The planned token budget per source (from the mixture) and the tokens actually packed per stage/source."""
    shards = summary.get("shards") or {}
    budget = [
        {
            k: b.get(k)
            for k in (
                "domain",
                "source",
                "docs",
                "available_tokens",
                "share",
                "budget_tokens",
                "epochs",
                "selected_tokens",
            )
        }
        for b in shards.get("budget", [])
    ]
    packed = [
        {"stage": st, "domain": d, "source": s, "tokens": int(t)}
        for st, d, s, t in con.sql(
            "SELECT stage, domain, source, sum(num_tokens) FROM shards GROUP BY ALL ORDER BY stage, domain, source"
        ).fetchall()
    ]
    return {"budget": budget, "packed": packed}


def _synth(con: Any) -> list[dict[str, Any]]:
    """The fate of every synthetic generation per template (the `synthetic` view: kept, rejected by the synth
    step, or dropped by a filter, dedup or decontamination, with the reason). Empty when synth did not run."""
    rows = con.sql("SELECT template, fate, count(*) FROM synthetic GROUP BY ALL ORDER BY 1, 3 DESC, 2").fetchall()
    return [{"template": tpl, "fate": fate, "docs": n} for tpl, fate, n in rows]


def _train(layout: RunLayout, summary: dict[str, Any]) -> dict[str, Any]:
    """Trainer curves from `<run>/train/log.jsonl` (loss, learning rate, min/max expert load share)."""
    path = layout.train / "log.jsonl"
    points = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:  # a line cut by a kill: the rest of the log still counts
                continue
            if isinstance(rec, dict) and "step" in rec:
                points.append(
                    {k: rec.get(k) for k in ("stage", "step", "loss", "aux", "lr", "load_min", "load_max", "tok_s")}
                )
    result = summary.get("train") or {}
    return {
        "points": points,
        "final_loss": result.get("final_loss"),
        "steps": result.get("steps"),
        "tokens_per_s": result.get("tokens_per_s"),
    }


# --- helpers -----------------------------------------------------------------------------------------------


def scrub_tree(value: Any) -> Any:
    """`value` with every string passed through `scrub` (for anything built outside `collect`)."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: scrub_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_tree(v) for v in value]
    return value
