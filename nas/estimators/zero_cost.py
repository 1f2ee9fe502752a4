"""Zero-cost accuracy proxies: rank untrained networks from one batch instead of training them.

Each proxy scores a freshly initialised network, built exactly as the proxy trainer builds it
(``nas.proxy``), on one fixed batch of the proxy data; a network costs one or two passes instead
of a few hundred training steps. The literature's proxies are here (Abdelfattah et al. 2021,
"Zero-Cost Proxies for Lightweight NAS"; Mellor et al. 2021; Lin et al. 2021), each one function
in ``PROXIES``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nas.data import load_proxy_data
from nas.errors import UsageError
from nas.estimators import Report
from nas.proxy import proxy_genotype
from nas.threads import torch_threads
from nas.turns import computing
from search_spaces import SEED_NAMES, Genotype, build_model, seed_architecture

__all__ = ["LOGARITHMIC", "PROXIES", "LogisticMap", "ProxyFn", "ZeroCost", "ZeroCostSettings", "register_proxy",
           "seed_networks_map"]

ProxyFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], float]
"""``proxy(model, images, labels) -> score``: higher should mean more accurate after training.
The model is freshly built for each call, so a proxy may change it (weights, dtype, mode)."""

PROXIES: dict[str, ProxyFn] = {}
LOGARITHMIC: set[str] = set()
"""Proxies whose score is a logarithm already (the others are magnitudes spanning many orders,
so their log is what gets standardised)."""

# Activation modules the networks of ``search_spaces`` use (``Genotype.act`` and SE's inner ReLU);
# SE gates (sigmoid, hard-sigmoid) are not activations in NASWOT's sense.
ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.SiLU, nn.Mish)
LOGIT_LIMIT = 30.0  # keeps accuracy strictly inside (0, 1) in float64


def register_proxy(name: str, *, logarithmic: bool = False) -> Callable[[ProxyFn], ProxyFn]:
    """Register a proxy under ``name``: adding one is one decorated function."""

    def register(fn: ProxyFn) -> ProxyFn:
        PROXIES[name] = fn
        if logarithmic:
            LOGARITHMIC.add(name)
        return fn

    return register


def _weighted_layers(model: nn.Module) -> Iterator[nn.Module]:
    """Conv and linear layers: the ones zero-cost-nas sums its per-weight scores over."""
    return (m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))


def _backward_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    """Gradients of the cross-entropy on one batch, BatchNorm on batch statistics (train mode)."""
    model.train()
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()


@register_proxy("synflow")
def synflow(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Synaptic flow (Tanaka et al. 2020): sum |theta * dR/dtheta|, R the sum of the outputs of the
    network with all weights made positive, on an all-ones input. Data-free.

    Float64, because the product over ~60 layers overflows float32. BatchNorm runs in eval mode:
    on a fresh network (running mean 0, variance 1) that is the identity zero-cost-nas gets by
    removing BatchNorm, and it keeps the score independent of batch statistics. ReLU6 becomes
    ReLU: with positive weights every pre-activation is large and positive, so the clip at 6
    would zero the gradient of every layer before the last ReLU6 (MobileNetV2 scored 1e4
    against MnasNet's 1e48), while h-swish, SiLU and Mish are the identity there, as ReLU is.
    """
    for parent in list(model.modules()):
        for child_name, child in parent.named_children():
            if isinstance(child, nn.ReLU6):
                setattr(parent, child_name, nn.ReLU())
    model.double().eval()
    with torch.no_grad():
        for param in model.parameters():
            param.abs_()
    model.zero_grad(set_to_none=True)
    model(torch.ones((1, *x.shape[1:]), dtype=torch.float64)).sum().backward()
    return sum((layer.weight * layer.weight.grad).abs().sum().item()
               for layer in _weighted_layers(model) if layer.weight.grad is not None)


