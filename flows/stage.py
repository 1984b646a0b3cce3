"""`python -m flows.stage <stage>`: run a curriculum stage end to end as a Prefect flow.

Steps: ingest (one task per source) -> filter chain -> exact dedup -> MinHash dedup ->
decontamination -> final corpus. Each step writes into `<out>/steps/<step>/` atomically and leaves a
completion marker with the fingerprint of its inputs, config and code, so a rerun skips finished
steps and a killed run resumes at the step it was in, without duplicates.

Works with no Prefect server (Prefect starts a temporary local one) and against a running
`prefect server start` when PREFECT_API_URL points at it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from filters.chain import FilterConfigError, validate_chain_config
from ingest.readers import input_file_stats
from ingest.sources import SourcesError, SourceSpec, load_sources
from pipeline import steps
from pipeline.config import STAGES, ConfigError, StageConfig, load_stage_config
from pipeline.io import atomic_write_json, file_sha256, fingerprint, run_lock
from pipeline.runner import code_version, run_step

# Our own completion markers decide what reruns; Prefect's result cache stays off (NO_CACHE) so
# the two never disagree.
IO_RETRIES = dict(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)


@task(**IO_RETRIES)
def ingest_task(spec: SourceSpec, run_dir: Path, limit: int | None) -> dict[str, Any]:
    fp = fingerprint("ingest", spec.to_config(), input_file_stats(spec), limit, code_version())
    return run_step(run_dir / "steps" / "ingest" / spec.name, fp, lambda tmp: steps.ingest_source(spec, tmp, limit))


def referenced_files(config: Any) -> list[tuple[str, str]]:
    """(path, sha256) of every config string that names an existing file (user word lists, ...): editing
    such a file must rerun the step that reads it."""
    if isinstance(config, dict):
        return [ref for key in sorted(config) for ref in referenced_files(config[key])]
    if isinstance(config, list):
        return [ref for item in config for ref in referenced_files(item)]
    if isinstance(config, str) and config and Path(config).is_file():
        return [(config, file_sha256(Path(config)))]
    return []


@task(**IO_RETRIES)
def filter_task(upstream: list[dict[str, Any]], in_dirs: list[Path], run_dir: Path, cfg: StageConfig) -> dict:
    fp = fingerprint("filter", cfg.filters, referenced_files(cfg.filters), [m["output"] for m in upstream],
                     code_version())  # fmt: skip
    return run_step(run_dir / "steps" / "filter", fp, lambda tmp: steps.filter_docs(in_dirs, tmp, cfg.filters))


@task(**IO_RETRIES)
def dedup_task(kind: str, upstream: dict[str, Any], in_dir: Path, run_dir: Path, cfg: StageConfig) -> dict:
    params = {k: v for k, v in cfg.dedup.get(kind, {}).items() if k != "enabled"}
    fp = fingerprint(kind, params, upstream["output"], code_version())

    def run(tmp: Path) -> dict[str, Any]:
        if kind == "exact":
            from dedup.exact import ExactDedup

            deduper = ExactDedup(workdir=tmp / "work", **params)
        else:
            from dedup.minhash import MinHashDedup

            deduper = MinHashDedup(workdir=tmp / "work", **params)
            print(deduper.describe())
            print(deduper.memory_estimate(steps.count_docs([in_dir])))
        stats = steps.dedup_docs(in_dir, tmp, deduper)
        shutil.rmtree(tmp / "work", ignore_errors=True)  # scratch spill files, not part of the output
        return stats

    return run_step(run_dir / "steps" / f"dedup_{kind}", fp, run)


@task(**IO_RETRIES)
def decontam_task(upstream: dict[str, Any], in_dir: Path, run_dir: Path, cfg: StageConfig) -> dict:
    decontaminator, evals_fp = steps.build_decontaminator(cfg.decontam, base_dir=cfg.path.parent)
    print(decontaminator.describe())
    fp = fingerprint("decontam", cfg.decontam, evals_fp, upstream["output"], code_version())
    return run_step(run_dir / "steps" / "decontam", fp, lambda tmp: steps.decontam_docs(in_dir, tmp, decontaminator))


@task(**IO_RETRIES)
def finalize_task(upstream: list[dict], last_dir: Path, step_dirs: list[Path], quarantine_dirs: list[Path],
                  run_dir: Path) -> dict:  # fmt: skip
    fp = fingerprint("final", [m["output"] for m in upstream], code_version())
    return run_step(run_dir / "corpus", fp, lambda tmp: steps.finalize(last_dir, step_dirs, quarantine_dirs, tmp))


@task(**IO_RETRIES)
def shards_task(upstream: dict[str, Any], run_dir: Path, cfg: StageConfig, dry_run: bool) -> dict[str, Any]:
    # The shard builder keeps its own manifest-based cache and resumes at shard granularity.
    from sharding.build import build_stage_shards

    return build_stage_shards(run_dir / "corpus" / "docs", run_dir / "shards", cfg.stage, cfg.mixture, cfg.shards,
                              dry_run=dry_run)  # fmt: skip


@task(cache_policy=NO_CACHE)
def train_task(shards: dict[str, Any], run_dir: Path, cfg: StageConfig, num_steps: int) -> dict[str, Any]:
    # torch is imported here only: the data path never needs it.
    from trainer.train import train_from_manifest

    result = train_from_manifest(shards["manifest"], num_steps, config=cfg.train_config, out_dir=run_dir / "train")
    return {k: v for k, v in result.items() if k != "losses"}


@flow(name="corpusforge-stage", log_prints=True)
def stage_flow(stage: str = "general", sources: str | None = None, out: str | None = None,
               limit: int | None = None, config: str | None = None, dry_run: bool = False,
               train_steps: int | None = None) -> dict[str, Any]:  # fmt: skip
    """Run one curriculum stage end to end and return its funnel.

    Args:
        stage: general | reasoning | long_context.
        sources: sources file (TOML); defaults to the one the stage config names.
        out: run directory; defaults to runs/<stage>.
        limit: read at most this many records per source.
        config: stage config file; defaults to configs/stages/<stage>.toml.
        dry_run: build (or reuse) the filtered corpus, print the token budget per source, write no shards.
        train_steps: then train the bundled MoE trainer on the stage's manifest for this many steps
            (continuing from the previous stage's checkpoint; config from the stage's `[train]` table).
    """
    cfg = load_stage_config(stage, Path(config) if config else None)
    specs = load_sources(Path(sources) if sources else cfg.sources)
    run_dir = Path(out or f"runs/{stage}").resolve()
    with run_lock(run_dir):
        summary = _run_stage(cfg, specs, run_dir, limit, dry_run, train_steps)
    print(format_funnel(summary))
    return summary


def _run_stage(cfg: StageConfig, specs: list[SourceSpec], run_dir: Path, limit: int | None, dry_run: bool,
               train_steps: int | None) -> dict[str, Any]:  # fmt: skip
    ingested = [ingest_task(spec, run_dir, limit) for spec in specs]
    empty = [spec.name for spec, m in zip(specs, ingested) if m["stats"].get("paths_matched", 1) == 0]
    ingest_dirs = [run_dir / "steps" / "ingest" / spec.name for spec in specs]
    funnel: list[dict[str, Any]] = [_ingest_row(ingested)]

    filtered = filter_task(ingested, ingest_dirs, run_dir, cfg)
    funnel.append(_row("filter", filtered))
    last, last_dir, step_dirs = filtered, run_dir / "steps" / "filter", [run_dir / "steps" / "filter"]
    markers = [*ingested, filtered]  # every step's output feeds the final lineage
    for kind in ("exact", "minhash"):
        if cfg.dedup.get(kind, {}).get("enabled", True):
            last = dedup_task(kind, last, last_dir, run_dir, cfg)
            last_dir = run_dir / "steps" / f"dedup_{kind}"
            step_dirs.append(last_dir)
            markers.append(last)
            funnel.append(_row(f"dedup_{kind}", last))
    if cfg.decontam.get("enabled", True):
        last = decontam_task(last, last_dir, run_dir, cfg)
        last_dir = run_dir / "steps" / "decontam"
        step_dirs.append(last_dir)
        markers.append(last)
        funnel.append(_row("decontam", last))
    final = finalize_task(markers, last_dir, step_dirs, ingest_dirs, run_dir)
    shards = shards_task(final, run_dir, cfg, dry_run)
    trained = train_task(shards, run_dir, cfg, train_steps) if train_steps and not dry_run else None

    summary = {
        "stage": cfg.stage,
        "run_dir": str(run_dir),
        "records_read": sum(m["stats"]["records_read"] for m in ingested),
        "quarantined": sum(sum(m["stats"]["quarantined"].values()) for m in ingested),
        "docs_final": final["stats"]["docs_out"],
        "dropped": sum(sum(r["dropped"].values()) for r in funnel),
        "funnel": funnel,
        "sources_without_files": empty,
        "shards": {k: v for k, v in shards.items() if k != "table"},
        "train": trained,
    }
    atomic_write_json(run_dir / "funnel.json", summary)
    return summary


def _row(step: str, marker: dict[str, Any]) -> dict[str, Any]:
    s = marker["stats"]
    return {
        "step": step,
        "docs_in": s["docs_in"],
        "docs_out": s["docs_out"],
        "dropped": s.get("dropped", {}),
        "modified": s.get("modified", {}),
        "skipped": marker.get("skipped", False),
    }


def _ingest_row(markers: list[dict[str, Any]]) -> dict[str, Any]:
    quarantined: dict[str, int] = {}
    for m in markers:
        for reason, n in m["stats"]["quarantined"].items():
            quarantined[f"quarantine_{reason}"] = quarantined.get(f"quarantine_{reason}", 0) + n
    return {
        "step": "ingest",
        "docs_in": sum(m["stats"]["records_read"] for m in markers),
        "docs_out": sum(m["stats"]["docs_out"] for m in markers),
        "dropped": {},
        "quarantined": quarantined,
        "modified": {},
        "skipped": all(m.get("skipped") for m in markers),
    }


def format_funnel(summary: dict[str, Any], top: int = 3) -> str:
    """The funnel as a fixed-width table: docs in/out and top drop reasons per step."""
    lines = [f"\ncorpusforge stage '{summary['stage']}' -> {summary['run_dir']}"]
    lines.append(f"{'step':<14}{'in':>9}{'out':>9}  top reasons")
    for r in summary["funnel"]:
        reasons = {**r.get("quarantined", {}), **r["dropped"]}
        top_reasons = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:top])
        mods = sum(r["modified"].values())
        if mods:
            top_reasons += f"{'; ' if top_reasons else ''}modified {mods}"
        note = " (cached)" if r.get("skipped") else ""
        lines.append(f"{r['step'] + note:<14}{r['docs_in']:>9,}{r['docs_out']:>9,}  {top_reasons}")
    lines.append(
        f"records read {summary['records_read']:,} = kept {summary['docs_final']:,} + dropped "
        f"{summary['dropped']:,} + quarantined {summary['quarantined']:,}"
    )
    if summary["docs_final"] == 0:
        lines.append("WARNING: the final corpus is empty: every document was dropped or quarantined (see above)")
    if summary.get("sources_without_files"):
        lines.append(f"WARNING: no input file matched for source(s) {summary['sources_without_files']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flows.stage",
        description=(
            "Run a corpusforge curriculum stage end to end (ingest, filter, dedup, decontaminate) as a "
            "Prefect flow. Finished steps are skipped on rerun; a killed run resumes. Query the result "
            "with `python -m flows.query --out DIR \"SQL\"`."
        ),
    )
    parser.add_argument("stage", choices=STAGES, help="curriculum stage to run")
    parser.add_argument("--sources", help="sources file (TOML); default: the one the stage config names")
    parser.add_argument("--out", help="run directory (default: runs/<stage>)")
    parser.add_argument("--limit", type=int, help="read at most N records per source (quick looks)")
    parser.add_argument("--config", help="stage config file (default: configs/stages/<stage>.toml)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the token budget per source and domain for the stage's mixture; write no shards")
    parser.add_argument("--train-steps", type=int, metavar="N",
                        help="then train the bundled MoE trainer on the stage's manifest for N steps "
                        "(resumes; continues from the previous stage's checkpoint)")
    parser.add_argument("--json", action="store_true", help="print the funnel as JSON at the end")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit <= 0:
        parser.error("--limit must be a positive integer")
    if args.train_steps is not None and args.train_steps <= 0:
        parser.error("--train-steps must be a positive integer")
    try:  # check the config and sources before Prefect starts, for a short error instead of a trace
        cfg = load_stage_config(args.stage, args.config)
        load_sources(Path(args.sources) if args.sources else cfg.sources)
        validate_chain_config(cfg.filters)
        from sharding.build import ShardsConfig
        from sharding.mixture import MixtureConfig

        ShardsConfig.from_dict(cfg.shards)
        MixtureConfig.from_dict(cfg.mixture)
    except (SourcesError, ConfigError, FilterConfigError, ValueError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        summary = stage_flow(stage=args.stage, sources=args.sources, out=args.out, limit=args.limit,
                             config=args.config, dry_run=args.dry_run, train_steps=args.train_steps)  # fmt: skip
    except (SourcesError, ConfigError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
