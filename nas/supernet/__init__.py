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
- **op type** ``ds`` vs MBConv (``ir``, every expansion): a depthwise-separable block is an MBConv
  block without its expansion conv (MobileNetV2's expansion-1 block), so it runs on the MBConv
  weights after the expansion (depthwise conv, SE, projection and their BatchNorms, leading
  channels). The whole ``mbconv`` space is then one nested weight set, as OFA's and BigNAS's are,
  and the sandwich's smallest network (all ``ds``) trains the leading channels every larger one uses;
- stem, head and classifier: one set for all networks.

Which choices keep weights of their own, per stage and block (single-path, as SPOS): the regular
convolution (``cn``, the ``conv`` op of ``mbconv-conv``) and the fused MBConv (``er``, the ``fmb``
ops of ``mbconv-fused``), whose dense k x k convolutions no MBConv layer contains; fused MBConv's
expansions share among themselves as MBConv's do.

BatchNorm statistics are never shared: they are re-estimated for each network before it is
evaluated. Training follows the sandwich rule with in-place distillation (``nas.supernet.train``).

What to expect on a CPU budget: the sandwich's two ends are trained every step and the networks
between them only by the random draws, and those draws barely learn: on ``mbconv`` (MNIST, 16 px,
20 epochs) the ends reach 93-96% and random networks stay near chance. Two networks a step trained
from scratch with one choice drawn per stage and the rest fixed at MobileNetV2's (120 steps;
training loss, chance 2.30; ``bench/supernet_sharing.py``): none drawn 0.31, activation 0.25, SE
0.26, depth 0.38, width 0.49, kernel 0.91, skip 1.30, op 2.19. Op, skip and kernel are the choices
whose paths fight over the same weights. On ``mbconv-shared``, which has no op or skip choices, the
same training reads random networks off at 93.5-96.3%. README ("Weight-sharing supernet") has the
rest of what was measured.
"""

from nas.supernet.sampling import end_params, largest, random_genotype, sandwich, smallest
from nas.supernet.train import (
    SUPERNET_DIR,
    SupernetEpoch,
    SupernetObserver,
    SupernetResult,
    SupernetSettings,
    calibration_batches,
    is_supernet,
    named_supernet,
    open_supernet,
    subnet_accuracy,
    supernet_path,
    train_supernet,
    zero_classifier,
)
from nas.supernet.weights import Supernet

__all__ = [
    "SUPERNET_DIR", "Supernet", "SupernetEpoch", "SupernetObserver", "SupernetResult", "SupernetSettings",
    "calibration_batches", "end_params", "is_supernet", "largest", "named_supernet", "open_supernet",
    "random_genotype", "sandwich", "smallest", "subnet_accuracy", "supernet_path", "train_supernet", "zero_classifier",
]
