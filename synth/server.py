"""Start, health-check and always stop a local vLLM OpenAI-compatible server running in `.venv-engine`.

    with EngineServer(model_dir) as server:      # started, healthy, bound to 127.0.0.1
        client = EngineClient([server.url], server.model_name)
        ...
    # here the server and every process it forked are gone: also after an exception or KeyboardInterrupt

Why a server in another environment, not `vllm.LLM` in this process: vLLM pins fastapi<0.137 and prefect 3.9
needs >=0.139, so they cannot share `.venv` (`bash scripts/bootstrap_engine.sh` builds `.venv-engine`). Over
HTTP, a local server and a fleet of remote ones are the same thing to the client, which is how fleets run vLLM.

The server runs under `synth/engine_guard.py` in its own process group, so a stop (or the death of this
process, even by SIGKILL) ends vLLM's API server and its engine-core workers together.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from core.paths import REPO_ROOT

ENGINE_VENV = REPO_ROOT / ".venv-engine"
GUARD = Path(__file__).with_name("engine_guard.py")
BOOTSTRAP = "bash scripts/bootstrap_engine.sh"
logger = logging.getLogger(__name__)


class EngineError(RuntimeError):
    """The engine could not be started or did not become healthy; the message names the log file."""


def engine_python() -> Path:
    """`.venv-engine/bin/python` (or $CORPUSFORGE_ENGINE_PYTHON); FileNotFoundError names the set-up command."""
    override = os.environ.get("CORPUSFORGE_ENGINE_PYTHON")
    path = Path(override) if override else ENGINE_VENV / "bin" / "python"
    if not path.is_file():
        raise FileNotFoundError(f"vLLM engine environment not found ({path}); create it with `{BOOTSTRAP}`")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def engine_env(run_dir: Path, kv_cache_gib: int) -> dict[str, str]:
    """The server's environment: offline, no telemetry, loopback only, caches inside this run's folder.

    Args:
        run_dir: per-server folder for vLLM's compile cache and temporary files (removed at stop).
        kv_cache_gib: VLLM_CPU_KVCACHE_SPACE, the CPU backend's KV-cache size (its default, 4 GiB per
            server, is much more than a small model needs when several servers share 24 GiB).
    """
    env = dict(os.environ)
    for key in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):  # belong to the caller's .venv, not the engine's
        env.pop(key, None)
    (run_dir / "cache").mkdir(parents=True, exist_ok=True)
    (run_dir / "tmp").mkdir(parents=True, exist_ok=True)
    env.update(
        {
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
            "VLLM_HOST_IP": "127.0.0.1",
            "VLLM_LOOPBACK_IP": "127.0.0.1",
            "VLLM_CPU_KVCACHE_SPACE": str(kv_cache_gib),
            "VLLM_CACHE_ROOT": str(run_dir / "cache"),
            "TMPDIR": str(run_dir / "tmp"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


class EngineServer:
    """One local vLLM server (`python -m vllm.entrypoints.openai.api_server`) bound to 127.0.0.1.

    Args:
        model_dir: a local Hugging Face folder (config.json, safetensors, tokenizer.json).
        port: TCP port; 0 picks a free one.
        served_model_name: the `model` name requests use; default "corpusforge-synth".
        max_model_len: context length the server allocates for.
        dtype: vLLM `--dtype` ("float32" for the tiny fp32 CPU models, "bfloat16" on GPUs, "auto").
        kv_cache_gib: VLLM_CPU_KVCACHE_SPACE (CPU backend only).
        enforce_eager: skip torch.compile and graph capture (~25 s less per start on CPU).
        nice: CPU niceness of the server (it shares the machine with the pipeline).
        extra_args: more `vllm serve` flags, passed through.
        log_path: where the server's stdout/stderr go; default a file in its run folder.
        start_timeout_s: how long `start` waits for /health.
        stop_grace_s: SIGTERM-to-SIGKILL grace at stop.
    """

    def __init__(
        self,
        model_dir: Path | str,
        port: int = 0,
        served_model_name: str = "corpusforge-synth",
        max_model_len: int = 2048,
        dtype: str = "auto",
        kv_cache_gib: int = 1,
        enforce_eager: bool = True,
        nice: int = 10,
        extra_args: list[str] | None = None,
        log_path: Path | str | None = None,
        start_timeout_s: float = 300.0,
        stop_grace_s: float = 10.0,
    ) -> None:
        self.model_dir = Path(model_dir)
        if not (self.model_dir / "config.json").is_file():
            raise FileNotFoundError(f"{self.model_dir} is not a Hugging Face model folder (no config.json)")
        self.port = port
        self.model_name = served_model_name
        self.max_model_len = max_model_len
        self.dtype = dtype
        self.kv_cache_gib = kv_cache_gib
        self.enforce_eager = enforce_eager
        self.nice = nice
        self.extra_args = list(extra_args or [])
        self.log_path = Path(log_path) if log_path else None
        self.start_timeout_s = start_timeout_s
        self.stop_grace_s = stop_grace_s
        self.proc: subprocess.Popen | None = None
        self.run_dir: Path | None = None
        self.start_seconds: float | None = None
        self._log: IO[bytes] | None = None
        self.keep_run_dir = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        # NOTE: `vllm serve` fails in vllm-cpu (the script looks up the distribution named "vllm"); the module works.
        cmd = [
            str(engine_python()),
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(self.model_dir),
            "--served-model-name",
            self.model_name,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--max-model-len",
            str(self.max_model_len),
            "--dtype",
            self.dtype,
            "--disable-uvicorn-access-log",
            "--generation-config",
            "vllm",
            # No free whitespace between JSON tokens in guided decoding: a weak model otherwise fills
            # max_tokens with blank lines inside the object.
            "--structured-outputs-config",
            '{"backend": "xgrammar", "disable_any_whitespace": true}',
        ]
        if self.enforce_eager:
            cmd.append("--enforce-eager")
        return cmd + self.extra_args

    def start(self, wait: bool = True) -> EngineServer:
        """Launch the server (in its own process group, under the guard) and, with `wait`, block until healthy.

        Raises:
            FileNotFoundError: no `.venv-engine` (names the set-up command).
            EngineError: the server exited or was not healthy within `start_timeout_s` (names its log).
        """
        if self.proc is not None and self.proc.poll() is None:
            return self
        if not self.port:
            self.port = free_port()
        self.run_dir = Path(tempfile.mkdtemp(prefix=f"corpusforge-vllm-{self.port}-"))
        if self.log_path is None:
            self.log_path = self.run_dir / "server.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        python = engine_python()
        cmd = [str(python), str(GUARD), str(os.getpid()), str(self.stop_grace_s), "--", *self.command()]
        if self.nice:
            cmd = ["nice", "-n", str(self.nice), *cmd]
        t0 = time.monotonic()
        # start_new_session: the guard leads a new process group, so stopping it never signals our own group.
        self.proc = subprocess.Popen(
            cmd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=engine_env(self.run_dir, self.kv_cache_gib),
            start_new_session=True,
        )
        logger.info("vLLM server starting on %s (pid %d, log %s)", self.url, self.proc.pid, self.log_path)
        if wait:
            try:
                self.wait_healthy()
            except BaseException:
                self.keep_run_dir = True  # its log says why the start failed
                self.stop()
                raise
            self.start_seconds = time.monotonic() - t0
        return self

    def healthy(self, timeout: float = 2.0) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=timeout) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise EngineError(
                    f"vLLM server exited with code {self.proc.returncode if self.proc else None} "
                    f"before it was healthy; see {self.log_path}:\n{self.log_tail()}"
                )
            if self.healthy():
                return
            time.sleep(0.5)
        raise EngineError(
            f"vLLM server on {self.url} not healthy after {self.start_timeout_s:.0f} s; "
            f"see {self.log_path}:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:]) if self.log_path else ""
        except OSError:
            return ""

    def pids(self) -> list[int]:
        """Processes still in the server's process group (the guard, vLLM's API server and its workers)."""
        return process_group_members(self.proc.pid) if self.proc is not None else []

    def stop(self) -> None:
        """SIGTERM the guard (which ends the group), SIGKILL the group after the grace; idempotent."""
        if self.proc is None:
            return
        pgid = self.proc.pid
        if self.proc.poll() is None:
            try:
                os.killpg(pgid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=self.stop_grace_s + 5)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left (a guard killed by SIGKILL leaves its workers): kill the group outright.
        deadline = time.monotonic() + 5
        while process_group_members(pgid) and time.monotonic() < deadline:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        if self.proc.poll() is None:
            self.proc.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.run_dir is not None and not self.keep_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def restart(self) -> None:
        """Stop and start again on the same port (a server that died mid-run)."""
        self.stop()
        self.proc = None
        self.start()

    def __enter__(self) -> EngineServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def process_group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is `pgid` (Linux: /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        # fields after the comm: state, ppid, pgrp, ...
        if int(fields[2]) == pgid and fields[0] != b"Z":
            out.append(int(entry))
    return sorted(out)
