"""Model kernels against references on small shapes: inline float64 formulas and transformers' Qwen3-MoE."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from trainer.config import ConfigError, ModelConfig  # noqa: E402  (after the torch skip)
from trainer.model import (  # noqa: E402
    Attention,
    MoE,
    MoETransformer,
    Router,
    fused_linear_cross_entropy,
    load_balancing_loss,
    rope_inv_freq,
)


def small_cfg(**kw) -> ModelConfig:
    base = {
        "vocab_size": 96,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 8,
        "num_experts": 6,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 16,
        "max_position_embeddings": 64,
    }
    base.update(kw)
    return ModelConfig(**base)


def naive_attention(attn: Attention, x, cfg: ModelConfig):
    """Textbook GQA: explicit per-head loops, pairwise RoPE rotation, masked softmax, float64."""
    B, S, _D = x.shape
    H, G, Hd = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim

    def rms(v, w):
        return w * v / torch.sqrt((v * v).mean(-1, keepdim=True) + cfg.rms_norm_eps)

    q = rms((x @ attn.q_proj.weight.T).view(B, S, H, Hd), attn.q_norm.weight)
    k = rms((x @ attn.k_proj.weight.T).view(B, S, G, Hd), attn.k_norm.weight)
    v = (x @ attn.v_proj.weight.T).view(B, S, G, Hd)
    half = Hd // 2
    inv = 1.0 / cfg.rope_theta ** (torch.arange(half, dtype=torch.float64) * 2 / Hd)
    ang = torch.arange(S, dtype=torch.float64)[:, None] * inv[None, :]  # (S, Hd/2)

    def rot(t):  # pairs (i, i + Hd/2) rotate by position * inv_freq_i
        a, b = t[..., :half], t[..., half:]
        c, s = ang.cos()[None, :, None, :], ang.sin()[None, :, None, :]
        return torch.cat([a * c - b * s, a * s + b * c], dim=-1)

    q, k = rot(q), rot(k)
    out = torch.zeros(B, S, H, Hd, dtype=x.dtype)
    mask = torch.ones(S, S, dtype=torch.bool).tril()
    for h in range(H):
        g = h // (H // G)  # query head h reads key/value head h // (H/G)
        scores = torch.einsum("bsd,btd->bst", q[:, :, h], k[:, :, g]) / math.sqrt(Hd)
        scores = scores.masked_fill(~mask, float("-inf"))
        out[:, :, h] = torch.einsum("bst,btd->bsd", scores.softmax(-1), v[:, :, g])
    return out.reshape(B, S, H * Hd) @ attn.o_proj.weight.T


def test_gqa_attention_matches_naive_float64():
    torch.manual_seed(0)
    cfg = small_cfg()
    attn = Attention(cfg).double()
    with torch.no_grad():
        attn.q_norm.weight.uniform_(0.5, 1.5)
        attn.k_norm.weight.uniform_(0.5, 1.5)
    x = torch.randn(2, 11, cfg.hidden_size, dtype=torch.float64, requires_grad=True)
    from trainer.model import RotaryEmbedding

    cos, sin = RotaryEmbedding(cfg).double()(11, x.device)
    ours = attn(x, cos.double(), sin.double())
    ref = naive_attention(attn, x, cfg)
    torch.testing.assert_close(ours, ref, rtol=1e-7, atol=1e-9)
    g = torch.randn_like(ours)
    grads = torch.autograd.grad(ours, [x, attn.k_proj.weight, attn.q_norm.weight], g)
    ref_grads = torch.autograd.grad(ref, [x, attn.k_proj.weight, attn.q_norm.weight], g)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9)


def test_attention_is_causal():
    torch.manual_seed(0)
    cfg = small_cfg()
    model = MoETransformer(cfg).double().eval()
    ids = torch.randint(0, cfg.vocab_size, (1, 12))
    changed = ids.clone()
    changed[0, 8:] = (changed[0, 8:] + 1) % cfg.vocab_size
    a, _ = model(ids)
    b, _ = model(changed)
    torch.testing.assert_close(a[0, :8], b[0, :8])
    assert not torch.allclose(a[0, 8:], b[0, 8:])


def _hf_moe(cfg: ModelConfig, ours: MoE):
    from transformers import Qwen3MoeConfig
    from transformers.models.qwen3_moe.modeling_qwen3_moe import Qwen3MoeSparseMoeBlock

    hf_cfg = Qwen3MoeConfig(
        hidden_size=cfg.hidden_size,
        moe_intermediate_size=cfg.moe_intermediate_size,
        num_experts=cfg.num_experts,
        num_experts_per_tok=cfg.num_experts_per_tok,
        norm_topk_prob=cfg.norm_topk_prob,
    )
    hf = Qwen3MoeSparseMoeBlock(hf_cfg).double()
    with torch.no_grad():
        hf.gate.weight.copy_(ours.gate.weight)
        hf.experts.gate_up_proj.copy_(ours.experts.w13_E2FD)
        hf.experts.down_proj.copy_(ours.experts.w2_EDF)
    return hf


@pytest.mark.parametrize("norm_topk_prob", [True, False])
def test_moe_block_matches_transformers_qwen3_sparse_block(norm_topk_prob):
    torch.manual_seed(1)
    cfg = small_cfg(norm_topk_prob=norm_topk_prob)
    ours = MoE(cfg).double()
    for p in ours.parameters():
        torch.nn.init.normal_(p, std=0.3)
    hf = _hf_moe(cfg, ours)
    x = torch.randn(3, 17, cfg.hidden_size, dtype=torch.float64, requires_grad=True)
    y, _aux = ours(x)
    y_ref = hf(x)
    # NOTE: transformers' router softmax always runs in fp32 (ours follows the input up to fp64), so the
    # float64 comparison holds to fp32 rounding of the gate weights, not to fp64 precision.
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-6)
    g = torch.randn_like(y)
    ours_grads = torch.autograd.grad(y, [x, ours.experts.w13_E2FD, ours.experts.w2_EDF, ours.gate.weight], g)
    hf_grads = torch.autograd.grad(y_ref, [x, hf.experts.gate_up_proj, hf.experts.down_proj, hf.gate.weight], g)
    for a, b in zip(ours_grads, hf_grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    # With the same fp32-rounded gate weights the expert math agrees to fp64 precision.
    x_TD = x.reshape(-1, cfg.hidden_size)
    p32, idx = torch.softmax((x_TD @ ours.gate.weight.T).float(), dim=-1).topk(2, dim=-1)
    w32 = (p32 / p32.sum(-1, keepdim=True) if norm_topk_prob else p32).double()
    order = torch.argsort(idx.flatten(), stable=True)
    y_exp = ours.experts(x_TD[order // 2], torch.bincount(idx.flatten(), minlength=6))
    y_exact = torch.zeros(51, cfg.hidden_size, dtype=torch.float64).index_add_(
        0, order // 2, y_exp * w32.flatten()[order, None]
    )
    torch.testing.assert_close(y_exact.view_as(y_ref), y_ref, rtol=1e-10, atol=1e-12)
    # Every token reaches exactly K experts: the per-expert counts sum to T*K (dropless).
    assert int(ours.gate.tokens_per_expert_E.sum()) == 3 * 17 * cfg.num_experts_per_tok


def test_load_balancing_loss_matches_transformers():
    from transformers.models.qwen3_moe.modeling_qwen3_moe import load_balancing_loss_func

    torch.manual_seed(2)
    logits = torch.randn(40, 6, dtype=torch.float64) * 2
    probs = logits.softmax(-1)
    topk = probs.topk(2, dim=-1).indices
    ours = load_balancing_loss(probs, topk)
    ref = load_balancing_loss_func((logits,), num_experts=6, top_k=2)
    torch.testing.assert_close(ours, ref.to(ours.dtype))
    # Perfectly uniform routing gives the minimum, K.
    uniform = torch.full((6, 6), 1 / 6, dtype=torch.float64)
    idx = torch.tensor([[i, (i + 1) % 6] for i in range(6)])
    assert float(load_balancing_loss(uniform, idx)) == pytest.approx(2.0)


def test_aux_free_bias_only_selects_and_moves_toward_balance():
    torch.manual_seed(3)
    cfg = small_cfg(moe_balancing="aux_free", router_bias_update_rate=0.01, num_experts=4, num_experts_per_tok=1)
    router = Router(cfg).double()
    with torch.no_grad():
        router.weight.zero_()
        router.weight[0, 0] = 5.0  # every token with x[0] > 0 prefers expert 0
    x = torch.randn(64, cfg.hidden_size, dtype=torch.float64).abs()
    _probs, idx, _w = router(x)
    assert (idx == 0).all()
    router.tokens_per_expert_E += torch.bincount(idx.flatten(), minlength=4).double()
    router.update_bias()
    assert router.expert_bias_E[0] == pytest.approx(-0.01) and (router.expert_bias_E[1:] == 0.01).all()
    with torch.no_grad():
        router.expert_bias_E.copy_(torch.tensor([-10.0, 10.0, 0.0, 0.0]))
    probs2, idx2, w2 = router(x)
    assert (idx2 == 1).all()  # the bias changed the choice ...
    torch.testing.assert_close(w2[:, 0], probs2[:, 1] / probs2[:, 1])  # ... and (renormalised) weight is 1
    cfg_raw = small_cfg(moe_balancing="aux_free", norm_topk_prob=False, num_experts=4, num_experts_per_tok=1)
    r2 = Router(cfg_raw).double()
    r2.load_state_dict(router.state_dict())
    _, _idx3, w3 = r2(x)
    torch.testing.assert_close(w3[:, 0], probs2[:, 1])  # the gate weight is the unbiased probability


def test_shared_expert_adds_a_dense_path():
    torch.manual_seed(4)
    cfg = small_cfg(shared_expert_intermediate_size=24)
    moe = MoE(cfg).double()
    for p in moe.parameters():
        torch.nn.init.normal_(p, std=0.3)
    x = torch.randn(2, 5, cfg.hidden_size, dtype=torch.float64)
    y, _ = moe(x)
    shared = moe.shared_expert(x)
    with torch.no_grad():
        moe.shared_expert.down_proj.weight.zero_()
    y_routed, _ = moe(x)
    torch.testing.assert_close(y, y_routed + shared)


@pytest.mark.parametrize(
    "factor,orig,theta,head_dim",
    [(4.0, 256, 1e6, 64), (8.0, 4096, 1e4, 128), (2.0, 32768, 1e6, 32), (32.0, 2048, 5e5, 64)],
)
def test_yarn_frequencies_match_transformers(factor, orig, theta, head_dim):
    from transformers import Qwen3MoeConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    rs = {"rope_type": "yarn", "factor": factor, "original_max_position_embeddings": orig}
    cfg = small_cfg(head_dim=head_dim, rope_theta=theta, rope_scaling=rs, max_position_embeddings=int(orig * factor))
    hf_cfg = Qwen3MoeConfig(
        head_dim=head_dim, max_position_embeddings=int(orig * factor), rope_parameters={**rs, "rope_theta": theta}
    )
    ref_inv, ref_scale = ROPE_INIT_FUNCTIONS["yarn"](hf_cfg, "cpu")
    ours_inv, ours_scale = rope_inv_freq(cfg)
    torch.testing.assert_close(ours_inv.float(), ref_inv, rtol=2e-6, atol=0)
    assert ours_scale == pytest.approx(ref_scale) == pytest.approx(0.1 * math.log(factor) + 1)
    # YaRN leaves the fastest dimension alone and interpolates the slowest by 1/factor.
    plain, _ = rope_inv_freq(small_cfg(head_dim=head_dim, rope_theta=theta))
    assert ours_inv[0] == plain[0]
    assert float(ours_inv[-1]) == pytest.approx(float(plain[-1]) / factor)


def test_abf_raises_the_base():
    low, _ = rope_inv_freq(small_cfg(rope_theta=1e4))
    high, _ = rope_inv_freq(small_cfg(rope_theta=1e6))
    assert low[0] == high[0] == 1.0 and (high[1:] < low[1:]).all()


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_fused_linear_cross_entropy_matches_reference(chunk):
    torch.manual_seed(5)
    h = torch.randn(50, 16, dtype=torch.float64, requires_grad=True)
    w = torch.randn(37, 16, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 37, (50,))
    t[::9] = -100
    ours = fused_linear_cross_entropy(h, w, t, chunk)
    ref = F.cross_entropy(h @ w.T, t, ignore_index=-100)
    torch.testing.assert_close(ours, ref)
    ga = torch.autograd.grad(ours * 3.0, [h, w])
    gb = torch.autograd.grad(ref * 3.0, [h, w])
    for a, b in zip(ga, gb):
        torch.testing.assert_close(a, b)


def test_config_refuses_bad_values_with_the_value():
    with pytest.raises(ConfigError, match="num_attention_heads=6 is not a multiple of num_key_value_heads=4"):
        small_cfg(num_attention_heads=6, num_key_value_heads=4)
    with pytest.raises(ConfigError, match="num_experts_per_tok=9"):
        small_cfg(num_experts_per_tok=9)
    with pytest.raises(ConfigError, match="rope_type must be 'yarn', got 'linear'"):
        small_cfg(rope_scaling={"rope_type": "linear", "factor": 2.0})


# ---------------------------------------------------------------------------------------------------------------
# DeepSeek-V3 parts: Multi-head Latent Attention and the sigmoid router, against transformers' DeepseekV3.


def mla_cfg(**kw) -> ModelConfig:
    base = {
        "attention_type": "mla",
        "kv_lora_rank": 16,
        "qk_nope_head_dim": 8,
        "qk_rope_head_dim": 4,
        "v_head_dim": 6,
        "scoring_func": "sigmoid",
        "moe_balancing": "aux_free",
    }
    base.update(kw)
    return small_cfg(**base)


def _hf_deepseek_config(cfg: ModelConfig, **kw):
    from transformers import DeepseekV3Config

    rope = {"rope_type": "default", "rope_theta": cfg.rope_theta}
    if cfg.rope_scaling:
        rope = {**cfg.rope_scaling, "rope_theta": cfg.rope_theta}
    hf = DeepseekV3Config(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_attention_heads,
        q_lora_rank=cfg.q_lora_rank or None,
        kv_lora_rank=cfg.kv_lora_rank,
        qk_nope_head_dim=cfg.qk_nope_head_dim,
        qk_rope_head_dim=cfg.qk_rope_head_dim,
        v_head_dim=cfg.v_head_dim,
        rope_interleave=False,
        max_position_embeddings=cfg.max_position_embeddings,
        rope_parameters=rope,
        n_routed_experts=cfg.num_experts,
        num_experts_per_tok=cfg.num_experts_per_tok,
        moe_intermediate_size=cfg.moe_intermediate_size,
        n_group=1,
        topk_group=1,
        norm_topk_prob=cfg.norm_topk_prob,
        routed_scaling_factor=cfg.routed_scaling_factor,
        first_k_dense_replace=0,
        **kw,
    )
    hf._attn_implementation = "eager"
    return hf


@pytest.mark.parametrize("q_lora_rank", [0, 12], ids=["q_proj", "q_lora"])
def test_mla_matches_transformers_deepseek_v3_attention(q_lora_rank):
    from transformers.models.deepseek_v3.modeling_deepseek_v3 import DeepseekV3Attention, DeepseekV3RotaryEmbedding

    from trainer.model import MLAttention, RotaryEmbedding

    torch.manual_seed(6)
    cfg = mla_cfg(q_lora_rank=q_lora_rank)
    ours = MLAttention(cfg).double()
    for p in ours.parameters():
        torch.nn.init.normal_(p, std=0.3)
    hf_cfg = _hf_deepseek_config(cfg)
    hf = DeepseekV3Attention(hf_cfg, layer_idx=0).double()
    hf.load_state_dict(ours.state_dict(), strict=True)  # the same parameter names and shapes
    S = 13
    x = torch.randn(2, S, cfg.hidden_size, dtype=torch.float64, requires_grad=True)
    cos, sin = RotaryEmbedding(cfg)(S, x.device)
    mask = torch.full((S, S), float("-inf"), dtype=torch.float64).triu(1)[None, None]
    y = ours(x, cos, sin)
    y_ref, _ = hf(x, (cos[None], sin[None]), mask)  # the same float64 RoPE tables
    # NOTE: transformers' RMSNorm and eager softmax run in fp32 even on float64 inputs, so agreement is to fp32
    # rounding (~1e-7 here); a wrong head split, scale or RoPE half would be off by O(1).
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-6)
    g = torch.randn_like(y)
    names = ["kv_a_proj_with_mqa.weight", "kv_b_proj.weight", "o_proj.weight"]
    names += ["q_a_proj.weight", "q_b_proj.weight", "q_a_layernorm.weight"] if q_lora_rank else ["q_proj.weight"]
    mine = dict(ours.named_parameters())
    theirs = dict(hf.named_parameters())
    ga = torch.autograd.grad(y, [x] + [mine[n] for n in names], g)
    gb = torch.autograd.grad(y_ref, [x] + [theirs[n] for n in names], g)
    for a, b in zip(ga, gb):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    # transformers' own (fp32) RoPE tables for the decoupled key agree with ours.
    hf_cos, hf_sin = DeepseekV3RotaryEmbedding(hf_cfg)(x.float(), torch.arange(S)[None])
    torch.testing.assert_close(hf_cos[0].double(), cos, rtol=0, atol=1e-6)
    torch.testing.assert_close(hf_sin[0].double(), sin, rtol=0, atol=1e-6)


def test_mla_yarn_frequencies_match_transformers_on_the_rope_dims():
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    rs = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64}
    cfg = mla_cfg(qk_rope_head_dim=16, rope_theta=1e6, rope_scaling=rs, max_position_embeddings=256)
    ref_inv, ref_scale = ROPE_INIT_FUNCTIONS["yarn"](_hf_deepseek_config(cfg), "cpu")
    inv, scale = rope_inv_freq(cfg)
    assert inv.shape == (8,)  # Dr / 2 frequencies, not head_dim / 2
    torch.testing.assert_close(inv.float(), ref_inv, rtol=2e-6, atol=0)
    assert scale == pytest.approx(ref_scale)


def test_mla_model_is_causal_and_caches_only_the_latent():
    from trainer.model import MLAttention, kv_cache_bytes_per_token

    torch.manual_seed(7)
    cfg = mla_cfg(q_lora_rank=12)
    model = MoETransformer(cfg).double().eval()
    assert all(isinstance(layer.self_attn, MLAttention) for layer in model.layers)
    ids = torch.randint(0, cfg.vocab_size, (1, 12))
    changed = ids.clone()
    changed[0, 8:] = (changed[0, 8:] + 1) % cfg.vocab_size
    a, _ = model(ids)
    b, _ = model(changed)
    torch.testing.assert_close(a[0, :8], b[0, :8])
    assert not torch.allclose(a[0, 8:], b[0, 8:])
    # What a token must keep: the down-projection's output (latent + RoPE key) per layer, in bf16.
    cached = sum(layer.self_attn.kv_a_proj_with_mqa.out_features for layer in model.layers) * 2
    assert kv_cache_bytes_per_token(cfg) == cached == 2 * (16 + 4) * 2
    gqa = MoETransformer(small_cfg())
    kv_outputs = sum(layer.self_attn.k_proj.out_features + layer.self_attn.v_proj.out_features for layer in gqa.layers)
    assert kv_cache_bytes_per_token(small_cfg()) == kv_cache_bytes_per_token(cfg, "gqa") == kv_outputs * 2
    assert kv_cache_bytes_per_token(cfg, "gqa", bytes_per_value=1) == 2 * 2 * 2 * 8


@pytest.mark.parametrize("norm_topk_prob,scale", [(True, 1.0), (True, 2.5), (False, 1.0)])
def test_sigmoid_router_and_moe_match_transformers_deepseek_v3(norm_topk_prob, scale):
    from transformers.models.deepseek_v3.modeling_deepseek_v3 import DeepseekV3MoE

    torch.manual_seed(8)
    cfg = mla_cfg(norm_topk_prob=norm_topk_prob, routed_scaling_factor=scale, shared_expert_intermediate_size=32)
    ours = MoE(cfg).double()
    for p in ours.parameters():
        torch.nn.init.normal_(p, std=0.3)
    with torch.no_grad():
        ours.gate.expert_bias_E.copy_(torch.linspace(-0.3, 0.3, cfg.num_experts))  # the bias changes choices
    hf = DeepseekV3MoE(_hf_deepseek_config(cfg, n_shared_experts=2)).double()  # 2 x F = 32 shared hidden
    with torch.no_grad():
        hf.gate.weight.copy_(ours.gate.weight)
        hf.gate.e_score_correction_bias.copy_(ours.gate.expert_bias_E)
        hf.experts.gate_up_proj.copy_(ours.experts.w13_E2FD)
        hf.experts.down_proj.copy_(ours.experts.w2_EDF)
        hf.shared_experts.load_state_dict(ours.shared_expert.state_dict())
    x = torch.randn(3, 17, cfg.hidden_size, dtype=torch.float64, requires_grad=True)
    _, idx, w = ours.gate(x.reshape(-1, cfg.hidden_size))
    _, w_ref, idx_ref = hf.gate(x)
    order, order_ref = idx.argsort(-1), idx_ref.argsort(-1)
    assert torch.equal(idx.gather(1, order), idx_ref.gather(1, order_ref))
    assert not torch.equal(idx, torch.sigmoid(x.reshape(-1, cfg.hidden_size) @ ours.gate.weight.T).topk(2).indices)
    # NOTE: transformers scores in fp32 whatever the input dtype, so gates agree to fp32 rounding.
    torch.testing.assert_close(w.gather(1, order), w_ref.gather(1, order_ref).to(w.dtype), rtol=1e-6, atol=1e-7)
    y, _ = ours(x)
    torch.testing.assert_close(y, hf(x), rtol=1e-5, atol=1e-6)


def test_config_refuses_bad_mla_and_router_values():
    with pytest.raises(ConfigError, match="kv_lora_rank must be > 0 with attention_type = 'mla', got 0"):
        mla_cfg(kv_lora_rank=0)
    with pytest.raises(ConfigError, match="qk_rope_head_dim must be even"):
        mla_cfg(qk_rope_head_dim=5)
    with pytest.raises(ConfigError, match="scoring_func must be one of"):
        small_cfg(scoring_func="relu")
    with pytest.raises(ConfigError, match="'deepseek_v3' needs attention_type = 'mla'"):
        small_cfg(model_type="deepseek_v3")
    assert mla_cfg().model_type == "deepseek_v3" and small_cfg().model_type == "qwen3_moe"


def test_mla_matches_the_papers_equations_in_float64():
    """DeepSeek-V2 eq. 9-19 written out per head in float64: latent, up-projections, decoupled RoPE key shared by
    all heads, softmax over (Dn + Dr) ** -0.5 scaled scores."""
    from trainer.model import MLAttention, RotaryEmbedding

    torch.manual_seed(9)
    cfg = mla_cfg(q_lora_rank=12)
    attn = MLAttention(cfg).double()
    for p in attn.parameters():
        torch.nn.init.normal_(p, std=0.3)
    B, S, H, C, Dn, Dr, Dv = 2, 9, cfg.num_attention_heads, 16, 8, 4, 6
    x = torch.randn(B, S, cfg.hidden_size, dtype=torch.float64)

    def rms(v, w):
        return w * v / torch.sqrt((v * v).mean(-1, keepdim=True) + 1e-6)

    c_q = rms(x @ attn.q_a_proj.weight.T, attn.q_a_layernorm.weight)  # eq. 12
    q = (c_q @ attn.q_b_proj.weight.T).view(B, S, H, Dn + Dr)  # eq. 13 and 15, stacked
    a = x @ attn.kv_a_proj_with_mqa.weight.T
    c_kv, k_r = rms(a[..., :C], attn.kv_a_layernorm.weight), a[..., C:]  # eq. 9 and 17
    kv = (c_kv @ attn.kv_b_proj.weight.T).view(B, S, H, Dn + Dv)  # eq. 10-11
    half = Dr // 2
    ang = torch.arange(S, dtype=torch.float64)[:, None] / cfg.rope_theta ** (torch.arange(half) * 2 / Dr)[None, :]

    def rot(t):  # rotate-half pairs (i, i + Dr/2)
        lo, hi = t[..., :half], t[..., half:]
        return torch.cat([lo * ang.cos() - hi * ang.sin(), lo * ang.sin() + hi * ang.cos()], dim=-1)

    out = torch.zeros(B, S, H, Dv, dtype=torch.float64)
    mask = torch.ones(S, S, dtype=torch.bool).tril()
    for h in range(H):
        q_h = torch.cat([q[:, :, h, :Dn], rot(q[:, :, h, Dn:])], dim=-1)  # eq. 16 and 18
        k_h = torch.cat([kv[:, :, h, :Dn], rot(k_r)], dim=-1)  # eq. 19: the same RoPE key for every head
        scores = torch.einsum("bsd,btd->bst", q_h, k_h) / math.sqrt(Dn + Dr)
        out[:, :, h] = torch.einsum(
            "bst,btd->bsd", scores.masked_fill(~mask, float("-inf")).softmax(-1), kv[:, :, h, Dn:]
        )
    ref = out.reshape(B, S, H * Dv) @ attn.o_proj.weight.T
    cos, sin = RotaryEmbedding(cfg)(S, x.device)
    torch.testing.assert_close(attn(x, cos, sin), ref, rtol=1e-10, atol=1e-12)
