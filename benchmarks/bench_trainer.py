"""Train-step throughput: our MoE trainer vs transformers' Qwen3MoeForCausalLM, same config, same run, CPU fp32.

    flock /tmp/cf-bench.lock .venv/bin/python benchmarks/bench_trainer.py [--steps 3] [--threads 2]

Config (the issue's): hidden 256, 4 layers, 8 heads / 2 KV heads, head_dim 32, 8 experts top-2, expert hidden
256, batch 4 x 512, vocabularies 151,936 (Qwen) and 8,192. A step is forward + backward + AdamW (+ the
load-balancing loss on both sides). Also the MoE block alone, forward + backward over 2,048 tokens.
Rows alternate ours / theirs so that load from other processes hits both alike; medians are reported.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainer.config import ModelConfig, TrainConfig
from trainer.model import MoE, MoETransformer
from trainer.train import build_optimizers, clip_grad_norm

B, S = 4, 512


def model_cfg(vocab: int) -> ModelConfig:
    return ModelConfig(vocab_size=vocab, hidden_size=256, num_hidden_layers=4, num_attention_heads=8,
                       num_key_value_heads=2, head_dim=32, num_experts=8, num_experts_per_tok=2,
                       moe_intermediate_size=256, norm_topk_prob=True, max_position_embeddings=S)  # fmt: skip


def hf_model(cfg: ModelConfig):
    from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM

    hf_cfg = Qwen3MoeConfig(vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size,
                            num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
                            num_key_value_heads=cfg.num_key_value_heads, head_dim=cfg.head_dim,
                            num_experts=cfg.num_experts, num_experts_per_tok=cfg.num_experts_per_tok,
                            moe_intermediate_size=cfg.moe_intermediate_size,
                            intermediate_size=cfg.moe_intermediate_size, norm_topk_prob=True,
                            max_position_embeddings=S, output_router_logits=True)  # fmt: skip
    hf_cfg._attn_implementation = "sdpa"
    return Qwen3MoeForCausalLM(hf_cfg)


def make_ours(cfg: ModelConfig, sparse: bool):
    train = TrainConfig(lr=1e-4, sparse_embedding=sparse, ce_chunk_tokens=512)
    model = MoETransformer(cfg, sparse_embedding=sparse, ce_chunk_tokens=train.ce_chunk_tokens).train()
    opts = build_optimizers(model, train)
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
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        out = model(input_ids=x, labels=x)  # HF shifts the labels itself
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def bench_train(vocab: int, steps: int) -> list[tuple[str, float]]:
    torch.manual_seed(0)
    cfg = model_cfg(vocab)
    x = torch.randint(0, vocab, (B, S))
    y = torch.cat([x[:, 1:], torch.full((B, 1), -100)], dim=1)
    rows = []
    variants = [("ours (fused CE, sparse emb + SparseAdam, fused AdamW)", make_ours(cfg, True)),
                ("ours, dense embedding", make_ours(cfg, False)),
                ("transformers Qwen3MoeForCausalLM", make_theirs(cfg))]  # fmt: skip
    results: dict[str, list[float]] = {name: [] for name, _ in variants}
    for _name, step in variants:
        step(x, y)  # warm-up
    for _ in range(steps):
        for name, step in variants:
            results[name].append(B * S / _time(step, x, y))
    for name, _ in variants:
        rows.append((name, statistics.median(results[name])))
    return rows


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
    theirs = Qwen3MoeSparseMoeBlock(Qwen3MoeConfig(hidden_size=256, moe_intermediate_size=256, num_experts=8,
                                                   num_experts_per_tok=2, norm_topk_prob=True))  # fmt: skip
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per variant (after one warm-up)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--vocab", type=int, nargs="*", default=[151936, 8192])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import transformers

    print(f"torch {torch.__version__}, transformers {transformers.__version__}, {args.threads} threads, fp32, "
          f"batch {B} x {S}\n")  # fmt: skip
    print("| vocab | variant | train-step tokens/s | vs transformers |")
    print("|---:|---|---:|---:|")
    for vocab in args.vocab:
        rows = bench_train(vocab, args.steps)
        ref = rows[-1][1]
        for name, tps in rows:
            print(f"| {vocab:,} | {name} | {tps:,.0f} | {tps / ref:.2f}x |", flush=True)
    print("\n| MoE block alone (2,048 tokens, fwd+bwd) | tokens/s | vs transformers |")
    print("|---|---:|---:|")
    rows = bench_moe_block(max(args.steps, 5) * 2)
    ref = rows[-1][1]
    for name, tps in rows:
        print(f"| {name} | {tps:,.0f} | {tps / ref:.2f}x |")


if __name__ == "__main__":
    main()
