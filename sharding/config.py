"""The `[shards]` table of a stage config, typed and checked when it is built."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.config_types import check_table, type_hints_of
from sharding.exports import EXPORTS
from sharding.pack import Bucket

_SHARD_KEYS = {"tokenizer", "seq_len", "shard_tokens", "num_proc", "exports", "buckets", "keep_token_cache"}


@dataclass(frozen=True)
class ShardsConfig:
    """The `[shards]` table of a stage config.

    Args:
        tokenizer: a spec in tokenizers/ ("o200k_harmony", "qwen").
        seq_len: tokens per packed sequence (Qwen3: 4096 in S1/S2, 32768 in S3).
        shard_tokens: target tokens per shard file, rounded down to whole sequences (at least one).
        num_proc: tokenizer threads per tokenize unit, as tiktoken encodes without the GIL (output does not
            depend on it).
        exports: any of "datatrove", "megatron".
        buckets: document-length buckets with the fraction of sequences each supplies; none = one bucket.
        keep_token_cache: keep the tokenize units after success (a rerun with a new mixture skips tokenizing).
    """

    tokenizer: str = "o200k_harmony"
    seq_len: int = 4096
    shard_tokens: int = 1 << 28  # 1 GiB of uint32
    num_proc: int = 1
    exports: tuple[str, ...] = ("datatrove", "megatron")
    buckets: tuple[Bucket, ...] = field(default_factory=tuple)
    keep_token_cache: bool = False

    def __post_init__(self) -> None:
        if self.seq_len < 2:
            raise ValueError(f"[shards] seq_len = {self.seq_len}: must be >= 2")
        if self.shard_tokens < 1 or self.num_proc < 1:
            raise ValueError(
                f"[shards] shard_tokens and num_proc must be >= 1, got {self.shard_tokens}, {self.num_proc}"
            )
        unknown = [e for e in self.exports if e not in EXPORTS]
        if unknown:
            raise ValueError(f"[shards] exports = {list(self.exports)!r}: unknown {unknown}; known: {list(EXPORTS)}")
        if self.buckets and abs(sum(b.fraction for b in self.buckets) - 1.0) > 1e-6:
            raise ValueError(f"[shards] bucket fractions {[b.fraction for b in self.buckets]} must sum to 1")

    @property
    def sequences_per_shard(self) -> int:
        return max(1, self.shard_tokens // self.seq_len)

    @classmethod
    def from_dict(cls, cfg: dict[str, Any] | None) -> ShardsConfig:
        cfg = dict(cfg or {})
        unknown = set(cfg) - _SHARD_KEYS
        if unknown:
            raise ValueError(f"[shards] unknown key(s) {sorted(unknown)}; allowed: {sorted(_SHARD_KEYS)}")
        check_table("[shards]", cfg, type_hints_of(cls))  # `seq_len = "1024"`: this line, not a '<' on a str
        buckets = tuple(Bucket(**b) for b in cfg.pop("buckets", []))
        exports = tuple(cfg.pop("exports", ("datatrove", "megatron")))
        return cls(**cfg, buckets=buckets, exports=exports)

    def output_config(self) -> dict[str, Any]:
        """What decides the output bytes (num_proc and keep_token_cache do not)."""
        return {
            "tokenizer": self.tokenizer,
            "seq_len": self.seq_len,
            "sequences_per_shard": self.sequences_per_shard,
            "exports": list(self.exports),
            "buckets": [b.__dict__ for b in self.buckets],
        }
