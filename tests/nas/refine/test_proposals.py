"""NetAdapt's proposals and weight inheritance on networks of the `tiny` space, built by timm."""

from __future__ import annotations

import pytest
import torch

from nas.proxy import proxy_genotype
from nas.refine.inherit import inherit
from nas.refine.proposals import STEM, current_width, narrower_widths, proposals, shrink, slots, width_chains, widths
from search_spaces import Genotype, build_model, get_space

# the `tiny` space's skeleton with residual chains: stem + 0.0, 1.0-1.1, 2.0-2.1 (the last with SE)
TINY = Genotype.from_arch_def([["ds_r1_k3_s1_c8"], ["ir_r2_k3_s2_e3_c16"], ["ir_r2_k5_s2_e3_c24_se0.25"]],
                              stem_size=8, num_features=64)
TINY_V3 = Genotype.from_arch_def([["ds_r1_k3_s1_c8_nre"], ["ir_r2_k3_s2_e3_c16_se0.25"], ["ir_r2_k5_s2_e3_c24_se0.25"]],
                                 stem_size=8, num_features=64, family="mobilenetv3", act="hard_swish")

# stages 1 and 2 both stride 2 at 16 channels: no residual joins them at 224 px, but the proxy
# (16 px) sets both strides to 1, and block 2.0 then adds its input (16 = 16) to its output
STRIDE_CLIPPED = Genotype.from_arch_def([["ds_r1_k3_s1_c8"], ["ir_r1_k3_s2_e3_c16"], ["ir_r2_k3_s2_e3_c16"],
                                         ["ir_r1_k3_s2_e3_c24"], ["ir_r1_k3_s2_e3_c32"]], stem_size=8, num_features=64)


def _every_shrink(genotype: Genotype, trained_as: Genotype | None = None):
    for proposal in proposals(genotype, trained_as):
        for width in narrower_widths(genotype, proposal):
            yield proposal, width, shrink(genotype, proposal, width)


