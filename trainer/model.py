"""A decoder-only Mixture-of-Experts transformer (Qwen3-MoE or DeepSeek-V3 shape), readable top to bottom.

Order: RMSNorm, RoPE / YaRN, attention (GQA), multi-head latent attention (MLA), router, experts, MoE layer,
block, model, fused output projection + cross-entropy, FLOP estimate, KV-cache size. The config is
`trainer.config.ModelConfig` (Hugging Face keys).

Shape legend (torchtitan style suffixes):
    B batch, S sequence, D hidden_size, H query heads, G key/value heads, Hd head_dim,
    T tokens (B*S), E experts, K experts per token, F expert hidden (moe_intermediate_size),
    2F gate and up projections stacked (Hugging Face's `gate_up_proj` layout), V vocabulary,
    N routed (token, expert) pairs = T*K.
    MLA: C kv_lora_rank (the cached latent), Q q_lora_rank, Dn qk_nope_head_dim, Dr qk_rope_head_dim,
    Dv v_head_dim, Dk = Dn + Dr (query/key width per head).
"""

from __future__ import annotations

import math
import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from trainer.config import ModelConfig

# ---------------------------------------------------------------------------------------------------------------
# RMSNorm (arXiv 1910.07467), computed in fp32 like Qwen3's.


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.to(torch.promote_types(x.dtype, torch.float32))  # fp32 (fp64 in reference tests)
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(x.dtype)


# ---------------------------------------------------------------------------------------------------------------
# RoPE (arXiv 2104.09864) with an adjustable base (ABF, arXiv 2309.16039) and YaRN (arXiv 2309.00071).


