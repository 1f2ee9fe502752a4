"""Every paper network nas seeds a search with has exactly timm's parameter count."""

import pytest
import timm

from search_spaces import PAPER_NAMES, SEED_NAMES, build_model, seed_architecture


def _params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", PAPER_NAMES)
def test_seed_architecture_has_timms_parameter_count(name):
    """The eight seeds and their width variants (timm's ``mobilenetv2_075`` and the like)."""
    assert len(SEED_NAMES) == 8
    assert _params(build_model(seed_architecture(name))) == _params(timm.create_model(name))


def test_unknown_seed_lists_the_known_names():
    with pytest.raises(ValueError, match="mobilenetv2_100"):
        seed_architecture("resnet9000")
