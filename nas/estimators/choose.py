"""Accuracy estimators by name, as ``--estimator`` and ``nas estimators rank`` spell them.

``NAME[:key=value,...]``: ``train`` (proxy training; keys epochs, batch_size, resolution, lr, score),
a zero-cost proxy (``synflow``, ``naswot``, ``grad_norm``, ``snip``, ``zen``; keys resolution,
batch_size), or a size baseline (``params``, ``macs``). ``data`` and the training seed come from the
caller (the search's ``--data``, the ranking's seeds). ``hybrid:PROXY:K`` screens by PROXY and
trains the best K (a search strategy, see ``nas.hybrid``); ``supernet[:NAME][,key=value,...]`` reads
accuracies off a trained weight-sharing supernet (``nas supernet train``), or with ``steps=N``
(keys lr, batch_size, weight_decay) trains each candidate N steps from its weights first.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from nas.data import load_proxy_data
from nas.errors import UsageError
from nas.estimators import AccuracyEstimator
from nas.estimators.size import SIZE_METRICS, SizeEstimator, SizeSettings
from nas.estimators.training import ProxyTraining
from nas.estimators.zero_cost import PROXIES, ZeroCost, ZeroCostSettings
from nas.proxy import ProxySettings, TuneSettings

TRAINED = "train"
HYBRID = "hybrid"
SUPERNET = "supernet"


def estimator_names() -> list[str]:
    return [TRAINED, *PROXIES, *SIZE_METRICS, HYBRID, SUPERNET]


@dataclass(frozen=True)
class HybridSpec:
    """``hybrid:PROXY:K``: screen every candidate by a cheap estimator, train only the best ``k``."""

    screen: str  # a zero-cost proxy or size metric
    k: int


def parse_hybrid(spec: str) -> HybridSpec | None:
    """The hybrid spec, or None for any other estimator."""
    name, _, rest = spec.partition(":")
    if name != HYBRID:
        return None
    screen, _, k = rest.partition(":")
    if screen not in (*PROXIES, *SIZE_METRICS) or not k.isdigit() or int(k) < 1:
        raise UsageError(f"--estimator {spec!r}: write hybrid:PROXY:K with PROXY one of "
                         f"{', '.join((*PROXIES, *SIZE_METRICS))} and K >= 1 networks to train")
    return HybridSpec(screen, int(k))


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``"train:epochs=2,resolution=32"`` -> ("train", {"epochs": "2", "resolution": "32"})."""
    hybrid = parse_hybrid(spec)
    if hybrid is not None:
        return HYBRID, {"screen": hybrid.screen, "k": str(hybrid.k)}
    name, _, rest = spec.partition(":")
    items = list(filter(None, rest.split(",")))
    options = {}
    if name == SUPERNET and items and "=" not in items[0]:  # supernet:NAME, a `nas supernet train --name`
        options["name"] = items.pop(0).strip()
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--estimator {spec!r}: write NAME or NAME:key=value,...")
        options[key.strip()] = value.strip()
    if name not in estimator_names():
        raise UsageError(f"--estimator: unknown {name!r}; choose one of {', '.join(estimator_names())}")
    return name, options


def _typed(cls: type, options: dict[str, str], spec: str, **fixed: object) -> dict[str, object]:
    """Options converted to the settings class's field types; an unknown key names the known ones."""
    types = {f.name: f.type for f in fields(cls)}
    values: dict[str, object] = dict(fixed)
    for key, text in options.items():
        if key not in types or key in fixed:
            known = ", ".join(k for k in types if k not in fixed)
            raise UsageError(f"--estimator {spec!r}: unknown option {key!r}; known: {known}")
        if types[key] in (str, "str", "str | None"):
            values[key] = text
            continue
        try:
            values[key] = float(text) if types[key] in (float, "float") else int(text)
        except ValueError:
            raise UsageError(f"--estimator {spec!r}: {key} must be a number, got {text!r}") from None
    return values


def _tune(options: dict[str, str], spec: str, seed: int, proxy: ProxySettings | None) -> TuneSettings | None:
    """A supernet's fine-tune settings (None: read off), the learning rate the proxy's."""
    if not options:
        return None
    values = _typed(TuneSettings, options, spec, seed=seed)
    if "steps" not in values:
        raise UsageError(f"--estimator {spec!r}: supernet options train each candidate; give steps=N (0: read off)")
    if not values["steps"]:
        return None
    return TuneSettings(**{"lr": (proxy or ProxySettings()).lr, **values})


def make_estimator(spec: str, data: str = "digits", seed: int = 0, proxy: ProxySettings | None = None,
                   space: str = "mbconv") -> AccuracyEstimator:
    """The estimator ``spec`` names, on ``data`` with training seed ``seed``; ``proxy`` gives the
    training settings ``train`` starts from (the search's flags); a supernet must be of ``space``."""
    name, options = parse_spec(spec)
    if name == SUPERNET:
        from nas.estimators.supernet import SupernetEstimator
        from nas.supernet import supernet_path

        path = supernet_path(options.pop("name", space))
        if not path.is_file():
            raise UsageError(f"--estimator {spec}: no supernet at {path}; train one with "
                             f"`nas supernet train --space {space}`")
        return SupernetEstimator(path, space=space, data=data, tune=_tune(options, spec, seed, proxy), seed=seed)
    if name == HYBRID:
        raise UsageError("hybrid is a search strategy, not one estimator: use it with `nas search --estimator`")
    if name == TRAINED:
        base = proxy or ProxySettings()
        inherited = {f.name: getattr(base, f.name) for f in fields(ProxySettings)}
        given = _typed(ProxySettings, options, spec, seed=seed)
        if given.get("epochs", base.epochs) != base.epochs:
            del inherited["score"]  # another number of epochs chooses its own default score
        settings = ProxySettings(**{**inherited, **given})
        return ProxyTraining(load_proxy_data(data, settings.resolution), settings)
    if name in PROXIES:
        return ZeroCost(ZeroCostSettings(**_typed(ZeroCostSettings, options, spec, proxy=name, data=data, seed=seed)))
    return SizeEstimator(SizeSettings(**_typed(SizeSettings, options, spec, metric=name)))
