"""Export a trainer checkpoint to a Hugging Face folder that `transformers` loads and generates with.

    python -m trainer.export_hf runs/general/train/checkpoint.pt out/hf [--tokenizer-json tokenizer.json]

The layout follows the checkpoint's `model_type`:
- "qwen3_moe" (GQA, softmax router, no shared expert, no selection bias): `Qwen3MoeForCausalLM`;
- "deepseek_v3" (MLA, sigmoid router, aux-free selection bias, shared experts): `DeepseekV3ForCausalLM`,
  the bias as `mlp.gate.e_score_correction_bias`, the shared expert as `mlp.shared_experts` (zero-padded to a
  multiple of `moe_intermediate_size`, which adds exact zeros), and routing without groups
  (n_group = topk_group = 1), RoPE in rotate-half order (`rope_interleave = false`).

Writes `config.json` (our config is already in HF keys), `model.safetensors` in the per-expert layout of the
published checkpoints (`mlp.experts.<e>.{gate,up,down}_proj.weight`), `generation_config.json`, and
the tokenizer (`tokenizer.json` + `tokenizer_config.json`).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any

from trainer.config import ModelConfig


def _rope_parameters(cfg: ModelConfig) -> dict[str, Any]:
    if cfg.rope_scaling:
        return {**cfg.rope_scaling, "rope_theta": cfg.rope_theta}
    return {"rope_type": "default", "rope_theta": cfg.rope_theta}


def hf_config(cfg: ModelConfig, eot_id: int | None, dtype: str = "float32") -> dict[str, Any]:
    """config.json for the checkpoint's `model_type`; writes both the 4.x keys (`rope_theta`, `rope_scaling`) and
    the 5.x `rope_parameters`."""
    if cfg.model_type == "deepseek_v3":
        return deepseek_v3_config(cfg, eot_id, dtype)
    rope_parameters = _rope_parameters(cfg)
    out = {
        "architectures": ["Qwen3MoeForCausalLM"],
        "model_type": "qwen3_moe",
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.moe_intermediate_size,  # dense-MLP size; unused (every layer is MoE)
        "num_hidden_layers": cfg.num_hidden_layers,
        "num_attention_heads": cfg.num_attention_heads,
        "num_key_value_heads": cfg.num_key_value_heads,
        "head_dim": cfg.head_dim,
        "hidden_act": cfg.hidden_act,
        "max_position_embeddings": cfg.max_position_embeddings,
        "initializer_range": cfg.initializer_range,
        "rms_norm_eps": cfg.rms_norm_eps,
        "use_cache": True,
        "tie_word_embeddings": cfg.tie_word_embeddings,
        "rope_theta": cfg.rope_theta,
        "rope_scaling": cfg.rope_scaling,
        "rope_parameters": rope_parameters,
        "attention_bias": cfg.attention_bias,
        "attention_dropout": 0.0,
        "use_sliding_window": False,
        "sliding_window": None,
        "decoder_sparse_step": 1,
        "moe_intermediate_size": cfg.moe_intermediate_size,
        "num_experts_per_tok": cfg.num_experts_per_tok,
        "num_experts": cfg.num_experts,
        "norm_topk_prob": cfg.norm_topk_prob,
        "output_router_logits": False,
        "router_aux_loss_coef": cfg.router_aux_loss_coef,
        "mlp_only_layers": [],
        "torch_dtype": dtype,
        "bos_token_id": eot_id,
        "eos_token_id": eot_id,
    }
    return out


def shared_experts_count(cfg: ModelConfig) -> int:
    """DeepSeek-V3 sizes its shared MLP as n_shared_experts * moe_intermediate_size; ours is padded up to that."""
    return math.ceil(cfg.shared_expert_intermediate_size / cfg.moe_intermediate_size)


def deepseek_v3_config(cfg: ModelConfig, eot_id: int | None, dtype: str = "float32") -> dict[str, Any]:
    """config.json for `DeepseekV3ForCausalLM` that reproduces our routing: no expert groups (n_group =
    topk_group = 1), no dense first layers, our `norm_topk_prob` and `routed_scaling_factor`, no MTP module."""
    out = {
        "architectures": ["DeepseekV3ForCausalLM"],
        "model_type": "deepseek_v3",
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.moe_intermediate_size,  # dense-MLP size; unused (first_k_dense_replace = 0)
        "moe_intermediate_size": cfg.moe_intermediate_size,
        "num_hidden_layers": cfg.num_hidden_layers,
        # Keys and values are expanded per head from the latent: as many "key/value heads" as query heads.
        "num_attention_heads": cfg.num_attention_heads,
        "num_key_value_heads": cfg.num_attention_heads,
        "n_shared_experts": shared_experts_count(cfg),
        "n_routed_experts": cfg.num_experts,
        "routed_scaling_factor": cfg.routed_scaling_factor,
        "kv_lora_rank": cfg.kv_lora_rank,
        "q_lora_rank": cfg.q_lora_rank or None,
        "qk_rope_head_dim": cfg.qk_rope_head_dim,
        "v_head_dim": cfg.v_head_dim,
        "qk_nope_head_dim": cfg.qk_nope_head_dim,
        "n_group": 1,
        "topk_group": 1,
        "topk_method": "noaux_tc",
        "scoring_func": "sigmoid",
        "num_experts_per_tok": cfg.num_experts_per_tok,
        "first_k_dense_replace": 0,
        "norm_topk_prob": cfg.norm_topk_prob,
        "hidden_act": cfg.hidden_act,
        "max_position_embeddings": cfg.max_position_embeddings,
        "initializer_range": cfg.initializer_range,
        "rms_norm_eps": cfg.rms_norm_eps,
        "use_cache": True,
        "tie_word_embeddings": cfg.tie_word_embeddings,
        "rope_theta": cfg.rope_theta,
        "rope_scaling": cfg.rope_scaling,
        "rope_parameters": _rope_parameters(cfg),
        "rope_interleave": False,  # ours rotates halves (Qwen/Llama order), not DeepSeek's interleaved pairs
        "attention_bias": cfg.attention_bias,
        "attention_dropout": 0.0,
        "num_nextn_predict_layers": 0,
        "output_router_logits": False,
        "torch_dtype": dtype,
        "bos_token_id": eot_id,
        "eos_token_id": eot_id,
    }
    return out


def check_exportable(cfg: ModelConfig, state: dict[str, Any]) -> None:
    """Refuse what the checkpoint's layout cannot represent exactly (its logits would differ after export)."""
    if cfg.model_type == "deepseek_v3":
        if cfg.scoring_func != "sigmoid":
            raise ValueError(
                "export: DeepSeek-V3 routes with sigmoid scores, this model has scoring_func = "
                f"{cfg.scoring_func!r}; train with scoring_func = 'sigmoid' to export"
            )
        return
    deepseek_hint = (
        "; a model with attention_type = 'mla' and scoring_func = 'sigmoid' exports to DeepSeek-V3, "
        "which has shared experts and the selection bias"
    )
    if cfg.shared_expert_intermediate_size:
        raise ValueError(
            "export: Qwen3-MoE has no shared expert, this model has "
            f"shared_expert_intermediate_size={cfg.shared_expert_intermediate_size}; train with 0 to "
            f"export{deepseek_hint}"
        )
    if not cfg.qk_norm:
        raise ValueError("export: Qwen3-MoE always applies QK-norm, this model has qk_norm = false")
    if cfg.scoring_func != "softmax" or cfg.routed_scaling_factor != 1.0:
        raise ValueError(
            f"export: Qwen3-MoE routes with softmax and no scaling, this model has scoring_func = "
            f"{cfg.scoring_func!r}, routed_scaling_factor = {cfg.routed_scaling_factor}"
            f"{deepseek_hint}"
        )
    biases = [v for k, v in state.items() if k.endswith("expert_bias_E")]
    if any(bool((b != 0).any()) for b in biases):
        raise ValueError(
            "export: this model routes with an aux-loss-free selection bias (moe_balancing = "
            "'aux_free'), which Qwen3-MoE does not have: its logits would differ after "
            f"export{deepseek_hint}"
        )


