"""Small helpers shared by layers, models and the analysis modules."""

import keras
import numpy as np


def float32_if_mixed():
    """Returns `"float32"` under a mixed-precision policy, else `None` (inherit).

    The linear stack, the code and the image output stay in float32 under mixed
    precision: the rank-minimising dynamics act on small singular values that
    float16 would flush, and losses are computed on the output.
    """
    policy = keras.config.dtype_policy()
    if policy.compute_dtype != policy.variable_dtype:
        return "float32"
    return None


def check_choice(name, value, allowed):
    """Raises a ValueError naming the argument and its allowed values."""
    if value not in allowed:
        raise ValueError(
            f"`{name}` must be one of {sorted(allowed)}; received {value!r}."
        )
    return value


def check_int(name, value, minimum):
    """Raises a ValueError unless `value` is an int >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(
            f"`{name}` must be an integer >= {minimum}; received {value!r}."
        )
    return value


def check_images(name, images, minimum=1):
    """`images` as float32 NHWC in [0, 1] with >= `minimum` images, or a ValueError."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[0] < minimum:
        raise ValueError(
            f"`{name}` must be an array (N >= {minimum}, height, width, channels); "
            f"received shape {images.shape}."
        )
    images = images.astype(np.float32, copy=False)
    low, high = float(images.min()), float(images.max())
    if not (0.0 <= low and high <= 1.0):
        raise ValueError(
            f"`{name}` must be float images in [0, 1]; received values in "
            f"[{low:g}, {high:g}] (divide uint8 images by 255)."
        )
    return images


def map_in_batches(function, inputs, batch_size):
    """`function(batch)` over `inputs` in batches, concatenated as one numpy array.

    Used instead of `Model.predict` where that would start a second predict
    loop (inside `fit` callbacks) or where each batch needs preprocessing.
    """
    check_int("batch_size", batch_size, 1)
    return np.concatenate([
        keras.ops.convert_to_numpy(function(inputs[i:i + batch_size]))
        for i in range(0, len(inputs), batch_size)
    ])
