"""A trained network's row in ``nas_runs``: its latency, params and MACs as the search counts
them (the real 1000-class RGB network at its own resolution, on this machine), next to the study
and trial it came from when it did."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from nas.latency import device_fingerprint
from nas.metrics import count_module_macs, count_params
from nas.recipe import Plan, TrainSettings
from nas.train import EpochRecord, Model, TrainResult
from storage import Store, add_run


@dataclass(frozen=True)
class RunRecord:
    """What ``nas train``/``nas baselines`` stored for one network (``--json`` prints these fields)."""

    run: int  # the nas_runs id
    name: str
    dataset: str
    accuracy: float
    latency_ms: float
    latency_spread_ms: float
    params: int
    macs: int
    resolution: int  # of latency and MACs
    checkpoint: str
    plan: Plan
    history: tuple[EpochRecord, ...]


def store_run(result: TrainResult, model_spec: Model, settings: TrainSettings, kind: str, store: Store) -> RunRecord:
    """Measure the trained network's real counterpart and store one ``nas_runs`` row of ``kind``."""
    resolution = model_spec.resolution
    latency_settings = replace(settings.latency, resolution=resolution)
    real = model_spec.make(1000)
    latency = model_spec.measure(latency_settings)  # timed where nothing trained: this process just did
    params = count_params(real)
    macs = count_module_macs(lambda: model_spec.make(1000), resolution)
    checkpoint = str(result.checkpoint.resolve())
    provenance = model_spec.description.get("architecture", {}).get("provenance", {})
    run_id = add_run(store, kind=kind, name=result.name, study=provenance.get("study"), trial=provenance.get("trial"),
                     architecture=model_spec.description, dataset=result.dataset, resolution=resolution,
                     accuracy=result.accuracy, latency_ms=latency.latency_ms, latency_spread_ms=latency.spread_ms,
                     params=params, macs=macs, device=device_fingerprint(latency_settings), checkpoint=checkpoint,
                     settings={**settings.recipe(), "plan": asdict(result.plan),
                               "history": [asdict(r) for r in result.history]})
    return RunRecord(run_id, result.name, result.dataset, result.accuracy, latency.latency_ms, latency.spread_ms,
                     params, macs, resolution, checkpoint, result.plan, result.history)
