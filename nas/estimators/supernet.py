"""``--estimator supernet``: a network's accuracy from a trained supernet's weights.

A candidate runs on its inherited weights after its BatchNorm statistics are re-estimated on a
draw of training images (OFA's BN calibration), then is scored on the validation split the
supernet was trained beside. The estimator's seed picks the draw: the same network always gets the
same accuracy from the same seed, and two seeds measure how much of its score is the draw.

``supernet:steps=N`` first trains the candidate N steps from those weights (OFA fine-tunes its
sub-networks the same way). The read-off ranks only as well as the sandwich trained the networks
between its two ends, and on a CPU budget it trains them little; 10-20 steps from inherited
weights rank better than the same steps from scratch (``bench/supernet_finetune.py`` on
``mbconv``/MNIST, 20 steps: Kendall tau 0.63 and 0.46 against the reference in two measurements,
from timm's initialisation 0.12 and -0.13), though below the search's default estimator (one
epoch of proxy training: 0.75 beside the 0.46).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from timm.models import adapt_input_conv

from nas.data import load_proxy_data
from nas.errors import UsageError
from nas.estimators import Report
from nas.proxy import TuneSettings, proxy_genotype, train_steps
from nas.threads import torch_threads
from nas.supernet.train import CALIBRATION_BATCHES, calibration_batches, open_supernet
from search_spaces import Genotype, build_model

_HASH_CHUNK = 1 << 24


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class SupernetEstimator:
    """An ``AccuracyEstimator`` over one finished supernet checkpoint.

    ``space`` and ``data``, when given, must be what the supernet was trained for (a one-line
    ``UsageError`` otherwise); every genotype asked about must be a network of its space. With
    ``tune``, each candidate trains ``tune.steps`` steps from its inherited weights before it is
    scored. ``seed`` draws the calibration images. One thread by default, as ``ProxyTraining``:
    two wait on each other on a shared 2-core machine.
    """

    def __init__(self, checkpoint: Path, *, space: str | None = None, data: str | None = None,
                 tune: TuneSettings | None = None, seed: int = 0, threads: int = 1) -> None:
        self.checkpoint = checkpoint
        self.tune = tune
        self.threads = threads
        self.supernet, self.state = open_supernet(checkpoint, space)
        self.data = load_proxy_data(self.state["dataset"], self.state["resolution"])
        if data is not None and load_proxy_data(data, self.state["resolution"]).name != self.data.name:
            raise UsageError(f"{checkpoint} is a supernet trained on {self.data.name!r}, not {data!r}")
        self.batch_size = min(self.state["settings"]["batch_size"], len(self.data.x_train))
        self.calibration = calibration_batches(self.data, self.batch_size, seed)
        self._settings = {
            "checkpoint": str(checkpoint.resolve()), "sha256": _sha256(checkpoint), "space": self.state["space"],
            "dataset": self.state["dataset"], "resolution": self.state["resolution"],
            "supernet": self.state["settings"], "calibration_images": CALIBRATION_BATCHES * self.batch_size,
            "calibration_seed": seed,
            "tune": asdict(tune) if tune is not None else None,
        }

    @property
    def name(self) -> str:
        return "supernet"

    @property
    def settings(self) -> Mapping[str, Any]:
        return self._settings

    def holds(self, genotype: Genotype) -> bool:
        """Whether ``genotype`` is a network of the supernet's space (only those can be estimated)."""
        return self.supernet.holds(genotype)

    def accuracy(self, genotype: Genotype, report: Report) -> float:
        """Validation accuracy with inherited, BN-calibrated weights (trained ``tune.steps`` steps
        on from them with ``tune``). ``report`` is not called: too short an estimate to prune."""
        with torch_threads(self.threads):
            if self.tune is None:
                return self.supernet.accuracy(genotype, self.supernet.calibrate(genotype, self.calibration),
                                              self.data.x_val, self.data.y_val)
            model = build_model(proxy_genotype(genotype, self.state["resolution"]),
                                num_classes=self.data.num_classes, in_chans=self.data.in_chans)
            model.load_state_dict(self.inherited_weights(genotype))
            return train_steps(model, self.data, self.tune)

    def inherited_weights(self, genotype: Genotype, in_chans: int | None = None) -> dict[str, torch.Tensor]:
        """A timm state dict of ``genotype`` with its inherited weights and calibrated BatchNorm
        statistics (``nas train --init supernet``); ``in_chans`` adapts the stem as timm does for
        pretrained weights (grey supernet, RGB network: the same output on grey-as-RGB images)."""
        with torch_threads(self.threads):
            weights = self.supernet.state_dict(genotype, self.supernet.calibrate(genotype, self.calibration))
        if in_chans is not None:
            weights["conv_stem.weight"] = adapt_input_conv(in_chans, weights["conv_stem.weight"],
                                                           base_chans=self.supernet.in_chans)
        return weights