def hf_state_dict(cfg: ModelConfig, state: dict[str, Any]) -> dict[str, Any]:
    """Our parameter names -> Qwen3-MoE's or DeepSeek-V3's (per-expert tensors, as the published checkpoints
    store them). MLA weights already carry DeepSeek-V3's names."""
    import torch

    F = cfg.moe_intermediate_size
    deepseek = cfg.model_type == "deepseek_v3"
    pad = shared_experts_count(cfg) * F - cfg.shared_expert_intermediate_size
    out: dict[str, Any] = {}
    for name, t in state.items():
        if name.endswith("tokens_per_expert_E"):
            continue
        if name.endswith("expert_bias_E"):
            if deepseek:  # fp32, as transformers keeps it (`_keep_in_fp32_modules_strict`)
                out["model." + name.replace("expert_bias_E", "e_score_correction_bias")] = t.float()
            continue
        if ".mlp.shared_expert." in name:
            hf_name = "model." + name.replace(".mlp.shared_expert.", ".mlp.shared_experts.")
            # Zero rows of gate/up and zero columns of down add silu(0) * 0 = 0: the same function, padded.
            if pad and name.endswith("down_proj.weight"):
                t = torch.cat([t, t.new_zeros(t.shape[0], pad)], dim=1)
            elif pad:
                t = torch.cat([t, t.new_zeros(pad, t.shape[1])], dim=0)
            out[hf_name] = t
            continue
        if name == "lm_head.weight":
            if not cfg.tie_word_embeddings:
                out[name] = t
            continue
        if name.endswith("mlp.experts.w13_E2FD"):
            prefix = "model." + name.removesuffix("w13_E2FD")
            for e in range(cfg.num_experts):
                out[f"{prefix}{e}.gate_proj.weight"] = t[e, :F]
                out[f"{prefix}{e}.up_proj.weight"] = t[e, F:]
            continue
        if name.endswith("mlp.experts.w2_EDF"):
            prefix = "model." + name.removesuffix("w2_EDF")
            for e in range(cfg.num_experts):
                out[f"{prefix}{e}.down_proj.weight"] = t[e]
            continue
        out["model." + name] = t
    if deepseek and not cfg.shared_expert_intermediate_size:
        # n_shared_experts = 0 still builds a zero-width shared MLP; store its empty weights so none is "missing".
        D = cfg.hidden_size
        for i in range(cfg.num_hidden_layers):
            prefix = f"model.layers.{i}.mlp.shared_experts."
            out[prefix + "gate_proj.weight"] = out[prefix + "up_proj.weight"] = torch.zeros(0, D)
            out[prefix + "down_proj.weight"] = torch.zeros(D, 0)
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in out.items()}


