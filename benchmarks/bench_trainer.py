"""Train-step throughput: our MoE trainer vs transformers' Qwen3MoeForCausalLM, same config, same run, CPU fp32.

    flock /tmp/cf-bench.lock .venv/bin/python benchmarks/bench_trainer.py [--steps 2] [--threads 2]

Config (the issue's): hidden 256, 4 layers (1x) or 8 layers (2x: twice the non-embedding parameters), 8 heads /
2 KV heads, head_dim 32, 8 experts top-2, expert hidden 256, batch 2 x 512, vocabularies 151,936 (Qwen) and
8,192, fp32.

Both sides do the same work per step: forward, cross-entropy + 0.001 x the Switch load-balancing loss, backward,
global-norm clipping to 1.0 (the same function), and the same optimizer: fused AdamW (lr 1e-4, betas 0.9/0.95)
with weight decay 0.1 on every matrix except the input embedding and none on norms, biases and the embedding,
dense gradients everywhere. One clock (`_time`) wraps the whole step on both sides, in the same process and
the same `torch.set_num_threads`. Our sparse-embedding variant (SparseAdam: lazy moments on the embedding rows
of the batch, a different update) is the extra labelled row. Rows alternate so that load from other processes
hits all alike; medians are reported. Also the MoE block alone, forward + backward over 1,024 tokens, and the
KV-cache bytes per token of GQA and MLA for the shipped configs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainer.config import ModelConfig, TrainConfig, load_config
from trainer.model import MoE, MoETransformer, kv_cache_bytes_per_token
from trainer.optim import build_optimizers, clip_grad_norm

B, S = 2, 512
LR, BETAS, WEIGHT_DECAY, AUX_COEF = 1e-4, (0.9, 0.95), 0.1, 0.001


def model_cfg(vocab: int, layers: int = 4) -> ModelConfig:
    return ModelConfig(
        vocab_size=vocab,
        hidden_size=256,
        num_hidden_layers=layers,
        num_attention_heads=8,
        num_key_value_heads=2,
        head_dim=32,
        num_experts=8,
        num_experts_per_tok=2,
        moe_intermediate_size=256,
        norm_topk_prob=True,
        max_position_embeddings=S,
        router_aux_loss_coef=AUX_COEF,
    )


def hf_model(cfg: ModelConfig):
    from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM

    hf_cfg = Qwen3MoeConfig(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_key_value_heads,
        head_dim=cfg.head_dim,
        num_experts=cfg.num_experts,
        num_experts_per_tok=cfg.num_experts_per_tok,
        moe_intermediate_size=cfg.moe_intermediate_size,
        intermediate_size=cfg.moe_intermediate_size,
        norm_topk_prob=True,
        max_position_embeddings=S,
        output_router_logits=True,
        router_aux_loss_coef=AUX_COEF,
    )
    hf_cfg._attn_implementation = "sdpa"
    return Qwen3MoeForCausalLM(hf_cfg)


def make_ours(cfg: ModelConfig, sparse: bool):
    train = TrainConfig(
        lr=LR, beta1=BETAS[0], beta2=BETAS[1], weight_decay=WEIGHT_DECAY, sparse_embedding=sparse, ce_chunk_tokens=512
    )
    model = MoETransformer(cfg, sparse_embedding=sparse, ce_chunk_tokens=train.ce_chunk_tokens).train()
    opts = build_optimizers(model, train)  # AdamW: decay on matrices except the embedding (+ SparseAdam if sparse)
    params = list(model.parameters())

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        loss, aux = model(x, y)
        (loss + cfg.router_aux_loss_coef * aux).backward()
        clip_grad_norm(params, 1.0)
        for opt in opts:
            opt.step()
            opt.zero_grad(set_to_none=True)
        model.update_router_biases()
        model.expert_load()

    return step


def make_theirs(cfg: ModelConfig):
    model = hf_model(cfg).train()
    emb = model.get_input_embeddings().weight
    params = list(model.parameters())
    # The same groups as trainer.optim.build_optimizers: decay on matrices (2-D and the 3-D expert stacks)
    # except the input embedding; none on norms, biases, the embedding.
    decay = [p for p in params if p.ndim >= 2 and p is not emb]
    no_decay = [p for p in params if not (p.ndim >= 2 and p is not emb)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0.0}],
        lr=LR,
        betas=BETAS,
        eps=1e-8,
        fused=True,
    )

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        out = model(input_ids=x, labels=x)  # HF shifts the labels itself; the loss includes coef x aux
        out.loss.backward()
        clip_grad_norm(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def bench_train(vocab: int, layers: int, steps: int) -> list[tuple[str, float]]:
    torch.manual_seed(0)
    cfg = model_cfg(vocab, layers)
    x = torch.randint(0, vocab, (B, S))
    y = torch.cat([x[:, 1:], torch.full((B, 1), -100)], dim=1)
    variants = [
        ("ours (same optimizer: dense embedding, AdamW)", make_ours(cfg, False)),
        ("transformers Qwen3MoeForCausalLM (same optimizer)", make_theirs(cfg)),
        ("ours, faster variant: sparse embedding + SparseAdam (lazy, no decay on it)", make_ours(cfg, True)),
    ]
    results: dict[str, list[float]] = {name: [] for name, _ in variants}
    for _name, step in variants:
        step(x, y)  # warm-up
    for _ in range(steps):
        for name, step in variants:
            results[name].append(B * S / _time(step, x, y))
    return [(name, statistics.median(results[name])) for name, _ in variants]


def _time(step, x, y) -> float:
    t0 = time.perf_counter()
    step(x, y)
    return time.perf_counter() - t0


def bench_moe_block(steps: int) -> list[tuple[str, float]]:
    from transformers import Qwen3MoeConfig
    from transformers.models.qwen3_moe.modeling_qwen3_moe import Qwen3MoeSparseMoeBlock

    torch.manual_seed(0)
    cfg = model_cfg(8192)
    ours = MoE(cfg)
    for p in ours.parameters():
        torch.nn.init.normal_(p, std=0.02)
    theirs = Qwen3MoeSparseMoeBlock(
        Qwen3MoeConfig(
            hidden_size=256, moe_intermediate_size=256, num_experts=8, num_experts_per_tok=2, norm_topk_prob=True
        )
    )
    with torch.no_grad():
        theirs.gate.weight.copy_(ours.gate.weight)
        theirs.experts.gate_up_proj.copy_(ours.experts.w13_E2FD)
        theirs.experts.down_proj.copy_(ours.experts.w2_EDF)
    x = torch.randn(B, S, 256, requires_grad=True)

    def run_ours() -> None:
        y, _ = ours(x)
        y.sum().backward()

    def run_theirs() -> None:
        theirs(x).sum().backward()

    res: dict[str, list[float]] = {"ours MoE block": [], "transformers Qwen3MoeSparseMoeBlock": []}
    run_ours(), run_theirs()
    for _ in range(steps):
        for name, fn in (("ours MoE block", run_ours), ("transformers Qwen3MoeSparseMoeBlock", run_theirs)):
            t0 = time.perf_counter()
            fn()
            res[name].append(B * S / (time.perf_counter() - t0))
    return [(k, statistics.median(v)) for k, v in res.items()]


def kv_cache_rows() -> list[tuple[str, str, int, int]]:
    """(config, attention, values per token per layer, bytes per token in bf16) for GQA and MLA of each config."""
    rows = []
    repo = Path(__file__).resolve().parents[1]
    for name in ("tiny_cpu", "gpu_100m"):
        cfg = load_config(repo / "configs" / "trainer" / f"{name}.toml").model
        for kind in ("gqa", "mla"):
            b = kv_cache_bytes_per_token(cfg, kind)
            label = (
                f"GQA, {cfg.num_key_value_heads} KV heads x {cfg.head_dim}"
                if kind == "gqa"
                else f"MLA, latent {cfg.kv_lora_rank} + RoPE key {cfg.qk_rope_head_dim}"
            )
            if kind == cfg.attention_type:
                label += " (the config's)"
            rows.append((f"{name} ({cfg.num_hidden_layers} layers)", label, b // (2 * cfg.num_hidden_layers), b))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2, help="timed steps per variant (after one warm-up)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--vocab", type=int, nargs="*", default=[151936, 8192])
    parser.add_argument("--layers", type=int, nargs="*", default=[4, 8], help="model sizes (1x = 4 layers)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import transformers

    print("| config | attention | values / token / layer | KV-cache bytes / token (bf16) |")
    print("|---|---|---:|---:|")
    for name, label, values, nbytes in kv_cache_rows():
        print(f"| {name} | {label} | {values} | {nbytes:,} |")
    print(
        f"\ntorch {torch.__version__}, transformers {transformers.__version__}, {args.threads} threads (both sides), "
        f"fp32, batch {B} x {S}\n"
    )
    print("| vocab | size | variant | train-step tokens/s | vs transformers |")
    print("|---:|---|---|---:|---:|")
    for vocab in args.vocab:
        for layers in args.layers:
            rows = bench_train(vocab, layers, args.steps)
            ref = rows[1][1]
            size = f"{layers / 4:g}x ({layers} layers)"
            for name, tps in rows:
                print(f"| {vocab:,} | {size} | {name} | {tps:,.0f} | {tps / ref:.2f}x |", flush=True)
    print(f"\n| MoE block alone ({B * S:,} tokens, fwd+bwd) | tokens/s | vs transformers |")
    print("|---|---:|---:|")
    rows = bench_moe_block(max(args.steps, 5) * 2)
    ref = rows[-1][1]
    for name, tps in rows:
        print(f"| {name} | {tps:,.0f} | {tps / ref:.2f}x |")


if __name__ == "__main__":
    main()
