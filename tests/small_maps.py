"""The `tiny` network the CPU-speed tests pad apart, in one place for its two test files."""

from __future__ import annotations

import optuna

from nas.proxy import proxy_genotype
from search_spaces import get_space

RESOLUTION = 16
# 5x5 kernels on maps of 8, 4 and 2 pixels at 16 px: the proxy's stride rule leaves stage 3 at 2x2
NETWORK = proxy_genotype(get_space("tiny").sample(optuna.trial.FixedTrial(
    {f"s{i}_{k}": v for i in range(3)
     for k, v in dict(op="mb3", kernel=5, se=0.25, act="hard_swish", skip=True, width=1.0, layers=1 if i else 0).items()})), RESOLUTION)
