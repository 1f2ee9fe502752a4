"""Building a device's table: time every layer a space can produce once, then calibrate.

Entries are measured once per device (``nas latency build``) and stored with the device
fingerprint as soon as they are measured, so an interrupted build resumes where it stopped.
Layers and whole networks are measured alike: ``settings.passes`` rounds over the whole set, each
item's fastest round kept, so a burst of interference spoils one round of a few items rather than
all rounds of one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from nas.errors import UsageError
from nas.latency.calibration import Calibration, CalibrationPoint, Features
from nas.latency.layers import NUM_CLASSES, Layer, network_layers, random_networks, space_layers, space_named
from nas.latency.measure import DEVICE, Timer
from nas.latency.settings import LatencySettings, Measurement, device_fingerprint
from nas.metrics import count_params
from search_spaces import FactorizedSpace, Genotype, build_model
from storage import Store
from storage import latency as tables

CALIBRATION_SEED = 10_000  # random networks for calibration and validation never overlap
Progress = Callable[[str, int, int], None]  # (phase, done, total)


def fill_entries(store: Store, table_id: int, layers: Sequence[Layer], settings: LatencySettings,
                 progress: Progress | None = None, *, timer: Timer = DEVICE) -> tuple[float, int]:
    """Measure ``layers`` in ``settings.passes`` rounds, each round over all of them; every round
    of every layer is stored at once. Returns (seconds, rounds measured)."""
    start = time.perf_counter()
    single = replace(settings, passes=1)
    done = tables.entry_passes(store, table_id)
    work = [(round_, layer) for round_ in range(1, settings.passes + 1) for layer in layers
            if done.get(layer.key, 0) < round_]
    for count, (round_, layer) in enumerate(work, 1):
        module = layer.module()
        measured = timer.layer(layer, module, single)
        tables.record_pass(store, table_id, layer.key, round_, latency_ms=measured.latency_ms, spread_ms=measured.spread_ms,
                           load_avg=measured.load_avg, params=count_params(module))
        if progress:
            progress("measure layers", count, len(work))
    return time.perf_counter() - start, len(work)


def measure_networks(genotypes: Sequence[Genotype], settings: LatencySettings, phase: str,
                     progress: Progress | None = None, *, timer: Timer = DEVICE) -> list[Measurement]:
    """Whole networks measured as the table's layers are: ``settings.passes`` rounds over all of
    them, each network's fastest round kept (its ``pass_ms`` holds every round)."""
    single = replace(settings, passes=1)
    models = [build_model(g, num_classes=NUM_CLASSES) for g in genotypes]
    rounds: list[list[Measurement]] = [[] for _ in models]
    total = len(models) * settings.passes
    for round_ in range(settings.passes):
        for i, (genotype, model) in enumerate(zip(genotypes, models, strict=True)):
            rounds[i].append(timer.network(genotype, model, single))
            if progress:
                progress(phase, round_ * len(models) + i + 1, total)
    results = []
    for measured in rounds:
        best = min(measured, key=lambda m: m.latency_ms)
        results.append(replace(best, runs=sum(m.runs for m in measured), pass_ms=tuple(m.latency_ms for m in measured)))
    return results


def calibrate(store: Store, table_id: int, space: FactorizedSpace, settings: LatencySettings, samples: int,
              progress: Progress | None = None, *, timer: Timer = DEVICE) -> Calibration:
    """Measure ``samples`` random networks of the space whole, fit the calibration on them and
    store it (a new calibration invalidates the stored validation)."""
    entries = tables.load_entries(store, table_id)
    networks = random_networks(space, samples, CALIBRATION_SEED)
    measured = measure_networks(networks, settings, "calibrate on whole networks", progress, timer=timer)
    calibration = Calibration.fit([
        CalibrationPoint(g.key, m.latency_ms, m.spread_ms, m.pass_ms, Features.of(network_layers(g, settings.resolution), entries))
        for g, m in zip(networks, measured, strict=True)])
    tables.save_model(store, table_id, space.name, calibration=calibration.to_dict(), validation=None)
    return calibration


@dataclass(frozen=True)
class BuildResult:
    table_id: int
    device: dict[str, Any]  # the fingerprint the table is for
    space: str
    entries: int  # the space's layers, all stored now
    measured_now: int  # layer rounds measured by this call (a layer takes settings.passes rounds)
    build_s: float  # measuring the table's layers for this space, over all (resumed) calls
    calibration: Calibration

    def to_dict(self) -> dict[str, Any]:
        """What ``nas latency build --json`` prints (the calibration without its points)."""
        return {**{f.name: getattr(self, f.name) for f in fields(self)}, "calibration": self.calibration.summary()}


def build_table(store: Store, space_name: str, settings: LatencySettings, *, calibration_samples: int = 60,
                progress: Progress | None = None, timer: Timer = DEVICE) -> BuildResult:
    """Measure every layer of the space not yet stored for this device, then calibrate (again
    when layers were added or the number of calibration networks changed)."""
    space = space_named(space_name)
    if calibration_samples < 5:
        raise UsageError(f"--calibration must be >= 5 networks, got {calibration_samples}")
    fingerprint = device_fingerprint(settings)
    table_id = tables.get_or_create_table(store, fingerprint)
    layers = space_layers(space, settings.resolution)
    done = tables.entry_passes(store, table_id)
    todo = [layer for key, layer in layers.items() if done.get(key, 0) < settings.passes]
    model = tables.load_model(store, table_id, space.name) or {}
    spent, rounds = fill_entries(store, table_id, todo, settings, progress, timer=timer)
    build_s = (model.get("build_s") or 0.0) + (spent if rounds else 0.0)
    tables.save_model(store, table_id, space.name, build_s=build_s)
    stored = Calibration.from_dict(model["calibration"]) if model.get("calibration") else None
    if stored is None or stored.samples != calibration_samples or todo:
        stored = calibrate(store, table_id, space, settings, calibration_samples, progress, timer=timer)
    return BuildResult(table_id, fingerprint, space.name, len(layers), rounds, build_s, stored)
