"""A stage's data mixture: per-domain weights, per-source multipliers and repetition caps, turned into a
token budget per source.

The `[mixture]` table of `configs/stages/<stage>.toml`::

    [mixture]
    seed = 1234
    max_repeats = 4.0            # default cap: a source is seen at most 4 times in a stage
    # total_tokens = 1_000_000   # optional stage budget; default: the corpus size (one pass at natural shares)
    [mixture.domains]            # target share of the stage's tokens per domain (normalised over present ones)
    web = 0.5
    stem = 0.3
    code = 0.2
    [mixture.sources.gsm8k]      # optional per source: multiplier within its domain, own cap
    weight = 2.0
    max_repeats = 2.0

Planning: a domain gets `share_d * total`; within a domain, sources share it in proportion to
`weight_s * available_s`. A source never exceeds `max_repeats * available_s`; what a capped source cannot
take goes to the uncapped ones (water-filling). Realisation (`epochs = budget / available`): whole
passes over the source, then a seeded sample of documents for the fractional pass. A source with a share
above zero and kept documents always gets at least one document, however small its share.

The default cap of 4 follows Muennighoff et al. 2023 ("Scaling Data-Constrained Language Models",
arXiv 2305.16264): up to ~4 epochs of repeated data are about as good as unique data.

Rehydration (FineWeb-2, arXiv 2506.20920; its repository's README and misc/rehydration)::

    [mixture.rehydrate]          # repeat each document by the size of the duplicate cluster it survived
    weights = { "1" = 1, "2" = 2, "3" = 3, "5" = 5, "100" = 8, "1000" = 1 }   # the default: FineWeb-2's
    max_copies = 5               # optional cap on one document's copies per pass

Score buckets (Nemotron-CC): `[mixture.score_buckets]` splits each domain's share over buckets of a scorer's score,
each with its own share and repetition cap; see sharding/score_buckets.py.

Dedup keeps one document per cluster and records the cluster's size on it (`metadata.dup_cluster_size`, exact
and MinHash copies together; dedup/steps.py). FineWeb-2 found that documents with a few duplicates are better
than unique ones and than those copied thousands of times (boilerplate, spam), so it puts them back in
proportion: a document from a cluster of size n counts `weights[k]` times, k the largest key <= n (a size below
the smallest key counts once), at most `max_copies`. Rehydration defines what one pass over a source is: its
available tokens are the rehydrated ones, and `max_repeats` caps passes over that, so one document is seen at
most `max_copies x max_repeats` times.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.config_types import check_table, type_hints_of
from schemas import DOMAINS
from sharding.score_buckets import ScoreBuckets, cell_name

DEFAULT_MAX_REPEATS = 4.0  # Muennighoff et al. 2023
_KEYS = {"seed", "max_repeats", "total_tokens", "domains", "sources", "rehydrate", "score_buckets"}
# FineWeb-2's upsampling weights (its README, "Deduplication"): smallest cluster size -> copies of its survivor.
FINEWEB2_REHYDRATION = {"1": 1, "2": 2, "3": 3, "5": 5, "100": 8, "1000": 1}


@dataclass(frozen=True)
class SourceMix:
    weight: float = 1.0
    max_repeats: float | None = None


@dataclass(frozen=True)
class Rehydration:
    """`[mixture.rehydrate]`, validated: copies of each document by its duplicate cluster's size (module docstring).

    Args:
        enabled: false keeps one copy of every document (as without the table).
        weights: smallest cluster size (a TOML key, so a string: "100") -> copies (>= 1).
        max_copies: cap on one document's copies per pass (None: the table's largest).
    """

    enabled: bool = True
    weights: dict[str, int] = field(default_factory=lambda: dict(FINEWEB2_REHYDRATION))
    max_copies: int | None = None

    def __post_init__(self) -> None:
        if not self.weights:
            raise ValueError('[mixture.rehydrate] weights is empty: give at least one size, e.g. { "1" = 1 }')
        for size, copies in self.weights.items():
            if not (size.isascii() and size.isdecimal()) or int(size) < 1:
                raise ValueError(f"[mixture.rehydrate] weights key {size!r}: must be a cluster size, an integer >= 1")
            if copies < 1:
                raise ValueError(f"[mixture.rehydrate] weights.{size} = {copies}: copies must be >= 1")
        if self.max_copies is not None and self.max_copies < 1:
            raise ValueError(f"[mixture.rehydrate] max_copies = {self.max_copies}: must be >= 1")

    def copies(self, sizes: np.ndarray) -> np.ndarray:
        """Copies (int64) of documents whose clusters have `sizes` (1 for a unique document)."""
        table = sorted((int(k), v) for k, v in self.weights.items())
        bounds = np.array([k for k, _ in table], np.int64)
        reps = np.array([1] + [v for _, v in table], np.int64)  # index 0: below the smallest size
        out = reps[np.searchsorted(bounds, np.asarray(sizes, np.int64), side="right")]
        return np.minimum(out, self.max_copies) if self.max_copies is not None else out


@dataclass(frozen=True)
class MixtureConfig:
    """The `[mixture]` table, validated.

    Args:
        domains: target share per domain (any positive scale; normalised over domains present).
        sources: per-source multiplier within its domain and optional own repetition cap.
        max_repeats: default cap on passes over a source (>= 0; 0 excludes the source).
        total_tokens: stage budget in tokens (EOT included); None = the available corpus size.
        seed: seed of the fractional-pass samples and the document shuffle.
        rehydrate: copies per document by duplicate cluster size (None: one each).
        score_buckets: each domain's share split over buckets of a scorer's score (None: no buckets).
    """

    domains: dict[str, float] = field(default_factory=lambda: {d: 1.0 for d in DOMAINS})
    sources: dict[str, SourceMix] = field(default_factory=dict)
    max_repeats: float = DEFAULT_MAX_REPEATS
    total_tokens: int | None = None
    seed: int = 0
    rehydrate: Rehydration | None = None
    score_buckets: ScoreBuckets | None = None

    def __post_init__(self) -> None:
        for d, w in self.domains.items():
            if d not in DOMAINS:
                raise ValueError(f"[mixture.domains] unknown domain {d!r}; known: {list(DOMAINS)}")
            if w < 0:
                raise ValueError(f"[mixture.domains] {d} = {w}: weights must be >= 0")
        if self.max_repeats < 0:
            raise ValueError(f"[mixture] max_repeats = {self.max_repeats}: must be >= 0")
        if self.total_tokens is not None and self.total_tokens <= 0:
            raise ValueError(f"[mixture] total_tokens = {self.total_tokens}: must be > 0 (or absent)")
        for s, m in self.sources.items():
            if m.weight < 0 or (m.max_repeats is not None and m.max_repeats < 0):
                raise ValueError(f"[mixture.sources.{s}] weight and max_repeats must be >= 0, got {m}")

    @classmethod
    def from_dict(cls, cfg: dict[str, Any] | None) -> MixtureConfig:
        cfg = dict(cfg or {})
        unknown = set(cfg) - _KEYS
        if unknown:
            raise ValueError(f"[mixture] unknown key(s) {sorted(unknown)}; allowed: {sorted(_KEYS)}")
        per_source = cfg.get("sources", {})
        for name, s in per_source.items() if isinstance(per_source, dict) else ():
            bad = set(s) - {"weight", "max_repeats"} if isinstance(s, dict) else set()
            if bad:
                raise ValueError(
                    f"[mixture.sources.{name}] unknown key(s) {sorted(bad)}; allowed: weight, max_repeats"
                )
        # Types before the float()/int() below, which would take "0.5" for 0.5 and true for 1.
        check_table("[mixture]", cfg, type_hints_of(cls), skip=("score_buckets",))
        buckets = cfg.get("score_buckets")
        if buckets is not None and not isinstance(buckets, dict):
            raise ValueError(f"[mixture] score_buckets = {buckets!r}: must be a table [mixture.score_buckets]")
        sources = {}
        for name, s in cfg.get("sources", {}).items():
            sources[name] = SourceMix(float(s.get("weight", 1.0)), s.get("max_repeats"))
        rehydrate = Rehydration(**cfg["rehydrate"]) if "rehydrate" in cfg else None
        return cls(
            domains={k: float(v) for k, v in cfg.get("domains", {d: 1.0 for d in DOMAINS}).items()},
            sources=sources,
            max_repeats=float(cfg.get("max_repeats", DEFAULT_MAX_REPEATS)),
            total_tokens=cfg.get("total_tokens"),
            seed=int(cfg.get("seed", 0)),
            rehydrate=rehydrate if rehydrate is not None and rehydrate.enabled else None,
            score_buckets=ScoreBuckets.from_dict(buckets) if buckets is not None else None,
        )

    def cap(self, source: str, bucket: str | None = None) -> float:
        """Passes over a source (or one score bucket of it): the bucket's cap, else the default, and never above the
        source's own `max_repeats`."""
        m = self.sources.get(source)
        own = float(m.max_repeats) if m is not None and m.max_repeats is not None else None
        b = self.score_buckets.bucket(bucket) if self.score_buckets is not None and bucket is not None else None
        if b is not None and b.max_repeats is not None:
            return min(float(b.max_repeats), own) if own is not None else float(b.max_repeats)
        return own if own is not None else self.max_repeats

    def weight(self, source: str) -> float:
        m = self.sources.get(source)
        return m.weight if m is not None else 1.0