@register_proxy("naswot", logarithmic=True)
def naswot(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """NASWOT (Mellor et al. 2021): log-determinant of the kernel K_ij = units - Hamming distance
    between images i and j's binary activation codes; networks that separate images score high.

    The code of a unit is "pre-activation > 0", taken before every activation module (ReLU,
    ReLU6, h-swish, SiLU, Mish), since the timm networks are not ReLU-only. Codes as +-1 make
    K = (units + S S^T) / 2 one matrix product per layer; its float32 entries are integer sums
    well under 2^24, so they are exact.
    """
    agreement = torch.zeros(len(x), len(x), dtype=torch.float64)
    units = 0

    def record(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        nonlocal agreement, units
        signs = torch.where(args[0].detach().flatten(1) > 0, 1.0, -1.0)
        agreement += (signs @ signs.T).double()
        units += signs.shape[1]

    handles = [m.register_forward_pre_hook(record) for m in model.modules() if isinstance(m, ACTIVATIONS)]
    if not handles:
        raise ValueError(f"naswot found no activation module; it knows {', '.join(a.__name__ for a in ACTIVATIONS)}")
    try:
        model.train()
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return torch.linalg.slogdet((agreement + units) / 2).logabsdet.item()


@register_proxy("grad_norm")
def grad_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Sum over layers of the L2 norm of the loss gradient (Abdelfattah et al. 2021's baseline)."""
    _backward_loss(model, x, y)
    return sum(layer.weight.grad.norm().item() for layer in _weighted_layers(model) if layer.weight.grad is not None)


@register_proxy("snip")
def snip(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """SNIP saliency (Lee et al. 2019) summed over all weights: sum |theta * dL/dtheta|."""
    _backward_loss(model, x, y)
    return sum((layer.weight * layer.weight.grad).abs().sum().item()
               for layer in _weighted_layers(model) if layer.weight.grad is not None)


ZEN_MIXUP = 1e-2  # the perturbation's scale (Zen-NAS's mixup_gamma)


@register_proxy("zen", logarithmic=True)
def zen(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Zen-score (Lin et al. 2021): log of the mean L1 change of the pre-pooling feature map when a
    Gaussian input is perturbed, plus sum of log sqrt(mean BN variance) over BatchNorm layers,
    which puts back the scale each BatchNorm divided out. Data-free; weights re-drawn N(0, 1) as
    the paper does.

    The paper's BN variance is the batch's, so momentum 1 makes each layer's running variance
    that of the last (unperturbed) pass; the reference code keeps momentum 0.1, which mixes in
    the initial variance of 1 and, for large variances, shifts each layer's term by about
    log(sqrt(0.19)) = -0.83.
    """
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
                module.momentum = 1.0
        model.train()
        inputs = torch.randn(x.shape)
        perturbed = model.forward_features(inputs + ZEN_MIXUP * torch.randn(x.shape))
        features = model.forward_features(inputs)  # last, so the BN statistics are the clean batch's
        change = (perturbed - features).abs().sum(dim=(1, 2, 3)).mean()
        bn_scale = sum(0.5 * math.log(m.running_var.mean().item()) for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    return math.log(change.item()) + bn_scale


@dataclass(frozen=True)
class LogisticMap:
    """A monotone map of scores into (0, 1): the logistic of the standardised score."""

    centre: float
    scale: float

    @classmethod
    def fit(cls, values: Sequence[float]) -> LogisticMap:
        finite = [v for v in values if math.isfinite(v)]
        if len(finite) < 2:
            raise ValueError(f"need at least two finite reference scores, got {list(values)}")
        centre = sum(finite) / len(finite)
        scale = math.sqrt(sum((v - centre) ** 2 for v in finite) / (len(finite) - 1))
        return cls(centre, scale or 1.0)

    def __call__(self, value: float) -> float:
        z = max(-LOGIT_LIMIT, min(LOGIT_LIMIT, (value - self.centre) / self.scale))
        return 1.0 / (1.0 + math.exp(-z))


def seed_networks_map(transformed_score: Callable[[Genotype], float]) -> LogisticMap:
    """The map that sends the paper networks' mean score to 0.5 and one standard deviation to
    0.73. Fitted on ``SEED_NAMES`` rather than on the search's own samples so that a network's
    accuracy is the same in every trial, resumed study and process, whatever came before it, and
    the eight networks span the mobile range (MobileNetV1 to EfficientNet-B0)."""
    return LogisticMap.fit([transformed_score(seed_architecture(name)) for name in SEED_NAMES])


def _log(value: float) -> float:
    """``log(value)``, -inf at 0; nan for a negative value, which no magnitude should have."""
    return math.log(value) if value > 0 else (-math.inf if value == 0 else math.nan)


@dataclass(frozen=True)
class ZeroCostSettings:
    proxy: str
    data: str = "digits"
    resolution: int = 16
    batch_size: int = 64
    seed: int = 0
    threads: int = 1  # see nas.threads

    def __post_init__(self) -> None:
        if self.proxy not in PROXIES:
            raise UsageError(f"unknown zero-cost proxy {self.proxy!r}; known: {', '.join(PROXIES)}")
        if not 8 <= self.resolution <= 256:
            raise UsageError(f"zero-cost resolution must be between 8 and 256 pixels, got {self.resolution}")
        if self.batch_size < 2:
            raise UsageError(f"zero-cost batch_size must be >= 2 (BatchNorm and NASWOT compare images), got {self.batch_size}")


class ZeroCost:
    """An ``AccuracyEstimator`` from one zero-cost proxy: ``score`` is the proxy's own value,
    ``accuracy`` maps it monotonically into (0, 1) for the reward.

    The same (genotype, seed) scores the same bit for bit: the network and the batch come from
    ``seed``, and the caller's global random state is left as it was.
    """

    def __init__(self, settings: ZeroCostSettings) -> None:
        self._settings = settings
        self._data = load_proxy_data(settings.data, settings.resolution)  # a bad --data fails here, before any trial

    @property
    def name(self) -> str:
        return self._settings.proxy

    @property
    def settings(self) -> Mapping[str, Any]:
        return asdict(self._settings)

    @cached_property
    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        data = self._data
        generator = torch.Generator().manual_seed(self._settings.seed)
        index = torch.randperm(len(data.x_train), generator=generator)[:self._settings.batch_size]
        return data.x_train[index], data.y_train[index]

    def score(self, genotype: Genotype) -> float:
        """The proxy's raw score of ``genotype``'s freshly initialised proxy network."""
        s = self._settings
        with torch.random.fork_rng(devices=[]), torch_threads(s.threads):
            torch.manual_seed(s.seed)
            model = build_model(proxy_genotype(genotype, s.resolution),
                                num_classes=self._data.num_classes, in_chans=self._data.in_chans)
            with computing():
                return float(PROXIES[s.proxy](model, *self._batch))

    def _transformed(self, genotype: Genotype) -> float:
        value = self.score(genotype)
        return value if self.name in LOGARITHMIC else _log(value)

    @cached_property
    def _map(self) -> LogisticMap:
        return seed_networks_map(self._transformed)

    def accuracy(self, genotype: Genotype, report: Report) -> float:
        """The mapped score. ``report`` is not called: there is nothing to stop early, and a
        pruner asked at the only step would throw away a finished estimate."""
        value = self._transformed(genotype)
        if math.isnan(value):
            raise FloatingPointError(f"{self.name} score is not a number for this network")
        return self._map(value)
