"""A curriculum stage as a list of steps (no Prefect here; `flows/stage.py` runs it as a flow).

    ingest -> filter [-> synth -> synth_filter] [-> score_cut] -> dedup_exact_keys -> dedup_exact -> dedup_minhash_signatures -> dedup_minhash_edges
           -> dedup_minhash -> decontam -> final (-> corpus/) -> tokenize -> shards (-> shards/<stage>/)

Each step is built from the finished step before it and run by `run_step` (units through an executor or as
Prefect tasks); a step whose units all have matching markers costs a directory listing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.io import atomic_write_json
from filters.base import FALLBACK_COUNT_PREFIX
from ingest.sources import SourceSpec
from pipeline.layout import RunLayout
from pipeline.runner import StepResult
from pipeline.step import Step
from stage.config import StageConfig

if TYPE_CHECKING:
    from scoring.config import ScorerConfig

log = logging.getLogger(__name__)

RunStep = Callable[[Step], StepResult]


class CountInvariantError(RuntimeError):
    """records read != kept + dropped + quarantined: a document was lost or counted twice."""


def run_stage(
    cfg: StageConfig,
    specs: list[SourceSpec],
    layout: RunLayout,
    run: RunStep,
    limit: int | None = None,
    dry_run: bool = False,
    synth_seeds: Path | None = None,
) -> dict[str, Any]:
    """Run the data path and the shards of one stage; return its summary (the funnel), also in funnel.json.

    Args:
        run: runs one step to completion (`lambda step: run_step(step, layout, executor)`, or the flow's).
        synth_seeds: a finished corpus to draw `[synth]` seeds from (`flows.synth --from`); default: this
            stage's filtered documents.
    """
    from ingest.step import IngestStep
    from pipeline.corpus import FinalizeStep, publish_corpus
    from sharding.steps import build_shards

    ingest_step = IngestStep(specs, limit)
    ingest = run(ingest_step)
    funnel = [_ingest_row(ingest)]
    filtered, entered, synth_row = _filter_and_synth(cfg, layout, run, ingest, synth_seeds, funnel)
    decisions = _dedup_and_decontam(cfg, run, [filtered, *_score_cut(cfg, run, filtered, funnel)], funnel)
    final = run(FinalizeStep(decisions[-1], decisions, entered))
    publish_corpus(layout, final)
    shards = build_shards(layout, cfg.stage, cfg.mixture, cfg.shards, run, dry_run=dry_run)
    summary = {
        "stage": cfg.stage,
        "run_dir": str(layout.root),
        "records_read": funnel[0]["docs_in"] + (synth_row["docs_in"] if synth_row else 0),
        "quarantined": sum(ingest.stats.quarantined.values()),
        "docs_final": final.stats.docs_out,
        "dropped": sum(sum(r["dropped"].values()) for r in funnel),
        "funnel": funnel,
        "sources_without_files": ingest_step.sources_without_files,
        "units": {r.name: {"units": len(r.units), "run": r.units_run} for r in [ingest, *decisions, final]},
        **({"synth": _synth_summary(synth_row)} if synth_row else {}),
        "shards": {k: v for k, v in shards.items() if k != "table"},
        **({"scorers": _scorer_models(cfg)} if cfg.scorers else {}),
    }
    check_count_invariant(summary)
    atomic_write_json(layout.funnel, summary)
    return summary


def _scorer_models(cfg: StageConfig) -> list[dict[str, Any]]:
    """Each `[scorers]` model as the report shows it: name, mode, model and its sha256, and for a classifier what its
    card says it learnt from (with the annotation cost when an LLM labelled its data)."""
    from scoring.card import provenance, read_card

    return [
        {
            "name": s.name,
            "mode": s.mode,
            "model": str(s.model),
            "model_sha256": s.model_sha256,
            **(provenance(read_card(s.model, verify=False)) if s.kind != "perplexity" else {"kind": s.kind}),
            **({"sample": s.sample} if s.sample is not None else {}),  # the share of documents it scored
            **({"sample_max": s.sample_max} if s.sample_max is not None else {}),
        }
        for s in cfg.scorers
    ]


def _filter_and_synth(
    cfg: StageConfig,
    layout: RunLayout,
    run: RunStep,
    ingest: StepResult,
    synth_seeds: Path | None,
    funnel: list[dict[str, Any]],
) -> tuple[StepResult, StepResult, dict[str, Any] | None]:
    """The filter step, then (with `[synth]`) generations from the filtered documents, filtered the same way.
    Returns (the filtered documents, every document that entered the stage, the synth funnel row or None) and
    appends the funnel rows."""
    from filters.step import FilterStep

    scorers = _with_sample_cutoffs(cfg, ingest)
    filtered = run(FilterStep(cfg.filters, ingest, scorers=scorers))
    entered = ingest  # every document that entered the stage: read, and generated
    synth_row = None
    if cfg.synth.enabled:
        from pipeline.layout import DOCS
        from pipeline.runner import concat_results
        from synth.step import run_synth_step

        synth = run_synth_step(cfg.synth, layout, run, synth_seeds or [u.dir / DOCS for u in filtered.units])
        synth_row = _row("synth", synth)
        funnel.append(synth_row)
        # Real documents first: dedup keeps the first of a cluster, so a generation never displaces real text.
        synth_filter = FilterStep(cfg.filters, synth, name="synth_filter", scorers=scorers)
        filtered = concat_results("filter", [filtered, run(synth_filter)])
        entered = concat_results("ingest", [ingest, synth])
    funnel.append(_row("filter", filtered))
    return filtered, entered, synth_row


def _with_sample_cutoffs(cfg: StageConfig, ingest: StepResult) -> tuple[ScorerConfig, ...]:
    """The stage's scorers, each with `sample_max` turned into its cutoff over the ingested documents' ids
    (`scoring/sample.py`): read from the ingest step's output, so the same input gives the same cutoff."""
    if all(s.sample_max is None for s in cfg.scorers):
        return cfg.scorers
    import pyarrow.parquet as pq

    from pipeline.layout import DOCS
    from scoring.sample import with_sample_cutoffs

    def ids_and_domains() -> Iterator[tuple[str, str]]:
        for unit in ingest.units:
            for path in sorted((unit.dir / DOCS).rglob("*.parquet")):
                table = pq.read_table(path, columns=["id", "domain"])
                yield from zip(table["id"].to_pylist(), table["domain"].to_pylist())

    return with_sample_cutoffs(cfg.scorers, ids_and_domains())


def _score_cut(cfg: StageConfig, run: RunStep, filtered: StepResult, funnel: list[dict[str, Any]]) -> list[StepResult]:
    """The scorers' percentile thresholds (`keep_top`) over every filtered document (filters/score_cut.py), when a
    scorer has one: the finished step in a list (empty without one), its funnel row appended."""
    from filters.score_cut import ScoreCutStep, percentile_scorers

    scorers = percentile_scorers(cfg.scorers)
    if not scorers:
        return []
    cut = run(ScoreCutStep(scorers, filtered))
    funnel.append(_row("score_cut", cut))
    return [cut]


def _dedup_and_decontam(
    cfg: StageConfig, run: RunStep, decisions: list[StepResult], funnel: list[dict[str, Any]]
) -> list[StepResult]:
    """Exact dedup, MinHash dedup and decontamination, each when enabled, in that order, after `decisions` (the
    filter step, and the score cut when it ran). Returns every step whose decisions the final corpus applies and
    appends the funnel rows."""
    from dedup.steps import (
        DecontamStep,
        DedupApplyStep,
        ExactKeysStep,
        MinHashEdgesStep,
        MinHashSignaturesStep,
        resolve_eval_sets,
    )

    decisions = list(decisions)
    if cfg.exact.enabled:
        keys = run(ExactKeysStep(cfg.exact.params, decisions[-1], cfg.exact.per_language))
        decisions.append(run(DedupApplyStep("dedup_exact", "exact_dedup", decisions[-1], keys, keys)))
        funnel.append(_row("dedup_exact", decisions[-1], keys))
    if cfg.minhash.enabled:
        sigs = run(MinHashSignaturesStep(cfg.minhash.params, decisions[-1], cfg.minhash.per_language))
        edges = run(MinHashEdgesStep(cfg.minhash.params, sigs))
        decisions.append(run(DedupApplyStep("dedup_minhash", "minhash_dedup", decisions[-1], edges, sigs)))
        funnel.append(_row("dedup_minhash", decisions[-1], edges))
    if cfg.decontam.enabled:
        table = cfg.decontam.as_table()
        _, evals_fp = resolve_eval_sets(table, cfg.path.parent)
        decisions.append(run(DecontamStep(table, cfg.path.parent, evals_fp, decisions[-1])))
        funnel.append(_row("decontam", decisions[-1]))
    return decisions


def _synth_summary(synth_row: dict[str, Any]) -> dict[str, Any]:
    return {"generations": synth_row["docs_in"], "documents": synth_row["docs_out"], "rejected": synth_row["dropped"]}


def check_count_invariant(summary: dict[str, Any]) -> None:
    """records read = kept + dropped + quarantined, or a `CountInvariantError` that names the difference."""
    read, kept, dropped, quarantined = (summary[k] for k in ("records_read", "docs_final", "dropped", "quarantined"))
    diff = read - (kept + dropped + quarantined)
    if diff:
        raise CountInvariantError(
            f"count invariant broken: records read {read:,} != kept {kept:,} + dropped {dropped:,} + quarantined "
            f"{quarantined:,} ({abs(diff):,} document(s) {'lost' if diff > 0 else 'counted twice'}); "
            f"see {summary['run_dir']}/steps/*/_STEP.json for the per-step counts"
        )


def _row(step: str, result: StepResult, clusters: StepResult | None = None) -> dict[str, Any]:
    s = result.stats
    row = {
        "step": step,
        "docs_in": s.docs_in,
        "docs_out": s.docs_out,
        "dropped": dict(s.dropped),
        "modified": dict(s.modified),
        "skipped": result.skipped,
        "units": len(result.units),
        "units_run": result.units_run,
    }
    fallback = {k.split(".", 1)[1]: v for k, v in sorted(s.extra.items()) if k.startswith(FALLBACK_COUNT_PREFIX)}
    if fallback:  # documents judged with the fallback word rules, per language (no segmenter for it here)
        row["segmentation_fallback"] = fallback
    if clusters is not None:
        row["clusters"] = clusters.reduce_stats.get("clusters", 0)
        row["largest_clusters"] = clusters.reduce_stats.get("largest_clusters", [])
        row["skipped"] = row["skipped"] and clusters.skipped
    return row


def _ingest_row(result: StepResult) -> dict[str, Any]:
    s = result.stats
    return {
        "step": "ingest",
        "docs_in": s.docs_out + sum(s.quarantined.values()),
        "docs_out": s.docs_out,
        "dropped": {},
        "quarantined": {f"quarantine_{k}": v for k, v in sorted(s.quarantined.items())},
        "modified": {},
        "skipped": result.skipped,
        "units": len(result.units),
        "units_run": result.units_run,
    }


def stage_layout(run_dir: str | Path) -> RunLayout:
    return RunLayout(Path(run_dir))
