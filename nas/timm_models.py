"""Found architectures in timm's model registry, so ``timm.create_model`` and timm's train script
build them like any timm network.

``import nas`` registers one generic entrypoint, ``nas_genotype``, that builds an architecture
from its JSON fields (``arch_def``, ``stem_size``, ...): an exported ``timm`` folder names it in
its ``config.json``, so ``timm.create_model('local-dir:FOLDER', pretrained=True)`` rebuilds the
network with its weights. ``register_architecture`` / ``register_study`` add one name per
architecture (``nas_<study>_<trial>``: timm model names cannot hold a '/').
"""

from __future__ import annotations

import re
from typing import Any

import torch
from timm.models import build_model_with_cfg, generate_default_cfgs, is_model, register_model

from nas.architecture import Architecture
from nas.errors import UsageError
from search_spaces import Genotype, build_model
from storage import Store

ENTRYPOINT = "nas_genotype"
_GENOTYPE_KEYS = ("arch_def", "stem_size", "num_features", "family", "act", "fix_stem")


def pretrained_cfg(resolution: int = 224, **extra: Any) -> dict[str, Any]:
    """timm's ``pretrained_cfg`` for a nas network at ``resolution`` (what a ``config.json`` holds)."""
    return {"num_classes": 1000, "input_size": (3, resolution, resolution), "pool_size": None,
            "crop_pct": 1.0, "interpolation": "bilinear", "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225),
            "first_conv": "conv_stem", "classifier": "classifier", **extra}


default_cfgs = generate_default_cfgs({ENTRYPOINT: pretrained_cfg()})  # read by timm's register_model


def _build(*, norm: str = "bn", **kwargs: Any) -> torch.nn.Module:
    genotype = Genotype.from_dict({k: kwargs.pop(k) for k in _GENOTYPE_KEYS if k in kwargs})
    return build_model(genotype, norm=norm, **kwargs)


@register_model
def nas_genotype(pretrained: bool = False, **kwargs: Any) -> torch.nn.Module:
    """A nas architecture from its JSON fields (``arch_def`` ... ``fix_stem``) and ``norm``."""
    return build_model_with_cfg(_build, ENTRYPOINT, pretrained, **kwargs)


def model_args(arch: Architecture, norm: str = "bn") -> dict[str, Any]:
    """What ``nas_genotype`` needs to rebuild ``arch`` (a timm ``config.json``'s ``model_args``)."""
    return {**arch.genotype.to_dict(), "norm": norm}


def timm_name(arch: Architecture) -> str:
    """``nas_`` + the architecture's name with every run of other characters turned into '_'."""
    return "nas_" + re.sub(r"[^0-9A-Za-z]+", "_", arch.name).strip("_")


def register_architecture(arch: Architecture, norm: str = "bn") -> str:
    """Register ``arch`` under ``timm_name(arch)`` (its input size as timm's default) and return the name."""
    name = timm_name(arch)
    fixed = model_args(arch, norm)

    def entrypoint(pretrained: bool = False, **kwargs: Any) -> torch.nn.Module:
        return build_model_with_cfg(_build, name, pretrained, **{**fixed, **kwargs})

    entrypoint.__name__ = entrypoint.__qualname__ = name
    entrypoint.__module__ = __name__
    entrypoint.__doc__ = f"nas architecture {arch.name}"
    default_cfgs.update(generate_default_cfgs({name: pretrained_cfg(arch.input_size())}))
    if not is_model(name):  # registering twice would make timm warn about overwriting
        register_model(entrypoint)
    return name


def register_study(store: Store, study: str | None = None) -> list[str]:
    """Register every completed trial of a study; returns the timm names."""
    from nas.results import load_study, resolve_architecture

    loaded = load_study(store, study)
    numbers = [t.number for t in loaded.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if not numbers:
        raise UsageError(f"study {loaded.study_name!r} has no completed trial to register")
    return [register_architecture(resolve_architecture(str(n), store, loaded.study_name)) for n in numbers]
