"""Synthesis as a step: its units are batches of requests (seed x template), answered by vLLM servers.

    seeds -> plan_requests -> units of `batch_size` requests -> servers -> one journal line per request
          -> per unit: a synthetic document for each usable generation + a `generations.parquet` row for each

A unit appends every finished request to a journal outside its temporary folder
(`<run>/synth/journal/<unit key>.jsonl`), so a killed run resumes without sending a finished request again; when
the unit completes, its documents and its generations table are written from the journal, in request order.

Each synthetic document carries its provenance in `metadata` (`synthetic: true`, the generation key, seed doc
id, template name, version and sha256, model path and sha256, sampling) and goes on, like any ingested
document, through the filters, exact and MinHash dedup (after the real documents, so a real document is the
survivor of a cluster it shares with a generation) and decontamination. A rejected generation (empty,
truncated, unparsable, schema violation, request error) is a `dropped` lineage row of step `synth` with its
reason, so every generation has a fate (the `synthetic` DuckDB view).

The servers are not part of a unit: the stage starts local ones around the step (only when a unit must run) or
uses the configured URLs of a fleet; their URLs are not part of the fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pipeline.corpus import GENERATIONS
from pipeline.step import Step, Unit, UnitWriter
from schemas import GENERATION_SCHEMA, Document, LineageRecord, make_doc_id
from synth.plan import SynthRequest, plan_requests, read_done
from synth.seeds import Seed
from synth.send import send_requests
from synth.templates import Template

JOURNAL_DIR = "journal"


def source_name(template: str) -> str:
    """The source of a template's documents (`[mixture.sources.synth-stem_qa]` weighs them)."""
    return f"synth-{template}"


def document_text(rec: dict[str, Any]) -> str:
    """The text a generation contributes: a structured answer's fields in order (a list as numbered steps),
    else the generated text itself."""
    parsed = rec.get("parsed")
    if isinstance(parsed, dict):
        parts = []
        for value in parsed.values():
            if isinstance(value, list):
                parts.append("\n".join(f"{i}. {v}" for i, v in enumerate(value, 1)))
            else:
                parts.append(str(value))
        return "\n\n".join(p.strip() for p in parts if str(p).strip())
    return (rec.get("text") or "").strip()


def generation_doc_id(rec: dict[str, Any]) -> str:
    return make_doc_id(source_name(rec["template"]), rec["key"], rec.get("text") or "")


