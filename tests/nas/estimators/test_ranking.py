"""Estimators by name, and the ranking statistics against a stored reference: exact numbers from
known scores (no training, no timing)."""

from __future__ import annotations

import math

import pytest
from scipy.stats import kendalltau

from nas.errors import DataError, UsageError
from nas.estimators.choose import make_estimator, parse_spec
from nas.estimators.ranking import Reference, load_reference, rank_estimator, rank_side_by_side
from nas.estimators.size import SizeEstimator
from nas.estimators.training import ProxyTraining
from nas.estimators.zero_cost import ZeroCost
from search_spaces import SEED_NAMES, seed_architecture
from storage import Store
from storage import reference as reference_store


def test_estimators_by_name():
    assert parse_spec("train:epochs=2,resolution=32") == ("train", {"epochs": "2", "resolution": "32"})
    trained = make_estimator("train:epochs=2", data="digits", seed=3)
    assert isinstance(trained, ProxyTraining) and trained.proxy.epochs == 2 and trained.proxy.seed == 3
    assert trained.settings["data"] == "digits"
    assert isinstance(make_estimator("synflow:batch_size=16"), ZeroCost)
    assert isinstance(make_estimator("params"), SizeEstimator)
    with pytest.raises(DataError):  # a bad --data fails before a study is made, for every estimator
        make_estimator("synflow", data="/no/such/folder")
    for spec, message in (("nope", "unknown 'nope'"), ("train:color=red", "unknown option 'color'"),
                          ("train:epochs=two", "epochs must be a number"), ("train:epochs", "NAME:key=value")):
        with pytest.raises(UsageError, match=message):
            make_estimator(spec)


class _Known:
    """An estimator whose score per network (and per seed) is given."""

    def __init__(self, scores: dict[str, float], noise: float, seed: int) -> None:
        self.scores, self.noise, self.seed = scores, noise, seed

    name = "known"
    settings: dict = {}

    def score(self, genotype) -> float:
        return self.scores[genotype.key] + self.noise * self.seed

    def accuracy(self, genotype, report) -> float:
        return self.score(genotype)


def _reference() -> Reference:
    names = SEED_NAMES[:5]
    networks = {name: seed_architecture(name) for name in names}
    accuracy = dict(zip(names, (0.90, 0.80, 0.70, 0.60, 0.50), strict=True))
    repeated = {names[0]: (0.90, 0.88), names[1]: (0.80, 0.83), names[2]: (0.70, 0.69)}
    return Reference("r", networks, accuracy, repeated, {})


def test_ranking_statistics_are_exact():
    reference = _reference()
    by_key = {reference.networks[n].key: s for n, s in zip(reference.networks, (5.0, 4.0, 1.0, 2.0, 3.0), strict=True)}
    ranking = rank_estimator(reference, "known", lambda seed: _Known(by_key, noise=0.5, seed=seed))
    ours, truth = [5.0, 4.0, 1.0, 2.0, 3.0], [0.90, 0.80, 0.70, 0.60, 0.50]
    assert ranking.kendall_tau == pytest.approx(kendalltau(ours, truth).statistic) == pytest.approx(0.4)  # 7 concordant, 3 discordant pairs
    # spread across networks (population std of the scores) over the per-network seed noise 0.5 / sqrt 2
    assert ranking.snr == pytest.approx(math.sqrt(2.0) / (0.5 / math.sqrt(2)))
    assert ranking.scores[SEED_NAMES[0]] == [5.0, 5.5] and ranking.scores[SEED_NAMES[4]] == [3.0]
    deterministic = rank_estimator(reference, "known", lambda seed: _Known(by_key, noise=0.0, seed=seed))
    assert deterministic.snr is None  # no noise: no signal-to-noise ratio
    assert reference.self_tau == pytest.approx(1.0) and reference.seed_noise == pytest.approx(0.02)


class _Holding(_Known):
    """A known estimator that can score only some networks (as a supernet only its space's)."""

    def __init__(self, scores: dict[str, float], held: set[str]) -> None:
        super().__init__(scores, noise=0.0, seed=0)
        self.held = held

    def holds(self, genotype) -> bool:
        return genotype.key in self.held

    def score(self, genotype) -> float:
        assert genotype.key in self.held, "scored a network it does not hold"
        return super().score(genotype)


