"""scikit-learn's bundled 8×8 digits, resized to 32×32 (works offline)."""

import numpy as np
import tensorflow as tf

from training.data.common import DataSource
from training.data.common import class_labels
from training.data.common import two_way
from training.data.pipeline import in_memory_pipeline


DIGITS_EVAL_EVERY = 5


DIGIT_LABELS = class_labels([str(digit) for digit in range(10)])  # digits and mnist


def digits_split(targets):
    """Eval = every fifth image of each class in file order (positions 0, 5, 10, …)."""
    is_eval = np.zeros(len(targets), bool)
    for digit in np.unique(targets):
        is_eval[np.flatnonzero(targets == digit)[::DIGITS_EVAL_EVERY]] = True
    return {"train": np.flatnonzero(~is_eval), "eval": np.flatnonzero(is_eval)}


def load_digits():
    """scikit-learn's digits, imported on first use (scikit-learn is slow to import)."""
    from sklearn import datasets  # pylint: disable=import-outside-toplevel

    return datasets.load_digits()


def digits_sizes(data_dir):
    """Images per split (`data_dir` is unused: the digits ship with scikit-learn)."""
    del data_dir
    return {split: len(indices) for split, indices in digits_split(load_digits().target).items()}


def digits_arrays(split):
    """Digits of one split: float32 (n, 8, 8, 1) in [0, 1] and int32 labels, in file order."""
    digits = load_digits()
    indices = digits_split(digits.target)[two_way(split)]
    images = (digits.images[indices] / 16.0).astype(np.float32)[..., None]
    return images, digits.target[indices].astype(np.int32)


def resized_batch(images, labels, scale, image_shape):
    """Scales a batch to [0, 1] and resizes it bilinearly to `image_shape`."""
    images = tf.cast(images, tf.float32) / scale
    images = tf.image.resize(images, image_shape[:2], method="bilinear")
    return tf.clip_by_value(images, 0.0, 1.0), labels


def digits_dataset(split, size, options):
    images, labels = digits_arrays(split)
    images, labels = images[:size], labels[:size]
    source = tf.data.Dataset.from_tensor_slices((images, labels))
    return in_memory_pipeline(
        source,
        len(images),
        lambda images, labels: resized_batch(images, labels, 1.0, options.image_shape),
        options,
    )


SOURCE = DataSource(
    name="digits",
    load=digits_dataset,
    sizes=digits_sizes,
    labels=DIGIT_LABELS,
    architecture="mnist",
    channels=(1,),
)
