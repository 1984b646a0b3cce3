"""Imported only as a forkserver preload (pipeline/executors.py): the forkserver dies with the run that started
it, and the workers it forked die with it. Importing this anywhere else would tie that process to its parent.

`FORKSERVER_PID` is inherited by every worker the forkserver forks: a worker compares it with its parent to
notice a forkserver that died before the worker asked the kernel for its death signal. (The forkserver's own
parent is not known here; if the run dies while the forkserver is still starting, the forkserver exits anyway
when it reads EOF on the pipe the run held open.)
"""

import os

from pipeline.orphans import set_parent_death_signal

FORKSERVER_PID = os.getpid()
set_parent_death_signal()
