"""bench/search_rate.py: rates from the stored trials, latencies compared only where networks match."""

from bench_scripts import load

_rate = load("search_rate")


def test_latencies_are_compared_only_on_the_networks_both_timed():
    row = {"latency_ms": {"a": 11.0, "b": 9.0, "c": 5.0}}
    versus = _rate.against_alone(row, {"a": 10.0, "b": 10.0, "d": 1.0})
    assert versus["networks"] == 2
    assert abs(versus["median_pct"]) < 1e-9 and abs(versus["max_abs_pct"] - 10.0) < 1e-9
    assert _rate.against_alone(row, {"d": 1.0}) is None


def test_a_set_up_runs_exactly_its_budget_and_rates_it_from_the_stored_times(tmp_path):
    row = _rate.run("measured", f"sqlite:///{tmp_path / 'rate.db'}", 1, "measure", 3, space="tiny")
    assert row["trials"] == 3 and row["states"] == {"COMPLETE": 3} and row["latency"] == "measured"
    assert row["steady_s"] > 0 and abs(row["per_hour"] - 3600 * 2 / row["steady_s"]) < 1e-6
    assert 1 <= len(row["latency_ms"]) <= 3 and all(ms > 0 for ms in row["latency_ms"].values())
