"""Build, calibrate, validate and predict on a device with known latencies: exact figures out.

The real SQLite storage and the real layers of the `tiny` space; only the timer is the known
device (``known_latency.KnownDevice``), so nothing here depends on how busy the machine is.
"""

import shutil
from dataclasses import dataclass, replace

import pytest
from sqlalchemy import update

from known_latency import (
    INTERCEPT, LOAD_AVG, PER_LAYER, PER_SUM, ROUND_FACTORS, SPREAD_MS, Interrupted, KnownDevice, layer_ms, network_ms, table_sum,
)
from nas.errors import UsageError
from nas.latency import (
    BuildResult, LatencyPredictor, LatencySettings, MissingEntries, ValidationReport, build_table, device_fingerprint, fill_missing,
    find_predictor, load_predictor, random_networks, space_layers, table_summaries, validate_table,
)
from nas.latency.validate import VALIDATION_SEED
from search_spaces import get_space, seed_architecture
from storage import Store
from storage import latency as tables

SETTINGS = LatencySettings(resolution=64)
LAYERS = space_layers(get_space("tiny"), 64)


@pytest.fixture()
def store(tmp_path):
    return Store.open(f"sqlite:///{tmp_path / 'nas.db'}")


@dataclass(frozen=True)
class FirstBuild:
    path: object
    device: KnownDevice
    result: BuildResult
    phases: list


@pytest.fixture(scope="module")
def first_build(tmp_path_factory):
    """The tiny table built once from nothing, calibrated on 8 networks (tests copy its database)."""
    path, device, phases = tmp_path_factory.mktemp("table") / "nas.db", KnownDevice(), []
    result = build_table(Store.open(f"sqlite:///{path}"), "tiny", SETTINGS, calibration_samples=8, timer=device,
                         progress=lambda phase, done, total: phases.append((phase, done, total)))
    return FirstBuild(path, device, result, phases)


@pytest.fixture()
def built(first_build, tmp_path):
    """A copy of the first build's database; returns a fresh known device to time more with."""
    shutil.copy(first_build.path, tmp_path / "nas.db")
    return KnownDevice()


def test_a_build_stores_every_layer_at_its_fastest_round_and_fits_the_known_relation(first_build):
    result, device, phases = first_build.result, first_build.device, first_build.phases
    assert result.device == device_fingerprint(SETTINGS) and result.space == "tiny"
    assert result.entries == len(LAYERS) and result.measured_now == 3 * len(LAYERS)
    assert set(device.layer_rounds.values()) == {3} and set(device.network_rounds.values()) == {3}
    entries = tables.load_entries(Store.open(f"sqlite:///{first_build.path}"), result.table_id)
    assert {key: latency for key, (latency, _) in entries.items()} == {key: layer_ms(key) for key in LAYERS}
    assert all(params > 0 for _, params in entries.values())
    assert phases[-1] == ("calibrate on whole networks", 24, 24) and ("measure layers", 3 * len(LAYERS), 3 * len(LAYERS)) in phases

    calibration = result.calibration
    assert calibration.features == ("sum_ms", "layers") and calibration.samples == 8
    assert calibration.coefficients == pytest.approx((PER_SUM, PER_LAYER), rel=1e-9)
    assert calibration.intercept == pytest.approx(INTERCEPT, rel=1e-9)
    assert calibration.loo_rmse_pct == pytest.approx(0, abs=1e-9)
    point = calibration.points[0]
    genotype = random_networks(get_space("tiny"), 1, seed=10_000)[0]
    assert point.arch_key == genotype.key and point.measured_ms == network_ms(genotype, 64)
    assert point.pass_ms == tuple(f * point.measured_ms for f in ROUND_FACTORS) and point.spread_ms == SPREAD_MS
    assert point.features.sum_ms == pytest.approx(table_sum(genotype, 64), rel=1e-12)


