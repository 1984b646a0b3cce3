"""The annotations table: one row per sampled document and rubric, from the run's journal, in sample order.

`fate` is `labelled` when the answer parsed and fit the rubric's schema (then `label` holds the label as text:
"3", "science_tech"), else why not: `unparsable`, `schema_violation`, `truncated` (the answer hit max_tokens),
`empty`, or `request_error` (every attempt on every server failed; `error` says how).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from synth.plan import SynthRequest

LABELLED = "labelled"

ANNOTATION_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("rubric", pa.string(), nullable=False),
        pa.field("rubric_version", pa.int32(), nullable=False),
        pa.field("rubric_sha256", pa.string(), nullable=False),  # prompt, schema, format and sampling defaults
        pa.field("label", pa.string()),  # null unless fate = labelled
        pa.field("model", pa.string()),  # path of the Hugging Face folder
        pa.field("model_sha256", pa.string()),  # sha256 over its weight files
        pa.field("sampling", pa.string()),  # JSON of the request's sampling parameters (incl. its seed)
        pa.field("finish_reason", pa.string()),
        pa.field("fate", pa.string(), nullable=False),  # labelled | why there is no label
        pa.field("domain", pa.string()),
        pa.field("lang", pa.string()),
        pa.field("source", pa.string()),
        pa.field("answer", pa.string()),  # the parsed answer as JSON (a justification beside the label)
        pa.field("text", pa.string()),  # the raw generation
        pa.field("error", pa.string()),
        pa.field("prompt_tokens", pa.int64()),
        pa.field("completion_tokens", pa.int64()),
        pa.field("seconds", pa.float64()),  # the request's wall time on its server: the annotation's cost
        pa.field("key", pa.string(), nullable=False),  # request key: hash of all that determines the output
    ]
)


def read_journal(path: Path) -> dict[str, dict[str, Any]]:
    """The journal's records by request key (synth.run.generate wrote them, one JSON line each)."""
    out: dict[str, dict[str, Any]] = {}
    with open(path, "rb") as f:
        for line in f:
            rec = json.loads(line)
            out[rec["key"]] = rec
    return out


def annotation_rows(requests: list[SynthRequest], journal: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per request that has a record, in request (sample) order."""
    rows = []
    for req in requests:
        rec = journal.get(req.key)
        if rec is None:  # not answered (a run stopped before it): no row, the next run sends it
            continue
        labelled = rec["status"] == "ok"
        rows.append(
            {
                "doc_id": req.seed.id,
                "rubric": req.template.name,
                "rubric_version": req.template.version,
                "rubric_sha256": req.template.sha256,
                "label": str(rec["parsed"]["label"]) if labelled else None,
                "model": rec["model_path"],
                "model_sha256": rec["model_sha256"],
                "sampling": json.dumps(rec["sampling"], sort_keys=True),
                "finish_reason": rec["finish_reason"],
                "fate": LABELLED if labelled else rec["reason"],
                "domain": req.seed.domain,
                "lang": req.seed.lang,
                "source": req.seed.source,
                "answer": json.dumps(rec["parsed"], ensure_ascii=False) if rec["parsed"] is not None else None,
                "text": rec["text"],
                "error": rec["error"],
                "prompt_tokens": rec["prompt_tokens"],
                "completion_tokens": rec["completion_tokens"],
                "seconds": float(rec["seconds"]),
                "key": req.key,
            }
        )
    return rows
