"""How many CPU threads torch uses for one job: one by default everywhere in nas.

On a shared 2-core machine two threads wait on each other whenever anything else runs (training
steps were 10-40x slower here under load), and one thread leaves the other core to latency
measurement or a second worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` torch threads, then restore the caller's setting."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
