"""Generate synthetic documents: seeds x templates -> requests -> vLLM servers -> one JSONL record per request.

    from synth.run import generate
    summary = generate(seeds, load_templates(), "runs/general/hf", "runs/general/synth", count=1000)

`generate` is the plain entry point under `python -m flows.synth`. Without `servers` it starts local vLLM
servers (`synth.server.EngineServer`, in `.venv-engine`) and always stops them; with `servers` it spreads
requests over those URLs (a remote fleet) and starts nothing.

Output (`out_dir`):
- `generations.jsonl`: one record per finished request, appended and flushed as each one finishes: its
  `key`, `status` ("ok" or "rejected"), `reason` (why rejected: empty, truncated, too_short, unparsable,
  schema_violation, request_error), the text and parsed JSON, token counts, the server, and provenance (seed
  doc id, template name@version and sha256, sampling params and seed). A request's key is a hash of everything
  that determines its output, so a killed run resumes by skipping the keys already in the file: no finished
  request is sent again and no key appears twice. A line torn by a kill is cut off before resuming.
- `run.json`: the model (path and sha256 of its weights), templates, count, seed and the last run's totals.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synth.client import Completion, EngineClient
from synth.seeds import Seed
from synth.templates import Template

logger = logging.getLogger(__name__)
GENERATIONS = "generations.jsonl"


@dataclass(frozen=True)
class SynthRequest:
    """One generation to make: a seed through a template, with its own sampling seed."""

    key: str
    index: int
    seed: Seed
    template: Template
    sampling_seed: int


def model_sha256(model_dir: Path | str) -> str:
    """sha256 over the model's weight files (name and bytes, sorted): provenance of what generated the data."""
    d = Path(model_dir)
    files = sorted([*d.glob("*.safetensors"), *d.glob("*.bin")])
    if not files:
        raise FileNotFoundError(f"{d}: no *.safetensors or *.bin weight files")
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def plan_requests(
    seeds: list[Seed],
    templates: list[Template],
    count: int,
    seed: int = 0,
    model_id: str = "",
    sampling: dict[str, Any] | None = None,
) -> list[SynthRequest]:
    """`count` requests, templates in turn (each template takes the next seed that fits its domains).

    Deterministic: the same seeds, templates, count and seed give the same requests and keys; a larger count
    extends the list (the first requests keep their keys).

    Args:
        seeds: seed documents (from `synth.seeds.sample_seeds`).
        templates: templates to use, in turn.
        count: how many requests.
        seed: run seed; each request's sampling seed is derived from it and the request key.
        model_id: identifies the model in the key (its weights' sha256), so another model never reuses outputs.
        sampling: request-body overrides (temperature, max_tokens, ...), part of the key.
    """
    if not templates:
        raise ValueError("no templates")
    fitting = {t.name: [s for s in seeds if t.fits(s)] for t in templates}
    usable = [t for t in templates if fitting[t.name]]
    if count and not usable:
        raise ValueError(
            f"no seed fits any template's domains ({[(t.name, t.domains) for t in templates]}); "
            f"seed domains: {sorted({s.domain for s in seeds})}"
        )
    for t in templates:
        if not fitting[t.name]:
            logger.warning("template %s: no seed in domains %s; skipped", t.ref, list(t.domains))
    cursor = dict.fromkeys(fitting, 0)
    sampling_json = json.dumps(sampling or {}, sort_keys=True)
    out = []
    for i in range(count):
        t = usable[i % len(usable)]
        pool = fitting[t.name]
        s = pool[cursor[t.name] % len(pool)]
        cursor[t.name] += 1
        rep = (cursor[t.name] - 1) // len(pool)  # how often this seed was used with this template before
        ident = json.dumps([t.name, t.version, t.sha256, s.id, rep, seed, model_id, sampling_json])
        key = hashlib.sha256(ident.encode()).hexdigest()[:32]
        out.append(SynthRequest(key=key, index=i, seed=s, template=t, sampling_seed=int(key[:8], 16) % (2**31)))
    return out


def read_done(path: Path) -> set[str]:
    """Keys already in `generations.jsonl`; a torn last line (a kill mid-write) is cut off the file."""
    done: set[str] = set()
    if not path.is_file():
        return done
    good_end = 0
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break
            try:
                done.add(json.loads(line)["key"])
            except (ValueError, KeyError, TypeError):
                break
            good_end += len(line)
    if good_end != path.stat().st_size:
        logger.warning("%s: cutting a torn record after byte %d (a killed run)", path, good_end)
        with open(path, "r+b") as f:
            f.truncate(good_end)
    return done


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


@contextlib.contextmanager
def local_servers(
    model_dir: Path | str,
    n: int,
    served_model_name: str = "corpusforge-synth",
    server_kwargs: dict[str, Any] | None = None,
) -> Iterator[dict[str, Any]]:
    """Start `n` local vLLM servers for `model_dir` (all loading at once) and yield {url: EngineServer}; every
    one is stopped on exit, also when a start fails half-way or the caller raises."""
    from synth.server import EngineServer

    with contextlib.ExitStack() as stack:
        servers = {}
        for _ in range(n):
            srv = EngineServer(model_dir, served_model_name=served_model_name, **(server_kwargs or {}))
            stack.callback(srv.stop)  # registered before start: stopped even if start fails half-way
            srv.start(wait=False)
            servers[srv] = None
        t0 = time.monotonic()
        for srv in servers:
            try:
                srv.wait_healthy()
            except BaseException:
                srv.keep_run_dir = True  # its log says why the start failed
                raise
            srv.start_seconds = time.monotonic() - t0
        yield {srv.url: srv for srv in servers}


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


