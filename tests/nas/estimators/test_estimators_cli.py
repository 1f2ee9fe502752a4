"""`nas estimators reference` and `rank` end to end on the tiny space (real short trainings)."""

from __future__ import annotations

import pytest

from storage import Store
from storage import reference as reference_store

pytestmark = pytest.mark.slow  # trains 15 small networks and a supernet


def test_reference_then_rank_writes_a_complete_table(nas_cli):
    built = nas_cli.json("estimators", "reference", "--space", "tiny", "--samples", "5", "--data", "digits",
                         "--resolution", "8", "--epochs", "1", "--repeats", "2")
    assert built["networks"] == 13 and built["repeated"] == 2  # 8 seed networks + 5 sampled
    assert all(0.0 <= a <= 1.0 for a in built["accuracy"].values())
    again = nas_cli.json("estimators", "reference", "--space", "tiny", "--samples", "5", "--data", "digits",
                         "--resolution", "8", "--epochs", "1", "--repeats", "2")
    assert again["accuracy"] == built["accuracy"]  # resumed: nothing trained twice
    store = Store.open(f"sqlite:///{nas_cli.cwd / 'nas.db'}")
    assert len(reference_store.results(store, built["reference"])) == 15

    # seeded estimators (noise, so a signal-to-noise ratio) and a deterministic one, each under a second a network:
    # a training estimator would train all 13 networks again and test nothing more of the ranking
    ranked = nas_cli.json("estimators", "rank", "--estimator", "params", "--estimator", "synflow:resolution=8",
                          "--estimator", "naswot:resolution=8")
    rows = {r["estimator"]: r for r in ranked["estimators"]}
    assert set(rows) == {"params", "synflow:resolution=8", "naswot:resolution=8"}
    for row in rows.values():
        assert -1.0 <= row["kendall_tau"] <= 1.0 and -1.0 <= row["spearman"] <= 1.0
    assert rows["params"]["snr"] is None  # deterministic: no seed noise
    assert rows["naswot:resolution=8"]["snr"] is not None  # its batch and initial weights come from the seed
    stored = {r.estimator: r for r in reference_store.rankings(store, built["reference"])}
    assert set(stored) == set(rows) and all(len(r.scores) == 13 for r in stored.values())

    # a supernet scores only its space's networks: the sampled ones, not the papers' seed networks
    nas_cli.json("supernet", "train", "--space", "tiny", "--data", "digits", "--resolution", "8", "--epochs", "1")
    tuned = nas_cli.json("estimators", "rank", "--estimator", "supernet:steps=2")["estimators"]
    assert [r["estimator"] for r in tuned] == ["supernet:steps=2"] and -1.0 <= tuned[0]["kendall_tau"] <= 1.0
    scores = {r.estimator: r for r in reference_store.rankings(store, built["reference"])}["supernet:steps=2"].scores
    sampled = {r.label for r in reference_store.results(store, built["reference"]) if r.label.startswith("sample-")}
    assert set(scores) == sampled and len(sampled) == 5


def test_unknown_estimator_is_one_line(nas_cli):
    proc = nas_cli("estimators", "rank", "--estimator", "params", "--estimator", "nope", check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "error: --estimator: unknown 'nope'; choose one of train, synflow, naswot, grad_norm, snip, zen, params, macs, hybrid, "
        "supernet"]