def export_hf(checkpoint: Path | str, out_dir: Path | str, tokenizer_json: Path | str | None = None) -> Path:
    """Write a Hugging Face Qwen3-MoE folder from a trainer checkpoint.

    Args:
        checkpoint: a `checkpoint.pt` written by `trainer.train`.
        out_dir: the folder to write (created; existing files are replaced).
        tokenizer_json: a Hugging Face `tokenizer.json` for the checkpoint's tokenizer; by default one is built
            by `trainer.export_tokenizer` from the vocabulary the manifest names (o200k_harmony, qwen).
    """
    from safetensors.torch import save_file

    from trainer.checkpoint import load_checkpoint

    state = load_checkpoint(checkpoint)
    cfg = ModelConfig(**state["config"]["model"])
    check_exportable(cfg, state["model"])
    tok = state["manifest"]["tokenizer"]
    if tokenizer_json is None:
        check_tokenizer_buildable(tok)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = hf_state_dict(cfg, state["model"])
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    eot = int(tok["eot_id"])
    (out / "config.json").write_text(json.dumps(hf_config(cfg, eot), indent=2) + "\n", encoding="utf-8")
    (out / "generation_config.json").write_text(
        json.dumps({"bos_token_id": eot, "eos_token_id": eot}) + "\n", encoding="utf-8"
    )
    _write_tokenizer(out, tok, Path(tokenizer_json) if tokenizer_json else None, cfg.max_position_embeddings)
    return out


def check_tokenizer_buildable(tok: dict[str, Any]) -> None:
    """Refuse, before anything is written, a manifest tokenizer that `trainer.export_tokenizer` cannot rebuild
    exactly: an unknown name, a missing vocabulary, or another vocabulary or end-of-text id under that name.

    Args:
        tok: the manifest's `tokenizer` object (name, vocab_sha256, eot_id).
    """
    from sharding.tokenizer import load_tokenizer

    try:
        ours = load_tokenizer(tok["name"])
    except (ValueError, FileNotFoundError) as exc:  # TokenizerError / AssetError name the spec or install command
        raise ValueError(
            f"export: cannot build a tokenizer for {tok['name']!r} ({exc}); pass --tokenizer-json"
        ) from exc
    if tok.get("vocab_sha256") != ours.vocab_sha256 or int(tok["eot_id"]) != ours.eot_id:
        raise ValueError(
            f"export: the checkpoint's tokenizer {tok['name']!r} (vocab_sha256 {tok.get('vocab_sha256')}, "
            f"eot_id {tok['eot_id']}) is not the installed one (vocab_sha256 {ours.vocab_sha256}, "
            f"eot_id {ours.eot_id}); pass --tokenizer-json"
        )


def _write_tokenizer(out: Path, tok: dict[str, Any], tokenizer_json: Path | None, max_len: int) -> None:
    """`tokenizer.json` + `tokenizer_config.json`: a copy of `tokenizer_json` when given, else built by
    `trainer.export_tokenizer` from the ranks the shards were tokenized with (the same ids, specials included,
    eos = the manifest's end-of-text, and the tokenizer's chat template)."""
    if tokenizer_json is None:
        from trainer.export_tokenizer import export_tokenizer

        export_tokenizer(tok["name"], out, model_max_length=max_len)
        return
    shutil.copyfile(tokenizer_json, out / "tokenizer.json")
    data = json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))
    id_to_special = {t["id"]: t["content"] for t in data.get("added_tokens", [])}
    eot = id_to_special.get(int(tok["eot_id"]))
    if eot is None:
        raise ValueError(f"export: {tokenizer_json} has no added token with the manifest's eot_id {tok['eot_id']}")
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": eot,
        "bos_token": None,
        "pad_token": eot,
        "model_max_length": max_len,
        "clean_up_tokenization_spaces": False,
        "corpusforge_tokenizer": tok["name"],
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trainer.export_hf", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint", type=Path, help="checkpoint.pt written by the trainer")
    parser.add_argument("out_dir", type=Path, help="Hugging Face folder to write")
    parser.add_argument(
        "--tokenizer-json",
        type=Path,
        default=None,
        help="tokenizer.json to ship (default: built from the manifest tokenizer's vocabulary, same ids)",
    )
    args = parser.parse_args(argv)
    try:
        path = export_hf(args.checkpoint, args.out_dir, args.tokenizer_json)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path} (load with transformers.AutoModelForCausalLM.from_pretrained)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
