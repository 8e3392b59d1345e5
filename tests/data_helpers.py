"""Helpers of the training.data tests (tests/test_data_*.py): image files and batches."""

import numpy as np
from PIL import Image


def save_image(path, array, **kwargs):
    """Writes `array` as an image file at `path` (folders made), returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def noise_image(seed, height=40, width=40):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def make_image_tree(root):
    """Two classes of 6 images each in mixed formats under `root`, and a hidden folder to
    be ignored; returns `root`."""
    for index in range(6):
        save_image(root / "cats" / f"cat{index}.png", noise_image(index))
        save_image(root / "dogs" / f"dog{index}.jpg", noise_image(10 + index), quality=95)
    save_image(root / ".cache" / "hidden.png", noise_image(99))
    return root


def all_batches(dataset):
    return [batch for batch in dataset]


def concatenated(dataset):
    """Images and labels of a (images, labels) dataset as two numpy arrays."""
    batches = all_batches(dataset)
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])
