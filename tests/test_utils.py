import numpy as np
import pytest

from irmae_keras.utils import check_images
from irmae_keras.utils import map_in_batches


def test_check_images_accepts_unit_range_and_converts_to_float32():
    images = check_images("images", np.ones((2, 3, 3, 1), np.float64))
    assert images.dtype == np.float32 and images.shape == (2, 3, 3, 1)


@pytest.mark.parametrize(
    "images, minimum, match",
    [
        (np.zeros((3, 3, 1)), 1, r"`x` must be an array \(N >= 1, height, width, channels\); received shape \(3, 3, 1\)"),
        (np.zeros((1, 3, 3, 1)), 2, r"N >= 2"),
        (np.full((1, 3, 3, 1), 255.0), 1, r"`x` must be float images in \[0, 1\]; received values in \[255, 255\] \(divide uint8"),
    ],
)
def test_check_images_errors(images, minimum, match):
    with pytest.raises(ValueError, match=match):
        check_images("x", images, minimum)


def test_map_in_batches_covers_every_input_in_order():
    calls = []

    def double(batch):
        calls.append(len(batch))
        return batch * 2

    np.testing.assert_array_equal(map_in_batches(double, np.arange(7), 3), np.arange(7) * 2)
    assert calls == [3, 3, 1]