def generate(
    seeds: list[Seed],
    templates: list[Template],
    model_dir: Path | str,
    out_dir: Path | str,
    servers: list[str] | None = None,
    count: int | None = None,
    seed: int = 0,
    sampling: dict[str, Any] | None = None,
    max_concurrency: int = 8,
    num_local_servers: int = 1,
    server_kwargs: dict[str, Any] | None = None,
    served_model_name: str = "corpusforge-synth",
    progress: bool = True,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    client_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Generate `count` documents (resuming what `out_dir` already holds) and return a summary.

    Args:
        seeds: seed documents.
        templates: prompt templates (used in turn).
        model_dir: local Hugging Face folder; served locally when `servers` is None, and recorded (path,
            sha256) as provenance either way.
        out_dir: output folder (`generations.jsonl`, `run.json`).
        servers: base URLs of running OpenAI-compatible vLLM servers serving `served_model_name`; None starts
            `num_local_servers` local ones for the run.
        count: number of requests (default: one per seed).
        seed: run seed (request keys and sampling seeds derive from it).
        sampling: request-body overrides for every template (temperature, max_tokens, ...).
        max_concurrency: requests in flight per server.
        num_local_servers: local servers to start when `servers` is None.
        server_kwargs: `EngineServer` arguments for local servers (dtype, max_model_len, kv_cache_gib, ...).
        served_model_name: model name in requests.
        progress: show a progress bar (requests/s, tokens/s).
        on_record: called with each record after it is written (tests, the flow's own counters).
        client_kwargs: more `EngineClient` arguments (timeout_s, max_attempts, backoff_s).

    Returns:
        {"requested", "skipped" (already done), "sent", "ok", "rejected", "reasons", "completion_tokens",
         "seconds", "tokens_per_s", "servers" (per-URL counts), "out"}.
    """
    from collections import Counter

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = {"path": str(Path(model_dir).resolve()), "sha256": model_sha256(model_dir)}
    requests = plan_requests(seeds, templates, len(seeds) if count is None else count, seed, model["sha256"], sampling)
    gen_path = out / GENERATIONS
    done = read_done(gen_path)
    todo = [r for r in requests if r.key not in done]
    run_id = hashlib.sha256(f"{time.time_ns()}-{os.getpid()}".encode()).hexdigest()[:12]
    summary: dict[str, Any] = {
        "requested": len(requests),
        "skipped": len(requests) - len(todo),
        "sent": len(todo),
        "out": str(gen_path),
        "run_id": run_id,
    }
    meta = {
        "model": model,
        "templates": {t.ref: t.sha256 for t in templates},
        "count": len(requests),
        "seed": seed,
        "sampling": sampling or {},
        "served_model_name": served_model_name,
    }
    t0 = time.monotonic()
    counts = {"ok": 0, "rejected": 0, "tokens": 0}
    stats: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        local: dict[str, Any] = {}
        if todo and servers is None:
            local = stack.enter_context(local_servers(model_dir, num_local_servers, served_model_name, server_kwargs))
            urls = list(local)
            summary["server_start_s"] = [round(s.start_seconds or 0, 1) for s in local.values()]
        else:
            urls = list(servers or [])
        if todo:
            counts, stats = send_requests(
                todo,
                urls,
                gen_path,
                model,
                sampling,
                run_id,
                served_model_name,
                max_concurrency,
                progress=progress,
                total=len(requests),
                on_record=on_record,
                on_server_down=_restarter(local),
                client_kwargs=client_kwargs,
            )
    seconds = time.monotonic() - t0
    reasons: Counter[str] = Counter()
    with open(gen_path, "rb") if gen_path.exists() else contextlib.nullcontext(None) as f:
        for line in f or []:
            rec = json.loads(line)
            if rec["status"] != "ok":
                reasons[rec["reason"]] += 1
    summary.update(
        {
            "ok": counts["ok"],
            "rejected": counts["rejected"],
            "reasons": dict(reasons),
            "completion_tokens": counts["tokens"],
            "seconds": round(seconds, 3),
            "tokens_per_s": round(counts["tokens"] / seconds, 2) if seconds > 0 else 0.0,
            "servers": stats,
        }
    )
    (out / "run.json").write_text(json.dumps({**meta, "last_run": summary}, indent=1) + "\n", encoding="utf-8")
    return summary


def _restarter(local: dict[str, Any]) -> Callable[[str], None] | None:
    """on_server_down hook: a local server whose process died is restarted in a thread (the client meanwhile
    sends to the others, or waits for its cool-down); a remote one is left to the client's failover."""
    if not local:
        return None
    import threading

    def hook(url: str) -> None:
        srv = local.get(url)
        if srv is None or srv.alive():
            return
        logger.warning("local vLLM server %s died; restarting it", url)
        threading.Thread(target=_safe_restart, args=(srv,), daemon=True).start()

    return hook


def _safe_restart(srv: Any) -> None:
    try:
        srv.restart()
    except Exception:  # the client keeps failing over; the run records what it could not do
        logger.exception("restarting %s failed", srv.url)
