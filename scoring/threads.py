"""torch's CPU thread count for one call of a scorer, put back after.

torch's thread count belongs to the process, and a stage scores in the process that may train next
(`flows.stage --train-steps`, whose trainer keeps torch's default when its config says 0 threads): a scorer that set
it for the process would leave the trainer on its one thread."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
