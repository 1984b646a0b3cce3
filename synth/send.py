"""Send planned requests to OpenAI-compatible vLLM servers and append one JSONL record per finished request.

Each record is written and flushed as its request finishes, so a kill loses at most the requests in flight; a
record holds the output, its check (ok, or rejected with a reason), token counts, the server and the provenance
(seed, template, model, sampling). A progress bar shows requests/s and generated tokens/s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from synth.client import Completion, EngineClient
from synth.plan import SynthRequest

logger = logging.getLogger(__name__)


class _Progress:
    """A progress bar with requests/s and generated tokens/s (tqdm when present, else a log line per 5 s)."""

    def __init__(self, total: int, initial: int, enabled: bool) -> None:
        self.t0 = time.monotonic()
        self.done = 0
        self.tokens = 0
        self.bar = None
        self.last = self.t0
        self.enabled = enabled
        if enabled:
            with contextlib.suppress(ImportError):
                from tqdm import tqdm

                self.bar = tqdm(total=total, initial=initial, unit="req", desc="synth", file=sys.stderr)

    def update(self, tokens: int) -> None:
        self.done += 1
        self.tokens += tokens
        dt = max(1e-9, time.monotonic() - self.t0)
        rates = f"{self.done / dt:.2f} req/s, {self.tokens / dt:.1f} tok/s"
        if self.bar is not None:
            self.bar.set_postfix_str(rates, refresh=False)
            self.bar.update(1)
        elif self.enabled and time.monotonic() - self.last > 5:
            self.last = time.monotonic()
            logger.info("synth: %d done, %s", self.done, rates)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _record(
    req: SynthRequest,
    comp: Completion,
    params: dict[str, Any],
    variables: dict[str, str],
    model: dict[str, str],
    run_id: str,
) -> dict[str, Any]:
    if comp.error is not None:
        reason, parsed = "request_error", None
    else:
        reason, parsed = req.template.check(comp.text, comp.finish_reason)
    return {
        "key": req.key,
        "index": req.index,
        "status": "ok" if reason is None else "rejected",
        "reason": reason,
        "error": comp.error,
        "text": comp.text,
        "parsed": parsed,
        "finish_reason": comp.finish_reason,
        "prompt_tokens": comp.prompt_tokens,
        "completion_tokens": comp.completion_tokens,
        "server": comp.server,
        "attempts": comp.attempts,
        "seconds": round(comp.seconds, 4),
        "run_id": run_id,
        "seed_doc_id": req.seed.id,
        "seed_domain": req.seed.domain,
        "seed_lang": req.seed.lang,
        "template": req.template.name,
        "template_version": req.template.version,
        "template_sha256": req.template.sha256,
        "format": req.template.format,
        "variables": variables,
        "model_path": model["path"],
        "model_sha256": model["sha256"],
        "sampling": params,
    }


async def _generate_async(
    requests: list[SynthRequest],
    client: EngineClient,
    out_path: Path,
    overrides: dict[str, Any],
    model: dict[str, str],
    run_id: str,
    progress: _Progress,
    on_record: Callable[[dict[str, Any]], None] | None,
) -> dict[str, int]:
    counts = {"ok": 0, "rejected": 0, "tokens": 0}
    queue: asyncio.Queue[SynthRequest | None] = asyncio.Queue()
    for r in requests:
        queue.put_nowait(r)
    fh = open(out_path, "ab")

    async def worker() -> None:
        while True:
            req = await queue.get()
            if req is None:
                return
            prompt, variables = req.template.render(req.seed, req.key)
            body = req.template.request_body(prompt, req.sampling_seed, overrides)
            comp = await client.complete(body)
            params = {k: v for k, v in body.items() if k not in ("prompt", "structured_outputs")}
            rec = _record(req, comp, params, variables, model, run_id)
            # One write per record, flushed at once: a kill loses at most the requests in flight.
            fh.write((json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8"))
            fh.flush()
            counts[rec["status"]] += 1
            counts["tokens"] += comp.completion_tokens
            progress.update(comp.completion_tokens)
            if on_record is not None:
                on_record(rec)

    n_workers = max(1, min(len(requests), client.max_concurrency * len(client.urls)))
    for _ in range(n_workers):
        queue.put_nowait(None)
    try:
        await asyncio.gather(*(worker() for _ in range(n_workers)))
    finally:
        fh.flush()
        os.fsync(fh.fileno())
        fh.close()
    return counts


def send_requests(
    todo: list[SynthRequest],
    urls: list[str],
    gen_path: Path,
    model: dict[str, str],
    sampling: dict[str, Any] | None,
    run_id: str,
    served_model_name: str = "corpusforge-synth",
    max_concurrency: int = 8,
    progress: bool = False,
    total: int | None = None,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    on_server_down: Callable[[str], None] | None = None,
    client_kwargs: dict[str, Any] | None = None,
) -> tuple[dict[str, int], dict[str, Any]]:
    """Send `todo` to the servers at `urls`, appending one record per finished request to `gen_path`; return
    (counts of ok, rejected and generated tokens; per-server stats)."""
    stats: dict[str, Any] = {}
    bar = _Progress(total or len(todo), (total or len(todo)) - len(todo), progress)
    client = EngineClient(
        urls,
        served_model_name,
        max_concurrency=max_concurrency,
        on_server_down=on_server_down,
        **(client_kwargs or {}),
    )

    async def main() -> dict[str, int]:
        async with client:
            try:
                return await _generate_async(
                    todo, client, gen_path, dict(sampling or {}), model, run_id, bar, on_record
                )
            finally:
                stats.update(client.server_stats())

    try:
        counts = asyncio.run(main())
    finally:
        bar.close()
    return counts, stats
