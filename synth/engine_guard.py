"""Process guard for a local vLLM server: no engine process outlives the run that started it.

    <engine python> synth/engine_guard.py PARENT_PID GRACE_S -- python -m vllm.entrypoints.openai.api_server ...

`synth.server.EngineServer` starts this script (stdlib only: it runs under `.venv-engine`'s Python) as the
leader of a new process group; the guard starts vLLM inside that group (the API server forks engine-core
workers, which stay in it too). The guard ends the whole group when
- its parent dies, even by SIGKILL: the kernel sends PR_SET_PDEATHSIG (SIGUSR1) to the guard, which then
  checks getppid(); a poll of getppid() also catches the case where the parent died before prctl ran;
- it gets SIGTERM, SIGINT or SIGHUP (a normal stop);
- vLLM exits by itself (a crash): leftover workers are killed.
Ending means SIGTERM to the group, then SIGKILL to whatever is left after GRACE_S seconds.

NOTE: the death signal fires when the parent *thread* that started the guard exits (a server restarted from a
worker thread), not only the parent process: hence SIGUSR1 plus a getppid() check instead of a plain SIGTERM.
NOTE: prctl(PR_SET_PDEATHSIG) alone on the vLLM process would not do: it fires only for the direct child, and
vLLM's engine-core workers are grandchildren.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print("usage: engine_guard.py PARENT_PID GRACE_S -- CMD ...", file=sys.stderr)
        return 2
    parent, grace, cmd = int(argv[0]), float(argv[1]), argv[3:]
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGUSR1, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the getppid() poll below still catches a dead parent
        pass
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    def on_parent_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        if os.getppid() != parent:  # the process died, not just the thread that started us
            stopping = True

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    signal.signal(signal.SIGUSR1, on_parent_signal)
    child = subprocess.Popen(cmd)  # same process group as the guard: killpg reaches every vLLM process
    rc = 0
    while True:
        if stopping or os.getppid() != parent:
            break
        code = child.poll()
        if code is not None:
            rc = code
            break
        time.sleep(0.2)
    pgid = os.getpgrp()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the group-wide SIGTERM below also reaches the guard
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if child.poll() is not None and not _others_alive(pgid):
            return rc
        time.sleep(0.1)
    os.killpg(pgid, signal.SIGKILL)  # also ends the guard itself
    return rc


def _others_alive(pgid: int) -> bool:
    """Whether a process other than this guard is left in the group (Linux: /proc)."""
    me = os.getpid()
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return _group_alive(pgid)
    for pid in pids:
        if pid == me:
            continue
        try:
            if os.getpgid(pid) == pgid:
                with open(f"/proc/{pid}/stat", "rb") as f:
                    if f.read().rsplit(b")", 1)[1].split()[0] != b"Z":  # zombies are already dead
                        return True
        except (ProcessLookupError, PermissionError, FileNotFoundError, IndexError):
            continue
    return False


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
