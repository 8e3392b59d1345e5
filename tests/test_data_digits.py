"""Tests of training.data.digits: scikit-learn's digits, split, scaled and resized."""

import numpy as np
import tensorflow as tf

from training import data
from training.data import digits


class TestDigits:
    def test_split_is_stratified_disjoint_and_complete(self):
        from sklearn.datasets import load_digits

        targets = load_digits().target
        split = digits.digits_split(targets)
        assert (len(split["train"]), len(split["eval"])) == (1433, 364)
        assert not set(split["train"]) & set(split["eval"])
        assert len(split["train"]) + len(split["eval"]) == 1797
        eval_per_class = np.bincount(targets[split["eval"]], minlength=10)
        assert eval_per_class.min() >= 34 and eval_per_class.max() <= 37

    def test_images_are_32x32_in_zero_one_with_labels(self):
        images, labels = data.load_arrays("digits", "eval", labels=True)
        assert images.shape == (364, 32, 32, 1) and images.dtype == np.float32
        assert images.min() == 0 and images.max() == 1
        assert labels.dtype == np.int32 and set(labels) == set(range(10))

    def test_resize_is_bilinear_from_values_over_16(self):
        from sklearn.datasets import load_digits

        first = load_digits().images[0][None, :, :, None] / 16.0  # position 0 of class 0: eval
        expected = tf.image.resize(first.astype(np.float32), (32, 32), method="bilinear")
        np.testing.assert_allclose(data.load_arrays("digits", "eval", limit=1), expected, atol=1e-6)

    def test_test_split_is_the_eval_split(self):
        np.testing.assert_array_equal(
            data.load_arrays("digits", "test", limit=20),
            data.load_arrays("digits", "eval", limit=20),
        )
