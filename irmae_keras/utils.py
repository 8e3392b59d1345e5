"""Small helpers shared by layers, models and the analysis modules."""

import contextlib
import os
import tempfile

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


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path`; renames it onto `path` on success.

    A reader never sees a half-written file: the temporary file lives in the
    same directory (so `os.replace` is an atomic rename) and keeps `path`'s
    extension (Pillow, matplotlib and Keras pick the format from it). On an
    exception the temporary file is removed and `path` is left as it was.

    Example:
    ```python
    with atomic_path("figures/spectrum.png") as tmp:
        figure.savefig(tmp)
    ```
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=directory, prefix=".tmp-", suffix=os.path.splitext(path)[1]
    )
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
