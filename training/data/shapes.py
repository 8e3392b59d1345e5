"""The synthetic shapes set: 7 factors per image, rendered per batch (the paper's dataset)."""

import numpy as np
import tensorflow as tf

from irmae_keras import paper
from training.data.common import DataSource
from training.data.common import Labels
from training.data.common import check_split
from training.data.common import two_way
from training.data.pipeline import in_memory_pipeline


SHAPES_FACTORS = ("type", "size", "r", "g", "b", "x", "y")


SHAPES_SIZES = {"train": paper.SHAPES_TRAIN_IMAGES, "eval": paper.SHAPES_EVAL_IMAGES}


SHAPES_TYPES = ("circle", "square")


SHAPES_SIZE_RANGE = (3, 8)


SHAPES_POSITION_RANGE = (8, 24)


# The random stream of each split: train and eval never share images for one seed.
SHAPES_STREAMS = {"train": 0, "eval": 1}


# Rows per rendering call in generate_shapes: bounds the temporaries, keeps ops vectorised.
RENDER_CHUNK = 8192


def shapes_rng(seed, split):
    check_split("shapes", split)
    stream = SHAPES_STREAMS["train" if split == "train" else "eval"]
    return np.random.default_rng([int(seed), stream])


def uniform_integers(uniform, low, high):
    """Maps uniform [0, 1) floats to integers uniform in low..high (inclusive)."""
    count = high - low + 1
    return low + np.minimum(np.floor(uniform * count), count - 1)


def sample_shapes_factors(n, seed=0, split="train"):
    """Draws the factors of `n` shapes images.

    Row i depends only on (seed, split, i): the first k rows are the same for every n ≥ k.

    Args:
        n: int. Number of images.
        seed: int. Random seed. Defaults to 0.
        split: str. "train", or "eval"/"test" (one stream, distinct from train's).
            Defaults to "train".

    Returns:
        float32 array (n, 7), columns `SHAPES_FACTORS`: type (0 circle, 1 square), size
        (integer 3..8), r, g, b (uniform in [0, 1)), x and y (integers 8..24).
    """
    uniform = shapes_rng(seed, split).random((int(n), len(SHAPES_FACTORS)))
    factors = np.empty_like(uniform, dtype=np.float32)
    factors[:, 0] = uniform_integers(uniform[:, 0], 0, len(SHAPES_TYPES) - 1)
    factors[:, 1] = uniform_integers(uniform[:, 1], *SHAPES_SIZE_RANGE)
    # float64 → float32 can round up to 1.0; the colours stay in [0, 1).
    largest_below_one = np.nextafter(np.float32(1), np.float32(0))
    factors[:, 2:5] = np.minimum(uniform[:, 2:5].astype(np.float32), largest_below_one)
    factors[:, 5] = uniform_integers(uniform[:, 5], *SHAPES_POSITION_RANGE)
    factors[:, 6] = uniform_integers(uniform[:, 6], *SHAPES_POSITION_RANGE)
    return factors


def render_shapes(factors, image_size=32):
    """Renders shapes images from their factors with vectorised TF ops.

    x is the column and y the row of a pixel, (0, 0) the top-left pixel. A circle covers the
    pixels with (col − x)² + (row − y)² ≤ size²; a square covers x ≤ col ≤ x + size and
    y ≤ row ≤ y + size (both corners inclusive, clipped to the image). Background is black.

    Args:
        factors: float32 tensor or array (batch, 7), columns `SHAPES_FACTORS`.
        image_size: int. Height and width. Defaults to 32.

    Returns:
        float32 tensor (batch, image_size, image_size, 3) in [0, 1].
    """
    factors = tf.convert_to_tensor(factors, tf.float32)
    kind, size, x, y = (factors[:, i, None, None] for i in (0, 1, 5, 6))
    colour = factors[:, None, None, 2:5]
    coordinates = tf.range(image_size, dtype=tf.float32)
    rows, cols = coordinates[None, :, None], coordinates[None, None, :]
    circle = tf.square(cols - x) + tf.square(rows - y) <= tf.square(size)
    # Row and column tests stay (batch, 1, n) and (batch, n, 1) until one broadcast `&`.
    square = ((cols >= x) & (cols <= x + size)) & ((rows >= y) & (rows <= y + size))
    inside = tf.where(kind < 0.5, circle, square)
    return tf.cast(inside, tf.float32)[..., None] * colour


def generate_shapes(n, seed=0, split="train"):
    """Generates `n` shapes images and their factors as numpy arrays.

    The same images as `load_dataset("shapes", split, seed=seed, size=n, shuffle=False)`.

    Args:
        n: int. Number of images.
        seed: int. Random seed. Defaults to 0.
        split: str. "train", or "eval"/"test". Defaults to "train".

    Returns:
        (images, factors): float32 arrays (n, 32, 32, 3) in [0, 1] and (n, 7).
    """
    factors = sample_shapes_factors(n, seed, split)
    images = np.empty((len(factors),) + SOURCE.image_shape, np.float32)
    for start in range(0, len(factors), RENDER_CHUNK):
        chunk = factors[start : start + RENDER_CHUNK]
        images[start : start + len(chunk)] = render_shapes(chunk).numpy()
    return images, factors


def shapes_dataset(split, size, options):
    factors = sample_shapes_factors(size or SHAPES_SIZES[two_way(split)], options.seed, split)
    source = tf.data.Dataset.from_tensor_slices(factors)
    return in_memory_pipeline(
        source, len(factors), lambda factors: (render_shapes(factors), factors), options
    )


SOURCE = DataSource(
    name="shapes",
    load=shapes_dataset,
    sizes=SHAPES_SIZES,
    labels=Labels("factors", (len(SHAPES_FACTORS),), None, SHAPES_FACTORS),
    architecture="shapes",
    channels=(3,),
    resizable=False,  # the geometry is defined on 32×32
    intrinsic_dimension=paper.SHAPES_INTRINSIC_DIMENSION,
)
