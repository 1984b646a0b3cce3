"""Imported only as a forkserver preload (pipeline/executors.py): the forkserver dies with the run that started
it, and the workers it forked die with it. Importing this anywhere else would tie that process to its parent."""

from pipeline.orphans import set_parent_death_signal

set_parent_death_signal()
