"""Export a trainer checkpoint to a Hugging Face Qwen3-MoE folder that `transformers` loads and generates with.

    python -m trainer.export_hf runs/general/train/checkpoint.pt out/hf [--tokenizer-json tokenizer.json]

Writes `config.json` (our config is already in HF keys), `model.safetensors` in the per-expert layout of the
published Qwen3-MoE checkpoints (`mlp.experts.<e>.{gate,up,down}_proj.weight`), `generation_config.json`, and
the tokenizer (`tokenizer.json` + `tokenizer_config.json`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from trainer.config import ModelConfig


def hf_config(cfg: ModelConfig, eot_id: int | None, dtype: str = "float32") -> dict[str, Any]:
    """config.json for `Qwen3MoeForCausalLM`; writes both the 4.x keys (`rope_theta`, `rope_scaling`) and the
    5.x `rope_parameters`."""
    rope_parameters = {"rope_type": "default", "rope_theta": cfg.rope_theta}
    if cfg.rope_scaling:
        rope_parameters = {**cfg.rope_scaling, "rope_theta": cfg.rope_theta}
    out = {
        "architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe",
        "vocab_size": cfg.vocab_size, "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.moe_intermediate_size,  # dense-MLP size; unused (every layer is MoE)
        "num_hidden_layers": cfg.num_hidden_layers, "num_attention_heads": cfg.num_attention_heads,
        "num_key_value_heads": cfg.num_key_value_heads, "head_dim": cfg.head_dim, "hidden_act": cfg.hidden_act,
        "max_position_embeddings": cfg.max_position_embeddings, "initializer_range": cfg.initializer_range,
        "rms_norm_eps": cfg.rms_norm_eps, "use_cache": True, "tie_word_embeddings": cfg.tie_word_embeddings,
        "rope_theta": cfg.rope_theta, "rope_scaling": cfg.rope_scaling, "rope_parameters": rope_parameters,
        "attention_bias": cfg.attention_bias, "attention_dropout": 0.0, "use_sliding_window": False,
        "sliding_window": None, "decoder_sparse_step": 1, "moe_intermediate_size": cfg.moe_intermediate_size,
        "num_experts_per_tok": cfg.num_experts_per_tok, "num_experts": cfg.num_experts,
        "norm_topk_prob": cfg.norm_topk_prob, "output_router_logits": False,
        "router_aux_loss_coef": cfg.router_aux_loss_coef, "mlp_only_layers": [], "torch_dtype": dtype,
        "bos_token_id": eot_id, "eos_token_id": eot_id,
    }  # fmt: skip
    return out


def check_exportable(cfg: ModelConfig, state: dict[str, Any]) -> None:
    """Qwen3-MoE has no shared expert, no routing bias and always QK-norm: refuse what it cannot represent."""
    if cfg.shared_expert_intermediate_size:
        raise ValueError("export: Qwen3-MoE has no shared expert, this model has "
                         f"shared_expert_intermediate_size={cfg.shared_expert_intermediate_size}; train with 0 to "
                         "export")  # fmt: skip
    if not cfg.qk_norm:
        raise ValueError("export: Qwen3-MoE always applies QK-norm, this model has qk_norm = false")
    biases = [v for k, v in state.items() if k.endswith("expert_bias_E")]
    if any(bool((b != 0).any()) for b in biases):
        raise ValueError("export: this model routes with an aux-loss-free selection bias (moe_balancing = "
                         "'aux_free'), which Qwen3-MoE does not have: its logits would differ after "
                         "export")  # fmt: skip


def hf_state_dict(cfg: ModelConfig, state: dict[str, Any]) -> dict[str, Any]:
    """Our parameter names -> Qwen3-MoE's (per-expert tensors, as the published checkpoints store them)."""
    F = cfg.moe_intermediate_size
    out: dict[str, Any] = {}
    for name, t in state.items():
        if name.endswith(("expert_bias_E", "tokens_per_expert_E")):
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
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in out.items()}


def export_hf(checkpoint: Path | str, out_dir: Path | str, tokenizer_json: Path | str | None = None) -> Path:
    """Write a Hugging Face Qwen3-MoE folder from a trainer checkpoint.

    Args:
        checkpoint: a `checkpoint.pt` written by `trainer.train`.
        out_dir: the folder to write (created; existing files are replaced).
        tokenizer_json: a Hugging Face `tokenizer.json` for the checkpoint's tokenizer; by default the one the
            `sharding` tokenizer spec of that name ships (`[hf_tokenizer]`).
    """
    from safetensors.torch import save_file

    from trainer.train import load_checkpoint

    state = load_checkpoint(checkpoint)
    cfg = ModelConfig(**state["config"]["model"])
    check_exportable(cfg, state["model"])
    tok = state["manifest"]["tokenizer"]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = hf_state_dict(cfg, state["model"])
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    eot = int(tok["eot_id"])
    (out / "config.json").write_text(json.dumps(hf_config(cfg, eot), indent=2) + "\n", encoding="utf-8")
    (out / "generation_config.json").write_text(json.dumps({"bos_token_id": eot, "eos_token_id": eot}) + "\n",
                                                encoding="utf-8")  # fmt: skip
    _write_tokenizer(out, tok, Path(tokenizer_json) if tokenizer_json else None, cfg.max_position_embeddings)
    return out


def _write_tokenizer(out: Path, tok: dict[str, Any], tokenizer_json: Path | None, max_len: int) -> None:
    if tokenizer_json is None:
        try:
            from sharding.tokenizer import hf_tokenizer_path
        except ImportError as exc:
            raise ValueError(f"export: no tokenizer for {tok['name']!r}: pass --tokenizer-json") from exc
        try:
            tokenizer_json = hf_tokenizer_path(tok["name"])
        except ValueError as exc:  # TokenizerError / AssetError name the spec or the install command
            raise ValueError(f"export: no Hugging Face tokenizer.json for {tok['name']!r} ({exc}); "
                             "pass --tokenizer-json") from exc  # fmt: skip
    shutil.copyfile(tokenizer_json, out / "tokenizer.json")
    data = json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))
    id_to_special = {t["id"]: t["content"] for t in data.get("added_tokens", [])}
    eot = id_to_special.get(int(tok["eot_id"]))
    if eot is None:
        raise ValueError(f"export: {tokenizer_json} has no added token with the manifest's eot_id {tok['eot_id']}")
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": eot, "bos_token": None,
              "pad_token": eot, "model_max_length": max_len, "clean_up_tokenization_spaces": False,
              "corpusforge_tokenizer": tok["name"]}  # fmt: skip
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.export_hf", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("checkpoint", type=Path, help="checkpoint.pt written by the trainer")
    parser.add_argument("out_dir", type=Path, help="Hugging Face folder to write")
    parser.add_argument(
        "--tokenizer-json",
        type=Path,
        default=None,
        help="tokenizer.json to ship (default: the sharding spec's [hf_tokenizer] file)",
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
