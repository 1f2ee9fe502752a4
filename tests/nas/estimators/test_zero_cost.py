"""Zero-cost proxies and size baselines as accuracy estimators: deterministic, finite on every
block kind of the spaces, and monotone from score to accuracy."""

import math
from dataclasses import asdict

import optuna
import pytest
import torch

from nas.errors import UsageError
from nas.estimators.size import SizeEstimator, SizeSettings
from nas.estimators.zero_cost import PROXIES, LogisticMap, ZeroCost, ZeroCostSettings
from search_spaces import get_space, seed_architecture

SMALL = dict(resolution=16, batch_size=16)  # small batches keep the suite fast; the defaults are 16 px, 64 images


def _tiny(op: str, act: str, se: float, layers: int = 0):
    """A ``tiny``-space network with the same choice in every stage."""
    params = {f"s{i}_{k}": v for i in range(3)
              for k, v in dict(op=op, kernel=3, se=se, act=act, skip=True, width=1.0, layers=layers).items()}
    return get_space("tiny").sample(optuna.trial.FixedTrial(params))


DS_HSWISH = _tiny("ds", "hard_swish", 0.0)
MB_SE_RELU = _tiny("mb3", "relu", 0.25)


def _ignore(step: int, value: float) -> None:
    pass


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Two threads on a busy 2-core machine run these small networks several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("proxy", sorted(PROXIES))
def test_same_seed_same_score_bit_for_bit(proxy):
    estimator = ZeroCost(ZeroCostSettings(proxy=proxy, **SMALL))
    for genotype in (DS_HSWISH, MB_SE_RELU):
        first = estimator.score(genotype)
        assert math.isfinite(first)
        assert ZeroCost(ZeroCostSettings(proxy=proxy, **SMALL)).score(genotype) == first


@pytest.mark.parametrize("proxy", sorted(PROXIES))
def test_another_seed_scores_differently_but_finitely(proxy):
    scores = [ZeroCost(ZeroCostSettings(proxy=proxy, seed=seed, **SMALL)).score(MB_SE_RELU) for seed in (0, 1)]
    assert all(math.isfinite(s) for s in scores)
    assert scores[0] != scores[1]


@pytest.mark.parametrize("proxy", sorted(PROXIES))
def test_paper_network_with_se_and_hswish_scores_finitely(proxy):
    assert math.isfinite(ZeroCost(ZeroCostSettings(proxy=proxy, **SMALL)).score(seed_architecture("mobilenetv3_large_100")))


def test_scoring_leaves_the_callers_random_state_alone():
    state = torch.random.get_rng_state()
    ZeroCost(ZeroCostSettings(proxy="zen", **SMALL)).score(DS_HSWISH)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_accuracy_is_in_unit_interval_and_follows_the_score():
    estimator = ZeroCost(ZeroCostSettings(proxy="synflow", **SMALL))
    networks = [DS_HSWISH, MB_SE_RELU, _tiny("mb3", "hard_swish", 0.0, layers=1)]
    pairs = sorted((estimator.score(g), estimator.accuracy(g, _ignore)) for g in networks)
    accuracies = [a for _, a in pairs]
    assert all(0.0 < a < 1.0 for a in accuracies)
    assert accuracies == sorted(accuracies)
    assert len({s for s, _ in pairs}) == len(pairs)  # the check above compared distinct scores


def test_logistic_map_is_monotone_and_stays_inside_the_unit_interval():
    mapping = LogisticMap.fit([1.0, 2.0, 3.0])
    values = [-math.inf, -1e9, 0.0, 2.0, 2.5, 1e9, math.inf]
    mapped = [mapping(v) for v in values]
    assert mapped == sorted(mapped)
    assert all(0.0 < m < 1.0 for m in mapped)
    assert mapping(2.0) == 0.5


def test_estimator_protocol_fields():
    settings = ZeroCostSettings(proxy="naswot", **SMALL)
    estimator = ZeroCost(settings)
    assert estimator.name == "naswot"
    assert estimator.settings == asdict(settings)
    assert SizeEstimator(SizeSettings("macs")).name == "macs"


@pytest.mark.parametrize("metric", ["params", "macs"])
def test_size_baselines_rank_a_bigger_network_higher(metric):
    estimator = SizeEstimator(SizeSettings(metric=metric))
    small, big = seed_architecture("mobilenetv3_small_100"), seed_architecture("efficientnet_b0")
    assert estimator.score(big) > estimator.score(small)
    assert 0.0 < estimator.accuracy(small, _ignore) < estimator.accuracy(big, _ignore) < 1.0
    deeper = _tiny("mb3", "relu", 0.0, layers=1)
    assert estimator.accuracy(deeper, _ignore) > estimator.accuracy(_tiny("mb3", "relu", 0.0), _ignore)


@pytest.mark.parametrize("bad", [dict(proxy="flops"), dict(proxy="synflow", batch_size=1), dict(proxy="zen", resolution=4)])
def test_bad_zero_cost_settings_raise_usage_error(bad):
    with pytest.raises(UsageError, match="flops|batch_size|resolution"):
        ZeroCostSettings(**bad)


def test_unknown_proxy_message_lists_the_known_ones():
    with pytest.raises(UsageError, match="known: .*synflow"):
        ZeroCostSettings(proxy="jacob")


def test_unknown_size_metric_raises_usage_error():
    with pytest.raises(UsageError, match="known: params, macs"):
        SizeSettings(metric="latency")
