"""The calibration: a least-squares fit on relative error, its feature set chosen by leave-one-out error."""

import numpy as np
import pytest

from nas.errors import UsageError
from nas.latency import Calibration, CalibrationPoint, Features

PROBE = Features(sum_ms=10.0, layers=20.0, mparams=2.0, mactivations=2.0, mexpanded=5.0)


def _points(measure, count=30, seed=0):
    rng = np.random.default_rng(seed)
    points = []
    for i in range(count):
        features = Features(rng.uniform(5, 20), float(rng.integers(10, 30)), rng.uniform(1, 5), rng.uniform(1, 3),
                            rng.uniform(2, 9))
        points.append(CalibrationPoint(str(i), measure(features), 0.1, (), features))
    return points


def test_an_exact_relation_is_recovered_with_its_own_features_only():
    calibration = Calibration.fit(_points(lambda f: 0.5 + 1.2 * f.sum_ms + 0.3 * f.mparams))
    assert calibration.features == ("sum_ms", "mparams")  # supersets fit as well: the smaller set wins the tie
    assert calibration.coefficients == pytest.approx((1.2, 0.3), rel=1e-9)
    assert calibration.intercept == pytest.approx(0.5, rel=1e-9)
    assert calibration.loo_rmse_pct == pytest.approx(0.0, abs=1e-9) and calibration.samples == 30
    assert calibration(PROBE) == pytest.approx(0.5 + 12 + 0.6, rel=1e-12)


def test_the_fit_minimises_relative_error():
    """Noisy data: the fit equals least squares on rows divided by the measurement, and the chosen
    set's leave-one-out error is the lowest of all candidate sets."""
    rng = np.random.default_rng(1)
    points = _points(lambda f: (0.5 + 1.2 * f.sum_ms + 0.3 * f.mparams) * (1 + rng.normal(0, 0.05)))
    calibration = Calibration.fit(points)
    x = np.array([[getattr(p.features, name) for name in calibration.features] + [1.0] for p in points])
    y = np.array([p.measured_ms for p in points])
    expected, *_ = np.linalg.lstsq(x / y[:, None], np.ones(len(y)), rcond=None)
    assert [*calibration.coefficients, calibration.intercept] == pytest.approx(expected, rel=1e-9)
    for names in [("sum_ms",), ("sum_ms", "layers", "mparams", "mexpanded")]:
        held_out = []
        for i in range(len(points)):
            keep = [j for j in range(len(points)) if j != i]
            xs = np.array([[getattr(points[j].features, n) for n in names] + [1.0] for j in keep]) / y[keep, None]
            coef, *_ = np.linalg.lstsq(xs, np.ones(len(keep)), rcond=None)
            held_out.append((np.array([getattr(points[i].features, n) for n in names] + [1.0]) @ coef) / y[i] - 1)
        assert calibration.loo_rmse_pct <= np.sqrt(np.mean(np.square(held_out))) * 100 + 1e-9


def test_extrapolation_is_flagged_beyond_the_calibrated_range():
    points = _points(lambda f: 0.5 + 1.2 * f.sum_ms + 0.3 * f.mparams)
    calibration = Calibration.fit(points)
    low, high = min(p.features.sum_ms for p in points), max(p.features.sum_ms for p in points)
    assert calibration.outside(PROBE) == []
    assert calibration.outside(PROBE._replace(sum_ms=80.0)) == [f"sum_ms 80 (calibrated {low:.3g}-{high:.3g})"]
    assert calibration.outside(PROBE._replace(sum_ms=high * 1.09)) == []  # within the 10% margin
    assert calibration.outside(PROBE._replace(layers=500.0)) == []  # not a feature of this fit


def test_too_few_networks_is_a_usage_error():
    with pytest.raises(UsageError, match="at least 3"):
        Calibration.fit(_points(lambda f: f.sum_ms, count=2))


def test_stored_form_round_trips_and_reads_tables_of_earlier_versions():
    calibration = Calibration.fit(_points(lambda f: 0.5 + 1.2 * f.sum_ms))
    assert Calibration.from_dict(calibration.to_dict()) == calibration
    assert set(calibration.to_dict()) == {"features", "coefficients", "intercept", "loo_rmse_pct", "samples", "points"}
    assert calibration.summary() == {k: v for k, v in calibration.to_dict().items() if k != "points"}
    old = {"features": ["sum_ms", "layers"], "coefficients": [1.1, 0.05], "intercept": 0.2, "loo_rmse_pct": 3.0, "samples": 1,
           "points": [{"arch_key": "a", "measured_ms": 9.0, "spread_ms": 0.1,  # before rounds and the expansion feature
                       "features": {"sum_ms": 7.0, "layers": 12.0, "mparams": 1.0, "mactivations": 1.0}}]}
    read = Calibration.from_dict(old)
    assert read(PROBE) == pytest.approx(0.2 + 11 + 1.0)
    assert read.points[0].pass_ms == () and np.isnan(read.points[0].features.mexpanded)
    assert Calibration.from_dict({"features": ["sum_ms"], "coefficients": [1.0], "intercept": 0.0})(PROBE) == 10.0