def test_building_again_measures_nothing_and_keeps_the_calibration(store, built):
    first = load_predictor(store, SETTINGS, "tiny")
    device = KnownDevice()
    again = build_table(store, "tiny", SETTINGS, calibration_samples=8, timer=device)
    assert again.measured_now == 0 and not device.layer_rounds and not device.network_rounds
    assert again.calibration == first.calibration
    more = build_table(store, "tiny", SETTINGS, calibration_samples=10, timer=device)  # only the calibration is redone
    assert not device.layer_rounds and len(device.network_rounds) == 10 and more.calibration.samples == 10


def test_an_interrupted_build_resumes_where_it_stopped(store):
    device = KnownDevice(stop_after=50)
    with pytest.raises(Interrupted):
        build_table(store, "tiny", SETTINGS, calibration_samples=8, timer=device)
    table_id = tables.find_table(store, device_fingerprint(SETTINGS))
    assert sum(tables.entry_passes(store, table_id).values()) == 50  # every round stored as it was measured
    assert find_predictor(store, SETTINGS, "tiny") is None  # not calibrated yet
    device.stop_after = None
    resumed = build_table(store, "tiny", SETTINGS, calibration_samples=8, timer=device)
    assert resumed.measured_now == 3 * len(LAYERS) - 50 and resumed.entries == len(LAYERS)
    assert tables.entry_passes(store, table_id) == dict.fromkeys(LAYERS, 3)
    assert {key: latency for key, (latency, _) in tables.load_entries(store, table_id).items()} == \
        {key: layer_ms(key) for key in LAYERS}


def test_validation_scores_known_errors_exactly(store, built):
    predictor = load_predictor(store, SETTINGS, "tiny")
    calibrated = [p.arch_key for p in predictor.calibration.points]
    unseen = random_networks(get_space("tiny"), 20, VALIDATION_SEED, exclude=calibrated)
    built.skew = {g.key: 1.25 for g in unseen[:5]} | {g.key: 1.0625 for g in unseen[5:10]}  # -20% and -5.9% errors
    report = validate_table(store, "tiny", SETTINGS, samples=20, timer=built)

    assert [p.arch_key for p in report.points] == [g.key for g in unseen] and not set(calibrated) & {g.key for g in unseen}
    assert report.samples == 20 and report.space == "tiny" and report.device == device_fingerprint(SETTINGS)
    assert report.within_10pct == 0.75 and report.within_5pct == 0.5
    assert report.uncalibrated_within_10pct == 0.0  # the plain sum is 1/1.25 of the whole network and less
    for point, genotype in zip(report.points, unseen, strict=True):
        assert point.predicted_ms == pytest.approx(network_ms(genotype, 64), rel=1e-9)
        assert point.measured_ms == network_ms(genotype, 64) * built.skew.get(genotype.key, 1.0)
        assert point.sum_ms == pytest.approx(table_sum(genotype, 64), rel=1e-12) and point.macs > 0
    assert report.sum_to_whole_ratio.max < 1 / PER_SUM
    noise = report.measurement_noise
    first_over_second = ROUND_FACTORS[1] / ROUND_FACTORS[0] - 1
    assert noise.rounds == 3 and noise.rerun_within_5pct == 1.0 and noise.rerun_within_10pct == 1.0
    assert noise.rerun_rms_pct == pytest.approx(100 * abs(first_over_second), rel=1e-9)
    assert noise.load_avg_max == LOAD_AVG
    assert report.calibration == replace(predictor.calibration, points=())  # stored without its points

    stored = tables.load_model(store, predictor.table_id, "tiny")["validation"]
    assert ValidationReport.from_dict(stored) == report
    (summary,) = table_summaries(store)
    assert summary.entries == len(LAYERS) and summary.spaces[0].validation == report
    assert summary.to_dict()["spaces"][0]["validation"] == report.summary()


