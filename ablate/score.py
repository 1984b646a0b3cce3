"""Scores of a trained proxy: bits per byte on text and log-likelihood multiple choice.

Bits per byte (comparable across tokenizers): the summed negative log-likelihood of a text's tokens, in nats,
divided by ln 2 and by the text's UTF-8 bytes. A text is read after an end-of-text token (so its first token is
predicted too) in disjoint windows of `seq_len` predicted tokens, each window's first token conditioned on the
token before it: lm-evaluation-harness's rolling log-likelihood (`get_rolling_token_windows`, context 1).

Multiple choice as lm-evaluation-harness scores it: each choice's continuation gets the summed log-probability of
its tokens after the context (the context's trailing spaces moved onto the continuation, the pair encoded
together and the continuation's tokens taken after the context's); `acc` takes the highest, `acc_norm` the highest
per UTF-8 byte of the continuation (the harness divides by characters; for the ASCII sets here it is the same).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ablate.corpus import ProxyTokenizer
from ablate.evalsets import Choice

BATCH_TOKENS = 8192  # input tokens per forward pass
CE_CHUNK = 512  # scored positions per output-layer chunk (chunk x vocab fp32 logits at a time)


@torch.no_grad()
def token_logprobs(
    model: Any, sequences: list[np.ndarray], score_from: list[int], device: torch.device
) -> list[np.ndarray]:
    """log p(seq[i] | seq[:i]) for i in score_from[k] .. len(seq)-1 of every sequence, each read on its own.

    Args:
        model: a `trainer.model.MoETransformer` (put in eval mode by the caller).
        sequences: token ids, each at most the model's `max_position_embeddings` + 1 long.
        score_from: per sequence, the first position scored (>= 1).
        device: where the model is.
    """
    out: list[np.ndarray] = [np.empty(0)] * len(sequences)
    order = sorted(range(len(sequences)), key=lambda k: len(sequences[k]))
    w_VD = model.lm_head.weight
    start = 0
    while start < len(order):
        # Sorted by length: a batch's last sequence is its longest, and right padding wastes little.
        stop = start + 1
        while stop < len(order) and (stop - start + 1) * (len(sequences[order[stop]]) - 1) <= BATCH_TOKENS:
            stop += 1
        batch = order[start:stop]
        S = max(len(sequences[k]) - 1 for k in batch)
        x_BS = torch.zeros((len(batch), S), dtype=torch.long)
        for b, k in enumerate(batch):
            x_BS[b, : len(sequences[k]) - 1] = torch.from_numpy(sequences[k][:-1].astype(np.int64))
        h_BSD, _ = model.hidden_states(x_BS.to(device))
        # Causal attention: right padding changes no earlier position, so only the scored rows are gathered.
        rows_b, rows_s, targets = [], [], []
        for b, k in enumerate(batch):
            seq, first = sequences[k], score_from[k]
            assert 1 <= first <= len(seq), f"score_from {first} outside a sequence of {len(seq)} tokens"
            rows_b += [b] * (len(seq) - first)
            rows_s += range(first - 1, len(seq) - 1)
            targets.append(seq[first:].astype(np.int64))
        h_TD = h_BSD[torch.tensor(rows_b, dtype=torch.long), torch.tensor(rows_s, dtype=torch.long)]
        t_T = torch.from_numpy(np.concatenate(targets)).to(device)
        lp_T = torch.empty(len(t_T), dtype=torch.float32)
        for c in range(0, len(t_T), CE_CHUNK):
            logits_cV = (h_TD[c : c + CE_CHUNK] @ w_VD.t()).float()
            lp_cV = torch.log_softmax(logits_cV, dim=-1)
            lp_T[c : c + CE_CHUNK] = lp_cV.gather(1, t_T[c : c + CE_CHUNK, None]).squeeze(1).cpu()
        lp = lp_T.numpy().astype(np.float64)
        offset = 0
        for k in batch:
            n = len(sequences[k]) - score_from[k]
            out[k] = lp[offset : offset + n]
            offset += n
        start = stop
    return out


def bits_per_byte(
    model: Any, tok: ProxyTokenizer, texts: list[str], seq_len: int, device: torch.device
) -> tuple[float, int]:
    """(bits per byte over all `texts`, their UTF-8 bytes)."""
    windows: list[np.ndarray] = []
    for text in texts:
        ids = np.concatenate([np.array([tok.eot_id], dtype=np.uint32), tok.encode_np(text)])
        windows += [ids[s : s + seq_len + 1] for s in range(0, len(ids) - 1, seq_len)]
    n_bytes = sum(len(t.encode("utf-8", "replace")) for t in texts)
    if not windows or n_bytes == 0:
        return math.nan, 0
    nll = -sum(float(lp.sum()) for lp in token_logprobs(model, windows, [1] * len(windows), device))
    return nll / math.log(2) / n_bytes, n_bytes


def _encode_pair(tok: ProxyTokenizer, context: str, continuation: str) -> tuple[np.ndarray, np.ndarray]:
    """lm-evaluation-harness's `_encode_pair`: trailing spaces of the context go to the continuation, the whole is
    encoded once and the continuation is what follows the context's own tokens."""
    stripped = context.rstrip(" ")
    continuation = context[len(stripped) :] + continuation
    whole = tok.encode_np(stripped + continuation)
    ctx = tok.encode_np(stripped)
    return ctx, whole[len(ctx) :]


def multiple_choice(
    model: Any, tok: ProxyTokenizer, questions: list[Choice], seq_len: int, device: torch.device
) -> tuple[float, float]:
    """(acc, acc_norm) over `questions`."""
    seqs, firsts = [], []
    for question in questions:
        for continuation in question.continuations:
            ctx, cont = _encode_pair(tok, question.context, continuation)
            seq = np.concatenate([np.array([tok.eot_id], dtype=np.uint32), ctx, cont])[-(seq_len + 1) :]
            seqs.append(seq)
            firsts.append(max(1, len(seq) - len(cont)))
    lps = token_logprobs(model, seqs, firsts, device)
    correct = correct_norm = 0
    k = 0
    for question in questions:
        n = len(question.continuations)
        ll = np.array([float(lp.sum()) for lp in lps[k : k + n]])
        lengths = np.array([max(len(c.encode("utf-8")), 1) for c in question.continuations], dtype=np.float64)
        correct += int(np.argmax(ll) == question.gold)
        correct_norm += int(np.argmax(ll / lengths) == question.gold)
        k += n
    return correct / len(questions), correct_norm / len(questions)
