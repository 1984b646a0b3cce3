"""`python -m pipeline.reaper`: kills the processes a run started when the run dies without stopping them.

Some servers a run starts cannot be tied to it with `PR_SET_PDEATHSIG` (a local Ray's agents are grandchildren
that outlive a SIGKILLed driver). The run starts this watcher in its own session and writes `<pid> <create time>`
lines to its stdin for every process to guard. A clean shutdown writes `done` and closes the pipe: the watcher
exits. If the pipe closes without `done`, the run died: the watcher SIGKILLs every guarded process that is still
the same process (pid and create time match) and exits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import IO

import psutil


def main() -> int:
    guarded: list[tuple[int, float]] = []
    for line in sys.stdin:
        line = line.strip()
        if line == "done":
            return 0
        pid, created = line.split()
        guarded.append((int(pid), float(created)))
    for pid, created in guarded:  # the pipe closed without "done": the run is gone
        try:
            p = psutil.Process(pid)
            if abs(p.create_time() - created) < 0.01:
                os.kill(pid, signal.SIGKILL)
        except (psutil.Error, ProcessLookupError):
            pass
    return 0


class Reaper:
    """Parent side: `guard(pids)`, then `close()` on a clean shutdown."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.reaper"], stdin=subprocess.PIPE, start_new_session=True, text=True
        )
        self._stdin: IO[str] = self._proc.stdin  # type: ignore[assignment]

    def guard_children(self) -> None:
        """Guard every current descendant of this process (the reaper itself excepted)."""
        for child in psutil.Process().children(recursive=True):
            if child.pid == self._proc.pid:
                continue
            try:
                self._stdin.write(f"{child.pid} {child.create_time()}\n")
            except psutil.Error:
                continue
        self._stdin.flush()

    def close(self) -> None:
        try:
            self._stdin.write("done\n")
            self._stdin.close()
        except OSError:
            pass
        self._proc.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