@dataclass
class SourceBudget:
    """One row of the budget table (tokens include one end-of-text per document)."""

    source: str
    domain: str
    docs: int
    available: int
    share: float = 0.0  # target fraction of the stage
    budget: int = 0
    cap: float = 0.0
    realized: int | None = None  # tokens actually selected (whole documents)
    bucket: str | None = None  # the score bucket (`[mixture.score_buckets]`); None: unscored, or no buckets

    @property
    def cell(self) -> str:
        """What the selection realises this row as: the source, or `source#bucket`."""
        return cell_name(self.source, self.bucket)

    @property
    def epochs(self) -> float:
        return self.budget / self.available if self.available else 0.0


def plan_budget(
    available: dict[tuple[str, str], tuple[int, int]] | dict[tuple[str, str, str | None], tuple[int, int]],
    cfg: MixtureConfig,
) -> list[SourceBudget]:
    """Token budget per source (per source and score bucket with `[mixture.score_buckets]`).

    Args:
        available: (domain, source) or (domain, source, bucket) -> (documents, tokens available incl. one EOT per
            document); bucket None for a source's unscored documents.
        cfg: the stage's mixture.

    Returns:
        one `SourceBudget` per source (and bucket), sorted by (domain, source, bucket).
    """
    cells = {(k[0], k[1], k[2] if len(k) > 2 else None): v for k, v in available.items()}
    rows = [
        SourceBudget(s, d, n, t, cap=cfg.cap(s, b), bucket=b)
        for (d, s, b), (n, t) in sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or ""))
    ]
    present = {r.domain for r in rows if r.available > 0}
    dom_w = {d: cfg.domains.get(d, 0.0) for d in present}
    total_w = sum(dom_w.values())
    if total_w <= 0:
        return rows
    for d in present:
        members = [r for r in rows if r.domain == d]
        for bucket, fraction in _bucket_fractions(members, cfg).items():
            group = [r for r in members if r.bucket == bucket]
            mass = sum(cfg.weight(r.source) * r.available for r in group)
            for r in group:
                r.share = (
                    (dom_w[d] / total_w) * fraction * (cfg.weight(r.source) * r.available / mass if mass else 0.0)
                )
    total = cfg.total_tokens if cfg.total_tokens is not None else sum(r.available for r in rows)
    # Water-filling: give each cell share * remaining; capped ones take their cap and leave the pool.
    budgets = {r.cell: 0.0 for r in rows}
    open_rows = [r for r in rows if r.share > 0 and r.cap > 0]
    remaining = float(total)
    while open_rows and remaining > 1e-9:
        mass = sum(r.share for r in open_rows)
        capped = [r for r in open_rows if remaining * r.share / mass >= r.cap * r.available]
        if not capped:
            for r in open_rows:
                budgets[r.cell] = remaining * r.share / mass
            break
        for r in capped:
            budgets[r.cell] = r.cap * r.available
            remaining -= r.cap * r.available
        open_rows = [r for r in open_rows if r not in capped]
    for r in rows:
        # A source the mixture wants (share > 0) never rounds to nothing: at least one token of budget, which
        # `select_documents` realises as at least one document.
        r.budget = max(1, int(round(budgets[r.cell]))) if budgets[r.cell] > 0 else 0
    return rows


