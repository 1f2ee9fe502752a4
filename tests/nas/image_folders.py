"""A tiny image-folder dataset, so a whole training run takes a fraction of a second."""

from pathlib import Path

import numpy as np
from PIL import Image


def write_image_folder(root: Path, images: int = 40, classes: int = 4, side: int = 12) -> Path:
    """``images`` random ``side``x``side`` RGB images, spread evenly over ``classes`` sub-folders."""
    rng = np.random.default_rng(0)
    for index in range(images):
        path = root / f"class{index % classes}" / f"{index}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(path)
    return root
