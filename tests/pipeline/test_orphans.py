"""The parent-death guard: a child whose parent is already gone kills itself, also when it was adopted by a
subreaper rather than by init (a CI harness, `tini -s`), which a `getppid() == 1` check misses."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import REPO_ROOT

# The script becomes a subreaper, starts a child, lets the child's parent (the script's middle process) die,
# then has the child apply the guard with the pid of the parent that started it.
ORPHAN_UNDER_SUBREAPER = textwrap.dedent(
    """
    import ctypes, os, sys, time
    from pipeline.orphans import set_parent_death_signal
    ctypes.CDLL("libc.so.6").prctl(36, 1)  # PR_SET_CHILD_SUBREAPER: orphans below come to us, not to init
    r, w = os.pipe()
    middle = os.fork()
    if middle == 0:
        started_by = os.getpid()
        child = os.fork()
        if child == 0:
            while os.getppid() == started_by:  # wait until the middle process is gone
                time.sleep(0.01)
            set_parent_death_signal(started_by)
            os.write(w, b"survived")
            os._exit(0)
        os._exit(0)
    os.waitpid(middle, 0)
    os.close(w)
    pid, status = os.wait()  # the adopted child
    print(os.read(r, 100).decode() or "killed", os.WIFSIGNALED(status) and os.WTERMSIG(status))
    """
)


def test_a_child_adopted_by_a_subreaper_after_its_parent_died_kills_itself():
    out = subprocess.run(
        [sys.executable, "-c", ORPHAN_UNDER_SUBREAPER], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["killed", "9"]


def test_a_child_whose_parent_is_alive_keeps_running():
    code = (
        "import os; from pipeline.orphans import set_parent_death_signal; "
        "set_parent_death_signal(os.getppid()); print('alive')"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "alive", out.stderr