def rope_inv_freq(cfg: ModelConfig) -> tuple[torch.Tensor, float]:
    """Inverse frequencies (Hd/2,) in float64 and the attention scaling that multiplies cos and sin.

    Hd is `cfg.rope_dim`: the whole head for GQA, the decoupled RoPE part (Dr) for MLA.

    YaRN ("NTK-by-parts", arXiv 2309.00071 sec. 3.2-3.4): dimensions that rotate more than beta_fast times
    over the original context keep their frequency (extrapolate), those rotating fewer than beta_slow times
    are divided by `factor` (interpolate), a linear ramp blends the rest; cos and sin are multiplied by
    0.1 ln(s) + 1 (eq. 22), so attention logits get its square. Dimension bounds are floored / ceiled as
    Hugging Face's `truncate=True` does.
    """
    dim, base = cfg.rope_dim, float(cfg.rope_theta)
    pos_freqs = base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    inv_freq = 1.0 / pos_freqs
    if cfg.rope_scaling is None:
        return inv_freq, 1.0
    rs = cfg.rope_scaling
    factor = float(rs["factor"])
    orig = float(rs["original_max_position_embeddings"])
    beta_fast, beta_slow = float(rs.get("beta_fast", 32)), float(rs.get("beta_slow", 1))
    attention_scaling = float(rs.get("attention_factor") or (0.1 * math.log(factor) + 1.0 if factor > 1 else 1.0))

    def correction_dim(num_rotations: float) -> float:  # eq. 17 solved for the dimension index
        return dim * math.log(orig / (num_rotations * 2 * math.pi)) / (2 * math.log(base))

    low = max(math.floor(correction_dim(beta_fast)), 0)
    high = min(math.ceil(correction_dim(beta_slow)), dim - 1)
    if low == high:
        high += 0.001  # a flat ramp would divide by zero
    ramp = ((torch.arange(dim // 2, dtype=torch.float64) - low) / (high - low)).clamp(0, 1)
    inv_freq = inv_freq / factor * ramp + inv_freq * (1 - ramp)
    return inv_freq, attention_scaling


class RotaryEmbedding(nn.Module):
    """cos and sin tables (S, Hd) for the rotate-half convention Qwen and Hugging Face use."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        inv_freq, self.attention_scaling = rope_inv_freq(cfg)
        # float64 table: fp32 angles drift by ~position * 1e-7 rad, visible at 100K+ positions.
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self._cache: tuple[Any, torch.Tensor, torch.Tensor] | None = None

    def forward(self, seq_len: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        key = (seq_len, device, self.inv_freq.data_ptr())
        if self._cache is None or self._cache[0] != key:
            pos = torch.arange(seq_len, device=device, dtype=torch.float64)
            freqs_S_Hd2 = pos[:, None] * self.inv_freq.to(device, torch.float64)[None, :]
            emb_SHd = torch.cat([freqs_S_Hd2, freqs_S_Hd2], dim=-1)
            self._cache = (key, emb_SHd.cos() * self.attention_scaling, emb_SHd.sin() * self.attention_scaling)
        return self._cache[1], self._cache[2]


def apply_rope(x_BHSHd: torch.Tensor, cos_SHd: torch.Tensor, sin_SHd: torch.Tensor) -> torch.Tensor:
    half = x_BHSHd.shape[-1] // 2
    rotated = torch.cat([-x_BHSHd[..., half:], x_BHSHd[..., :half]], dim=-1)
    return x_BHSHd * cos_SHd.to(x_BHSHd.dtype) + rotated * sin_SHd.to(x_BHSHd.dtype)


# ---------------------------------------------------------------------------------------------------------------
# Attention: grouped-query (arXiv 2305.13245), QK-norm per head before RoPE (Qwen3), causal SDPA.


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        bias = cfg.attention_bias
        self.q_proj = nn.Linear(cfg.hidden_size, self.n_heads * self.head_dim, bias=bias)
        self.k_proj = nn.Linear(cfg.hidden_size, self.n_kv_heads * self.head_dim, bias=bias)
        self.v_proj = nn.Linear(cfg.hidden_size, self.n_kv_heads * self.head_dim, bias=bias)
        self.o_proj = nn.Linear(self.n_heads * self.head_dim, cfg.hidden_size, bias=bias)
        self.q_norm = RMSNorm(self.head_dim, cfg.rms_norm_eps) if cfg.qk_norm else nn.Identity()
        self.k_norm = RMSNorm(self.head_dim, cfg.rms_norm_eps) if cfg.qk_norm else nn.Identity()

    def forward(self, x_BSD: torch.Tensor, cos_SHd: torch.Tensor, sin_SHd: torch.Tensor) -> torch.Tensor:
        B, S, _ = x_BSD.shape
        q_BSHHd = self.q_norm(self.q_proj(x_BSD).view(B, S, self.n_heads, self.head_dim))  # (B, S, H, Hd)
        k_BSGHd = self.k_norm(self.k_proj(x_BSD).view(B, S, self.n_kv_heads, self.head_dim))  # (B, S, G, Hd)
        v_BSGHd = self.v_proj(x_BSD).view(B, S, self.n_kv_heads, self.head_dim)  # (B, S, G, Hd)
        q_BHSHd = apply_rope(q_BSHHd.transpose(1, 2), cos_SHd, sin_SHd)  # (B, H, S, Hd)
        k_BGSHd = apply_rope(k_BSGHd.transpose(1, 2), cos_SHd, sin_SHd)  # (B, G, S, Hd)
        v_BGSHd = v_BSGHd.transpose(1, 2).to(q_BHSHd.dtype)  # (B, G, S, Hd)
        # enable_gqa lets each group of H/G query heads read one key/value head without copying it.
        out_BHSHd = F.scaled_dot_product_attention(
            q_BHSHd, k_BGSHd.to(q_BHSHd.dtype), v_BGSHd, is_causal=True, scale=self.head_dim**-0.5, enable_gqa=True
        )
        out_BSD = out_BHSHd.transpose(1, 2).reshape(B, S, self.n_heads * self.head_dim)  # (B, S, H*Hd)
        return self.o_proj(out_BSD)


# ---------------------------------------------------------------------------------------------------------------
# Multi-head Latent Attention (DeepSeek-V2, arXiv 2405.04434 sec. 2.1; DeepSeek-V3, arXiv 2412.19437 sec. 2.1.1).
# Keys and values are up-projected from one low-rank latent c_KV (eq. 9-11), so a token caches C + Dr numbers
# instead of 2 G Hd. RoPE would not commute with the up-projection, so position rides on a separate, decoupled
# key of Dr dims shared by all heads (eq. 14-19). This is the training form (no weight absorption); the weight
# names are Hugging Face's `DeepseekV3Attention`, so the export is a rename.


class MLAttention(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        H, D, C = cfg.num_attention_heads, cfg.hidden_size, cfg.kv_lora_rank
        self.n_heads, self.kv_lora_rank = H, C
        self.nope_dim, self.rope_dim, self.v_dim = cfg.qk_nope_head_dim, cfg.qk_rope_head_dim, cfg.v_head_dim
        Dk = self.nope_dim + self.rope_dim
        self.q_lora = bool(cfg.q_lora_rank)
        self.scale = Dk**-0.5  # eq. 19: the softmax divides by sqrt(Dn + Dr)
        bias = cfg.attention_bias
        # NOTE: the latent norms use eps 1e-6 whatever rms_norm_eps is, as DeepSeek's reference code and
        # transformers' DeepseekV3Attention do; a different eps here would change logits after export.
        if cfg.q_lora_rank:  # eq. 12-13: queries go through their own low-rank bottleneck (saves activations)
            self.q_a_proj = nn.Linear(D, cfg.q_lora_rank, bias=bias)
            self.q_a_layernorm = RMSNorm(cfg.q_lora_rank, 1e-6)
            self.q_b_proj = nn.Linear(cfg.q_lora_rank, H * Dk, bias=False)
        else:
            self.q_proj = nn.Linear(D, H * Dk, bias=False)
        self.kv_a_proj_with_mqa = nn.Linear(D, C + self.rope_dim, bias=bias)  # [c_KV | k_rope], eq. 9 and 17
        self.kv_a_layernorm = RMSNorm(C, 1e-6)
        self.kv_b_proj = nn.Linear(C, H * (self.nope_dim + self.v_dim), bias=False)  # eq. 10-11, stacked per head
        self.o_proj = nn.Linear(H * self.v_dim, D, bias=bias)

    def queries(self, x_BSD: torch.Tensor) -> torch.Tensor:
        if self.q_lora:
            return self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x_BSD)))
        return self.q_proj(x_BSD)

    def forward(self, x_BSD: torch.Tensor, cos_SDr: torch.Tensor, sin_SDr: torch.Tensor) -> torch.Tensor:
        B, S, _ = x_BSD.shape
        H, C, Dn, Dr, Dv = self.n_heads, self.kv_lora_rank, self.nope_dim, self.rope_dim, self.v_dim
        q_BHSDk = self.queries(x_BSD).view(B, S, H, Dn + Dr).transpose(1, 2)  # (B, H, S, Dk)
        q_nope_BHSDn, q_rope_BHSDr = q_BHSDk.split([Dn, Dr], dim=-1)
        ckv_BSC, k_rope_BSDr = self.kv_a_proj_with_mqa(x_BSD).split([C, Dr], dim=-1)  # what a KV cache keeps
        kv_BHSX = self.kv_b_proj(self.kv_a_layernorm(ckv_BSC)).view(B, S, H, Dn + Dv).transpose(1, 2)
        k_nope_BHSDn, v_BHSDv = kv_BHSX.split([Dn, Dv], dim=-1)  # (B, H, S, Dn), (B, H, S, Dv)
        q_rope_BHSDr = apply_rope(q_rope_BHSDr, cos_SDr, sin_SDr)
        k_rope_B1SDr = apply_rope(k_rope_BSDr.unsqueeze(1), cos_SDr, sin_SDr)  # (B, 1, S, Dr): one key, all heads
        q_BHSDk = torch.cat([q_nope_BHSDn, q_rope_BHSDr], dim=-1)  # (B, H, S, Dk)
        k_BHSDk = torch.cat([k_nope_BHSDn, k_rope_B1SDr.expand(B, H, S, Dr).to(k_nope_BHSDn.dtype)], dim=-1)
        # SDPA takes a value width (Dv) different from the query/key width (Dk).
        out_BHSDv = F.scaled_dot_product_attention(
            q_BHSDk, k_BHSDk.to(q_BHSDk.dtype), v_BHSDv.to(q_BHSDk.dtype), is_causal=True, scale=self.scale
        )
        out_BSX = out_BHSDv.transpose(1, 2).reshape(B, S, H * Dv)  # (B, S, H*Dv)
        return self.o_proj(out_BSX)


# ---------------------------------------------------------------------------------------------------------------
# Router: softmax (Qwen) or sigmoid (DeepSeek-V3) scores in fp32, top-k, optional renormalisation
# (`norm_topk_prob`), then `routed_scaling_factor`.


class Router(nn.Module):
    """Scores experts per token.

    `scoring_func="softmax"`: probabilities over experts (Qwen3-MoE). `"sigmoid"`: an independent affinity per
    expert (DeepSeek-V3, arXiv 2412.19437 eq. 15); the gates are the chosen affinities, renormalised over the K
    chosen when `norm_topk_prob` (eq. 13). Either way the gates are multiplied by `routed_scaling_factor`.
    With `moe_balancing="aux_free"` a per-expert bias (DeepSeek-V3 sec. 2.1.2; Wang et al., arXiv 2408.15664)
    is added to the scores only to choose experts (eq. 16); the gates stay unbiased. The bias is a buffer
    nudged by `update_bias` after each optimizer step; the Hugging Face name is `e_score_correction_bias`.
    Routing is not group-limited (DeepSeek-V3's n_group = topk_group = 1).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.top_k, self.norm_topk_prob = cfg.num_experts_per_tok, cfg.norm_topk_prob
        self.sigmoid = cfg.scoring_func == "sigmoid"
        self.routed_scaling_factor = cfg.routed_scaling_factor
        self.use_bias = cfg.moe_balancing == "aux_free"
        self.bias_update_rate = cfg.router_bias_update_rate
        self.weight = nn.Parameter(torch.empty(cfg.num_experts, cfg.hidden_size))
        self.register_buffer("expert_bias_E", torch.zeros(cfg.num_experts), persistent=True)
        # Routed (token, expert) pairs per expert since the last bias update / log line; not saved.
        self.register_buffer("tokens_per_expert_E", torch.zeros(cfg.num_experts), persistent=False)

    def forward(self, x_TD: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (probs_TE, topk_idx_TK, topk_weight_TK) in fp32.

        probs_TE sums to 1 per token (the softmax, or the sigmoid affinities normalised as DeepSeek-V3's
        balance loss does, eq. 19); the auxiliary loss reads it.
        """
        acc = torch.promote_types(x_TD.dtype, torch.float32)  # fp32 (fp64 in reference tests)
        with torch.autocast(x_TD.device.type, enabled=False):
            logits_TE = F.linear(x_TD.to(acc), self.weight.to(acc))
        scores_TE = torch.sigmoid(logits_TE) if self.sigmoid else torch.softmax(logits_TE, dim=-1)
        choice_TE = scores_TE + self.expert_bias_E if self.use_bias else scores_TE
        topk_idx_TK = torch.topk(choice_TE, self.top_k, dim=-1).indices
        topk_weight_TK = scores_TE.gather(1, topk_idx_TK)
        if self.norm_topk_prob:
            topk_weight_TK = topk_weight_TK / topk_weight_TK.sum(dim=-1, keepdim=True)
        if self.routed_scaling_factor != 1.0:
            topk_weight_TK = topk_weight_TK * self.routed_scaling_factor
        probs_TE = scores_TE / scores_TE.sum(dim=-1, keepdim=True) if self.sigmoid else scores_TE
        return probs_TE, topk_idx_TK, topk_weight_TK

    @torch.no_grad()
    def update_bias(self) -> None:
        """DeepSeek-V3's update: b_e += gamma * sign(mean load - load_e), from the loads since the last call."""
        load_E = self.tokens_per_expert_E
        if self.use_bias and load_E.sum() > 0:
            self.expert_bias_E += self.bias_update_rate * torch.sign(load_E.mean() - load_E)


def load_balancing_loss(probs_TE: torch.Tensor, topk_idx_TK: torch.Tensor) -> torch.Tensor:
    """Switch Transformer auxiliary loss (arXiv 2101.03961 eq. 4-6), as Qwen-MoE computes it for top-k:
    E * sum_e f_e * P_e, with f_e the share of tokens routed to e (summing to K) and P_e the mean probability."""
    T, E = probs_TE.shape
    f_E = torch.bincount(topk_idx_TK.flatten(), minlength=E).to(probs_TE.dtype) / T
    return E * torch.sum(f_E * probs_TE.mean(dim=0))


# ---------------------------------------------------------------------------------------------------------------
# Experts: SwiGLU (arXiv 2002.05202) per expert, dropless. Tokens are sorted by expert once and each expert
# multiplies only its contiguous slice (one grouped GEMM on CUDA), instead of masking all tokens per expert.


def _grouped_mm_ok(x: torch.Tensor) -> bool:
    # torch._grouped_mm runs on sm90+ GPUs in bf16; elsewhere the per-expert loop is as fast.
    # TRAINER_GROUPED_MM=0 forces the loop (a fallback if a torch build rejects the grouped kernel).
    if os.environ.get("TRAINER_GROUPED_MM", "1") == "0" or not x.is_cuda or not hasattr(torch, "_grouped_mm"):
        return False
    return torch.cuda.get_device_capability(x.device)[0] >= 9


class Experts(nn.Module):
    def __init__(self, num_experts: int, dim: int, hidden: int) -> None:
        super().__init__()
        self.num_experts = num_experts
        self.w13_E2FD = nn.Parameter(torch.empty(num_experts, 2 * hidden, dim))  # gate rows then up rows
        self.w2_EDF = nn.Parameter(torch.empty(num_experts, dim, hidden))
        self.use_grouped_mm = True

    def forward(self, x_ND: torch.Tensor, counts_E: torch.Tensor) -> torch.Tensor:
        """x_ND: tokens sorted by expert; counts_E: how many rows each expert owns. Returns y_ND."""
        if self.use_grouped_mm and _grouped_mm_ok(x_ND):
            return self._grouped(x_ND, counts_E)
        outs = []
        w13 = self.w13_E2FD.unbind(0)  # one UnbindBackward instead of E full-size SelectBackwards
        w2 = self.w2_EDF.unbind(0)
        for e, x_nD in enumerate(x_ND.split(counts_E.tolist())):
            if x_nD.shape[0] == 0:
                continue
            gate_nF, up_nF = F.linear(x_nD, w13[e]).chunk(2, dim=-1)
            outs.append(F.linear(F.silu(gate_nF) * up_nF, w2[e]))
        return torch.cat(outs) if outs else x_ND.new_zeros(x_ND.shape)

    def _grouped(self, x_ND: torch.Tensor, counts_E: torch.Tensor) -> torch.Tensor:
        dtype = torch.get_autocast_dtype("cuda") if torch.is_autocast_enabled("cuda") else x_ND.dtype
        offs_E = torch.cumsum(counts_E, dim=0, dtype=torch.int32)
        h_N2F = torch._grouped_mm(x_ND.to(dtype), self.w13_E2FD.to(dtype).transpose(-2, -1), offs=offs_E)
        gate_NF, up_NF = h_N2F.chunk(2, dim=-1)
        return torch._grouped_mm(F.silu(gate_NF) * up_NF, self.w2_EDF.to(dtype).transpose(-2, -1), offs=offs_E)


class SwiGLU(nn.Module):
    """A dense SwiGLU MLP: the shared expert (DeepSeekMoE, arXiv 2401.06066)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(dim, hidden, bias=False)
        self.up_proj = nn.Linear(dim, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class MoE(nn.Module):
    """Router + routed experts (+ an optional shared expert). Returns (y_BSD, aux_loss)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.num_experts, self.top_k = cfg.num_experts, cfg.num_experts_per_tok
        self.aux_loss = cfg.moe_balancing == "aux_loss"
        self.gate = Router(cfg)
        self.experts = Experts(cfg.num_experts, cfg.hidden_size, cfg.moe_intermediate_size)
        sh = cfg.shared_expert_intermediate_size
        self.shared_expert = SwiGLU(cfg.hidden_size, sh) if sh else None

    def forward(self, x_BSD: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, S, D = x_BSD.shape
        x_TD = x_BSD.reshape(B * S, D)  # (T, D)
        probs_TE, topk_idx_TK, topk_weight_TK = self.gate(x_TD)

        # Dispatch: sort the T*K (token, expert) pairs by expert; a stable sort keeps token order per expert.
        idx_N = topk_idx_TK.flatten()  # (N,)
        order_N = torch.argsort(idx_N, stable=True)
        token_N = order_N // self.top_k
        counts_E = torch.bincount(idx_N, minlength=self.num_experts)
        y_ND = self.experts(x_TD[token_N], counts_E)
        # Combine: weight each expert output by its gate and sum back into its token (index_add is dropless).
        weight_N1 = topk_weight_TK.flatten()[order_N].unsqueeze(1)
        y_TD = torch.zeros_like(x_TD).index_add_(0, token_N, (y_ND * weight_N1).to(x_TD.dtype))
        if self.shared_expert is not None:
            y_TD = y_TD + self.shared_expert(x_TD)

        with torch.no_grad():
            self.gate.tokens_per_expert_E += counts_E.to(self.gate.tokens_per_expert_E.dtype)
        aux = load_balancing_loss(probs_TE, topk_idx_TK) if self.aux_loss and self.training else probs_TE.new_zeros(())
        return y_TD.view(B, S, D), aux


# ---------------------------------------------------------------------------------------------------------------
# Block: pre-norm residual (attention, then MoE).


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = MLAttention(cfg) if cfg.attention_type == "mla" else Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = MoE(cfg)

    def forward(self, x_BSD: torch.Tensor, cos_SHd: torch.Tensor, sin_SHd: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x_BSD = x_BSD + self.self_attn(self.input_layernorm(x_BSD), cos_SHd, sin_SHd)
        y_BSD, aux = self.mlp(self.post_attention_layernorm(x_BSD))
        return x_BSD + y_BSD, aux


# ---------------------------------------------------------------------------------------------------------------
# Model.


class MoETransformer(nn.Module):
    """The whole decoder.

    Args:
        cfg: the model config.
        sparse_embedding: the input embedding returns sparse gradients (pair it with a lazy Adam); ignored when
            the output projection shares its weight.
        ce_chunk_tokens: tokens per chunk of the fused output projection + cross-entropy.
    """

    def __init__(self, cfg: ModelConfig, sparse_embedding: bool = False, ce_chunk_tokens: int = 1024) -> None:
        super().__init__()
        self.cfg = cfg
        self.ce_chunk_tokens = ce_chunk_tokens
        sparse = sparse_embedding and not cfg.tie_word_embeddings
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size, sparse=sparse)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.rotary = RotaryEmbedding(cfg)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        if cfg.tie_word_embeddings:
            self.lm_head.weight = self.embed_tokens.weight
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        std = self.cfg.initializer_range
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=std)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, Experts):
                nn.init.normal_(module.w13_E2FD, std=std)
                nn.init.normal_(module.w2_EDF, std=std)
            elif isinstance(module, Router):
                nn.init.normal_(module.weight, std=std)
                module.expert_bias_E.zero_()
            elif isinstance(module, RMSNorm):
                nn.init.ones_(module.weight)

    def hidden_states(self, input_ids_BS: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Final-normed hidden states (B, S, D) and the mean auxiliary loss over layers."""
        S = input_ids_BS.shape[1]
        assert S <= self.cfg.max_position_embeddings, (
            f"sequence of {S} tokens > max_position_embeddings={self.cfg.max_position_embeddings}"
        )
        cos_SHd, sin_SHd = self.rotary(S, input_ids_BS.device)
        x_BSD = self.embed_tokens(input_ids_BS)
        aux_total = x_BSD.new_zeros((), dtype=torch.float32)
        for layer in self.layers:
            x_BSD, aux = layer(x_BSD, cos_SHd, sin_SHd)
            aux_total = aux_total + aux
        return self.norm(x_BSD), aux_total / len(self.layers)

    def forward(self, input_ids_BS: torch.Tensor, targets_BS: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """With targets: (mean cross-entropy over targets != -100, aux_loss). Without: (logits_BSV, aux_loss)."""
        h_BSD, aux = self.hidden_states(input_ids_BS)
        if targets_BS is None:
            return self.lm_head(h_BSD).float(), aux
        loss = fused_linear_cross_entropy(
            h_BSD.flatten(0, 1), self.lm_head.weight, targets_BS.flatten(), self.ce_chunk_tokens
        )
        return loss, aux

    def routers(self) -> list[Router]:
        return [layer.mlp.gate for layer in self.layers]

    @torch.no_grad()
    def expert_load(self, reset: bool = True) -> tuple[float, float]:
        """(min, max) share of routed pairs per expert over all layers since the last reset (ideal: 1/E)."""
        loads_LE = torch.stack([r.tokens_per_expert_E for r in self.routers()])
        shares_LE = loads_LE / loads_LE.sum(dim=1, keepdim=True).clamp_min(1)
        if reset:
            for r in self.routers():
                r.tokens_per_expert_E.zero_()
        return float(shares_LE.min()), float(shares_LE.max())

    @torch.no_grad()
    def update_router_biases(self) -> None:
        for r in self.routers():
            r.update_bias()

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


# ---------------------------------------------------------------------------------------------------------------
# Fused output projection + cross-entropy, chunked over tokens (as Liger-Kernel's FusedLinearCrossEntropy,
# arXiv 2410.10989): full (T, V) logits never exist; each chunk's gradient is computed at once in forward.


class _FusedLinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, h_TD: torch.Tensor, w_VD: torch.Tensor, targets_T: torch.Tensor, chunk: int, need_grad: bool
    ) -> torch.Tensor:
        acc = torch.promote_types(h_TD.dtype, torch.float32)  # fp32, or fp64 in reference tests
        autocast = torch.is_autocast_enabled(h_TD.device.type)
        valid_T = targets_T != -100
        n_valid = valid_T.sum().clamp_min(1).to(acc)
        loss_sum = torch.zeros((), dtype=acc, device=h_TD.device)
        grad_h_TD = torch.empty(h_TD.shape, dtype=acc, device=h_TD.device) if need_grad else None
        grad_w_VD = torch.zeros(w_VD.shape, dtype=acc, device=w_VD.device) if need_grad else None
        for start in range(0, h_TD.shape[0], chunk):
            end = start + chunk
            h_cD, t_c, valid_c = h_TD[start:end], targets_T[start:end], valid_T[start:end]
            logits_cV = (h_cD @ w_VD.t()).to(acc)  # autocast (if on) runs the matmul in bf16
            lse_c = torch.logsumexp(logits_cV, dim=-1)
            safe_t_c = t_c.clamp_min(0)
            target_logit_c = logits_cV.gather(1, safe_t_c[:, None]).squeeze(1)
            loss_sum += torch.where(valid_c, lse_c - target_logit_c, 0.0).sum()
            if not need_grad:
                continue
            # d(loss)/d(logits) = softmax - onehot, zero on ignored rows; computed in the logits buffer.
            grad_cV = logits_cV.sub_(lse_c[:, None]).exp_()
            grad_cV[torch.arange(len(t_c), device=t_c.device), safe_t_c] -= 1.0
            grad_cV.mul_(valid_c[:, None].to(acc))
            grad_h_TD[start:end] = grad_cV @ w_VD
            if autocast:
                grad_w_VD += grad_cV.t() @ h_cD  # bf16 matmul, fp32 accumulator
            else:
                grad_w_VD.addmm_(grad_cV.t(), h_cD.to(acc))  # in place: no (V, D) temporary per chunk
        if need_grad:
            ctx.save_for_backward((grad_h_TD / n_valid).to(h_TD.dtype), (grad_w_VD / n_valid).to(w_VD.dtype))
        return loss_sum / n_valid

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        grad_h_TD, grad_w_VD = ctx.saved_tensors
        return grad_h_TD * grad_out, grad_w_VD * grad_out, None, None, None


def fused_linear_cross_entropy(
    h_TD: torch.Tensor, w_VD: torch.Tensor, targets_T: torch.Tensor, chunk: int = 1024
) -> torch.Tensor:
    """Mean cross-entropy of `h_TD @ w_VD.T` against targets (-100 ignored), without materialising all logits.

    Args:
        h_TD: final hidden states.
        w_VD: output projection weight.
        targets_T: next-token ids, -100 where there is none.
        chunk: tokens per chunk (peak extra memory is chunk * V fp32).
    """
    need_grad = torch.is_grad_enabled() and (h_TD.requires_grad or w_VD.requires_grad)
    return _FusedLinearCrossEntropy.apply(h_TD, w_VD, targets_T, chunk, need_grad)


# ---------------------------------------------------------------------------------------------------------------
# FLOPs per token for MFU: 6 x active matmul parameters + attention scores (PaLM appendix B, arXiv 2204.02311).


def flops_per_token(cfg: ModelConfig, seq_len: int) -> float:
    """Training FLOPs (forward + backward) per token: 6 N_active + 6 L H (Dk + Dv) S, with Dk = Dv = Hd for GQA
    (causal masking not discounted)."""
    D, H = cfg.hidden_size, cfg.num_attention_heads
    if cfg.attention_type == "mla":
        Dk, Dv, C, Q = cfg.qk_nope_head_dim + cfg.qk_rope_head_dim, cfg.v_head_dim, cfg.kv_lora_rank, cfg.q_lora_rank
        q = Q * (D + H * Dk) if Q else D * H * Dk
        attn = q + D * (C + cfg.qk_rope_head_dim) + C * H * (cfg.qk_nope_head_dim + Dv) + H * Dv * D
    else:
        Dk = Dv = cfg.head_dim
        attn = D * Dk * (2 * H + 2 * cfg.num_key_value_heads)
    experts = cfg.num_experts_per_tok * 3 * D * cfg.moe_intermediate_size + 3 * D * cfg.shared_expert_intermediate_size
    router = D * cfg.num_experts
    n_active = cfg.num_hidden_layers * (attn + experts + router) + cfg.vocab_size * D  # the embedding is a lookup
    return 6.0 * n_active + 6.0 * cfg.num_hidden_layers * H * (Dk + Dv) * seq_len


# ---------------------------------------------------------------------------------------------------------------
# KV-cache size at inference: what each generated token leaves behind, per layer, summed over layers.


def kv_cache_bytes_per_token(cfg: ModelConfig, attention_type: str | None = None, bytes_per_value: int = 2) -> int:
    """Bytes one token adds to the KV cache (bf16 by default).

    GQA caches a key and a value per key/value head: L * 2 G Hd values. MLA caches the latent c_KV and the
    shared RoPE key: L * (C + Dr) values (DeepSeek-V2, arXiv 2405.04434 table 1), whatever the head count.

    Args:
        cfg: the model config; both attention kinds' fields are read, so one config can be costed either way.
        attention_type: "gqa" or "mla"; None: the config's.
        bytes_per_value: 2 for bf16/fp16, 1 for an fp8 cache, 4 for fp32.
    """
    kind = attention_type or cfg.attention_type
    if kind == "mla":
        per_layer = cfg.kv_lora_rank + cfg.qk_rope_head_dim
    elif kind == "gqa":
        per_layer = 2 * cfg.num_key_value_heads * cfg.head_dim
    else:
        raise ValueError(f"attention_type must be 'gqa' or 'mla', got {kind!r}")
    return cfg.num_hidden_layers * per_layer * bytes_per_value
