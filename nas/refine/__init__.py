"""NetAdapt refinement (`nas refine`): a found or paper network shrunk layer by layer to a latency
target, each step inheriting its parent's weights.

- ``proposals``: what may shrink (expansion widths, residual-aligned widths) and the network after
- ``inherit``: weights kept by L2 norm through torch-pruning's dependency graph
- ``latency``: the start's measured latency, less what each step's changed layers save timed side by side
- ``tune``: pretraining, short and long fine-tuning on the proxy task; saved iterations
- ``loop``: the schedule, selection, storage and resume
- ``guard``: one refinement per study at a time; trials a killed run left RUNNING marked FAIL
"""

from nas.refine.loop import SELECTIONS, RefineConfig, RefineResult, Step, refine

__all__ = ["SELECTIONS", "RefineConfig", "RefineResult", "Step", "refine"]
