"""TensorFlow's oneDNN CPU kernels, on for every x86-64 CPU rather than only the newest.

TensorFlow's Linux wheels decide at start-up whether its CPU ops use oneDNN (the
`_Mkl*` kernels) or Eigen's. Unless `TF_ENABLE_ONEDNN_OPTS` says otherwise, oneDNN is
on only where the CPU has AVX512_VNNI, AVX512_BF16, AVX_VNNI or AMX: a Sapphire
Rapids or a Zen 4 gets it, a Skylake-SP, a Zen 2 or a Zen 3 server (and most laptops
before 2021) gets Eigen. PyTorch uses oneDNN on all of them. For these models Eigen's
convolution gradients are the difference: measured on one Zen 4 host, a shapes train
step at batch 32 runs at 0.36x PyTorch with Eigen and 1.26x with oneDNN (see
benchmarks/README.md, "machine states").

So importing irmae_keras sets `TF_ENABLE_ONEDNN_OPTS=1` when the variable is unset, on
x86-64 Linux and Windows, before TensorFlow loads. An explicit value (`0` for
Eigen, e.g. for bit-identical results across CPU generations) is always kept.
TensorFlow reads the variable once, when it starts: if TensorFlow was imported
before irmae_keras and chose Eigen, `check()` warns once with the fix.

This module imports neither TensorFlow nor Keras at module level.
"""

import os
import platform
import sys
import warnings

ENVIRONMENT_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
# Where TensorFlow's wheels are built with oneDNN and its default depends on the CPU.
_PLATFORMS = {("Linux", "x86_64"), ("Windows", "AMD64")}
# The CPU flags (as /proc/cpuinfo spells them) that make TensorFlow turn oneDNN on.
TENSORFLOW_ONEDNN_FLAGS = ("avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")

_tensorflow_loaded_first = False


def prefer_onednn(environ=None, system=None, machine=None, modules=None):
    """Sets `TF_ENABLE_ONEDNN_OPTS=1` if unset, on a platform where it matters.

    Returns:
        True where this call set it. Nothing changes if TensorFlow is already loaded
        (it read the variable when it started; `check()` reports that case).
    """
    global _tensorflow_loaded_first
    environ = os.environ if environ is None else environ
    modules = sys.modules if modules is None else modules
    if (system or platform.system(), machine or platform.machine()) not in _PLATFORMS:
        return False
    if ENVIRONMENT_VARIABLE in environ:
        return False
    if "tensorflow" in modules:
        _tensorflow_loaded_first = True
        return False
    environ[ENVIRONMENT_VARIABLE] = "1"
    return True


def enabled():
    """Whether this process's TensorFlow uses oneDNN kernels (imports TensorFlow);
    None where TensorFlow cannot tell."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return None
    return bool(_pywrap_util_port.IsMklEnabled())


def message(is_enabled, loaded_first, environ=None):
    """The warning for TensorFlow started with Eigen kernels by its own default, or None."""
    environ = os.environ if environ is None else environ
    if is_enabled is not False or not loaded_first or ENVIRONMENT_VARIABLE in environ:
        return None
    return ("TensorFlow was imported before irmae_keras and chose its Eigen CPU kernels (this "
            "CPU has none of AVX512_VNNI, AVX512_BF16, AVX_VNNI, AMX): training runs about 3x "
            "slower than with oneDNN. Import irmae_keras before tensorflow, or set "
            f"{ENVIRONMENT_VARIABLE}=1 before Python starts.")


def check():
    """Warns once if TensorFlow started before irmae_keras with oneDNN off by default."""
    text = message(enabled(), _tensorflow_loaded_first)
    if text:
        warnings.warn(text, RuntimeWarning, stacklevel=3)


def cpu_flags(path="/proc/cpuinfo"):
    """The CPU's feature flags (a set; empty where /proc/cpuinfo is missing)."""
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def tensorflow_default(flags=None):
    """What TensorFlow's Linux wheel picks with the variable unset: True (oneDNN) when
    the CPU has one of TENSORFLOW_ONEDNN_FLAGS."""
    flags = cpu_flags() if flags is None else flags
    return any(flag in flags for flag in TENSORFLOW_ONEDNN_FLAGS)
