"""What a shard build says about its mixture: the budget rows and table (estimated from bytes for a dry run),
and the summary a stage keeps under `shards` in its funnel, with the warning when the manifest holds no shard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sharding.chunks import Chunk
from sharding.doc_table import read_cluster_sizes
from sharding.mixture import Rehydration, SourceBudget, format_budget_table
from sharding.score_buckets import ScoreBuckets, read_scores


def estimate_available(
    chunks: list[Chunk],
    tok: Any,
    rehydrate: Rehydration | None = None,
    buckets: ScoreBuckets | None = None,
    sample_bytes: int = 1 << 20,
) -> dict[tuple[str, str, str | None], tuple[int, int]]:
    """Token counts per (domain, source, score bucket) estimated from UTF-8 bytes and a tokenized sample (the first
    ~1 MB of each cell); with `rehydrate`, each document counts its copies (as `sharding.doc_table.available_by_source`);
    without `buckets`, the bucket is None."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    names = [None, *(b.name for b in buckets.buckets)] if buckets is not None else [None]
    acc: dict[tuple[str, str, str | None], list[int]] = {}  # docs, bytes, sample bytes, sample tokens, EOTs
    for c in chunks:
        t = pq.ParquetFile(c.path).read_row_group(c.row_group, columns=["text", "source", "domain"])
        nbytes = pc.binary_length(t.column("text")).to_pylist()
        copies = rehydrate.copies(read_cluster_sizes([c])).tolist() if rehydrate is not None else [1] * len(nbytes)
        index = buckets.assign(read_scores([c], buckets.scorer)) + 1 if buckets is not None else [0] * len(nbytes)
        for text, src, dom, nb, n, b in zip(
            t.column("text").to_pylist(),
            t.column("source").to_pylist(),
            t.column("domain").to_pylist(),
            nbytes,
            copies,
            index,
        ):
            a = acc.setdefault((dom, src, names[b]), [0, 0, 0, 0, 0])
            a[0] += 1
            a[1] += nb * n
            a[4] += n
            if a[2] < sample_bytes:
                a[2] += nb
                a[3] += len(tok.encode_np(text))
    return {k: (a[0], int(round(a[1] * (a[3] / a[2] if a[2] else 0.25))) + a[4]) for k, a in acc.items()}


def budget_row(r: SourceBudget) -> dict[str, Any]:
    return {
        "source": r.source,
        "domain": r.domain,
        "docs": r.docs,
        "available_tokens": r.available,
        "share": round(r.share, 6),
        "budget_tokens": r.budget,
        "epochs": round(r.epochs, 4),
        "max_repeats": r.cap,
        "selected_tokens": r.realized,
        **({"bucket": r.bucket} if r.bucket is not None else {}),  # `[mixture.score_buckets]`: the row's bucket
    }


def manifest_budget_table(m: dict[str, Any]) -> str:
    """The budget table of a published manifest (its `mixture` rows)."""
    rows = [
        SourceBudget(
            r["source"],
            r["domain"],
            r["docs"],
            r["available_tokens"],
            r["share"],
            r["budget_tokens"],
            r["max_repeats"],
            r["selected_tokens"],
            r.get("bucket"),
        )
        for r in m.get("mixture", [])
    ]
    return format_budget_table(m["stage"], rows, m["tokenizer"]["name"], m["seq_len"], estimated=False)


def no_shards_warning(m: dict[str, Any]) -> str | None:
    """Why a manifest holds no shard (the trainer has nothing to read), or None when it holds some.

    Only full sequences of `seq_len` tokens are packed (a trailing partial one is dropped, sharding/pack.py), so a
    run that keeps a few short documents writes a valid manifest with 0 shards: said out loud, never silently.
    """
    if m["shards"]:
        return None
    packing = m.get("packing", {})
    docs, tokens = packing.get("docs_selected", 0), packing.get("tokens_selected", 0)
    outside = packing.get("tokens_outside_buckets", 0)
    if docs == 0:
        why = "the mixture selected no document (the corpus is empty, or every source has weight 0)"
    elif outside:
        why = (
            f"the mixture selected {docs:,} document(s) of {tokens:,} tokens (EOT included), {outside:,} of them "
            f"outside every length bucket, and no bucket fills one sequence of seq_len={m['seq_len']:,} tokens"
        )
    else:
        why = (
            f"the mixture selected {docs:,} document(s) of {tokens:,} tokens (EOT included), fewer than one "
            f"sequence of seq_len={m['seq_len']:,} tokens"
        )
    return f"stage {m['stage']}: the manifest holds 0 shards: {why}; add input or lower [shards] seq_len"


def build_summary(m: dict[str, Any], path: Path) -> dict[str, Any]:
    warning = no_shards_warning(m)
    return {
        "stage": m["stage"],
        "manifest": str(path),
        "tokenizer": m["tokenizer"]["name"],
        "seq_len": m["seq_len"],
        "total_tokens": m["total_tokens"],
        "num_sequences": m["num_sequences"],
        "num_shards": len(m["shards"]),
        "budget": m.get("mixture", []),
        "packing": m.get("packing", {}),
        "table": manifest_budget_table(m),
        "warnings": [warning] if warning else [],
    }
