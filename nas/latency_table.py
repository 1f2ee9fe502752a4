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
from dataclasses import dataclass, field
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
            first = block.with_(repeats=1)
            rest = first.with_(stride=1) if block.repeats > 1 else None
            for i in range(block.repeats):
                layer = _block_layer(first if i == 0 else rest, family, act, chs, size)
                layers.append(layer)
                size, chs = -(-size // layer.block.stride), block.out_chs
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
FEATURES = ("sum_ms", "layers", "mparams", "mactivations")
_FEATURE_SETS = [s for n in range(1, 5) for s in itertools.combinations(FEATURES, n) if s[0] == "sum_ms"]


def _features(layers: Sequence[Layer], entries: dict[str, tuple[float, int]]) -> dict[str, float]:
    return {
        "sum_ms": sum(entries[layer.key][0] for layer in layers),
        "layers": float(len(layers)),
        "mparams": sum(entries[layer.key][1] for layer in layers) / 1e6,
        "mactivations": sum(layer.activations for layer in layers) / 1e6,
    }


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
        layers = network_layers(genotype, self.resolution)
        try:
            return _features(layers, self.entries)
        except KeyError:
            raise MissingEntries(self.missing(genotype)) from None

    def raw_sum(self, genotype: Genotype) -> float:
        return self.features(genotype)["sum_ms"]

    def __call__(self, genotype: Genotype) -> float:
        return self.calibration(self.features(genotype))


def settings_from(fingerprint: dict[str, Any]) -> LatencySettings:
    return LatencySettings(resolution=int(fingerprint["resolution"]), threads=int(fingerprint["threads"]),
                           backend=str(fingerprint["backend"]), batch=int(fingerprint["batch"]))


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
                 progress: Progress | None = None) -> float:
    """Measure and store ``layers`` one by one (each stored at once, so an interrupted build
    resumes where it stopped); returns the seconds spent."""
    start = time.perf_counter()
    for done, layer in enumerate(layers, 1):
        measured, params = measure_layer(layer, settings)
        store.add_entries(url, table_id, [{"key": layer.key, "latency_ms": measured.latency_ms, "params": params,
                                           "spread_ms": measured.spread_ms, "load_avg": measured.load_avg}])
        if progress:
            progress("measure layers", done, len(layers))
    return time.perf_counter() - start


def measure_network(genotype: Genotype, settings: LatencySettings) -> Measurement:
    return measure_latency(build_model(genotype, num_classes=NUM_CLASSES), settings)


@dataclass(frozen=True)
class BuildResult:
    table_id: int
    fingerprint: dict[str, Any]
    space: str
    entries: int  # the space's layers, all stored now
    measured: int  # measured by this call
    build_s: float  # measuring the table's layers for this space, over all (resumed) calls
    calibration: Calibration


def build_table(space_name: str, settings: LatencySettings, storage_url: str | None = None, *,
                calibration_samples: int = 40, progress: Progress | None = None) -> BuildResult:
    """Measure every layer of the space not yet stored for this device, then calibrate."""
    space = _space(space_name)
    if calibration_samples < 5:
        raise UsageError(f"--calibration must be >= 5 networks, got {calibration_samples}")
    url = resolve_url(storage_url)
    fingerprint = device_fingerprint(settings)
    table_id = store.get_or_create_table(url, fingerprint)
    layers = space_layers(space, settings.resolution)
    stored = store.load_entries(url, table_id)
    todo = [layer for key, layer in layers.items() if key not in stored]
    model = store.load_model(url, table_id, space.name) or {}
    spent = fill_entries(url, table_id, todo, settings, progress)
    build_s = (model.get("build_s") or 0.0) + spent
    store.save_model(url, table_id, space.name, build_s=build_s)
    calibration = model.get("calibration")
    if calibration is None or calibration.get("samples") != calibration_samples or todo:
        entries = store.load_entries(url, table_id)
        points = []
        networks = random_networks(space, calibration_samples, CALIBRATION_SEED)
        for done, genotype in enumerate(networks, 1):
            measured = measure_network(genotype, settings)
            points.append({"arch_key": genotype.key, "measured_ms": measured.latency_ms, "spread_ms": measured.spread_ms,
                           "features": _features(network_layers(genotype, settings.resolution), entries)})
            if progress:
                progress("calibrate on whole networks", done, len(networks))
        calibration = Calibration.fit(points).to_dict()
        store.save_model(url, table_id, space.name, calibration=calibration, validation=None)
    return BuildResult(table_id, fingerprint, space.name, len(layers), len(todo), build_s, Calibration.from_dict(calibration))


def _space(name: str) -> FactorizedSpace:
    try:
        return get_space(name)
    except ValueError as err:
        raise UsageError(f"--space: {err}") from None


def _within(errors: np.ndarray, pct: float) -> float:
    return float(np.mean(np.abs(errors) <= pct / 100))


def validate_table(space_name: str, settings: LatencySettings, storage_url: str | None = None, *,
                   samples: int = 100, remeasure_every: int = 5, progress: Progress | None = None) -> dict[str, Any]:
    """Measure ``samples`` random networks the calibration never saw and score the predictor.

    Every ``remeasure_every``-th network is measured twice, to report the measurement's own
    run-to-run noise beside the predictor's error. The result is stored with the table.
    """
    from scipy import stats

    space = _space(space_name)
    if samples < 3:
        raise UsageError(f"--samples must be >= 3, got {samples}")
    url = resolve_url(storage_url)
    predictor = load_predictor(url, settings, space.name)
    seen = [p["arch_key"] for p in predictor.calibration.points]
    networks = random_networks(space, samples, VALIDATION_SEED, exclude=seen)
    points, repeats = [], []
    start = time.perf_counter()
    for done, genotype in enumerate(networks, 1):
        measured = measure_network(genotype, settings)
        point = {"arch_key": genotype.key, "predicted_ms": predictor(genotype), "measured_ms": measured.latency_ms,
                 "spread_ms": measured.spread_ms, "sum_ms": predictor.raw_sum(genotype), "load_avg": measured.load_avg,
                 "macs": count_macs(genotype, settings.resolution)}
        if remeasure_every and done % remeasure_every == 0:
            point["remeasured_ms"] = measure_network(genotype, settings).latency_ms
            repeats.append(point["remeasured_ms"] / point["measured_ms"] - 1)
        points.append(point)
        if progress:
            progress("validate on unseen networks", done, len(networks))
    measure_s = time.perf_counter() - start
    predicted = np.array([p["predicted_ms"] for p in points])
    measured = np.array([p["measured_ms"] for p in points])
    errors = predicted / measured - 1
    sum_errors = np.array([p["sum_ms"] for p in points]) / measured - 1
    rerun = np.array(repeats)
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
            "remeasured": len(rerun),
            "rerun_within_5pct": _within(rerun, 5) if len(rerun) else None,
            "rerun_within_10pct": _within(rerun, 10) if len(rerun) else None,
            "rerun_rms_pct": float(np.sqrt(np.mean(rerun ** 2)) * 100) if len(rerun) else None,
            "median_iqr_pct": float(np.median([p["spread_ms"] / p["measured_ms"] for p in points]) * 100),
        },
        "measurements_per_s": (len(points) + len(rerun)) / measure_s,
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
    settings = settings_from(predictor.fingerprint)
    fill_entries(url, predictor.table_id, layers, settings, progress)
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
