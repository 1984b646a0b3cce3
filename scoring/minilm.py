"""The forward pass of a BERT encoder (all-MiniLM-L6-v2) in plain torch, from the folder's `model.safetensors`.

Why not transformers' `BertModel`: importing it costs 5-10 s in every process on this CPU (it pulls in
`modeling_utils` and its integrations), paid again by each stage worker that scores and by each test process; this
file imports torch and safetensors only. It computes what `BertModel(...).last_hidden_state` computes for this
architecture (absolute positions, token type 0, post-LayerNorm blocks, exact GELU), which
`tests/scoring/test_perplexity.py` checks against transformers on real text (max difference ~1e-6).

Legend: B batch, T tokens, D hidden size (384), H heads (12), K head size (32), F feed-forward size (1536).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class MiniLM:
    """A BERT encoder's weights and its forward pass (inference only: no dropout).

    Args:
        folder: a Hugging Face BERT folder (`config.json`, `model.safetensors`).

    Raises:
        ValueError: a config this forward pass does not implement (another activation or position embedding).
    """

    def __init__(self, folder: Path) -> None:
        from safetensors.torch import load_file

        config = json.loads((Path(folder) / "config.json").read_text())
        if config.get("hidden_act") != "gelu" or config.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"{folder}: expected a BERT with gelu and absolute positions, got {config}")
        self.hidden_size: int = config["hidden_size"]
        self.heads: int = config["num_attention_heads"]
        self.layers: int = config["num_hidden_layers"]
        self.eps: float = config["layer_norm_eps"]
        self.w: dict[str, Any] = load_file(str(Path(folder) / "model.safetensors"))

    def _norm(self, x: Any, name: str) -> Any:
        import torch

        return torch.nn.functional.layer_norm(
            x, (self.hidden_size,), self.w[f"{name}.weight"], self.w[f"{name}.bias"], self.eps
        )

    def _linear(self, x: Any, name: str) -> Any:
        import torch

        return torch.nn.functional.linear(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"])

    def __call__(self, input_ids: Any, attention_mask: Any) -> Any:
        """Last hidden states [B, T, D] of token ids [B, T] with their mask [B, T] (1: a token, 0: padding)."""
        import torch

        w, t = self.w, input_ids.shape[1]
        x_BTD = (
            w["embeddings.word_embeddings.weight"][input_ids]
            + w["embeddings.position_embeddings.weight"][:t][None]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x_BTD = self._norm(x_BTD, "embeddings.LayerNorm")
        # Padding keys get the lowest float added before the softmax, as transformers' extended attention mask.
        bias_B11T = (1.0 - attention_mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        for i in range(self.layers):
            x_BTD = self._block(x_BTD, bias_B11T, f"encoder.layer.{i}")
        return x_BTD

    def _block(self, x_BTD: Any, bias_B11T: Any, p: str) -> Any:
        """One post-LayerNorm transformer block: self-attention, then the feed-forward layer, each with a residual."""
        import torch

        b, t, d = x_BTD.shape
        k = d // self.heads
        q_BHTK, k_BHTK, v_BHTK = (
            self._linear(x_BTD, f"{p}.attention.self.{name}").view(b, t, self.heads, k).transpose(1, 2)  # [B, H, T, K]
            for name in ("query", "key", "value")
        )
        # softmax(q k^T / sqrt(K) + bias) v, fused (transformers' "sdpa" attention; 1.5x the explicit product here)
        ctx_BHTK = torch.nn.functional.scaled_dot_product_attention(q_BHTK, k_BHTK, v_BHTK, attn_mask=bias_B11T)
        ctx_BTD = ctx_BHTK.transpose(1, 2).reshape(b, t, d)  # heads back side by side
        x_BTD = self._norm(
            self._linear(ctx_BTD, f"{p}.attention.output.dense") + x_BTD, f"{p}.attention.output.LayerNorm"
        )
        h_BTF = torch.nn.functional.gelu(self._linear(x_BTD, f"{p}.intermediate.dense"))  # exact (erf) GELU
        return self._norm(self._linear(h_BTF, f"{p}.output.dense") + x_BTD, f"{p}.output.LayerNorm")
