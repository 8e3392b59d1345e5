"""Atomic writes: a staging path next to the destination, renamed into place at the end.

This module imports nothing heavy: the TF-free deploy tool uses it too.
"""

import contextlib
import os
import shutil
import tempfile

from training.errors import UsageError


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


@contextlib.contextmanager
def staged_directory(path, overwrite=False):
    """Yields an empty staging directory that becomes `path` if the block succeeds.

    The staging directory sits beside `path` (same file system, so the final
    rename is atomic). If the block raises, it is deleted and `path` is left as it
    was. With `overwrite`, an existing `path` is replaced only after the block
    succeeded.

    Args:
        path: str. The destination directory.
        overwrite: bool. Replace an existing directory. Defaults to False.
    """
    path = os.path.abspath(path)
    check_destination(path, overwrite)
    parent, name = os.path.split(path)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{name}.staging-", dir=parent)
    os.chmod(staging, 0o777 & ~_umask())  # mkdtemp's 0700 would hide it from other users
    try:
        yield staging
        check_destination(path, overwrite)
        if os.path.lexists(path):
            retired = tempfile.mkdtemp(prefix=f".{name}.old-", dir=parent)
            os.rename(path, os.path.join(retired, name))
            try:
                os.rename(staging, path)
            except OSError:
                os.rename(os.path.join(retired, name), path)  # put the old one back
                raise
            finally:
                if os.path.isdir(path):  # else the old export survives in `retired`
                    shutil.rmtree(retired, ignore_errors=True)
        else:
            os.rename(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
