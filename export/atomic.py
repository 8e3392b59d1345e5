"""Atomic writes: a staging path next to the destination, renamed into place at the end.

`write_file_atomic` imports nothing heavy: the TF-free deploy tool uses it. It is the
TF-free twin of `irmae_keras.utils.atomic_path`, which the library and everything on
the TensorFlow side use (the library cannot import this layer, and importing the
library imports Keras). `staged_directory` swaps whole directories recoverably.
"""

import contextlib
import os
import shutil
import tempfile

from export.errors import UsageError


def write_file_atomic(path, write):
    """Calls `write(handle)` on a temporary file beside `path`, then renames it to `path`.

    Args:
        path: str. The destination file; its directory must exist.
        write: callable taking a binary file handle.
    """
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
    if os.path.islink(path) or not os.path.isdir(path):
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


STAGING_INFIX = ".staging-"  # being written: incomplete, deleted by recovery
READY_INFIX = ".ready-"  # complete, about to replace the destination
RETIRED_INFIX = ".old-"  # the replaced destination, deleted once the swap is done


def _siblings(path, infix):
    parent, name = os.path.split(os.path.abspath(path))
    if not os.path.isdir(parent):
        return []
    prefix = f".{name}{infix}"
    return sorted(os.path.join(parent, entry) for entry in os.listdir(parent) if entry.startswith(prefix))


def recover_staged_directory(path):
    """Finishes or undoes a `staged_directory` swap that a killed process left.

    Every step of the swap leaves a state this recognises: a staging folder is
    incomplete (deleted); a ready folder is a complete new directory (moved into
    place, retiring the old one); a retired folder is deleted once `path` exists,
    and moved back if it does not.
    """
    for staging in _siblings(path, STAGING_INFIX):
        shutil.rmtree(staging, ignore_errors=True)
    for ready in _siblings(path, READY_INFIX):
        _swap_in(ready, path)
    for retired in _siblings(path, RETIRED_INFIX):
        if os.path.lexists(path):
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.rename(retired, path)


def _swap_in(ready, path):
    """`ready` becomes `path`; an existing `path` is retired first, then deleted."""
    # The library's rename carries the tests' fault-injection hook; only the
    # TensorFlow side (export_model, run directories) swaps directories.
    from irmae_keras.utils import replace_path

    parent, name = os.path.split(os.path.abspath(path))
    retired = None
    if os.path.lexists(path):
        retired = tempfile.mkdtemp(prefix=f".{name}{RETIRED_INFIX}", dir=parent)
        os.rmdir(retired)  # only its unique name is wanted
        replace_path(path, retired)
    replace_path(ready, path)
    if retired:
        shutil.rmtree(retired, ignore_errors=True)


@contextlib.contextmanager
def staged_directory(path, overwrite=False):
    """Yields an empty staging directory that becomes `path` if the block succeeds.

    The staging directory sits beside `path` (same file system, so the renames
    are atomic). If the block raises, it is deleted and `path` is left as it was.
    With `overwrite`, an existing `path` is replaced only after the block
    succeeded. A kill at any step leaves folders that `recover_staged_directory`
    (called here first) turns back into one consistent `path`.

    Args:
        path: str. The destination directory.
        overwrite: bool. Replace an existing directory. Defaults to False.
    """
    path = os.path.abspath(path)
    parent, name = os.path.split(path)
    recover_staged_directory(path)
    check_destination(path, overwrite)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{name}{STAGING_INFIX}", dir=parent)
    os.chmod(staging, 0o777 & ~_umask())  # mkdtemp's 0700 would hide it from other users
    try:
        yield staging
        check_destination(path, overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    from irmae_keras.utils import replace_path

    ready = staging.replace(f".{name}{STAGING_INFIX}", f".{name}{READY_INFIX}", 1)
    replace_path(staging, ready)
    _swap_in(ready, path)
