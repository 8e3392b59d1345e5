"""TensorFlow's C++ start-up lines, kept off the terminal of a user of this library.

Importing TensorFlow and running its first ops prints lines that concern nobody who
trains or uses these models: absl's "All log messages before absl::InitializeLog()",
the oneDNN notice (once per TensorFlow shared library, so twice), "Could not find cuda
drivers", "failed call to cuInit ... (303)" on a machine without a GPU, and, on CPUs
without AVX-512, "oneDNN supports DT_INT32 only on platforms with AVX-512" when an
int32 op first runs. So importing irmae_keras, before TensorFlow loads:

- sets `TF_CPP_MIN_LOG_LEVEL`, when unset, to 3 (errors too) on a machine without an
  NVIDIA device and to 2 where there is one, so that a GPU user still sees CUDA errors;
- imports TensorFlow and probes its devices with the process's file descriptor 2
  pointed at /dev/null, because the start-up lines are written before TensorFlow reads
  that variable.

Python's own warnings and exceptions are untouched. A `TF_CPP_MIN_LOG_LEVEL` set by the
user is kept; at 0 or 1 (that user asked for TensorFlow's information lines) nothing is
silenced either. Nothing happens if TensorFlow was imported first.

This module imports neither TensorFlow nor Keras at module level.
"""

import contextlib
import os
import sys

ENVIRONMENT_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
QUIET_LEVEL = "3"  # no GPU: every TensorFlow C++ log line is noise
GPU_LEVEL = "2"  # a GPU: keep CUDA's errors
VERBOSE_LEVELS = ("0", "1")  # a user who sets these wants TensorFlow's lines
NVIDIA_DEVICES = ("/dev/nvidia0", "/dev/nvidiactl", "/proc/driver/nvidia/version")


def has_nvidia_device(paths=NVIDIA_DEVICES):
    """Whether this machine shows an NVIDIA driver or device (no CUDA call made)."""
    return any(os.path.exists(path) for path in paths)


def quiet_level(environ=None, gpu=None):
    """The `TF_CPP_MIN_LOG_LEVEL` to set, or None when the user set one."""
    environ = os.environ if environ is None else environ
    if ENVIRONMENT_VARIABLE in environ:
        return None
    return GPU_LEVEL if (has_nvidia_device() if gpu is None else gpu) else QUIET_LEVEL


@contextlib.contextmanager
def native_stderr_silenced():
    """Discards what native code writes to file descriptor 2 meanwhile.

    Python's `sys.stderr` is flushed first; an exception raised inside the block is
    printed after it, when descriptor 2 is back.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow_quietly(environ=None, modules=None):
    """Imports TensorFlow and probes its devices without its start-up lines.

    Returns:
        True when this call imported TensorFlow quietly; False when TensorFlow was
        already loaded or the user asked for its information lines (`TF_CPP_MIN_LOG_LEVEL`
        0 or 1); then nothing changes.
    """
    environ = os.environ if environ is None else environ
    modules = sys.modules if modules is None else modules
    if "tensorflow" in modules or environ.get(ENVIRONMENT_VARIABLE) in VERBOSE_LEVELS:
        return False
    level = quiet_level(environ)
    if level is not None:
        environ[ENVIRONMENT_VARIABLE] = level
    with native_stderr_silenced():
        import tensorflow as tf

        tf.config.list_physical_devices()  # the CUDA probe logs here, once
    return True
