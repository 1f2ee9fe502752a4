"""bench/supernet_neighbours.py: the networks it reads off are each one choice away from an end."""

import pytest
from bench_scripts import load

from nas.supernet import end_params
from search_spaces import get_space

_neighbours = load("supernet_neighbours")


@pytest.mark.parametrize("end", ["largest", "smallest"])
def test_each_neighbour_differs_from_its_end_in_one_choice_in_its_stages(end):
    space = get_space("mbconv")
    base = end_params(space, end)
    found = _neighbours.neighbours(space, end, stage=3)
    for n in found:
        changed = {k for k in base if n.params[k] != base[k]}
        assert changed == {f"s{i}_{n.choice}" for i in n.stages} and changed
        assert all(n.params[f"s{i}_{n.choice}"] == n.option for i in n.stages)
        assert 3 in n.stages and (n.every_stage or n.stages == (3,))
    # every other option of every choice of the stage, alone and everywhere
    expected = {(c, o, every) for c, options in space.choices(3).items() for o in options
                if o != base[f"s3_{c}"] for every in (False, True)}
    assert {(n.choice, n.option, n.every_stage) for n in found} == expected


def test_every_stage_changes_only_the_stages_that_offer_the_option():
    space = get_space("mbconv")
    base = end_params(space, "largest")  # one more block than the skeleton in every stage
    removing = [n for n in _neighbours.neighbours(space, "largest", stage=3)
                if n.choice == "layers" and n.option == -1 and n.every_stage]
    assert len(removing) == 1
    offering = {i for i in range(len(space.skeleton)) if -1 in space.choices(i)["layers"]}
    assert set(removing[0].stages) == {i for i in offering if base[f"s{i}_layers"] != -1}
    assert set(removing[0].stages) < set(range(len(space.skeleton)))  # a one-block stage cannot lose one