class SynthStep(Step):
    """Args:
    params: the stage's `[synth]` settings that change outputs (count, seed, sampling, batch_size, ...).
    seeds: the seed documents (sampled by the caller, reproducibly).
    templates: the prompt templates, used in turn.
    model: {"path", "sha256"} of the served model (the sha256 is in every request key).
    journal_dir: where units append finished requests (outside the units' temporary folders).
    urls: servers to send to; set by the caller once they are up (not part of the fingerprint).
    seed_templates: seed id -> the templates it may go through (`[synth.route]`, synth/routes.py); None: any.
    """

    name = "synth"

    def __init__(
        self,
        params: dict[str, Any],
        seeds: list[Seed],
        templates: list[Template],
        model: dict[str, str],
        journal_dir: Path,
        urls: list[str] | None = None,
        seed_templates: dict[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.params = params
        self.seed_templates = seed_templates
        self.seeds = seeds
        self.templates = templates
        self.model = model
        self.journal_dir = journal_dir
        self.urls = list(urls or [])
        self._requests: list[SynthRequest] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_requests"] = None  # planned again where the unit runs (cheap, deterministic)
        return state

    def config(self) -> dict[str, Any]:
        seeds = hashlib.sha256(json.dumps([[s.id, s.text, s.domain, s.lang] for s in self.seeds]).encode())
        return {
            "params": self.params,
            "seeds": seeds.hexdigest(),
            "model_sha256": self.model["sha256"],
            "templates": {t.ref: t.sha256 for t in self.templates},
            **({"routes": sorted(self.seed_templates.items())} if self.seed_templates is not None else {}),
        }

    def requests(self) -> list[SynthRequest]:
        if self._requests is None:
            self._requests = plan_requests(
                self.seeds,
                self.templates,
                self.params["count"],
                self.params["seed"],
                self.model["sha256"],
                self.params.get("sampling"),
                self.seed_templates,
            )
        return self._requests

    def units(self) -> list[Unit]:
        reqs, size = self.requests(), self.params["batch_size"]
        out = []
        for start in range(0, len(reqs), size):
            keys = [r.key for r in reqs[start : start + size]]
            digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()
            out.append(
                Unit(f"synth-{start // size:05d}-{digest[:12]}", digest, {"start": start, "stop": start + len(keys)})
            )
        return out

    def run(self, unit: Unit, out: UnitWriter) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        batch = self.requests()[unit.payload["start"] : unit.payload["stop"]]
        self.journal_dir.mkdir(parents=True, exist_ok=True)
        journal = self.journal_dir / f"{unit.key}.jsonl"
        read_done(journal)  # cuts a record torn by a kill
        # A request that failed on every server (request_error) is sent again on resume; the rest are final.
        done = {k for k, rec in _journal(journal).items() if rec["reason"] != "request_error"}
        todo = [r for r in batch if r.key not in done]
        if todo:
            if not self.urls:
                raise RuntimeError(
                    "synth: no vLLM server to send to (the stage starts local ones or uses [synth] servers)"
                )
            send_requests(
                todo,
                self.urls,
                journal,
                self.model,
                self.params.get("sampling"),
                run_id=unit.key,
                max_concurrency=self.params["max_concurrency"],
            )
        records = _journal(journal)
        rows = []
        for req in batch:
            rec = records[req.key]
            out.read()
            doc_id = generation_doc_id(rec)
            text = document_text(rec) if rec["status"] == "ok" else ""
            reason = rec["reason"] or (None if text else "empty")
            if reason is None:
                out.keep(_document(doc_id, text, req, rec))
            else:
                out.append(LineageRecord(doc_id, "synth", "dropped", f"synth_{reason}"))
            rows.append(_generation_row(doc_id, rec, reason))
        pq.write_table(pa.Table.from_pylist(rows, schema=GENERATION_SCHEMA), out.dir / GENERATIONS, compression="zstd")


def _journal(path: Path) -> dict[str, dict[str, Any]]:
    """The journal's records by key (the last one wins: a request sent again after a request_error)."""
    records: dict[str, dict[str, Any]] = {}
    if path.is_file():
        for line in path.read_bytes().splitlines():
            rec = json.loads(line)
            records[rec["key"]] = rec
    return records


def _document(doc_id: str, text: str, req: SynthRequest, rec: dict[str, Any]) -> Document:
    return Document(
        id=doc_id,
        text=text,
        source=source_name(req.template.name),
        domain=req.seed.domain,
        lang=req.seed.lang,
        metadata={
            "synthetic": True,
            "generation_key": rec["key"],
            "seed_doc_id": rec["seed_doc_id"],
            "template": rec["template"],
            "template_version": rec["template_version"],
            "template_sha256": rec["template_sha256"],
            "model": rec["model_path"],
            "model_sha256": rec["model_sha256"],
            "sampling": rec["sampling"],
        },
    )


def _generation_row(doc_id: str, rec: dict[str, Any], reason: str | None) -> dict[str, Any]:
    return {
        "doc_id": doc_id,
        "key": rec["key"],
        "source": source_name(rec["template"]),
        "seed_doc_id": rec["seed_doc_id"],
        "seed_domain": rec["seed_domain"],
        "seed_lang": rec["seed_lang"],
        "template": rec["template"],
        "template_version": rec["template_version"],
        "template_sha256": rec["template_sha256"],
        "format": rec["format"],
        "model": rec["model_path"],
        "model_sha256": rec["model_sha256"],
        "sampling": json.dumps(rec["sampling"], sort_keys=True),
        "status": "ok" if reason is None else "rejected",
        "reason": reason,
        "finish_reason": rec["finish_reason"],
        "prompt_tokens": rec["prompt_tokens"],
        "completion_tokens": rec["completion_tokens"],
        "text": rec["text"],
    }


def run_synth_step(cfg: Any, layout: Any, run: Any, seed_corpus: Path | list[Path]) -> Any:
    """Sample seeds from `seed_corpus`, then run the synth step: with `cfg.servers` against those, else with
    `cfg.num_local_servers` local vLLM servers started for the units that must run (none when all are done) and
    always stopped.

    Args:
        cfg: the stage's `stage.config.SynthConfig`.
        layout: the run's `RunLayout` (the journal lives in `<run>/synth/journal`).
        run: runs a step to completion (the stage's `run`).
        seed_corpus: a finished corpus, or the filter step's unit folders.
    """
    import contextlib

    from pipeline.runner import pending_units
    from synth.plan import model_sha256
    from synth.run import local_servers
    from synth.seeds import sample_seeds
    from synth.templates import load_templates

    seeds = sample_seeds(
        seed_corpus,
        cfg.count,
        seed=cfg.seed,
        domains=list(cfg.seed_domains) or None,
        langs=list(cfg.seed_langs) or None,
        min_chars=cfg.seed_min_chars,
        max_chars=cfg.seed_max_chars,
    )
    if not seeds:
        raise ValueError(
            f"[synth]: no seed document in {seed_corpus if isinstance(seed_corpus, Path) else 'the filtered documents'} "
            f"matches seed_domains={list(cfg.seed_domains)} seed_langs={list(cfg.seed_langs)} "
            f"seed_min_chars={cfg.seed_min_chars}"
        )
    model = {"path": str(cfg.model), "sha256": model_sha256(cfg.model)}
    templates = load_templates(list(cfg.templates) or None)
    routes = None
    if cfg.route is not None:  # each seed through its score bucket's templates (synth/routes.py)
        from synth.routes import read_seed_scores, seed_templates

        default = tuple(t.name for t in templates)
        templates += load_templates([n for n in cfg.route.template_names if n not in default])
        scores = read_seed_scores(seed_corpus, [s.id for s in seeds], cfg.route.scorer)
        routes = seed_templates(seeds, scores, cfg.route, default)
    step = SynthStep(cfg.step_params(), seeds, templates, model, layout.synth / JOURNAL_DIR, seed_templates=routes)
    with contextlib.ExitStack() as stack:
        if cfg.servers:
            step.urls = list(cfg.servers)
        elif pending_units(step, layout):
            servers = stack.enter_context(local_servers(cfg.model, cfg.num_local_servers, server_kwargs=cfg.server))
            step.urls = list(servers)
        return run(step)
