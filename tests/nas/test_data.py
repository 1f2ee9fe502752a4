import numpy as np
import pytest
from PIL import Image

from nas.data import load_proxy_data
from nas.errors import DataError


@pytest.mark.parametrize("name, n", [("digits", 1797), ("mnist", 5000)])
def test_builtin_data_ships_with_packages_and_splits_stratified(name, n):
    data = load_proxy_data(name, 16)
    assert len(data.x_train) + len(data.x_val) == n
    assert data.x_train.shape[1:] == (1, 16, 16) and data.num_classes == 10
    assert set(data.y_val.tolist()) == set(range(10))
    assert load_proxy_data(name, 16) is data


def _write_images(root, classes, per_class=3):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(root / c / f"{i}.png")


def test_folder_dataset_reads_class_subfolders(tmp_path):
    _write_images(tmp_path, ["cat", "dog", "eel"], per_class=5)
    data = load_proxy_data(str(tmp_path), 24)
    assert data.num_classes == 3 and data.in_chans == 3
    assert len(data.x_train) + len(data.x_val) == 15 and data.x_train.shape[2:] == (24, 24)


def test_folder_dataset_errors_name_the_problem(tmp_path):
    _write_images(tmp_path / "one", ["cat"])
    with pytest.raises(DataError, match="only one class"):
        load_proxy_data(str(tmp_path / "one"), 16)
    _write_images(tmp_path / "bad", ["cat", "dog"])
    (tmp_path / "bad" / "dog" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="broken.png"):
        load_proxy_data(str(tmp_path / "bad"), 16)
