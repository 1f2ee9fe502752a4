"""A weight-sharing supernet over a search space (Once-for-All, BigNAS; SPOS where weights cannot share).

One set of weights holds every network of a space; each network is a timm network run on slices of
it, so after one training any candidate is estimated in a fraction of a second.

Which choices share weights:

- **width** (output channels of a stage) and **expansion** (``mb1``/``mb3``/``mb6`` hidden width),
  and so the next layer's input channels: the leading channels of the widest layer (OFA, BigNAS);
- **kernel** (3 or 5): the centred 3x3 of the 5x5 depthwise kernel (BigNAS; OFA adds a learned
  transform, which is not done here);
- **depth** (``layers``): a stage of n blocks uses the stage's first n blocks (OFA);
- **SE on or off**: a block with SE runs the same convolutions plus its SE weights (the SE's
  reduced width is sliced like any other). Measured on ``tiny`` (150 steps of 4 random networks,
  digits at 16 px): with a separate weight set per SE choice the random networks reached 15-22%
  validation accuracy, sharing them 69-82% (each set trained twice as often, in a quarter of the
  combinations across stages);
- **activation** and **skip** own no weights: every choice runs on the same weights;
- stem, head and classifier: one set for all networks.

Which choice keeps weights of its own, per stage and block (single-path, as SPOS): the **op type**.
Depthwise-separable (``ds``), MBConv (``ir``, every expansion together) and the regular
convolution (``cn``, in ``mbconv-conv``) are different layer stacks, so ``mbconv`` has two weight
sets per block, ``ds`` and ``ir``.

BatchNorm statistics are never shared: they are re-estimated for each network before it is
evaluated. Training follows the sandwich rule with in-place distillation (``nas.supernet.train``).
"""

from nas.supernet.estimator import SupernetEstimator
from nas.supernet.sampling import largest, random_genotype, sandwich, smallest
from nas.supernet.train import (
    SUPERNET_DIR,
    SupernetEpoch,
    SupernetObserver,
    SupernetResult,
    SupernetSettings,
    calibration_batches,
    open_supernet,
    subnet_accuracy,
    supernet_path,
    train_supernet,
)
from nas.supernet.weights import Supernet

__all__ = [
    "SUPERNET_DIR", "Supernet", "SupernetEpoch", "SupernetEstimator", "SupernetObserver", "SupernetResult",
    "SupernetSettings", "calibration_batches", "largest", "open_supernet", "random_genotype", "sandwich",
    "smallest", "subnet_accuracy", "supernet_path", "train_supernet",
]
