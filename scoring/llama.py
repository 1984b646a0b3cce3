"""The forward pass of a Llama causal language model (SmolLM2-135M-Instruct) in plain torch, from its folder.

Why not transformers' `LlamaForCausalLM`: importing it costs 5-10 s in every process on this CPU (it pulls in
`modeling_utils` and its integrations), paid again by each stage worker that scores perplexity and by each test
process; this file imports torch, safetensors and the trainer's RoPE only (torch ~1.3 s, the 269 MB of bf16 weights ~0.2 s). It computes
what `LlamaForCausalLM(...).logits` computes for this architecture (RMSNorm, rotary positions with the default
scaling, grouped-query attention, SwiGLU, tied or untied output layer), in the same dtypes: the weights' bf16 for
the matmuls, fp32 inside RMSNorm and for the rotary angles, as transformers does. `tests/scoring/test_perplexity.py`
checks the perplexities against transformers on real text. scoring/minilm.py does the same for MiniLM.

Legend: B batch, T tokens, D hidden size (576), H query heads (9), G key/value heads (3), K head size (64),
F feed-forward size (1536), V vocabulary (49,152).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from trainer.model import apply_rope  # RoPE in the half-split layout transformers uses, as the trainer's model does

# The only position scaling implemented: plain RoPE (Su et al. 2021, arXiv 2104.09864). Another (YaRN, llama3,
# linear) changes the angles and would give wrong scores without an error.
SUPPORTED_ROPE = "default"
CE_CHUNK = 32  # positions whose logits and log-softmax are computed together (6 MB of fp32 at V = 49,152)


class Llama:
    """A Llama model's weights and its forward pass (inference only; no cache: every call scores whole sequences).

    Args:
        folder: a Hugging Face Llama folder (`config.json`, `model.safetensors`).

    Raises:
        ValueError: a config this forward pass does not implement (another activation, bias, or RoPE scaling).
    """

    def __init__(self, folder: Path) -> None:
        from safetensors.torch import load_file

        config = json.loads((Path(folder) / "config.json").read_text())
        rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
        rope_type = rope.get("rope_type", rope.get("type", SUPPORTED_ROPE))
        if (
            config.get("model_type") != "llama"
            or config.get("hidden_act") != "silu"
            or config.get("attention_bias")
            or config.get("mlp_bias")
            or rope_type != SUPPORTED_ROPE
        ):
            raise ValueError(f"{folder}: expected a Llama with silu, no biases and default RoPE, got {config}")
        self.hidden_size: int = config["hidden_size"]
        self.heads: int = config["num_attention_heads"]
        self.kv_heads: int = config.get("num_key_value_heads", self.heads)
        self.head_size: int = config.get("head_dim") or self.hidden_size // self.heads
        self.layers: int = config["num_hidden_layers"]
        self.eps: float = config["rms_norm_eps"]
        self.rope_theta: float = rope.get("rope_theta", config.get("rope_theta", 10_000.0))
        self.w: dict[str, Any] = load_file(str(Path(folder) / "model.safetensors"))
        # NOTE: a tied model's file has no `lm_head.weight`: the output layer is the input embedding.
        self.lm_head_VD = self.w.get("lm_head.weight", self.w["model.embed_tokens.weight"])

    def _norm(self, x_BTD: Any, name: str) -> Any:
        """RMSNorm (Zhang & Sennrich 2019, arXiv 1910.07467) in fp32, cast back before the weight, as transformers."""
        import torch

        x32_BTD = x_BTD.float()
        x32_BTD = x32_BTD * torch.rsqrt(x32_BTD.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.w[f"{name}.weight"] * x32_BTD.to(x_BTD.dtype)

    def _linear(self, x: Any, name: str) -> Any:
        import torch

        return torch.nn.functional.linear(x, self.w[f"{name}.weight"])

    def _rope(self, t: int, dtype: Any) -> tuple[Any, Any]:
        """cos and sin [T, K] of the rotary angles of positions 0..t-1, computed in fp32 and cast to `dtype`."""
        import torch

        inv_freq = 1.0 / (
            self.rope_theta ** (torch.arange(0, self.head_size, 2, dtype=torch.float32) / self.head_size)
        )
        angles_TK2 = torch.outer(torch.arange(t, dtype=torch.float32), inv_freq)  # [T, K/2]
        angles_TK = torch.cat((angles_TK2, angles_TK2), dim=-1)  # [T, K]: both halves rotate by the same angle
        return angles_TK.cos().to(dtype), angles_TK.sin().to(dtype)

    def hidden(self, input_ids: Any) -> Any:
        """Final normed hidden states [B, T, D] of token ids [B, T] (what the output layer reads).

        Attention is causal only: right padding needs no mask, because a real token never attends to a later
        (padded) position, and the states at padded positions are for the caller to ignore.
        """
        x_BTD = self.w["model.embed_tokens.weight"][input_ids]
        cos_TK, sin_TK = self._rope(input_ids.shape[1], x_BTD.dtype)
        for i in range(self.layers):
            x_BTD = self._block(x_BTD, cos_TK, sin_TK, f"model.layers.{i}")
        return self._norm(x_BTD, "model.norm")

    def __call__(self, input_ids: Any) -> Any:
        """Logits [B, T, V] (in the weights' dtype) of token ids [B, T], as `LlamaForCausalLM(...).logits`."""
        import torch

        return torch.nn.functional.linear(self.hidden(input_ids), self.lm_head_VD)

    def next_token_nll(self, input_ids: Any) -> Any:
        """Negative log-likelihood [B, T-1] (fp32) of each token after the first given the ones before it.

        The same numbers as a log-softmax in fp32 over `self(input_ids)`, computed CE_CHUNK positions at a time:
        the [B, T, V] logits (100 MB in bf16 for 8 x 256 tokens, twice that in fp32) are never held whole, and
        each chunk's softmax stays in the CPU's cache (2x faster than one cross-entropy over the batch, measured).
        """
        import torch

        b, t = input_ids.shape
        h_ND = self.hidden(input_ids)[:, :-1].reshape(b * (t - 1), -1)  # position t predicts token t+1
        targets_N = input_ids[:, 1:].reshape(-1)
        nll_N = torch.cat(
            [
                torch.nn.functional.cross_entropy(
                    torch.nn.functional.linear(h_ND[i : i + CE_CHUNK], self.lm_head_VD).float(),
                    targets_N[i : i + CE_CHUNK],
                    reduction="none",
                )
                for i in range(0, h_ND.shape[0], CE_CHUNK)
            ]
        )
        return nll_N.view(b, t - 1)

    def _block(self, x_BTD: Any, cos_TK: Any, sin_TK: Any, p: str) -> Any:
        """One pre-norm block: grouped-query self-attention, then the SwiGLU feed-forward layer, each a residual."""
        import torch.nn.functional as F

        b, t, _ = x_BTD.shape
        h_BTD = self._norm(x_BTD, f"{p}.input_layernorm")
        q_BHTK = self._linear(h_BTD, f"{p}.self_attn.q_proj").view(b, t, self.heads, self.head_size).transpose(1, 2)
        k_BGTK = self._linear(h_BTD, f"{p}.self_attn.k_proj").view(b, t, self.kv_heads, self.head_size).transpose(1, 2)
        v_BGTK = self._linear(h_BTD, f"{p}.self_attn.v_proj").view(b, t, self.kv_heads, self.head_size).transpose(1, 2)
        q_BHTK, k_BGTK = apply_rope(q_BHTK, cos_TK, sin_TK), apply_rope(k_BGTK, cos_TK, sin_TK)
        # softmax(q k^T / sqrt(K)) v under the causal mask; each key/value head serves H/G query heads (GQA,
        # Ainslie et al. 2023, arXiv 2305.13245): `enable_gqa` repeats them as transformers' repeat_kv does.
        ctx_BHTK = F.scaled_dot_product_attention(q_BHTK, k_BGTK, v_BGTK, is_causal=True, enable_gqa=True)
        ctx_BTD = ctx_BHTK.transpose(1, 2).reshape(b, t, self.heads * self.head_size)  # heads back side by side
        x_BTD = x_BTD + self._linear(ctx_BTD, f"{p}.self_attn.o_proj")
        h_BTD = self._norm(x_BTD, f"{p}.post_attention_layernorm")
        gate_BTF = F.silu(self._linear(h_BTD, f"{p}.mlp.gate_proj"))
        up_BTF = self._linear(h_BTD, f"{p}.mlp.up_proj")
        return x_BTD + self._linear(gate_BTF * up_BTF, f"{p}.mlp.down_proj")
