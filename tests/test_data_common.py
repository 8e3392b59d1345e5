"""Tests of training.data.common: the argument checks and the image_shape rules."""

import pytest

from export.errors import DataError
from training import data


class TestArguments:
    def test_unknown_split(self):
        with pytest.raises(DataError, match="unknown split 'valid' for dataset 'digits'"):
            data.load_dataset("digits", "valid")

    @pytest.mark.parametrize("batch_size", [0, -1, 2.5, True, "32"])
    def test_bad_batch_size(self, batch_size):
        with pytest.raises(DataError, match="batch_size must be a positive integer"):
            data.load_dataset("digits", batch_size=batch_size)

    def test_bad_size(self):
        with pytest.raises(DataError, match="size must be a positive integer or None"):
            data.load_dataset("shapes", size=0)

    @pytest.mark.parametrize("shape", [(64, 64), (64, 64, 2), (0, 64, 3), "64", (64.0, 64, 3)])
    def test_invalid_image_shape(self, shape):
        with pytest.raises(DataError, match="image_shape must be \\(height, width, channels\\)"):
            data.load_dataset("digits", image_shape=shape)

    def test_image_shape_a_dataset_cannot_give(self):
        with pytest.raises(DataError, match="not available for 'shapes'"):
            data.load_dataset("shapes", image_shape=(64, 64, 3))
        with pytest.raises(DataError, match="'mnist': it is grayscale"):
            data.load_dataset("mnist", image_shape=(32, 32, 3))

    def test_digits_accept_another_size(self):
        assert data.load_arrays("digits", limit=2, image_shape=(16, 16, 1)).shape == (2, 16, 16, 1)
