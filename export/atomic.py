"""Atomic writes: a staging path next to the destination, renamed into place at the end.

`write_file_atomic` imports nothing heavy: the TF-free deploy tool uses it. It is the
TF-free twin of `irmae_keras.utils.atomic_path`, which the library and everything on
the TensorFlow side use (the library cannot import this layer, and importing the
library imports Keras). `staged_directory` swaps whole directories recoverably (the swap
itself is `irmae_keras.staging`, loaded only when used).
"""

import contextlib
import os
import tempfile

from export.errors import UsageError


def write_file_atomic(path, write):
    """Calls `write(handle)` on a temporary file beside `path`, then renames it to `path`.

    Args:
        path: str. The destination file; its directory must exist.
        write: callable taking a binary file handle.

    Raises:
        UsageError: `path` is a symbolic link (neither it nor its target is replaced).
    """
    if os.path.islink(path):
        raise UsageError(f"{path} is a symbolic link; files are written by renaming a new one into "
                         "place, never through a link: remove the link or choose another path.")
    directory = os.path.dirname(os.path.abspath(path))
    handle, staging = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=directory)
    os.chmod(staging, 0o666 & ~_umask())  # mkstemp's 0600 would hide it from other users
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
        os.replace(staging, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(staging)
        raise


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_destination(path, overwrite):
    """UsageError unless `path` is free, or an existing directory that may be replaced."""
    if not os.path.lexists(path):
        return
    if not overwrite:
        raise UsageError(f"{path} already exists; pass --overwrite to replace it.")
    if os.path.islink(path):
        raise UsageError(f"{path} is a symbolic link; refusing to replace it or write through it: "
                         "remove the link or choose another path.")
    if not os.path.isdir(path):
        raise UsageError(f"{path} exists and is not a directory; refusing to replace it.")


def check_writable_dir(path, flag):
    """UsageError unless `path` is, or can become, a writable directory: an
    existing file, a file among its parents, a read-only or virtual file system
    are refused before any work."""
    path = os.path.abspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"{flag} {path} exists and is not a directory; choose another path.")
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UsageError(f"{flag} {path} lies under {existing}, which is a file; choose another path.")
    if existing == "/proc" or existing.startswith(("/proc/", "/sys/")) or existing == "/sys":
        raise UsageError(f"{flag} {path} is on a virtual file system ({existing}); choose another path.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path} is not writable ({existing} is read-only); choose another path.")
    try:
        if os.statvfs(existing).f_flag & os.ST_RDONLY:
            raise UsageError(f"{flag} {path} is on a read-only file system; choose another path.")
    except OSError:
        pass


# The recoverable directory swap lives in the library (irmae_keras.staging), which
# Autoencoder.save_to_preset needs and which cannot import this layer; it is loaded
# only when asked for, so the TF-free deploy path that imports this module stays light.
_STAGING_NAMES = ("STAGING_INFIX", "READY_INFIX", "RETIRED_INFIX", "recover_staged_directory",
                  "settled_directory")


def __getattr__(name):
    if name in _STAGING_NAMES:
        from irmae_keras import staging

        return getattr(staging, name)
    raise AttributeError(f"module 'export.atomic' has no attribute {name!r}")


@contextlib.contextmanager
def staged_directory(path, overwrite=False):
    """`irmae_keras.staging.staged_directory` refusing, with a UsageError, an existing
    `path` unless `overwrite` (`check_destination`)."""
    from irmae_keras.staging import staged_directory as staged

    with staged(path, lambda destination: check_destination(destination, overwrite)) as staging:
        yield staging
