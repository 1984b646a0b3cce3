"""No orphans: a process started for a run dies when the run dies, even by SIGKILL.

`set_parent_death_signal()` asks the Linux kernel to SIGKILL the calling process when its parent dies
(`prctl(PR_SET_PDEATHSIG)`); elsewhere it does nothing. Local worker pools call it in each worker, the
forkserver gets it by preloading `pipeline.forkserver_guard`, the private Prefect server and vLLM servers in
their `preexec_fn`.
"""

from __future__ import annotations

import os


def set_parent_death_signal() -> None:
    """SIGKILL this process when its parent dies (Linux; a no-op elsewhere). Kills it at once if the parent
    is already gone (the race between fork and prctl)."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:
        os.kill(os.getpid(), signal.SIGKILL)

