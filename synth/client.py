"""An OpenAI-compatible completions client over a list of vLLM servers: bounded concurrency per server,
timeouts, retries with exponential backoff, and failover.

    client = EngineClient(["http://127.0.0.1:8000", "http://10.0.0.7:8000"], model="corpusforge-synth")
    result = await client.complete({"prompt": "...", "max_tokens": 256, "seed": 7})

Each request goes to the healthy server with the fewest requests in flight (ties: the one used least, then
list order), so load spreads over the fleet. A connection error, timeout or 5xx marks that server down for a
cool-down (doubling while it keeps failing) and the request is retried on another one, with a backoff between
attempts; `on_server_down(url)` lets the caller restart a local server. A 4xx is the request's own fault (bad
schema, too long a prompt) and is not retried. The client never raises for a request: `complete` returns a
`Completion` with `error` set when every attempt failed.

Requests are `/v1/completions` with a fully formatted prompt: the template decides the chat format (ChatML,
harmony), not the served model's chat template.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


@dataclass
class Completion:
    """One request's outcome.

    Args:
        text: generated text ("" when the request failed).
        finish_reason: "stop", "length" or None (failed).
        prompt_tokens, completion_tokens: from the server's usage.
        server: URL that answered (or last tried).
        attempts: how many sends it took.
        error: why it failed after all retries ("http_400: ...", "timeout", "connect_error: ..."), else None.
        seconds: wall time of the successful attempt.
        prompt_logprobs: when the request asked for them (vLLM's `prompt_logprobs`) with a prompt of token ids:
            the log-probability of each prompt token given the ones before it (None for the first).
    """

    text: str = ""
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    server: str = ""
    attempts: int = 0
    error: str | None = None
    seconds: float = 0.0
    prompt_logprobs: list[float | None] | None = None  # asked with `prompt_logprobs` and a token-id prompt


@dataclass
class _Server:
    url: str
    sem: asyncio.Semaphore
    in_flight: int = 0
    sent: int = 0
    ok: int = 0
    failures: int = 0  # consecutive
    down_until: float = 0.0
    stats: dict[str, int] = field(default_factory=dict)


class EngineClient:
    """Async client for one or more OpenAI-compatible vLLM servers.

    Args:
        urls: server base URLs ("http://127.0.0.1:8000"); at least one.
        model: the served model name sent in each request.
        max_concurrency: requests in flight per server (vLLM batches them; more than its batch wastes memory).
        timeout_s: per-attempt read timeout.
        max_attempts: sends per request, across servers, before it is recorded as failed.
        backoff_s: first retry delay; doubles per attempt (capped at 30 s), with jitter-free determinism.
        down_s: first cool-down of a failing server; doubles per consecutive failure (capped at 60 s).
        on_server_down: called (from the event loop) with a URL the first time it fails in a row.
    """

    def __init__(
        self,
        urls: list[str],
        model: str,
        max_concurrency: int = 8,
        timeout_s: float = 300.0,
        max_attempts: int = 5,
        backoff_s: float = 0.5,
        down_s: float = 2.0,
        on_server_down: Callable[[str], None] | None = None,
    ) -> None:
        if not urls:
            raise ValueError("EngineClient needs at least one server URL")
        if max_concurrency < 1 or max_attempts < 1:
            raise ValueError(f"max_concurrency and max_attempts must be >= 1, got {max_concurrency}, {max_attempts}")
        self.urls = [u.rstrip("/") for u in urls]
        self.model = model
        self.max_concurrency = max_concurrency
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.down_s = down_s
        self.on_server_down = on_server_down
        self._servers: list[_Server] | None = None
        self._http: Any = None

    async def __aenter__(self) -> EngineClient:
        import httpx

        # Semaphores bind to the running loop: build them here, not in __init__.
        self._servers = [_Server(u, asyncio.Semaphore(self.max_concurrency)) for u in self.urls]
        limits = httpx.Limits(max_connections=self.max_concurrency * len(self.urls) + 4)
        timeout = httpx.Timeout(self.timeout_s, connect=10.0)
        self._http = httpx.AsyncClient(limits=limits, timeout=timeout, trust_env=False)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    def server_stats(self) -> dict[str, dict[str, int]]:
        """Per URL: requests sent, answered, and currently in flight."""
        return {s.url: {"sent": s.sent, "ok": s.ok, "in_flight": s.in_flight} for s in self._servers or []}

    def _pick(self, avoid: str | None) -> _Server | None:
        """The up server with the most free slots; None when all are cooling down."""
        now = time.monotonic()
        up = [s for s in self._servers if s.down_until <= now]
        if len(up) > 1 and avoid is not None:
            up = [s for s in up if s.url != avoid] or up
        if not up:
            return None
        return min(up, key=lambda s: (s.in_flight, s.sent, self._servers.index(s)))

    def _mark_down(self, server: _Server) -> None:
        server.failures += 1
        server.down_until = time.monotonic() + min(60.0, self.down_s * 2 ** (server.failures - 1))
        if server.failures == 1 and self.on_server_down is not None:
            try:
                self.on_server_down(server.url)
            except Exception:  # a failing restart hook must not lose the request
                logger.exception("on_server_down(%s) failed", server.url)

    async def complete(self, body: dict[str, Any]) -> Completion:
        """POST /v1/completions with `body` (prompt, max_tokens, temperature, seed, structured_outputs, ...).

        Args:
            body: the request fields except `model`; `n` must be 1 (one record per request).
        """
        payload = {**body, "model": self.model, "n": 1, "stream": False}
        last_error = "no_server"
        last_url = ""
        for attempt in range(1, self.max_attempts + 1):
            server = self._pick(avoid=last_url or None)
            while server is None:  # every server cooling down: wait for the first to come back
                await asyncio.sleep(max(0.05, min(s.down_until for s in self._servers) - time.monotonic()))
                server = self._pick(avoid=None)
            last_url = server.url
            server.in_flight += 1  # counted before the semaphore so that _pick sees queued work too
            try:
                async with server.sem:
                    server.sent += 1
                    t0 = time.monotonic()
                    result, retry = await self._send(server.url, payload)
                    result.seconds = time.monotonic() - t0
            finally:
                server.in_flight -= 1
            result.server, result.attempts = server.url, attempt
            if result.error is None:
                server.ok += 1
                server.failures = 0
                server.down_until = 0.0
                return result
            last_error = result.error
            if not retry:
                return result
            self._mark_down(server)
            logger.warning(
                "request to %s failed (%s); attempt %d/%d", server.url, result.error, attempt, self.max_attempts
            )
            if attempt < self.max_attempts:
                await asyncio.sleep(min(30.0, self.backoff_s * 2 ** (attempt - 1)))
        return Completion(server=last_url, attempts=self.max_attempts, error=last_error)

    async def _send(self, url: str, payload: dict[str, Any]) -> tuple[Completion, bool]:
        """One attempt: (completion, whether a failure is worth retrying elsewhere)."""
        import httpx

        try:
            r = await self._http.post(f"{url}/v1/completions", json=payload)
        except httpx.TimeoutException:
            return Completion(error="timeout"), True
        except httpx.HTTPError as exc:  # connection refused/reset, server died mid-request
            return Completion(error=f"connect_error: {type(exc).__name__}"), True
        if r.status_code >= 500 or r.status_code == 429:
            return Completion(error=f"http_{r.status_code}"), True
        if r.status_code >= 400:
            return Completion(error=f"http_{r.status_code}: {r.text[:300]}"), False
        try:
            data = r.json()
            choice = data["choices"][0]
            usage = data.get("usage") or {}
            return Completion(
                text=choice.get("text") or "",
                finish_reason=choice.get("finish_reason"),
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
                prompt_logprobs=_prompt_token_logprobs(choice.get("prompt_logprobs"), payload.get("prompt")),
            ), False
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            return Completion(error=f"bad_response: {type(exc).__name__}"), True


def _prompt_token_logprobs(per_position: list[dict[str, Any] | None] | None, prompt: Any) -> list[float | None] | None:
    """The log-probability of each prompt token from vLLM's `prompt_logprobs` answer: one entry per position, keyed
    by token id, that holds the prompt's own token (and the top-k others when k > 0). Needs the prompt's ids to
    know which entry is the prompt's token, so a text prompt gives None."""
    if per_position is None or not isinstance(prompt, list):
        return None
    if len(per_position) != len(prompt):
        raise ValueError(f"prompt_logprobs has {len(per_position)} positions for a prompt of {len(prompt)} tokens")
    return [
        None if entry is None else float(entry[str(token)]["logprob"]) for entry, token in zip(per_position, prompt)
    ]
