"""Optimizer and schedule: AdamW (+ lazy Adam for a sparse embedding), warm-up then cosine learning rate, and the
global gradient-norm clip over dense and sparse gradients. What `trainer/train.py`'s step applies every step.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from trainer.config import TrainConfig
from trainer.model import MoETransformer


def build_optimizers(model: MoETransformer, train: TrainConfig) -> list[torch.optim.Optimizer]:
    """AdamW (decoupled weight decay, arXiv 1711.05101) on matrices; no decay on norms, biases, the embedding.

    A sparse embedding gets `torch.optim.SparseAdam` (lazy Adam: only rows of tokens in the batch move), so a
    150K-row embedding costs an optimizer update over a few thousand rows per step instead of all of them.
    """
    emb = model.embed_tokens.weight
    sparse = model.embed_tokens.sparse
    decay, no_decay = [], []
    for p in model.parameters():
        if p is emb and sparse:
            continue
        (decay if p.ndim >= 2 and p is not emb else no_decay).append(p)
    kw: dict[str, Any] = {"lr": train.lr, "betas": (train.beta1, train.beta2), "eps": train.eps}
    fused = {"fused": True} if _fused_adamw_ok(model) else {}
    groups = [{"params": decay, "weight_decay": train.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    opts: list[torch.optim.Optimizer] = [torch.optim.AdamW(groups, **kw, **fused)]
    if sparse:
        opts.append(torch.optim.SparseAdam([emb], **kw))
    return opts


def _fused_adamw_ok(model: MoETransformer) -> bool:
    # The fused AdamW kernel exists for CUDA and, since torch 2.4, for CPU.
    return tuple(int(x) for x in torch.__version__.split(".")[:2]) >= (2, 4)


def lr_at(step: int, total_steps: int, train: TrainConfig) -> float:
    """Linear warm-up to `lr`, then cosine decay to `lr * min_lr_ratio` at `total_steps` (SGDR, arXiv 1608.03983)."""
    if step < train.warmup_steps:
        return train.lr * (step + 1) / train.warmup_steps
    span = max(total_steps - train.warmup_steps, 1)
    progress = min((step - train.warmup_steps) / span, 1.0)
    floor = train.lr * train.min_lr_ratio
    return floor + 0.5 * (train.lr - floor) * (1 + math.cos(math.pi * progress))


def clip_grad_norm(params: list[torch.nn.Parameter], max_norm: float) -> float:
    """Global L2 norm over dense and sparse gradients; scales them down to `max_norm` when above (0: no clip)."""
    norms = []
    for p in params:
        if p.grad is None:
            continue
        if p.grad.is_sparse:
            p.grad = p.grad.coalesce()  # repeated rows must be summed before taking the norm
        g = p.grad._values() if p.grad.is_sparse else p.grad
        norms.append(torch.linalg.vector_norm(g.float()))
    total = torch.linalg.vector_norm(torch.stack(norms)) if norms else torch.zeros(())
    if max_norm > 0:
        scale = (max_norm / (total + 1e-6)).clamp(max=1.0)
        for p in params:
            if p.grad is not None:
                p.grad.mul_(scale.to(p.grad.device))
    return float(total)
