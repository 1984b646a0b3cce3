"""Which documents a sampled scorer scores (`sample`, `sample_max` of `[scorers.<name>]`).

`sample = SHARE` scores a document when a hash of its id, read as a number in [0, 1), falls under the share: the same
documents at any worker count and in any order. A share alone costs in proportion to the run (3% of 20,000 documents
is 600 SmolLM2 forward passes, ~100 s of CPU), while what a sampled scorer is for, the run's distribution per
domain and language, needs a few dozen. `sample_max = N` caps it: among the documents the scorer would score, only
the N with the smallest hashes are. The cutoff (the N-th smallest hash) is taken over every document that enters
the filter step, before any is filtered, so it depends on the run's input alone: the same input gives the same
scored documents at any worker count, and the stage puts the cutoff into the filter step's fingerprint, so a run
whose input grows rescores instead of reusing units scored under the old cutoff.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scoring.config import ScorerConfig


def id_hash(doc_id: str) -> float:
    """A document id as a number in [0, 1) (blake2b, 64 bits): what `sample` compares."""
    digest = hashlib.blake2b(doc_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def with_sample_cutoffs(
    scorers: tuple[ScorerConfig, ...], documents: Iterable[tuple[str, str]]
) -> tuple[ScorerConfig, ...]:
    """The scorers with `sample_cutoff` set for each one that has a `sample_max` its share would exceed.

    Args:
        documents: (id, domain) of every document that enters the filter step.
    """
    capped = [s for s in scorers if s.sample_max is not None]
    if not capped:
        return scorers
    hashes: dict[str, list[float]] = {s.name: [] for s in capped}
    for doc_id, domain in documents:
        h = id_hash(doc_id)
        for s in capped:
            if (not s.domains or domain in s.domains) and h < (s.sample if s.sample is not None else 1.0):
                hashes[s.name].append(h)
    out = []
    for s in scorers:
        if s.sample_max is not None and len(hashes[s.name]) > s.sample_max:
            s = dataclasses.replace(s, sample_cutoff=sorted(hashes[s.name])[s.sample_max - 1])
        out.append(s)
    return tuple(out)