def test_the_validation_report_keeps_its_stored_keys_and_reads_earlier_reports(store, built):
    report = validate_table(store, "tiny", SETTINGS, samples=5, timer=built)
    stored = report.to_dict()
    assert list(stored) == ["space", "samples", "device", "within_5pct", "within_10pct", "rmse_ms", "mean_abs_error_pct",
                            "spearman", "kendall_tau", "macs_kendall_tau", "uncalibrated_within_10pct", "sum_to_whole_ratio",
                            "measurement_noise", "measurements_per_s", "calibration", "points"]
    assert list(stored["points"][0]) == ["arch_key", "predicted_ms", "measured_ms", "spread_ms", "pass_ms", "sum_ms",
                                         "load_avg", "macs"]
    assert list(stored["measurement_noise"]) == ["rounds", "rerun_within_5pct", "rerun_within_10pct", "rerun_rms_pct",
                                                 "median_iqr_pct", "load_avg_max"]
    assert "points" not in stored["calibration"] and "points" not in report.summary()
    earlier = {**stored, "measurement_noise": {"remeasured": 1, "rerun_within_5pct": 1.0, "rerun_within_10pct": 1.0,
                                               "rerun_rms_pct": 0.5, "median_iqr_pct": 2.0},
               "points": [{k: v for k, v in p.items() if k != "pass_ms"} | {"remeasured_ms": 1.0} for p in stored["points"]]}
    read = ValidationReport.from_dict(earlier)
    assert read.measurement_noise.rounds is None and read.points[0].pass_ms == () and read.within_10pct == report.within_10pct


def test_layers_outside_the_table_are_measured_once_and_flagged(store, built):
    predictor = load_predictor(store, SETTINGS, "tiny")
    seed = seed_architecture("mobilenetv3_small_100")
    missing = predictor.missing(seed)
    with pytest.raises(MissingEntries):
        predictor(seed)
    filled, count = fill_missing(store, predictor, seed, timer=built)
    assert count == len(missing) and not filled.missing(seed)
    assert all(built.layer_rounds[layer.key] == 3 for layer in missing)
    assert filled.entries[missing[0].key][0] == layer_ms(missing[0].key)
    assert filled.calibration.outside(filled.features(seed))  # the calibration saw only tiny networks
    assert fill_missing(store, filled, seed, timer=built) == (filled, 0)
    assert load_predictor(store, SETTINGS, "tiny").entries == filled.entries


def test_a_table_of_another_device_is_never_used(store, built):
    assert isinstance(find_predictor(store, SETTINGS, "tiny"), LatencyPredictor)
    assert isinstance(find_predictor(store, SETTINGS), LatencyPredictor)  # the only calibrated space
    assert find_predictor(store, SETTINGS, "mbconv") is None  # not calibrated for that space
    assert find_predictor(store, LatencySettings(resolution=96), "tiny") is None  # resolution is part of the device
    assert find_predictor(store, LatencySettings(resolution=64, passes=2), "tiny") is None
    with pytest.raises(UsageError, match="no latency table for space 'tiny'"):
        load_predictor(store, LatencySettings(resolution=96), "tiny")
    with store.session() as db:  # the same rows, now keyed to another CPU
        db.execute(update(tables.LatencyTable).values(device_key="elsewhere"))
    assert find_predictor(store, SETTINGS, "tiny") is None


def test_bad_arguments_are_usage_errors(store):
    with pytest.raises(UsageError, match="--space: unknown space 'nope'"):
        build_table(store, "nope", SETTINGS, timer=KnownDevice())
    with pytest.raises(UsageError, match="--calibration must be >= 5"):
        build_table(store, "tiny", SETTINGS, calibration_samples=4, timer=KnownDevice())
    with pytest.raises(UsageError, match="--samples must be >= 3"):
        validate_table(store, "tiny", SETTINGS, samples=2, timer=KnownDevice())
    with pytest.raises(UsageError, match="no latency table"):
        validate_table(store, "tiny", SETTINGS, samples=3, timer=KnownDevice())
