"""Annotate a finished corpus: a stratified sample -> rubric requests -> vLLM servers -> one label per document.

    from annotate.run import annotate
    summary = annotate("runs/general", load_rubric("educational_value"), model_dir, "runs/annotations", count=600)

The requests go through synth.run.generate, so annotation has what synthesis has: local servers in `.venv-engine`
started for the run and always stopped (or `servers`, a running fleet, and nothing started), failover between
servers, guided JSON (the rubric's schema), and a journal: a killed run resumes without sending a finished request
again. A request's key hashes the rubric (name, version, sha256), the document, the seed, the model's sha256 and
the sampling: the same inputs give the same sample and the same request bytes.

Output (`out_dir`):
- `annotations/<rubric>.parquet`: one row per sampled document (annotate/table.py), in sample order;
- `journal/<rubric>/generations.jsonl` and `run.json`: the requests' records and the run's provenance;
- `annotate.json`: per rubric, its version and sha256, the run annotated, the model, count, seed and the last run's summary. It
  marks the folder for `python -m flows.query --out OUT_DIR` (the `annotations` view).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from annotate.sample import stratified_sample
from annotate.table import ANNOTATION_SCHEMA, LABELLED, annotation_rows, read_journal
from core.io import atomic_write_json, write_table
from synth.plan import SynthRequest, model_sha256, plan_requests
from synth.run import GENERATIONS, generate
from synth.seeds import Seed
from synth.templates import Template

ANNOTATIONS = "annotations"
JOURNAL = "journal"
MARKER = "annotate.json"


def plan_annotation(
    run: Path | str,
    rubric: Template,
    model_dir: Path | str,
    count: int,
    seed: int,
    sampling: dict[str, Any] | None = None,
) -> tuple[list[Seed], list[SynthRequest]]:
    """(sample, requests): the stratified sample of `run` and one request per document (synth/plan.py keys)."""
    docs = stratified_sample(run, count, seed)
    return docs, plan_requests(docs, [rubric], len(docs), seed, model_sha256(model_dir), sampling)


def annotate(
    run: Path | str,
    rubric: Template,
    model_dir: Path | str,
    out_dir: Path | str,
    count: int,
    seed: int = 0,
    servers: list[str] | None = None,
    sampling: dict[str, Any] | None = None,
    max_concurrency: int = 8,
    num_local_servers: int = 1,
    server_kwargs: dict[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Label `count` documents of `run`'s corpus with `rubric` and write `out_dir` (see the module docstring).

    Args:
        run: a finished stage run (or a folder of corpus Parquet).
        rubric: the rubric (annotate.rubrics.load_rubric).
        model_dir: the annotator, a local Hugging Face folder (served locally unless `servers`; its path and
            weights' sha256 are the rows' provenance either way).
        out_dir: the annotation folder.
        count: documents to label (fewer when the corpus holds fewer).
        seed: the sample, the request keys and the sampling seeds.
        servers: running vLLM servers serving the model as "corpusforge-synth"; None starts local ones.
        sampling: request-body overrides over the rubric's own sampling (max_tokens, temperature, ...).
        max_concurrency: requests in flight per server.
        num_local_servers: local servers to start when `servers` is None.
        server_kwargs: `EngineServer` arguments for local servers.
        progress: a progress bar while requests run.

    Returns:
        generate's summary with `sampled`, `labelled`, `fates` and `annotations` (the Parquet file) added.
    """
    out = Path(out_dir)
    docs, requests = plan_annotation(run, rubric, model_dir, count, seed, sampling)
    journal_dir = out / JOURNAL / rubric.name
    summary = generate(
        docs,
        [rubric],
        model_dir,
        journal_dir,
        servers=servers,
        count=len(docs),
        seed=seed,
        sampling=sampling,
        max_concurrency=max_concurrency,
        num_local_servers=num_local_servers,
        server_kwargs=server_kwargs,
        progress=progress,
    )
    journal = read_journal(journal_dir / GENERATIONS) if (journal_dir / GENERATIONS).is_file() else {}
    rows = annotation_rows(requests, journal)
    import pyarrow as pa

    table_path = out / ANNOTATIONS / f"{rubric.name}.parquet"
    write_table(table_path, pa.Table.from_pylist(rows, schema=ANNOTATION_SCHEMA), ANNOTATION_SCHEMA)
    fates: dict[str, int] = {}
    for row in rows:
        fates[row["fate"]] = fates.get(row["fate"], 0) + 1
    summary.update(
        {
            "sampled": len(docs),
            "labelled": fates.get(LABELLED, 0),
            "fates": fates,
            "annotations": str(table_path),
            "cost": annotation_cost(rows),
        }
    )
    _record_run(out, run, rubric, model_dir, len(docs), seed, sampling, summary)
    return summary


def annotation_cost(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What the table's labels cost, resumed requests included: tokens in and out and the requests' wall seconds on
    their servers (server start-up not counted: `server_start_s` of the summary has it)."""
    seconds = sum(r["seconds"] or 0.0 for r in rows)
    return {
        "requests": len(rows),
        "prompt_tokens": sum(r["prompt_tokens"] or 0 for r in rows),
        "completion_tokens": sum(r["completion_tokens"] or 0 for r in rows),
        "request_seconds": round(seconds, 3),
        "seconds_per_document": round(seconds / len(rows), 3) if rows else None,
    }


def _record_run(
    out: Path,
    run: Path | str,
    rubric: Template,
    model_dir: Path | str,
    count: int,
    seed: int,
    sampling: dict[str, Any] | None,
    summary: dict[str, Any],
) -> None:
    """Add (or replace) this rubric's entry in `annotate.json`; the other rubrics' entries stay."""
    marker = out / MARKER
    meta = json.loads(marker.read_text()) if marker.is_file() else {"rubrics": {}}
    meta["rubrics"][rubric.name] = {
        "version": rubric.version,
        "sha256": rubric.sha256,
        "path": rubric.path,
        "run": str(Path(run).resolve()),  # whose documents were labelled: `flows.classify train --labels` reads them
        "model": str(Path(model_dir).resolve()),
        "count": count,
        "seed": seed,
        "sampling": sampling or {},
        "last_run": {k: v for k, v in summary.items() if k != "servers"},
    }
    atomic_write_json(marker, meta)
