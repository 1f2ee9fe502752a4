"""The proxy training's score: progressive validation for one epoch (the batches of the epoch's second
half, each scored before its step), the validation split otherwise; real trainings of a `tiny`
network on digits."""

from __future__ import annotations

from dataclasses import replace

import optuna
import pytest

from nas.data import load_proxy_data
from nas.errors import UsageError
from nas.estimators.choose import make_estimator
from nas.proxy import PROGRESSIVE, VALIDATION, ProxySettings, train_proxy
from search_spaces import get_space

from conftest import progressive_images

NETWORK = get_space("tiny").sample(optuna.trial.FixedTrial(
    {f"s{i}_{k}": v for i in range(3)
     for k, v in dict(op="mb3", kernel=3, se=0.25, act="hard_swish", skip=True, width=1.0, layers=0).items()}))
DATA = load_proxy_data("digits", 16)

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest's


def test_the_default_score_follows_the_number_of_epochs():
    assert ProxySettings().score == PROGRESSIVE
    assert ProxySettings(epochs=4).score == VALIDATION
    assert ProxySettings(score=VALIDATION).score == VALIDATION
    with pytest.raises(UsageError, match="needs a one-epoch training"):
        ProxySettings(epochs=2, score=PROGRESSIVE)
    with pytest.raises(UsageError, match="score must be one of progressive, validation"):
        ProxySettings(score="loss")


def test_an_estimator_spec_chooses_the_score_and_another_epoch_count_its_default():
    assert make_estimator("train:score=validation").proxy.score == VALIDATION
    assert make_estimator("train:epochs=4").proxy.score == VALIDATION
    assert make_estimator("train:epochs=4", proxy=ProxySettings(epochs=1)).proxy.score == VALIDATION
    assert make_estimator("train", proxy=ProxySettings(score=VALIDATION)).proxy.score == VALIDATION
    with pytest.raises(UsageError, match="needs a one-epoch training"):
        make_estimator("train:epochs=3,score=progressive")


def test_progressive_scores_the_second_half_of_the_epoch_and_never_the_validation_split():
    settings = ProxySettings(seed=1)
    scored = progressive_images(len(DATA.x_train), settings.batch_size)
    assert scored < len(DATA.x_train)
    # relabelling the validation split changes the validation score and leaves the progressive one
    relabelled = replace(DATA, y_val=(DATA.y_val + 1) % DATA.num_classes)
    progressive = train_proxy(NETWORK, DATA, settings, None)
    assert train_proxy(NETWORK, relabelled, settings, None) == progressive
    assert round(progressive * scored, 6) == round(progressive * scored)  # a count of right images over `scored`
    validation = train_proxy(NETWORK, DATA, replace(settings, score=VALIDATION), None)
    assert train_proxy(NETWORK, relabelled, replace(settings, score=VALIDATION), None) != validation
    assert round(validation * len(DATA.x_val), 6) == round(validation * len(DATA.x_val))


def test_each_epoch_reports_its_score_and_the_same_seed_repeats_it():
    heard: list[tuple[int, float]] = []
    settings = ProxySettings(epochs=2, seed=2)
    final = train_proxy(NETWORK, DATA, settings, lambda epoch, accuracy: heard.append((epoch, accuracy)))
    assert [epoch for epoch, _ in heard] == [0, 1] and heard[-1][1] == final
    assert train_proxy(NETWORK, DATA, settings, None) == final
    assert train_proxy(NETWORK, DATA, ProxySettings(seed=2), None) == train_proxy(NETWORK, DATA, ProxySettings(seed=2), None)
