"""No orphans: a process started for a run dies when the run dies, even by SIGKILL.

`set_parent_death_signal()` asks the Linux kernel to SIGKILL the calling process when its parent dies
(`prctl(PR_SET_PDEATHSIG)`); elsewhere it does nothing. Local worker pools call it in each worker, the
forkserver gets it by preloading `pipeline.forkserver_guard`, the private Prefect server in its `preexec_fn`
(`parent_death_guard()`).

The kernel only fires the signal for a parent that dies *after* the request, so a child that starts while
its parent is being killed must check that its parent is still the process that started it. Comparing with
pid 1 is not enough: under a subreaper (a CI harness, `tini -s`, systemd) an orphan is adopted by that
process instead, so the expected parent pid is compared whenever the caller knows it.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def set_parent_death_signal(parent_pid: int | None = None) -> None:
    """SIGKILL this process when its parent dies (Linux; a no-op elsewhere). Kills it at once if the parent
    is already gone: if the parent is no longer `parent_pid` (the pid that started this process, read
    before the fork), or, when that is unknown, if this process was adopted by init."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    parent_gone = os.getppid() != parent_pid if parent_pid is not None else os.getppid() == 1
    if parent_gone:
        os.kill(os.getpid(), signal.SIGKILL)


def parent_death_guard() -> Callable[[], None]:
    """A `preexec_fn` for `subprocess.Popen`: the child dies with the process calling this."""
    parent_pid = os.getpid()
    return lambda: set_parent_death_signal(parent_pid)
