"""Export to a Hugging Face Qwen3-MoE folder: transformers loads it, its logits match ours, it generates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from trainer_shards import EOT_ID, byte_hf_tokenizer_json, byte_tokens, write_manifest

from trainer.config import Config, ModelConfig, TrainConfig
from trainer.export_hf import check_tokenizer_buildable, export_hf, main
from trainer.model import MoETransformer
from trainer.train import load_checkpoint, train_from_manifest

TEXT = ["The quick brown fox jumps over the lazy dog. " * 3, "Mixture of experts routes each token to k of E experts."]


def _trained(
    tmp_path: Path, tokens: np.ndarray | None = None, tokenizer: dict | None = None, steps: int = 4, **model
) -> Path:
    """A checkpoint after `steps` steps on `tokens` (default: TEXT as bytes) from a manifest naming `tokenizer`."""
    m = {
        "vocab_size": 512,
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "num_experts": 4,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 32,
        "max_position_embeddings": 256,
    }
    m.update(model)
    cfg = Config(
        model=ModelConfig(**m),
        train=TrainConfig(batch_size=2, lr=1e-2, warmup_steps=1, device="cpu", dtype="fp32", init_from=""),
    )
    tokens = byte_tokens(TEXT * 20) if tokens is None else tokens
    manifest = write_manifest(tmp_path / "shards", tokens, seq_len=64, tokenizer=tokenizer)
    return Path(train_from_manifest(manifest, steps, cfg, tmp_path / "train", log=lambda s: None)["checkpoint"])


def _ours(ckpt: Path) -> MoETransformer:
    state = load_checkpoint(ckpt)
    model = MoETransformer(ModelConfig(**state["config"]["model"]))
    model.load_state_dict(state["model"])
    return model.eval()


@pytest.mark.parametrize(
    "model_kw",
    [
        {},
        {
            "rope_theta": 1e6,
            "max_position_embeddings": 1024,
            "norm_topk_prob": False,
            "rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 256},
        },
    ],
    ids=["plain", "abf_yarn"],
)
def test_export_loads_in_transformers_and_logits_match(tmp_path: Path, model_kw: dict):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ckpt = _trained(tmp_path, **model_kw)
    out = export_hf(ckpt, tmp_path / "hf", byte_hf_tokenizer_json(tmp_path / "tokenizer.json"))
    assert {p.name for p in out.iterdir()} >= {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
    }
    cfg = json.loads((out / "config.json").read_text())
    assert (
        cfg["model_type"] == "qwen3_moe"
        and cfg["num_experts"] == 4
        and cfg["rope_theta"] == model_kw.get("rope_theta", 10000.0)
    )
    hf = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    assert type(hf).__name__ == "Qwen3MoeForCausalLM"
    tok = AutoTokenizer.from_pretrained(out)
    ids = tok("Experts route tokens; the fox jumps.", return_tensors="pt").input_ids
    assert ids[0].tolist() == list(b"Experts route tokens; the fox jumps.")
    ours = _ours(ckpt)
    with torch.no_grad():
        ref = hf(ids).logits
        mine, _ = ours(ids)
    torch.testing.assert_close(mine, ref, rtol=1e-4, atol=1e-4)
    gen = hf.generate(ids, max_new_tokens=8, do_sample=False, eos_token_id=EOT_ID, pad_token_id=EOT_ID)
    # Greedy continuation equals ours, token by token.
    seq = ids
    with torch.no_grad():
        for _ in range(gen.shape[1] - ids.shape[1]):
            seq = torch.cat([seq, ours(seq)[0][:, -1].argmax(-1, keepdim=True)], dim=1)
    assert gen.tolist() == seq.tolist()
    assert isinstance(tok.decode(gen[0]), str)


def test_export_refuses_what_qwen3_moe_cannot_represent(tmp_path: Path):
    ckpt = _trained(tmp_path, shared_expert_intermediate_size=16)
    with pytest.raises(ValueError, match="Qwen3-MoE has no shared expert"):
        export_hf(ckpt, tmp_path / "hf", byte_hf_tokenizer_json(tmp_path / "tokenizer.json"))
    ckpt = _trained(tmp_path / "b", moe_balancing="aux_free", router_bias_update_rate=0.01)
    with pytest.raises(ValueError, match="aux-loss-free selection bias"):
        export_hf(ckpt, tmp_path / "hf2", byte_hf_tokenizer_json(tmp_path / "tokenizer.json"))


MLA = {
    "attention_type": "mla",
    "scoring_func": "sigmoid",
    "kv_lora_rank": 24,
    "qk_nope_head_dim": 16,
    "qk_rope_head_dim": 8,
    "v_head_dim": 16,
}


@pytest.mark.parametrize(
    "model_kw",
    [
        # gpu_100m's recipe at toy size: aux-free bias, one shared expert (48 -> padded to 2 x 32), q_proj.
        {"moe_balancing": "aux_free", "router_bias_update_rate": 0.01, "shared_expert_intermediate_size": 48},
        # Compressed queries, scaled gates without renormalisation, no shared expert, Switch aux loss.
        {"q_lora_rank": 16, "routed_scaling_factor": 2.5, "norm_topk_prob": False},
        # A long-context stage: ABF + YaRN on the decoupled RoPE dims.
        {
            "moe_balancing": "aux_free",
            "router_bias_update_rate": 0.01,
            "shared_expert_intermediate_size": 32,
            "rope_theta": 1e6,
            "max_position_embeddings": 1024,
            "rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 256},
        },
    ],
    ids=["aux_free_shared", "q_lora_scaled", "aux_free_yarn"],
)
def test_deepseek_style_model_exports_to_deepseek_v3_and_logits_match(tmp_path: Path, model_kw: dict):
    from transformers import AutoModelForCausalLM

    ckpt = _trained(tmp_path, **MLA, **model_kw)
    state = load_checkpoint(ckpt)
    bias = state["model"]["layers.0.mlp.gate.expert_bias_E"]
    assert (bias != 0).any() == (model_kw.get("moe_balancing") == "aux_free")  # training moved the bias
    out = export_hf(ckpt, tmp_path / "hf", byte_hf_tokenizer_json(tmp_path / "tokenizer.json"))
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model_type"] == "deepseek_v3" and cfg["n_group"] == cfg["topk_group"] == 1
    assert cfg["n_shared_experts"] == -(-model_kw.get("shared_expert_intermediate_size", 0) // 32)
    hf = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    assert type(hf).__name__ == "DeepseekV3ForCausalLM"
    torch.testing.assert_close(hf.model.layers[0].mlp.gate.e_score_correction_bias, bias.float())
    ours = _ours(ckpt)
    ids = torch.tensor([list(b"Experts route tokens; the fox jumps over the lazy dog.")])
    with torch.no_grad():
        ref = hf(ids).logits
        mine, _ = ours(ids)
    torch.testing.assert_close(mine, ref, rtol=1e-4, atol=1e-4)
    # transformers decodes with its compressed-latent cache; greedy tokens equal ours recomputed in full.
    gen = hf.generate(ids, max_new_tokens=8, do_sample=False, eos_token_id=EOT_ID, pad_token_id=EOT_ID)
    seq = ids
    with torch.no_grad():
        for _ in range(gen.shape[1] - ids.shape[1]):
            seq = torch.cat([seq, ours(seq)[0][:, -1].argmax(-1, keepdim=True)], dim=1)
    assert gen.tolist() == seq.tolist()


def test_export_refuses_what_deepseek_v3_cannot_represent(tmp_path: Path):
    tok = byte_hf_tokenizer_json(tmp_path / "tokenizer.json")
    ckpt = _trained(tmp_path / "a", **{**MLA, "scoring_func": "softmax"})
    with pytest.raises(ValueError, match="DeepSeek-V3 routes with sigmoid scores.*scoring_func = 'softmax'"):
        export_hf(ckpt, tmp_path / "hf", tok)
    # GQA + aux-free + shared expert: neither layout holds it; the message names the options that do.
    ckpt = _trained(tmp_path / "b", moe_balancing="aux_free", shared_expert_intermediate_size=32)
    with pytest.raises(ValueError, match="attention_type = 'mla' and scoring_func = 'sigmoid' exports to DeepSeek"):
        export_hf(ckpt, tmp_path / "hf2", tok)
    assert not (tmp_path / "hf").exists() and not (tmp_path / "hf2").exists()


def _multilingual(real_data) -> list[str]:
    """MMATH problems in ten languages and six scripts (Arabic, Latin, Japanese, Korean, Thai, Chinese), 20 each."""
    by_lang: dict[str, list[str]] = {}
    for lang, text in real_data.math_multilingual:
        by_lang.setdefault(lang, []).append(text)
    assert {"ar", "ja", "ko", "th", "zh", "vi"} <= set(by_lang), sorted(by_lang)
    return [text for texts in by_lang.values() for text in texts[:20]]


@pytest.mark.parametrize("name", ["o200k_harmony", "qwen"])
def test_export_ships_our_tokenizer_which_transformers_loads_with_our_ids(real_data, tmp_path: Path, name: str):
    """No --tokenizer-json: the export builds the checkpoint's own tokenizer (the README's commands on the default
    stage), AutoTokenizer and AutoModelForCausalLM load the folder offline, and the ids are ours."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sharding.tokenizer import load_tokenizer

    ours = load_tokenizer(name)
    texts = _multilingual(real_data)
    tokens = np.concatenate([np.append(ours.encode_np(t), np.uint32(ours.eot_id)) for t in texts])
    # vocab_size 0: the tokenizer's, padded; one step is enough to move every weight away from its init.
    ckpt = _trained(tmp_path, tokens=tokens, tokenizer=ours.describe(), steps=1, vocab_size=0)
    assert main([str(ckpt), str(tmp_path / "hf")]) == 0  # the README's command line, no tokenizer flag
    out = tmp_path / "hf"
    hf_tok = AutoTokenizer.from_pretrained(out, local_files_only=True)
    assert len(hf_tok) == ours.vocab_size and hf_tok.eos_token_id == ours.eot_id
    for special, i in ours.spec.special_tokens.items():
        assert hf_tok.convert_tokens_to_ids(special) == i
    n_tokens = 0
    for text in texts:
        want = ours.encode_ordinary(text)
        assert hf_tok(text, add_special_tokens=False).input_ids == want, (name, text[:80])
        assert hf_tok.decode(want) == ours.normalize(text)
        n_tokens += len(want)
    assert n_tokens > 10_000
    cfg = json.loads((out / "config.json").read_text())
    generation = json.loads((out / "generation_config.json").read_text())
    assert cfg["eos_token_id"] == generation["eos_token_id"] == ours.eot_id
    # vLLM serves a model whose embedding has at least the tokenizer's ids (padding rows are never sampled).
    assert ours.vocab_size <= cfg["vocab_size"] < ours.vocab_size + 128
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32, local_files_only=True).eval()
    ids = hf_tok(" ".join(texts[::20]), return_tensors="pt").input_ids[:, :200]  # one problem per language
    with torch.no_grad():
        ref = model(ids).logits
        mine, _ = _ours(ckpt)(ids)
    assert ref.shape[-1] == cfg["vocab_size"]
    torch.testing.assert_close(mine, ref, rtol=1e-4, atol=1e-4)


def test_export_without_a_tokenizer_it_can_build_is_refused_before_writing(tmp_path: Path, capsys):
    ckpt = _trained(tmp_path)  # the byte-level test tokenizer: no spec under tokenizers/
    assert main([str(ckpt), str(tmp_path / "hf")]) == 2
    err = capsys.readouterr().err
    assert "cannot build a tokenizer for 'test_bytes_257'" in err and "--tokenizer-json" in err
    assert not (tmp_path / "hf").exists()
    # A checkpoint that names an installed tokenizer but another vocabulary under that name.
    with pytest.raises(ValueError, match="is not the installed one"):
        check_tokenizer_buildable({"name": "qwen", "vocab_sha256": "0" * 64, "eot_id": 151643})
