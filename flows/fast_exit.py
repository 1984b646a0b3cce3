"""End a finished command without the interpreter's teardown.

After `main()` returns, CPython joins the non-daemon threads, runs the exit handlers (`atexit`: logging's, Prefect's
queue drains, multiprocessing's) and then frees every module and object one by one: for a stage run (spaCy,
scikit-learn, Prefect, pydantic, matplotlib, ~300k objects) that last part took ~0.9 s of a one-document stage,
and none of it is needed: the run's files are written atomically and closed, the private Prefect server is
stopped and its queues drained (flows/server.py), and the process's memory goes back to the kernel at once.
This does the first two steps as the interpreter does and then ends the process.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn


def exit_without_teardown(code: int) -> NoReturn:
    """Exit with `code` like `sys.exit(code)`, less the interpreter's teardown: only from `__main__`, as the last
    statement of a command (nothing after it runs; an exception before it exits the usual way).

    NOTE: `threading._shutdown` and `atexit._run_exitfuncs` are the two calls `Py_FinalizeEx` starts with (join the
    non-daemon threads after running `threading._register_atexit` callbacks, e.g. concurrent.futures' pool
    shutdown; then the atexit handlers); both are CPython's own, underscored but stable since 3.9."""
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: what the interpreter would ignore at exit
            pass
    os._exit(code)
