"""Latency on the target device: measured for real, or predicted from the device's latency table.

- ``allocator``: the memory allocator a latency holds for (kept, default, preloaded)
- ``settings``: what a latency is for (``LatencySettings``, the device fingerprint)
- ``measure``: timing a module on this machine, and the ``Timer`` tables time through
- ``isolated``: timing a whole network in a child process that never trains
- ``layers``: a network's layers at their input shapes, and every layer of a space
- ``calibration``: from summed layer latencies to the whole network's
- ``build``: measuring a device's table and calibrating it
- ``predictor``: predicting from a stored table
- ``validate``: scoring a table on networks it never saw
"""

from nas.latency.build import BuildResult, build_table, fill_entries, measure_networks
from nas.latency.calibration import Calibration, CalibrationPoint, Features
from nas.latency.isolated import ISOLATED, measure_built, measure_network
from nas.latency.layers import Layer, network_layers, random_networks, space_layers
from nas.latency.allocator import ALLOCATORS, keep_freed_memory
from nas.latency.measure import DEVICE, DeviceTimer, Timer, measure_latency
from nas.latency.predictor import (
    LatencyPredictor, MissingEntries, fill_missing, find_predictor, load_predictor, predictions_per_second,
)
from nas.latency.settings import LatencySettings, Measurement, cpu_model, describe, device_fingerprint
from nas.latency.validate import SpaceSummary, TableSummary, ValidationReport, table_summaries, validate_table

__all__ = [
    "ALLOCATORS", "BuildResult", "Calibration", "CalibrationPoint", "DEVICE", "DeviceTimer", "Features", "ISOLATED",
    "LatencyPredictor",
    "LatencySettings", "Layer", "Measurement", "MissingEntries", "SpaceSummary", "TableSummary", "Timer", "ValidationReport",
    "build_table", "cpu_model", "describe", "device_fingerprint", "fill_entries", "fill_missing", "find_predictor",
    "keep_freed_memory", "load_predictor", "measure_built", "measure_latency", "measure_network", "measure_networks", "network_layers",
    "predictions_per_second", "random_networks", "space_layers", "table_summaries", "validate_table",
]
