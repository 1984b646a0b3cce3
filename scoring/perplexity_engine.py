"""The perplexity scorer's forward pass on vLLM servers: the GPU engine's path (issue 20, item 4).

On CPU the scorer runs SmolLM2 in the scoring process (`scoring/perplexity.py`, a few documents per second). Given
servers of the same model (`python -m synth.server`, or any OpenAI-compatible vLLM server), the same numbers come
from the engine instead: each document's token ids (the start token, then its first `max_tokens` tokens, as the
local scorer builds them) go out as one `/v1/completions` request with vLLM's `prompt_logprobs = 0` and
`max_tokens = 1`, and the answer holds the log-probability of every prompt token given the ones before it. The mean
negative log-likelihood over the tokens after the start token is what `PerplexityScorer._mean_nll` computes
locally; `tests/synth/test_synth_vllm.py` checks the two agree on real text.

Requests spread over the servers through `synth.client.EngineClient` (fewest in flight first, retries and failover
on connection errors and 5xx). A request that fails on every server raises: a missing score must not pass silently
as a low one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from synth.client import Completion, EngineClient

MAX_CONCURRENCY = 16  # requests in flight per server: vLLM batches them, and a prompt-only request holds little cache


class EngineScoringError(RuntimeError):
    """A document's request failed on every server."""


def engine_mean_nll(
    token_ids: Sequence[Sequence[int]], urls: Sequence[str], model_name: str, timeout_s: float = 300.0
) -> list[float]:
    """Mean negative log-likelihood of each sequence's tokens after its first, computed by vLLM servers.

    Args:
        token_ids: one list per document: the start token, then at least one more.
        urls: server base URLs.
        model_name: the model name the servers serve (`--served-model-name`).

    Raises:
        EngineScoringError: a request failed after its retries, or its answer had no prompt log-probabilities.
    """
    if any(len(ids) < 2 for ids in token_ids):
        raise ValueError("every sequence needs its start token and at least one token to score")
    completions = asyncio.run(_complete_all(token_ids, list(urls), model_name, timeout_s))
    return [_mean_nll(c, ids) for c, ids in zip(completions, token_ids)]


async def _complete_all(
    token_ids: Sequence[Sequence[int]], urls: list[str], model_name: str, timeout_s: float
) -> list[Completion]:
    async with EngineClient(urls, model_name, max_concurrency=MAX_CONCURRENCY, timeout_s=timeout_s) as client:
        # temperature 0 and one generated token: the answer's text is never read, only its prompt log-probabilities
        body = {"max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 0}
        return await asyncio.gather(*(client.complete({**body, "prompt": list(ids)}) for ids in token_ids))


def _mean_nll(completion: Completion, ids: Sequence[int]) -> float:
    if completion.error is not None:
        raise EngineScoringError(f"perplexity request to {completion.server} failed: {completion.error}")
    logprobs = completion.prompt_logprobs
    if logprobs is None or len(logprobs) != len(ids) or any(lp is None for lp in logprobs[1:]):
        raise EngineScoringError(f"{completion.server} answered without the prompt's log-probabilities")
    return -sum(logprobs[1:]) / (len(ids) - 1)
