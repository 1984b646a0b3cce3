"""`exit_without_teardown` ends a command as `sys.exit` would (exit code, flushed output, exit handlers, pending
thread-pool work), only without freeing every module first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from core.paths import REPO_ROOT

PROBE = """
import atexit, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from flows.fast_exit import exit_without_teardown

out = Path(sys.argv[1])
pool = ThreadPoolExecutor(1)  # never shut down: the interpreter's exit waits for its queued work
pool.submit(lambda: (time.sleep(0.3), (out / "thread").write_text("done")))
atexit.register(lambda: (out / "atexit").write_text("ran"))
sys.stdout.write("no newline, still buffered")
exit_without_teardown(3)
print("never")
"""


def test_exit_code_output_exit_handlers_and_pending_thread_work(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 3, res.stderr[-2000:]
    assert res.stdout == "no newline, still buffered"
    assert (tmp_path / "thread").read_text() == "done"
    assert (tmp_path / "atexit").read_text() == "ran"