def test_ranking_leaves_out_the_networks_an_estimator_cannot_score():
    reference = _reference()
    keys = [reference.networks[n].key for n in reference.networks]
    by_key = dict(zip(keys, (5.0, 4.0, 1.0, 2.0, 3.0), strict=True))
    ranking = rank_estimator(reference, "held", lambda seed: _Holding(by_key, set(keys[:4])))
    assert set(ranking.scores) == set(SEED_NAMES[:4])
    assert ranking.kendall_tau == pytest.approx(kendalltau([5.0, 4.0, 1.0, 2.0], [0.9, 0.8, 0.7, 0.6]).statistic)
    with pytest.raises(UsageError, match="2 trained networks few can score; ranking needs at least 3"):
        rank_estimator(reference, "few", lambda seed: _Holding(by_key, set(keys[:2])))


class _Logged(_Holding):
    """A known estimator of some networks that writes each network it scores into a shared log."""

    def __init__(self, scores: dict[str, float], held: set[str], label: str, log: list) -> None:
        super().__init__(scores, held)
        self.label, self.log = label, log

    def score(self, genotype) -> float:
        self.log.append((self.label, genotype.key))
        return super().score(genotype)


def test_side_by_side_ranks_each_estimator_as_alone_on_the_networks_all_can_score_taking_turns():
    reference = _reference()
    keys = [reference.networks[n].key for n in reference.networks]
    ups, downs = dict(zip(keys, (5.0, 4.0, 1.0, 2.0, 3.0), strict=True)), dict(zip(keys, (1.0, 2.0, 3.0, 4.0, 5.0), strict=True))
    log: list = []
    rankings = rank_side_by_side(reference, {"ups": lambda seed: _Logged(ups, set(keys[:4]), "ups", log),
                                             "downs": lambda seed: _Logged(downs, set(keys), "downs", log)})
    assert set(rankings["ups"].scores) == set(rankings["downs"].scores) == set(SEED_NAMES[:4])  # what both can score
    held = reference.restricted(set(SEED_NAMES[:4]))
    for label, scores in (("ups", ups), ("downs", downs)):
        alone = rank_estimator(held, label, lambda seed, scores=scores: _Known(scores, noise=0.0, seed=seed))
        assert (rankings[label].kendall_tau, rankings[label].scores) == (alone.kendall_tau, alone.scores)
    assert rankings["downs"].kendall_tau == pytest.approx(-1.0)
    # seed 0 on the 4 networks, then seed 1 on the 3 repeated ones, each round after a warm-up of
    # both on its first network; per network both estimators score it, who goes first taking turns
    warm = [("ups", keys[0]), ("downs", keys[0])]
    turns = [pair for i, key in enumerate(keys[:4] + keys[:3])
             for pair in ((("ups", key), ("downs", key)) if i % 2 == 0 else (("downs", key), ("ups", key)))]
    assert log == warm + turns[:8] + warm + turns[8:]


def test_a_stored_reference_loads(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'r.db'}")
    for i, name in enumerate(SEED_NAMES[:3]):
        reference_store.add_result(store, "ref", name, 0, architecture=seed_architecture(name).to_dict(),
                                   accuracy=0.5 + i / 10, train_s=1.0, settings={"epochs": 6, "fail_reason": None})
    reference_store.add_result(store, "ref", SEED_NAMES[0], 1, architecture=seed_architecture(SEED_NAMES[0]).to_dict(),
                               accuracy=0.55, train_s=1.0, settings={"epochs": 6, "fail_reason": None})
    reference_store.add_result(store, "ref", SEED_NAMES[0], 1, architecture=seed_architecture(SEED_NAMES[0]).to_dict(),
                               accuracy=0.56, train_s=1.0, settings={"epochs": 6, "fail_reason": None})  # replaced
    loaded = load_reference(store, None)
    assert loaded.accuracy == {SEED_NAMES[0]: 0.5, SEED_NAMES[1]: 0.6, SEED_NAMES[2]: 0.7}
    assert loaded.repeated == {SEED_NAMES[0]: (0.5, 0.56)} and loaded.settings == {"epochs": 6}
    with pytest.raises(UsageError, match="no reference named 'other'"):
        load_reference(store, "other")