def _trained(genotype: Genotype) -> torch.nn.Module:
    """A model whose weights and BatchNorm statistics are not at their initial values."""
    torch.manual_seed(0)
    model = build_model(genotype, num_classes=10, in_chans=1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        loss = model(torch.randn(8, 1, 16, 16)).logsumexp(1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def test_sampled_tiny_networks_have_proposals():
    space = get_space("tiny")
    genotype = next(space.covering_genotypes())
    assert proposals(genotype), genotype.arch_def


def test_chains_follow_residual_additions():
    assert width_chains(TINY) == [(STEM, 0), (1, 2), (3, 4)]
    labels = {(p.kind, p.label) for p in proposals(TINY)}
    assert ("width", "1.0-1.1") in labels and ("expand", "2.1") in labels
    assert ("width", "stem-0.0") not in labels  # already at the narrowest width, 8


def test_residuals_the_proxy_adds_join_widths_too():
    proxy = proxy_genotype(STRIDE_CLIPPED, 16)
    assert [s.block.stride for s in slots(proxy)][1:3] == [1, 1]
    assert width_chains(STRIDE_CLIPPED) == [(STEM, 0), (1,), (2, 3), (4,), (5,)]
    assert width_chains(STRIDE_CLIPPED, proxy) == [(STEM, 0), (1, 2, 3), (4,), (5,)]
    assert ("width", "1.0-2.1") in {(p.kind, p.label) for p in proposals(STRIDE_CLIPPED, proxy)}


def test_every_cut_inherits_the_weights_of_the_network_as_the_proxy_trains_it(one_thread):
    """A cut of stage 2's width alone (chains read at 224 px) left block 1.0's output, which the
    proxy's residual joins to it, at its old width: inheritance failed on a shape mismatch."""
    parent = _trained(proxy_genotype(STRIDE_CLIPPED, 16))
    tried = set()
    for proposal, width, child in _every_shrink(STRIDE_CLIPPED, proxy_genotype(STRIDE_CLIPPED, 16)):
        inherited = inherit(parent, proxy_genotype(child, 16), num_classes=10, in_chans=1).eval()
        with torch.inference_mode():
            assert inherited(torch.randn(1, 1, 16, 16)).shape == (1, 10)
        tried.add((proposal.label, width))
    assert ("1.0-2.1", 8) in tried  # the cut of the joined chain


@pytest.mark.parametrize("genotype", [TINY, TINY_V3], ids=["efficientnet", "mobilenetv3"])
def test_every_shrink_is_narrower_aligned_and_round_trips(genotype, one_thread):
    before = widths(genotype)
    for proposal, width, child in _every_shrink(genotype):
        after = widths(child)
        assert all(after[name] <= before[name] for name in before), (proposal, width)
        assert current_width(child, proposal) == width < current_width(genotype, proposal)
        placed = slots(child)
        for chain in width_chains(child):  # residual additions still join equal widths
            assert len({child.stem_size if p == STEM else placed[p].block.out_chs for p in chain}) == 1
        assert Genotype.from_arch_def(child.arch_def, **child.network()) == child  # block strings, both ways
        model = build_model(child, num_classes=10, in_chans=1).eval()
        convs = [b.conv_pw.out_channels for stage in model.blocks for b in stage if hasattr(b, "conv_pwl")]
        assert convs == [s.mid_chs for s in placed if s.expands]  # timm builds the widths the strings say
        with torch.inference_mode():
            assert model(torch.randn(1, 1, 32, 32)).shape == (1, 10)


def test_fractional_expansion_survives_the_strings():
    expand = next(p for p in proposals(TINY) if p.kind == "expand" and p.label == "1.0")  # in 8, mid 24
    child = shrink(TINY, expand, 16)
    assert child.arch_def[1] == ["ir_r1_k3_s2_e2_c16", "ir_r1_k3_s1_e3_c16"]
    chain = next(p for p in proposals(TINY) if p.kind == "width" and p.label == "1.0-1.1")
    narrower = shrink(TINY, chain, 8)  # the next stage's first block keeps its 48 inner channels from 8 inputs
    assert narrower.arch_def[2][0] == "ir_r1_k5_s2_e6_c24_se0.25"


@pytest.mark.parametrize("genotype", [TINY, TINY_V3], ids=["efficientnet", "mobilenetv3"])
def test_inheriting_without_a_cut_gives_the_same_outputs(genotype, one_thread):
    proxy = proxy_genotype(genotype, 16)
    parent = _trained(proxy)
    child = inherit(parent, proxy, num_classes=10, in_chans=1).eval()
    x = torch.randn(4, 1, 16, 16)
    with torch.inference_mode():
        assert torch.allclose(child(x), parent(x), atol=1e-5)


@pytest.mark.parametrize("genotype", [TINY, TINY_V3], ids=["efficientnet", "mobilenetv3"])
def test_inheriting_a_cut_keeps_the_strongest_filters(genotype, one_thread):
    parent = _trained(genotype)
    expand = next(p for p in proposals(genotype) if p.kind == "expand" and p.label == "2.1")
    child_genotype = shrink(genotype, expand, 40)
    child = inherit(parent, child_genotype, num_classes=10, in_chans=1)
    assert isinstance(child, type(parent)) and child.blocks[2][1].conv_pw.out_channels == 40
    # an expansion's channels are a group of their own: everything outside the block is the
    # parent's, untouched, and the block keeps a subset of the parent's filters in their order
    assert torch.equal(child.blocks[2][0].conv_pw.weight, parent.blocks[2][0].conv_pw.weight)
    assert torch.equal(child.classifier.weight, parent.classifier.weight)
    kept = child.blocks[2][1].conv_pw.weight.flatten(1)
    parent_rows = parent.blocks[2][1].conv_pw.weight.flatten(1)
    matches = [int((parent_rows == row).all(1).nonzero()[0]) for row in kept]
    assert matches == sorted(matches) and len(set(matches)) == 40  # a subset, in the parent's order
    with torch.inference_mode():
        assert child.eval()(torch.randn(1, 1, 32, 32)).shape == (1, 10)