def _bucket_fractions(members: list[SourceBudget], cfg: MixtureConfig) -> dict[str | None, float]:
    """How a domain's share splits over its score buckets: its unscored documents (bucket None) keep their natural
    fraction of the domain's tokens, and the buckets present split the rest by `share` (sharding/score_buckets.py)."""
    total = sum(r.available for r in members)
    if cfg.score_buckets is None or total == 0:
        return {None: 1.0}
    unscored = sum(r.available for r in members if r.bucket is None) / total
    present = sorted({r.bucket for r in members if r.bucket is not None and r.available > 0})
    configured = {b.name: b.share for b in cfg.score_buckets.buckets}
    shares = {b: configured[b] for b in present}
    mass = sum(shares.values())
    return {None: unscored, **{b: (1 - unscored) * v / mass if mass else 0.0 for b, v in shares.items()}}


def format_budget_table(stage: str, rows: list[SourceBudget], tokenizer: str, seq_len: int, estimated: bool) -> str:
    """The per-source token budget as a fixed-width table (`--dry-run` prints it)."""
    kind = "estimated from bytes" if estimated else "exact"
    total = sum(r.budget for r in rows)
    lines = [
        f"stage {stage!r}: tokenizer {tokenizer}, seq_len {seq_len:,}, token counts {kind}",
        f"{'domain':<7}{'source':<24}{'docs':>9}{'available':>14}{'share':>8}{'budget':>14}{'epochs':>8}{'cap':>6}"
        + ("" if estimated else f"{'selected':>14}"),
    ]
    for r in rows:
        line = (
            f"{r.domain:<7}{r.cell[:23]:<24}{r.docs:>9,}{r.available:>14,}{r.share:>8.1%}{r.budget:>14,}"
            f"{r.epochs:>8.2f}{r.cap:>6.1f}"
        )
        if not estimated:
            line += f"{r.realized or 0:>14,}"
        lines.append(line)
    lines.append(
        f"{'total':<31}{sum(r.docs for r in rows):>9,}{sum(r.available for r in rows):>14,}{'':>8}{total:>14,}"
        f"   ≈ {total // max(seq_len, 1):,} sequences of {seq_len:,}"
    )
    return "\n".join(lines)
