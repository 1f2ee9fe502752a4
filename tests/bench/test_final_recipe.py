"""bench/final_recipe.py: how a recipe's separation of networks is measured, and that its trainings
are the ones bench/search_quality.py takes."""

import math
from pathlib import Path

import pytest
from bench_scripts import load

_final_recipe = load("final_recipe")
_search_quality = load("search_quality")


def test_a_recipe_that_orders_networks_the_same_on_every_seed_agrees_with_itself():
    accuracies = {"a": [0.90, 0.92], "b": [0.80, 0.78], "c": [0.70, 0.71]}
    figures = _final_recipe.agreement(accuracies)
    assert figures["self_kendall_tau"] == pytest.approx(1.0)
    mean = (0.91 + 0.79 + 0.705) / 3  # of the networks' means
    assert figures["between_networks_std"] == pytest.approx(math.sqrt(((0.91 - mean) ** 2 + (0.79 - mean) ** 2
                                                                        + (0.705 - mean) ** 2) / 2))
    pooled = math.sqrt((0.02 ** 2 / 2 + 0.02 ** 2 / 2 + 0.01 ** 2 / 2) / 3)  # a pair's variance: d^2 / 2
    assert figures["seed_std"] == pytest.approx(pooled)
    assert figures["snr"] == pytest.approx(figures["between_networks_std"] / pooled)
    assert figures["mean_seed_difference_pts"] == pytest.approx(100 * (0.02 + 0.02 + 0.01) / 3)
    # n seeds: a difference of means has std pooled * sqrt(2 / n) (points); 1 point is two of them
    n = figures["seeds_for_one_point"]
    assert 2 * 100 * pooled * math.sqrt(2 / n) <= 1 < 2 * 100 * pooled * math.sqrt(2 / (n - 1))


def test_a_recipe_whose_seeds_swap_the_order_is_noise():
    figures = _final_recipe.agreement({"a": [0.90, 0.80], "b": [0.85, 0.85], "c": [0.80, 0.90]})
    assert figures["self_kendall_tau"] == pytest.approx(-1.0)
    assert figures["snr"] == pytest.approx(0.0)  # every network's mean is the same


def test_three_seeds_average_the_agreement_of_every_pair():
    figures = _final_recipe.agreement({"a": [0.9, 0.9, 0.7], "b": [0.8, 0.8, 0.8], "c": [0.7, 0.7, 0.9]})
    assert figures["seeds"] == 3
    assert figures["self_kendall_tau"] == pytest.approx((1.0 - 1.0 - 1.0) / 3)


def test_a_recipe_is_data_resolution_epochs_and_bad_text_is_refused():
    recipe = _final_recipe.Recipe.parse("mnist:32:8")
    assert recipe == _final_recipe.Recipe("mnist", 32, 8)
    assert recipe.label == "mnist-32px-8ep"
    assert _final_recipe.Recipe.parse("/data/my:set:64:10").data == "/data/my:set"  # a folder may hold a colon
    for bad in ("mnist", "mnist:32", "mnist:32px:8"):
        with pytest.raises(SystemExit, match="DATA:RESOLUTION:EPOCHS"):
            _final_recipe.Recipe.parse(bad)


def test_its_trainings_are_the_steps_search_quality_takes_for_the_same_recipe():
    recipe = _final_recipe.Recipe("mnist", 32, 8)
    key, args, output = _search_quality.baseline_step(recipe.flags, "resnet18", 1)
    assert _search_quality.parse_step_key(key) == ("baseline", 1)
    assert args[args.index("--data") + 1] == "mnist" and args[args.index("--seed") + 1] == "1"
    assert output == Path(args[args.index("-o") + 1]) / "resnet18"  # where `nas baselines` writes its checkpoint
    key0, args0, _ = _search_quality.baseline_step(recipe.flags, "resnet18")
    assert key0 == "baseline/resnet18" and "--seed" not in args0
    assert args0[args0.index("-o") + 1] != args[args.index("-o") + 1]  # seeds keep their own checkpoints
    other = _search_quality.baseline_step(_final_recipe.Recipe("digits", 32, 8).flags, "resnet18")[1]
    assert other[other.index("-o") + 1] != args0[args0.index("-o") + 1]  # and so do recipes
