"""Small helpers shared by layers and models."""

import keras


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
