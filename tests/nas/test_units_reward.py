import pytest

from nas.errors import UsageError
from nas.reward import Reward
from nas.units import parse_duration_s, parse_latency_ms


@pytest.mark.parametrize("text, ms", [("20ms", 20.0), ("1.5s", 1500.0), ("800us", 0.8), ("20 ms", 20.0)])
def test_latency_units(text, ms):
    assert parse_latency_ms(text) == pytest.approx(ms)


@pytest.mark.parametrize("text, why", [("20", "no unit"), ("-5ms", "greater than zero"), ("0ms", "greater than zero"),
                                        ("abc", "not a number"), ("20xs", "unknown unit"),
                                        ("1.797693134862316e+305s", "finite"),  # overflows once in ms (hypothesis found it)
                                        ("1e-322us", "greater than zero")])  # vanishes once in ms
def test_bad_latency_is_refused(text, why):
    with pytest.raises(UsageError, match=why):
        parse_latency_ms(text)


def test_duration_units():
    assert parse_duration_s("30m") == 1800
    assert parse_duration_s("2h") == 7200


def test_soft_reward_is_mnasnet():
    r = Reward("soft", 20.0)
    assert r(0.8, 20.0) == pytest.approx(0.8)
    assert r(0.8, 40.0) == pytest.approx(0.8 * 2 ** -0.07)
    assert r(0.8, 10.0) == pytest.approx(0.8 * 0.5 ** -0.07)


def test_hard_reward_only_penalises_above_target():
    r = Reward("hard", 20.0)
    assert r(0.8, 10.0) == pytest.approx(0.8)
    assert r(0.8, 40.0) == pytest.approx(0.4)


def test_tunas_reward_and_custom_weight():
    assert Reward("tunas", 20.0)(0.8, 30.0) == pytest.approx(0.8 - 0.10 * 0.5)
    assert Reward("soft", 20.0, -0.15)(0.8, 40.0) == pytest.approx(0.8 * 2 ** -0.15)
    with pytest.raises(UsageError):
        Reward("soft", 20.0, 0.3)
    with pytest.raises(UsageError, match="soft, hard, tunas"):
        Reward("nope", 20.0)


@pytest.mark.parametrize("reward, header", [
    (Reward("soft", 20.0), "soft: ACC*(LAT/T)^w, w = -0.07"),
    (Reward("hard", 20.0), "hard: ACC*(LAT/T)^w, w = 0 if LAT <= T else -1"),
    (Reward("tunas", 20.0, -0.2), "tunas: ACC - 0.2*|LAT/T - 1|"),
])
def test_headers_say_what_was_computed(reward, header):
    assert reward.describe() == header
