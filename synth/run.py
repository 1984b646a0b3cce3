"""Generate synthetic documents: seeds x templates -> requests -> vLLM servers -> one JSONL record per request.

    from synth.run import generate
    summary = generate(seeds, load_templates(), "runs/general/hf", "runs/general/synth", count=1000)

`generate` is the plain entry point under `python -m flows.synth`. Without `servers` it starts local vLLM
servers (`synth.server.EngineServer`, in `.venv-engine`) and always stops them; with `servers` it spreads
requests over those URLs (a remote fleet) and starts nothing. The requests are planned by synth/plan.py and sent
by synth/send.py; this module runs them and keeps the servers up.

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

import contextlib
import hashlib
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from synth.plan import SynthRequest, model_sha256, plan_requests, read_done
from synth.seeds import Seed
from synth.send import send_requests
from synth.templates import Template

logger = logging.getLogger(__name__)
GENERATIONS = "generations.jsonl"


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
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = {"path": str(Path(model_dir).resolve()), "sha256": model_sha256(model_dir)}
    requests = plan_requests(seeds, templates, len(seeds) if count is None else count, seed, model["sha256"], sampling)
    summary = _run_requests(
        requests,
        out / GENERATIONS,
        model,
        model_dir,
        servers,
        sampling,
        max_concurrency,
        num_local_servers,
        server_kwargs,
        served_model_name,
        progress,
        on_record,
        client_kwargs,
    )
    meta = {
        "model": model,
        "templates": {t.ref: t.sha256 for t in templates},
        "count": len(requests),
        "seed": seed,
        "sampling": sampling or {},
        "served_model_name": served_model_name,
    }
    (out / "run.json").write_text(json.dumps({**meta, "last_run": summary}, indent=1) + "\n", encoding="utf-8")
    return summary


def _run_requests(
    requests: list[SynthRequest],
    gen_path: Path,
    model: dict[str, str],
    model_dir: Path | str,
    servers: list[str] | None,
    sampling: dict[str, Any] | None,
    max_concurrency: int,
    num_local_servers: int,
    server_kwargs: dict[str, Any] | None,
    served_model_name: str,
    progress: bool,
    on_record: Callable[[dict[str, Any]], None] | None,
    client_kwargs: dict[str, Any] | None,
) -> dict[str, Any]:
    """Send the requests `gen_path` does not hold yet (to `servers`, or to local servers started for them and
    stopped after) and return the run's summary (`generate`'s arguments, `generate`'s return value)."""
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
    summary.update(
        {
            "ok": counts["ok"],
            "rejected": counts["rejected"],
            "reasons": _rejection_reasons(gen_path),
            "completion_tokens": counts["tokens"],
            "seconds": round(seconds, 3),
            "tokens_per_s": round(counts["tokens"] / seconds, 2) if seconds > 0 else 0.0,
            "servers": stats,
        }
    )
    return summary


def _rejection_reasons(gen_path: Path) -> dict[str, int]:
    """Rejected records of `gen_path` (every run's, not only this one's) per reason."""
    reasons: Counter[str] = Counter()
    with open(gen_path, "rb") if gen_path.exists() else contextlib.nullcontext(None) as f:
        for line in f or []:
            rec = json.loads(line)
            if rec["status"] != "ok":
                reasons[rec["reason"]] += 1
    return dict(reasons)


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
