"""A per-device latency table: time every layer a space can produce once, then predict.

A network's layers are its stem, each block (repeats unrolled) at its input shape, and its
head. Each distinct layer is an entry, keyed by what its latency depends on; entries are
measured once per device (``nas latency build``) and stored with the device fingerprint.

Summed entries are not the whole network's latency: measured alone, a layer finds its weights
and input in cache, and the sum was 76-96% of the whole network here. So the sum goes through
a calibration fitted on whole-network measurements of random networks of the space: a linear
model of the summed latency, the layer count, the weights and the activations touched, whose
features are chosen by leave-one-out error on those measurements (see ``Calibration``).
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from typing import Any

import numpy as np

from nas.errors import UsageError
from nas.latency import LatencySettings, Measurement, device_fingerprint, measure_latency
from nas.metrics import count_macs
from search_spaces import Block, FactorizedSpace, Genotype, build_model, get_space, network_parts
from search_spaces.blocks import encode
from storage import latency as store
from storage import resolve_url

NUM_CLASSES = 1000  # the ImageNet head every measured network carries
CALIBRATION_SEED = 10_000  # random networks for calibration and validation never overlap
VALIDATION_SEED = 20_000
_UNUSED_HEAD = 8  # head width of builds whose head is thrown away (timm's MobileNetV3 needs one)
_STEM_BLOCK = dict(type="ds", repeats=1, kernel=3, stride=1)  # a placeholder stage for stem/head-only builds


@dataclass(frozen=True)
class Layer:
    """One entry of a table: a stem, a block or a head, at its input shape."""

    kind: str  # "stem" | "block" | "head"
    family: str
    act: str
    in_chs: int
    size: int  # input height and width
    block: Block | None = None  # repeats 1, stride as placed
    out_chs: int = 0  # stem width, or head width (num_features)

    @cached_property
    def key(self) -> str:
        what = encode(self.block) if self.block is not None else f"c{self.out_chs}"
        return f"{self.kind}:{self.family}:{self.act}:{what}:i{self.in_chs}:r{self.size}"

    @property
    def activations(self) -> int:
        """Input elements: the memory traffic a layer adds that its weights do not show."""
        return self.in_chs * self.size * self.size

    @property
    def expanded(self) -> float:
        """Elements of the widest tensor inside the layer (an MBConv's expansion), which leaves
        the cache inside a network but not when the layer is timed alone."""
        grow = self.block.expansion if self.block is not None and self.block.type in ("ir", "er") else 1.0
        return self.activations * grow

    def module(self):
        """The layer as timm builds it (a one-block network built by timm, then cut out)."""
        if self.kind == "block":
            genotype = Genotype(stages=((self.block,),), stem_size=self.in_chs, num_features=_UNUSED_HEAD,
                                family=self.family, act=self.act)
            return network_parts(build_model(genotype, num_classes=NUM_CLASSES))[1][0]
        placeholder = Block(out_chs=self.in_chs, **_STEM_BLOCK)  # type: ignore[arg-type]
        stem_size = self.out_chs if self.kind == "stem" else self.in_chs
        num_features = self.out_chs if self.kind == "head" else _UNUSED_HEAD
        genotype = Genotype(stages=((placeholder,),), stem_size=stem_size, num_features=num_features,
                            family=self.family, act=self.act)
        stem, _, head = network_parts(build_model(genotype, num_classes=NUM_CLASSES))
        return stem if self.kind == "stem" else head

    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int]:
        return (batch, self.in_chs, self.size, self.size)


@lru_cache(maxsize=1 << 16)
def _block_layer(block: Block, family: str, act: str, in_chs: int, size: int) -> Layer:
    if not (block.stride == 1 and in_chs == block.out_chs):
        block = block.with_(skip=None)  # no residual is possible: skip or not is the same layer
    return Layer("block", family, act, in_chs, size, block)


def _block_layers(block: Block, family: str, act: str, in_chs: int, size: int) -> list[Layer]:
    """A block string's layers, repeats unrolled (the first strides); ``size`` is its input size."""
    first = block.with_(repeats=1)
    rest = first.with_(stride=1)
    layers = []
    for i in range(block.repeats):
        layer = _block_layer(first if i == 0 else rest, family, act, in_chs, size)
        layers.append(layer)
        size, in_chs = -(-size // layer.block.stride), block.out_chs
    return layers


def network_layers(genotype: Genotype, resolution: int) -> tuple[Layer, ...]:
    """Every layer of ``genotype`` at ``resolution`` in order, computed without building it.

    Spatial sizes follow timm's symmetric padding: a stride-s convolution maps n to ceil(n/s).
    """
    family, act = genotype.family, genotype.act
    size = -(-resolution // 2)
    layers = [Layer("stem", family, act, 3, resolution, out_chs=genotype.stem_size)]
    chs = genotype.stem_size
    for stage in genotype.stages:
        for block in stage:
            layers += _block_layers(block, family, act, chs, size)
            size, chs = -(-size // block.stride), block.out_chs
    layers.append(Layer("head", family, act, chs, size, out_chs=genotype.num_features))
    return tuple(layers)


def space_layers(space: FactorizedSpace, resolution: int) -> dict[str, Layer]:
    """Every distinct layer the space can produce at ``resolution``, by key."""
    layers: dict[str, Layer] = {}
    for genotype in space.covering_genotypes():
        for layer in network_layers(genotype, resolution):
            layers.setdefault(layer.key, layer)
    return layers


class _RandomPicks:
    """A ``Suggester`` drawing uniformly: random networks of a space without an Optuna study."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def suggest_categorical(self, name: str, choices: Sequence) -> object:
        return self.rng.choice(list(choices))


def random_networks(space: FactorizedSpace, count: int, seed: int, exclude: Iterable[str] = ()) -> list[Genotype]:
    """``count`` distinct random networks of the space, none whose key is in ``exclude``."""
    picks, seen, found = _RandomPicks(seed), set(exclude), []
    for _ in range(100 * count):
        genotype = space.sample(picks)
        if genotype.key not in seen:
            seen.add(genotype.key)
            found.append(genotype)
            if len(found) == count:
                break
    return found


# --- calibration ---------------------------------------------------------------------------------
FEATURES = ("sum_ms", "layers", "mparams", "mactivations", "mexpanded")
_FEATURE_SETS = [s for n in range(1, 5) for s in itertools.combinations(FEATURES, n) if s[0] == "sum_ms"]


def _features(layers: Sequence[Layer], entries: dict[str, tuple[float, int]]) -> dict[str, float]:
    return dict(zip(FEATURES, _feature_sums(layers, entries), strict=True))


def _feature_sums(layers: Sequence[Layer], entries: dict[str, tuple[float, int]]) -> tuple[float, ...]:
    latency = params = activations = expanded = 0.0
    for layer in layers:
        entry = entries[layer.key]
        latency += entry[0]
        params += entry[1]
        activations += layer.activations
        expanded += layer.expanded
    return latency, float(len(layers)), params / 1e6, activations / 1e6, expanded / 1e6


def _fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares on relative error (rows divided by the measurement), with an intercept."""
    design = np.column_stack([x, np.ones(len(x))]) / y[:, None]
    coef, *_ = np.linalg.lstsq(design, np.ones(len(y)), rcond=None)
    return coef


@dataclass(frozen=True)
class Calibration:
    """``latency = intercept + sum(coefficient * feature)``, fitted on whole-network measurements."""

    features: tuple[str, ...] = ("sum_ms",)
    coefficients: tuple[float, ...] = (1.0,)
    intercept: float = 0.0
    loo_rmse_pct: float | None = None  # leave-one-out relative error of this choice
    samples: int = 0
    points: list[dict[str, Any]] = field(default_factory=list)  # arch_key, measured_ms, features

    def outside(self, features: dict[str, float], margin: float = 0.1) -> list[str]:
        """Features beyond the calibration networks' range (+-margin): the fit extrapolates there."""
        far = []
        for name in self.features:
            seen = [p["features"][name] for p in self.points]
            if seen and not min(seen) * (1 - margin) <= features[name] <= max(seen) * (1 + margin):
                far.append(f"{name} {features[name]:.3g} (calibrated {min(seen):.3g}-{max(seen):.3g})")
        return far

    def __call__(self, features: dict[str, float]) -> float:
        return self.intercept + sum(c * features[f] for f, c in zip(self.features, self.coefficients, strict=True))

    @classmethod
    def fit(cls, points: list[dict[str, Any]]) -> Calibration:
        """Pick the feature set with the lowest leave-one-out relative error, then fit it on all."""
        y = np.array([p["measured_ms"] for p in points])
        best: tuple[float, tuple[str, ...]] | None = None
        for names in _FEATURE_SETS:
            if len(names) + 2 > len(points):
                continue
            x = np.array([[p["features"][f] for f in names] for p in points])
            errors = []
            for i in range(len(points)):
                keep = np.arange(len(points)) != i
                coef = _fit(x[keep], y[keep])
                errors.append((x[i] @ coef[:-1] + coef[-1]) / y[i] - 1)
            rmse = float(np.sqrt(np.mean(np.square(errors))) * 100)
            if best is None or rmse < best[0]:
                best = (rmse, names)
        if best is None:
            raise UsageError(f"calibration needs at least 3 whole-network measurements, got {len(points)}")
        rmse, names = best
        coef = _fit(np.array([[p["features"][f] for f in names] for p in points]), y)
        return cls(names, tuple(float(c) for c in coef[:-1]), float(coef[-1]), rmse, len(points), points)

    def to_dict(self) -> dict[str, Any]:
        return {"features": list(self.features), "coefficients": list(self.coefficients), "intercept": self.intercept,
                "loo_rmse_pct": self.loo_rmse_pct, "samples": self.samples, "points": self.points}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        return cls(tuple(data["features"]), tuple(data["coefficients"]), data["intercept"], data.get("loo_rmse_pct"),
                   data.get("samples", 0), data.get("points", []))


# --- prediction ---------------------------------------------------------------------------------
class MissingEntries(UsageError):
    """The table lacks layers of this network (it is outside the space the table was built for)."""

    def __init__(self, layers: list[Layer]) -> None:
        self.layers = layers
        super().__init__(f"the latency table lacks {len(layers)} layer(s) of this network, e.g. {layers[0].key}; "
                         "let `nas latency predict` measure them (the default) or build the table for its space")


@dataclass(frozen=True)
class LatencyPredictor:
    """Predicts a network's latency on one device from its table and calibration."""

    table_id: int
    fingerprint: dict[str, Any]
    entries: dict[str, tuple[float, int]]
    calibration: Calibration
    space: str | None
    _sums: dict[tuple, tuple[float, ...]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def resolution(self) -> int:
        return int(self.fingerprint["resolution"])

    def missing(self, genotype: Genotype) -> list[Layer]:
        seen: dict[str, Layer] = {}
        for layer in network_layers(genotype, self.resolution):
            if layer.key not in self.entries:
                seen.setdefault(layer.key, layer)
        return list(seen.values())

    def features(self, genotype: Genotype) -> dict[str, float]:
        """The calibration's inputs, summed per stem, block string and head: a block string in its
        context (input channels and size) recurs across networks, so each is summed once."""
        family, act, size = genotype.family, genotype.act, -(-self.resolution // 2)
        stem = Layer("stem", family, act, 3, self.resolution, out_chs=genotype.stem_size)
        chs = genotype.stem_size
        try:
            total = self._sum([stem])
            for stage in genotype.stages:
                for block in stage:
                    context = (block, family, act, chs, size)
                    if context not in self._sums:
                        self._sums[context] = self._sum(_block_layers(*context))
                    total = [a + b for a, b in zip(total, self._sums[context], strict=True)]
                    size, chs = -(-size // block.stride), block.out_chs
            total = [a + b for a, b in zip(total, self._sum([Layer("head", family, act, chs, size,
                                                                    out_chs=genotype.num_features)]), strict=True)]
        except KeyError:
            raise MissingEntries(self.missing(genotype)) from None
        return dict(zip(FEATURES, total, strict=True))

    def _sum(self, layers: Sequence[Layer]) -> tuple[float, ...]:
        return _feature_sums(layers, self.entries)

    def raw_sum(self, genotype: Genotype) -> float:
        """The table's plain sum, before calibration."""
        return self.features(genotype)["sum_ms"]

    def __call__(self, genotype: Genotype) -> float:
        return self.calibration(self.features(genotype))


def settings_from(fingerprint: dict[str, Any]) -> LatencySettings:
    return LatencySettings(resolution=int(fingerprint["resolution"]), threads=int(fingerprint["threads"]),
                           backend=str(fingerprint["backend"]), batch=int(fingerprint["batch"]),
                           passes=int(fingerprint["passes"]))


def find_predictor(storage_url: str | None, settings: LatencySettings, space: str | None = None) -> LatencyPredictor | None:
    """The predictor for this device, or None if no table was built for it.

    Calibration comes from ``space`` when given, else from the only (or first) calibrated space
    on the table; a table with no calibration yet predicts the plain sum.
    """
    url = resolve_url(storage_url)
    fingerprint = device_fingerprint(settings)
    table_id = store.find_table(url, fingerprint)
    if table_id is None:
        return None
    models = [m for m in store.list_models(url, table_id) if m["calibration"]]
    chosen = next((m for m in models if m["space"] == space), None) if space else (models[0] if models else None)
    if space is not None and chosen is None:
        return None
    calibration = Calibration.from_dict(chosen["calibration"]) if chosen else Calibration()
    return LatencyPredictor(table_id, fingerprint, store.load_entries(url, table_id), calibration,
                            chosen["space"] if chosen else None)


def load_predictor(storage_url: str | None, settings: LatencySettings, space: str | None = None) -> LatencyPredictor:
    """Like ``find_predictor``, but a missing table is a one-line error that says what to run."""
    predictor = find_predictor(storage_url, settings, space)
    if predictor is None:
        what = f"space {space!r} on " if space else ""
        raise UsageError(f"no latency table for {what}this device ({describe(device_fingerprint(settings))}); "
                         f"run `nas latency build --space {space or 'SPACE'}` with the same settings first")
    return predictor


def describe(fingerprint: dict[str, Any]) -> str:
    return (f"{fingerprint['cpu']}, {fingerprint['backend']}, {fingerprint['threads']} thread(s), "
            f"{fingerprint['resolution']} px, batch {fingerprint['batch']}")


# --- building, calibrating and validating --------------------------------------------------------------
Progress = Callable[[str, int, int], None]  # (phase, done, total)


def measure_layer(layer: Layer, settings: LatencySettings) -> tuple[Measurement, int]:
    module = layer.module()
    params = sum(p.numel() for p in module.parameters())
    return measure_latency(module, settings, layer.input_shape(settings.batch)), params


def fill_entries(url: str, table_id: int, layers: Sequence[Layer], settings: LatencySettings,
                 progress: Progress | None = None) -> tuple[float, int]:
    """Measure ``layers`` in ``settings.passes`` rounds, each round over all of them (a burst of
    interference then spoils one round of a layer, not all); every round of every layer is stored
    at once, so an interrupted build resumes where it stopped. Returns (seconds, rounds measured)."""
    start = time.perf_counter()
    single = replace(settings, passes=1)
    done = store.entry_passes(url, table_id)
    work = [(round_, layer) for round_ in range(1, settings.passes + 1) for layer in layers
            if done.get(layer.key, 0) < round_]
    for count, (round_, layer) in enumerate(work, 1):
        measured, params = measure_layer(layer, single)
        store.record_pass(url, table_id, layer.key, round_, latency_ms=measured.latency_ms, spread_ms=measured.spread_ms,
                          load_avg=measured.load_avg, params=params)
        if progress:
            progress("measure layers", count, len(work))
    return time.perf_counter() - start, len(work)


def measure_network(genotype: Genotype, settings: LatencySettings) -> Measurement:
    return measure_latency(build_model(genotype, num_classes=NUM_CLASSES), settings)


def measure_networks(genotypes: Sequence[Genotype], settings: LatencySettings, phase: str,
                     progress: Progress | None = None) -> list[Measurement]:
    """Whole networks measured as the table's layers are: ``settings.passes`` rounds over all of
    them, each network's fastest round kept (its ``pass_ms`` holds every round)."""
    single = replace(settings, passes=1)
    models = [build_model(g, num_classes=NUM_CLASSES) for g in genotypes]
    rounds: list[list[Measurement]] = [[] for _ in models]
    total = len(models) * settings.passes
    for round_ in range(settings.passes):
        for i, model in enumerate(models):
            rounds[i].append(measure_latency(model, single))
            if progress:
                progress(phase, round_ * len(models) + i + 1, total)
    results = []
    for measured in rounds:
        best = min(measured, key=lambda m: m.latency_ms)
        results.append(replace(best, runs=sum(m.runs for m in measured), pass_ms=tuple(m.latency_ms for m in measured)))
    return results


@dataclass(frozen=True)
class BuildResult:
    table_id: int
    fingerprint: dict[str, Any]
    space: str
    entries: int  # the space's layers, all stored now
    measured: int  # layer rounds measured by this call (a layer takes settings.passes rounds)
    build_s: float  # measuring the table's layers for this space, over all (resumed) calls
    calibration: Calibration


def build_table(space_name: str, settings: LatencySettings, storage_url: str | None = None, *,
                calibration_samples: int = 60, progress: Progress | None = None) -> BuildResult:
    """Measure every layer of the space not yet stored for this device, then calibrate."""
    space = _space(space_name)
    if calibration_samples < 5:
        raise UsageError(f"--calibration must be >= 5 networks, got {calibration_samples}")
    url = resolve_url(storage_url)
    fingerprint = device_fingerprint(settings)
    table_id = store.get_or_create_table(url, fingerprint)
    layers = space_layers(space, settings.resolution)
    done = store.entry_passes(url, table_id)
    todo = [layer for key, layer in layers.items() if done.get(key, 0) < settings.passes]
    model = store.load_model(url, table_id, space.name) or {}
    spent, rounds = fill_entries(url, table_id, todo, settings, progress)
    build_s = (model.get("build_s") or 0.0) + (spent if rounds else 0.0)
    store.save_model(url, table_id, space.name, build_s=build_s)
    calibration = model.get("calibration")
    if calibration is None or calibration.get("samples") != calibration_samples or todo:
        entries = store.load_entries(url, table_id)
        networks = random_networks(space, calibration_samples, CALIBRATION_SEED)
        measured = measure_networks(networks, settings, "calibrate on whole networks", progress)
        points = [{"arch_key": g.key, "measured_ms": m.latency_ms, "spread_ms": m.spread_ms, "pass_ms": list(m.pass_ms),
                   "features": _features(network_layers(g, settings.resolution), entries)}
                  for g, m in zip(networks, measured, strict=True)]
        calibration = Calibration.fit(points).to_dict()
        store.save_model(url, table_id, space.name, calibration=calibration, validation=None)
    return BuildResult(table_id, fingerprint, space.name, len(layers), rounds, build_s, Calibration.from_dict(calibration))


def _space(name: str) -> FactorizedSpace:
    try:
        return get_space(name)
    except ValueError as err:
        raise UsageError(f"--space: {err}") from None


def _within(errors: np.ndarray, pct: float) -> float:
    return float(np.mean(np.abs(errors) <= pct / 100))


def validate_table(space_name: str, settings: LatencySettings, storage_url: str | None = None, *,
                   samples: int = 100, progress: Progress | None = None) -> dict[str, Any]:
    """Measure ``samples`` random networks the calibration never saw and score the predictor.

    Beside the predictor's error it reports the measurement's own noise: how far one round of a
    network's measurement lands from another round. The result is stored with the table.
    """
    from scipy import stats

    space = _space(space_name)
    if samples < 3:
        raise UsageError(f"--samples must be >= 3, got {samples}")
    url = resolve_url(storage_url)
    predictor = load_predictor(url, settings, space.name)
    seen = [p["arch_key"] for p in predictor.calibration.points]
    networks = random_networks(space, samples, VALIDATION_SEED, exclude=seen)
    start = time.perf_counter()
    measurements = measure_networks(networks, settings, "validate on unseen networks", progress)
    measure_s = time.perf_counter() - start
    points = [{"arch_key": g.key, "predicted_ms": predictor(g), "measured_ms": m.latency_ms, "spread_ms": m.spread_ms,
               "pass_ms": list(m.pass_ms), "sum_ms": predictor.raw_sum(g), "load_avg": m.load_avg,
               "macs": count_macs(g, settings.resolution)} for g, m in zip(networks, measurements, strict=True)]
    predicted = np.array([p["predicted_ms"] for p in points])
    measured = np.array([p["measured_ms"] for p in points])
    errors = predicted / measured - 1
    sum_errors = np.array([p["sum_ms"] for p in points]) / measured - 1
    rounds = np.array([p["pass_ms"] for p in points])
    rerun = rounds[:, 1] / rounds[:, 0] - 1 if rounds.shape[1] > 1 else np.array([])
    result = {
        "space": space.name, "samples": len(points), "device": predictor.fingerprint,
        "within_5pct": _within(errors, 5), "within_10pct": _within(errors, 10),
        "rmse_ms": float(np.sqrt(np.mean((predicted - measured) ** 2))),
        "mean_abs_error_pct": float(np.mean(np.abs(errors)) * 100),
        "spearman": float(stats.spearmanr(predicted, measured).statistic),
        "kendall_tau": float(stats.kendalltau(predicted, measured).statistic),
        "macs_kendall_tau": float(stats.kendalltau([p["macs"] for p in points], measured).statistic),  # FLOPs mislead
        "uncalibrated_within_10pct": _within(sum_errors, 10),
        "sum_to_whole_ratio": {"mean": float(np.mean(sum_errors + 1)), "min": float(np.min(sum_errors + 1)),
                               "max": float(np.max(sum_errors + 1))},
        "measurement_noise": {
            "rounds": int(rounds.shape[1]),
            "rerun_within_5pct": _within(rerun, 5) if len(rerun) else None,
            "rerun_within_10pct": _within(rerun, 10) if len(rerun) else None,
            "rerun_rms_pct": float(np.sqrt(np.mean(rerun ** 2)) * 100) if len(rerun) else None,
            "median_iqr_pct": float(np.median([p["spread_ms"] / p["measured_ms"] for p in points]) * 100),
            "load_avg_max": float(max(p["load_avg"] for p in points)),
        },
        "measurements_per_s": len(points) * settings.passes / measure_s,
        "calibration": {k: v for k, v in predictor.calibration.to_dict().items() if k != "points"},
        "points": points,
    }
    store.save_model(url, predictor.table_id, space.name, validation=result)
    return result


def predictions_per_second(predictor: LatencyPredictor, networks: Sequence[Genotype], min_s: float = 1.0) -> float:
    """Throughput of ``predictor`` on ``networks`` (fresh layer lists each time round)."""
    done, start = 0, time.perf_counter()
    while True:
        for genotype in networks:
            predictor(genotype)
        done += len(networks)
        elapsed = time.perf_counter() - start
        if elapsed >= min_s:
            return done / elapsed


def fill_missing(storage_url: str | None, predictor: LatencyPredictor, genotype: Genotype,
                 progress: Progress | None = None) -> tuple[LatencyPredictor, int]:
    """Measure the layers of ``genotype`` the table lacks (on this device) and reload it."""
    layers = predictor.missing(genotype)
    if not layers:
        return predictor, 0
    url = resolve_url(storage_url)
    fill_entries(url, predictor.table_id, layers, settings_from(predictor.fingerprint), progress)
    return (LatencyPredictor(predictor.table_id, predictor.fingerprint, store.load_entries(url, predictor.table_id),
                             predictor.calibration, predictor.space), len(layers))


def table_summaries(storage_url: str | None) -> list[dict[str, Any]]:
    """Every stored table (device), with its entries and each space's calibration and validation figures."""
    summaries = []
    for table in store.list_tables(resolve_url(storage_url)):
        spaces = []
        for model in table["models"]:
            calibration, validation = model.get("calibration") or {}, model.get("validation") or {}
            spaces.append({
                "space": model["space"], "build_s": model["build_s"],
                "calibration": {k: v for k, v in calibration.items() if k != "points"} or None,
                "validation": {k: v for k, v in validation.items() if k != "points"} or None,
            })
        summaries.append({"id": table["id"], "device_key": table["device_key"], "fingerprint": table["fingerprint"],
                          "entries": table["entries"], "created_at": table["created_at"], "spaces": spaces})
    return summaries


__all__ = [
    "BuildResult", "Calibration", "Layer", "LatencyPredictor", "MissingEntries", "build_table", "describe",
    "fill_missing", "find_predictor", "load_predictor", "network_layers", "predictions_per_second",
    "random_networks", "space_layers", "table_summaries", "validate_table",
]
