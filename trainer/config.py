"""Typed trainer configuration: one dataclass per component, checked when built.

`ModelConfig` field names are Hugging Face `Qwen3MoeConfig` keys (`num_experts`, `num_experts_per_tok`,
`moe_intermediate_size`, `norm_topk_prob`, `rope_theta`, `rope_scaling`, ...), so exporting is a dict dump.
Multi-head Latent Attention and the sigmoid router take `DeepseekV3Config`'s keys (`kv_lora_rank`,
`q_lora_rank`, `qk_nope_head_dim`, `qk_rope_head_dim`, `v_head_dim`, `routed_scaling_factor`, and DeepSeek's
own `scoring_func`). Fields neither has a key for are marked "ours". `model_type` picks the export layout:
"qwen3_moe" (GQA, softmax router, no shared expert) or "deepseek_v3" (MLA, sigmoid router, selection bias,
shared experts).

A config file is TOML with `[model]`, `[train]` and optionally `[tokenizer]` tables:

    [model]
    vocab_size = 512
    hidden_size = 64
    [train]
    batch_size = 8
    lr = 3e-3
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from core.config_types import check_table, type_hints_of

BALANCING = ("aux_loss", "aux_free", "none")
ATTENTION = ("gqa", "mla")
SCORING = ("softmax", "sigmoid")
MODEL_TYPES = ("qwen3_moe", "deepseek_v3")


class ConfigError(ValueError):
    """A config value that cannot work, named with the value and what to do."""


@dataclass
class ModelConfig:
    """A decoder-only MoE transformer (Qwen3-MoE shape), every part switchable.

    Args:
        vocab_size: embedding rows; may be larger than the tokenizer's vocabulary (padding to a multiple of 64
            or 128 keeps matmuls fast), never smaller. 0: the manifest's tokenizer vocabulary padded to 128.
        hidden_size: model width D.
        num_hidden_layers: decoder blocks.
        num_attention_heads: query heads H.
        num_key_value_heads: key/value heads G (grouped-query attention, arXiv 2305.13245); H % G == 0.
        head_dim: per-head width (Qwen3 decouples it from hidden_size / heads).
        num_experts: routed experts E.
        num_experts_per_tok: top-k K.
        moe_intermediate_size: SwiGLU expert hidden size F.
        norm_topk_prob: renormalise the K chosen probabilities to sum to 1 (Qwen3 does).
        rope_theta: RoPE base (Qwen3: 10,000 in pre-training, 1,000,000 after ABF, arXiv 2309.16039).
        rope_scaling: None, or a YaRN table `{rope_type="yarn", factor, original_max_position_embeddings,
            beta_fast=32, beta_slow=1}` (arXiv 2309.00071).
        max_position_embeddings: the longest sequence the model serves.
        rms_norm_eps: RMSNorm epsilon.
        tie_word_embeddings: share the input embedding and the output projection.
        initializer_range: std of the normal init.
        router_aux_loss_coef: weight of the Switch load-balancing loss (Qwen3-MoE default 0.001).
        qk_norm: RMSNorm on q and k per head before RoPE (Qwen3), GQA only (MLA normalises its latents
            instead); ours, Qwen3 always has it.
        shared_expert_intermediate_size: hidden size of an always-on shared SwiGLU expert, 0 for none
            (Qwen2-MoE's key name; Qwen3-MoE has none).
        moe_balancing: "aux_loss" (Switch / Qwen load-balancing loss), "aux_free" (DeepSeek-V3's per-expert
            selection bias, arXiv 2408.15664) or "none"; ours.
        router_bias_update_rate: the bias step gamma of aux_free balancing (DeepSeek-V3: 0.001); ours.
        attention_bias: biases on q/k/v/o projections (Qwen3: False); with MLA on the down-projections and o
            (DeepSeek-V3's layout).
        hidden_act: expert activation; only "silu" (SwiGLU).
        attention_type: "gqa" (grouped-query, `num_key_value_heads` x `head_dim` keys and values) or "mla"
            (DeepSeek's Multi-head Latent Attention, arXiv 2405.04434 sec. 2.1: a `kv_lora_rank` latent plus one
            shared `qk_rope_head_dim` RoPE key are all a token caches); ours.
        q_lora_rank: MLA query compression rank, 0 for a plain query projection (DeepSeek-V3: 1536; HF: None).
        kv_lora_rank: MLA key/value latent width d_c (DeepSeek-V3: 512).
        qk_nope_head_dim: MLA per-head query/key width without position (DeepSeek-V3: 128).
        qk_rope_head_dim: MLA decoupled RoPE query/key width, one key shared by all heads (DeepSeek-V3: 64).
        v_head_dim: MLA per-head value width (DeepSeek-V3: 128).
        scoring_func: router scores, "softmax" (Qwen) or "sigmoid" (DeepSeek-V3, arXiv 2412.19437 eq. 15, with
            the chosen K renormalised when `norm_topk_prob`); DeepSeek-V3's config.json key.
        routed_scaling_factor: multiplies the routed experts' gate weights (DeepSeek-V3: 2.5; 1.0 is Qwen's).
        model_type: the Hugging Face layout the export writes, "qwen3_moe" or "deepseek_v3"; MLA implies
            "deepseek_v3" (Qwen3-MoE has no latent attention).
    """

    vocab_size: int = 151936
    hidden_size: int = 256
    num_hidden_layers: int = 4
    num_attention_heads: int = 8
    num_key_value_heads: int = 2
    head_dim: int = 32
    num_experts: int = 8
    num_experts_per_tok: int = 2
    moe_intermediate_size: int = 256
    norm_topk_prob: bool = True
    rope_theta: float = 10000.0
    rope_scaling: dict[str, Any] | None = None
    max_position_embeddings: int = 4096
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = False
    initializer_range: float = 0.02
    router_aux_loss_coef: float = 0.001
    qk_norm: bool = True
    shared_expert_intermediate_size: int = 0
    moe_balancing: str = "aux_loss"
    router_bias_update_rate: float = 0.001
    attention_bias: bool = False
    hidden_act: str = "silu"
    attention_type: str = "gqa"
    q_lora_rank: int = 0
    kv_lora_rank: int = 64
    qk_nope_head_dim: int = 32
    qk_rope_head_dim: int = 16
    v_head_dim: int = 32
    scoring_func: str = "softmax"
    routed_scaling_factor: float = 1.0
    model_type: str = "qwen3_moe"

    def __post_init__(self) -> None:
        if self.vocab_size < 0:
            raise ConfigError(f"model.vocab_size must be > 0 (or 0: the manifest's, padded), got {self.vocab_size}")
        for name in (
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "head_dim",
            "num_experts",
            "num_experts_per_tok",
            "moe_intermediate_size",
            "max_position_embeddings",
        ):
            if int(getattr(self, name)) <= 0:
                raise ConfigError(f"model.{name} must be > 0, got {getattr(self, name)}")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ConfigError(
                f"model.num_attention_heads={self.num_attention_heads} is not a multiple of "
                f"num_key_value_heads={self.num_key_value_heads} (grouped-query attention)"
            )
        if self.head_dim % 2:
            raise ConfigError(f"model.head_dim must be even for RoPE, got {self.head_dim}")
        if not 1 <= self.num_experts_per_tok <= self.num_experts:
            raise ConfigError(
                f"model.num_experts_per_tok={self.num_experts_per_tok} must be in [1, num_experts={self.num_experts}]"
            )
        if self.moe_balancing not in BALANCING:
            raise ConfigError(f"model.moe_balancing must be one of {BALANCING}, got {self.moe_balancing!r}")
        if self.hidden_act != "silu":
            raise ConfigError(f"model.hidden_act must be 'silu' (SwiGLU experts), got {self.hidden_act!r}")
        if self.rope_theta <= 1:
            raise ConfigError(f"model.rope_theta must be > 1, got {self.rope_theta}")
        if self.shared_expert_intermediate_size < 0:
            raise ConfigError(
                f"model.shared_expert_intermediate_size must be >= 0, got {self.shared_expert_intermediate_size}"
            )
        if self.rope_scaling is not None:
            rs = dict(self.rope_scaling)
            kind = rs.get("rope_type", rs.get("type"))
            if kind != "yarn":
                raise ConfigError(f"model.rope_scaling.rope_type must be 'yarn', got {kind!r}")
            if float(rs.get("factor", 0)) < 1:
                raise ConfigError(f"model.rope_scaling.factor must be >= 1, got {rs.get('factor')}")
            if int(rs.get("original_max_position_embeddings", 0)) <= 0:
                raise ConfigError(
                    "model.rope_scaling needs original_max_position_embeddings (the pre-YaRN "
                    f"context length), got {rs.get('original_max_position_embeddings')}"
                )
            rs["rope_type"] = "yarn"
            rs.pop("type", None)
            rs.setdefault("beta_fast", 32.0)
            rs.setdefault("beta_slow", 1.0)
            self.rope_scaling = rs
        if self.attention_type not in ATTENTION:
            raise ConfigError(f"model.attention_type must be one of {ATTENTION}, got {self.attention_type!r}")
        if self.attention_type == "mla":
            for name in ("kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"):
                if int(getattr(self, name)) <= 0:
                    raise ConfigError(
                        f"model.{name} must be > 0 with attention_type = 'mla', got {getattr(self, name)}"
                    )
            if self.q_lora_rank < 0:
                raise ConfigError(f"model.q_lora_rank must be >= 0 (0: no query compression), got {self.q_lora_rank}")
            if self.qk_rope_head_dim % 2:
                raise ConfigError(f"model.qk_rope_head_dim must be even for RoPE, got {self.qk_rope_head_dim}")
            self.model_type = "deepseek_v3"
        if self.scoring_func not in SCORING:
            raise ConfigError(f"model.scoring_func must be one of {SCORING}, got {self.scoring_func!r}")
        if not (self.routed_scaling_factor > 0 and math.isfinite(self.routed_scaling_factor)):
            raise ConfigError(
                f"model.routed_scaling_factor must be a positive number, got {self.routed_scaling_factor}"
            )
        if self.model_type not in MODEL_TYPES:
            raise ConfigError(f"model.model_type must be one of {MODEL_TYPES}, got {self.model_type!r}")
        if self.model_type == "deepseek_v3" and self.attention_type != "mla":
            raise ConfigError(
                "model.model_type = 'deepseek_v3' needs attention_type = 'mla' (DeepSeek-V3 has only "
                "latent attention); use model_type = 'qwen3_moe' for GQA"
            )

    @property
    def num_key_value_groups(self) -> int:
        return self.num_attention_heads // self.num_key_value_heads

    @property
    def rope_dim(self) -> int:
        """Width RoPE rotates: the whole head (GQA) or MLA's decoupled part."""
        return self.qk_rope_head_dim if self.attention_type == "mla" else self.head_dim

    def architecture(self) -> dict[str, Any]:
        """The fields that fix parameter shapes: a checkpoint loads into a model iff these match."""
        keep = (
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "head_dim",
            "num_experts",
            "moe_intermediate_size",
            "qk_norm",
            "shared_expert_intermediate_size",
            "tie_word_embeddings",
            "attention_bias",
            "attention_type",
        )
        if self.attention_type == "mla":
            keep += ("q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim")
        return {k: getattr(self, k) for k in keep}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainConfig:
    """The loop: optimizer, schedule, batch, precision, checkpoints and logging.

    Args:
        seed: seeds the data order and the model init.
        batch_size: sequences per micro-batch.
        grad_accum: micro-batches per optimizer step.
        seq_len: tokens per training sequence; 0 uses the manifest's. A shorter one must divide the
            manifest's (each packed sequence is cut into equal pieces).
        lr: peak learning rate.
        min_lr_ratio: cosine floor as a fraction of `lr` (0.1 as in Chinchilla, arXiv 2203.15556).
        warmup_steps: linear warm-up steps.
        weight_decay: AdamW decoupled weight decay on matrices (not on norms, biases or the embedding).
        beta1, beta2, eps: AdamW moments.
        grad_clip: clip the global gradient norm to this value, 0 to turn off.
        sparse_embedding: the input embedding gets sparse gradients and a lazy Adam (only the rows of tokens
            in the batch move), instead of a dense gradient over the whole vocabulary.
        ce_chunk_tokens: tokens per chunk of the fused output-projection + cross-entropy, so full-vocabulary
            logits never exist for the whole batch.
        dtype: "auto" (bf16 autocast on CUDA with bf16 support, fp32 elsewhere), "bf16" or "fp32".
        device: "auto", "cpu" or "cuda".
        compile: wrap the model in torch.compile (GPU runs).
        threads: torch CPU threads, 0 leaves torch's default.
        log_every: steps between log lines.
        ckpt_every: steps between checkpoints (the last step always writes one), 0 for only the last.
        init_from: weights to start from: a checkpoint path, "previous_stage" (the previous curriculum
            stage's `<runs>/<stage>/train/checkpoint.pt`, if there is one) or "" for a fresh init.
        verify_shards: sha256 every shard before training (refuses a mismatch).
    """

    seed: int = 0
    batch_size: int = 8
    grad_accum: int = 1
    seq_len: int = 0
    lr: float = 3e-4
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0
    sparse_embedding: bool = True
    ce_chunk_tokens: int = 1024
    dtype: str = "auto"
    device: str = "auto"
    compile: bool = False
    threads: int = 0
    log_every: int = 1
    ckpt_every: int = 0
    init_from: str = "previous_stage"
    verify_shards: bool = True

    def __post_init__(self) -> None:
        for name in ("batch_size", "grad_accum", "ce_chunk_tokens"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"train.{name} must be > 0, got {getattr(self, name)}")
        if self.seq_len < 0:
            raise ConfigError(f"train.seq_len must be >= 0 (0 = the manifest's), got {self.seq_len}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"train.lr must be a positive number, got {self.lr}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError(f"train.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.dtype not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"train.dtype must be auto, bf16 or fp32, got {self.dtype!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"train.device must be auto, cpu or cuda, got {self.device!r}")
        if self.warmup_steps < 0 or self.log_every <= 0 or self.ckpt_every < 0:
            raise ConfigError(
                f"train.warmup_steps/ckpt_every must be >= 0 and log_every > 0, got "
                f"{self.warmup_steps}/{self.ckpt_every}/{self.log_every}"
            )


@dataclass
class TokenizerConfig:
    """The tokenizer the model was built for; the manifest's must match.

    Args:
        name: tokenizer name as the manifest records it ("" accepts any name).
        vocab_size: the tokenizer's vocabulary (0 accepts any that fits in model.vocab_size).
        vocab_sha256: the vocabulary hash ("" accepts any).
    """

    name: str = ""
    vocab_size: int = 0
    vocab_sha256: str = ""


@dataclass
class Config:
    """A whole trainer config file."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)

    def to_dict(self) -> dict[str, Any]:
        return {"model": asdict(self.model), "train": asdict(self.train), "tokenizer": asdict(self.tokenizer)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config") -> Config:
        unknown = set(data) - {"model", "train", "tokenizer"}
        if unknown:
            raise ConfigError(f"{where}: unknown tables {sorted(unknown)}; expected [model], [train], [tokenizer]")
        return cls(
            model=_build(ModelConfig, data.get("model", {}), f"{where} [model]"),
            train=_build(TrainConfig, data.get("train", {}), f"{where} [train]"),
            tokenizer=_build(TokenizerConfig, data.get("tokenizer", {}), f"{where} [tokenizer]"),
        )


def _build(cls: type, table: dict[str, Any], where: str) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"{where} = {table!r}: expected a table")
    names = {f.name for f in fields(cls)}
    unknown = set(table) - names
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(names)}")
    # Types against the fields' hints before __post_init__ compares them (`lr = "3e-4"` would raise a bare
    # TypeError there, or `batch_size = true` pass as 1).
    check_table(where, table, type_hints_of(cls), ConfigError)
    return cls(**table)


def load_config(path: Path | str | None, overrides: dict[str, dict[str, Any]] | None = None) -> Config:
    """Read a TOML config (or the defaults when `path` is None), apply `overrides`, validate.

    Args:
        path: a TOML file with [model], [train], [tokenizer] tables.
        overrides: {"train": {"lr": 1e-3}, ...} applied on top of the file.
    """
    data: dict[str, Any] = {}
    where = "defaults"
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"trainer config {path} not found (see configs/trainer/*.toml)")
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        where = str(path)
    for table, values in (overrides or {}).items():
        data.setdefault(table, {}).update(values)
    return Config.from_dict(data, where)
