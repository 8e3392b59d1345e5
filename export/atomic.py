"""Atomic writes on the TF-free side, and the checks of an output path.

`write_file_atomic` writes a temporary file beside the destination and renames it into
place. It imports nothing heavy: the TF-free deploy wheel (deploy/) ships this module.
It is the TF-free side's one atomic writer; everything that runs with TensorFlow writes
through `irmae_keras.staging`, which this module cannot import without loading Keras.
`staged_directory` is that module's recoverable directory swap with export's refusal of
an existing destination (loaded only when used, so the deploy path stays light).
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


@contextlib.contextmanager
def staged_directory(path, overwrite=False):
    """`irmae_keras.staging.staged_directory` refusing, with a UsageError, an existing
    `path` unless `overwrite` (`check_destination`)."""
    from irmae_keras.staging import staged_directory as staged

    with staged(path, lambda destination: check_destination(destination, overwrite)) as staging:
        yield staging
