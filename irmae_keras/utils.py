"""Small helpers shared by layers, models and the analysis modules."""

import contextlib
import errno
import json
import os
import tempfile

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


TEMP_PREFIX = ".tmp-"  # how atomic_path names its temp files (a killed writer's leftovers)


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path`; renames it onto `path` on success.

    A reader never sees a half-written file: the temporary file lives in the
    same directory (so `os.replace` is an atomic rename) and ends with `path`'s
    file name (Pillow, matplotlib and Keras pick the format from it). Its name
    starts with `.tmp-`, so a killed writer's leftovers are recognisable. On an
    exception the temporary file is removed and `path` is left as it was. A `path`
    that is a symbolic link is refused (OSError ELOOP): neither the link nor what it
    points to is replaced.

    Example:
    ```python
    with atomic_path("figures/spectrum.png") as tmp:
        figure.savefig(tmp)
    ```
    """
    path = os.fspath(path)
    if os.path.islink(path):
        raise OSError(errno.ELOOP, f"{path} is a symbolic link; files are written by renaming a new "
                      "one into place, never through a link: remove the link or choose another path.")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    # The whole file name as suffix: Keras needs ".weights.h5", not just ".h5".
    fd, tmp = tempfile.mkstemp(
        dir=directory, prefix=TEMP_PREFIX, suffix="-" + os.path.basename(path)
    )
    os.close(fd)
    # mkstemp makes the file private (0600); give it the mode open() would.
    os.chmod(tmp, 0o666 & ~current_umask())
    try:
        yield tmp
        replace_path(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json_atomic(path, document):
    """Writes `document` as indented, key-sorted JSON to `path` through `atomic_path`."""
    with atomic_path(path) as temp:
        with open(temp, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2, sort_keys=True)
            handle.write("\n")


_renames = 0


def replace_path(source, destination):
    """`os.replace(source, destination)`: the one rename of every atomic write.

    Fault injection for the tests: with `IRMAE_KILL_AT_RENAME=N` in the
    environment, the process kills itself (SIGKILL, as `kill -9` or a power cut)
    just before its Nth rename, so a test can stop a real run at every atomic
    write boundary and check that the same command then repairs it.
    """
    global _renames
    _renames += 1
    if os.environ.get("IRMAE_KILL_AT_RENAME") == str(_renames):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
    os.replace(source, destination)


def current_umask():
    """The process umask (reading it means setting it; it is put straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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
