"""A recoverable directory swap: a new directory is written whole beside the old one,
then swapped in by renames that a killed process can always finish or undo.

The steps, each named by a hidden sibling of the destination `NAME`:
`.NAME.staging-*` (being written: incomplete) → `.NAME.ready-*` (complete, about to
replace `NAME`) → `NAME` retired to `.NAME.old-*` → ready renamed to `NAME` → retired
deleted. `recover_staged_directory` turns whatever a kill left back into one `NAME`;
`settled_directory` tells a reader, without writing anything, which complete
directory to use meanwhile. Presets (`irmae_keras.pretrained`), exports and run
directories all swap through this module; `export.atomic` re-exports it.

It lives in the library, the lowest layer, because `Autoencoder.save_to_preset` needs
it and the library imports no higher layer. Every rename goes through
`irmae_keras.utils.replace_path`, the tests' fault-injection hook.
"""

import contextlib
import os
import shutil
import tempfile

from irmae_keras.utils import current_umask
from irmae_keras.utils import replace_path

STAGING_INFIX = ".staging-"  # being written: incomplete, deleted by recovery
READY_INFIX = ".ready-"  # complete, about to replace the destination
RETIRED_INFIX = ".old-"  # the replaced destination, deleted once the swap is done


def _siblings(path, infix):
    parent, name = os.path.split(os.path.abspath(path))
    if not os.path.isdir(parent):
        return []
    prefix = f".{name}{infix}"
    return sorted(os.path.join(parent, entry) for entry in os.listdir(parent) if entry.startswith(prefix))


def _is_real_directory(path):
    """A directory that is not a symbolic link (a link is never followed)."""
    return os.path.isdir(path) and not os.path.islink(path)


def _remove(path):
    """Deletes a leftover: a directory tree, or a link or file itself (never what a link
    points to)."""
    if _is_real_directory(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def recover_staged_directory(path):
    """Finishes or undoes a `staged_directory` swap that a killed process left.

    Every step of the swap leaves a state this recognises: a staging folder is
    incomplete (deleted); a ready folder is a complete new directory (moved into
    place, retiring the old one); a retired folder is deleted once `path` exists,
    and moved back if it does not. A leftover name that is a symbolic link or a
    file is not ours: it is removed, never followed.
    """
    for staging in _siblings(path, STAGING_INFIX):
        _remove(staging)
    for ready in _siblings(path, READY_INFIX):
        if _is_real_directory(ready):
            _swap_in(ready, path)
        else:
            _remove(ready)
    for retired in _siblings(path, RETIRED_INFIX):
        if os.path.lexists(path) or not _is_real_directory(retired):
            _remove(retired)
        else:
            replace_path(retired, path)


def settled_directory(path):
    """The complete directory a reader should use for `path`, writing nothing: `path`
    itself, else the new directory of a swap killed between its renames, else the
    old one it retired; None when there is none.

    Lets a reader without write access (or without the writer's lock) ignore an
    interrupted swap instead of repairing it.
    """
    if os.path.lexists(path):
        return path
    for infix in (READY_INFIX, RETIRED_INFIX):
        for candidate in _siblings(path, infix):
            if _is_real_directory(candidate):
                return candidate
    return None


def _swap_in(ready, path):
    """`ready` becomes `path`; an existing `path` is retired first, then deleted."""
    parent, name = os.path.split(os.path.abspath(path))
    retired = None
    if os.path.lexists(path):
        retired = tempfile.mkdtemp(prefix=f".{name}{RETIRED_INFIX}", dir=parent)
        os.rmdir(retired)  # only its unique name is wanted
        replace_path(path, retired)
    replace_path(ready, path)
    if retired:
        _remove(retired)


@contextlib.contextmanager
def staged_directory(path, check):
    """Yields an empty staging directory that becomes `path` if the block succeeds.

    The staging directory sits beside `path` (same file system, so the renames
    are atomic). If the block raises, it is deleted and `path` is left as it was.
    An existing `path` is replaced only after the block succeeded. A kill at any
    step leaves folders that `recover_staged_directory` (called here first) turns
    back into one consistent `path`. Two writers of one `path` must not run at once
    (the caller holds a lock): each one's recovery would delete the other's staging.

    Args:
        path: str. The destination directory.
        check: callable taking `path`, called after recovery and again just before
            the swap; it raises to refuse (e.g. `path` exists and may not be replaced).
    """
    path = os.path.abspath(path)
    parent, name = os.path.split(path)
    recover_staged_directory(path)
    check(path)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{name}{STAGING_INFIX}", dir=parent)
    os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp's 0700 would hide it from other users
    try:
        yield staging
        check(path)
    except BaseException:
        _remove(staging)
        raise
    ready = staging.replace(f".{name}{STAGING_INFIX}", f".{name}{READY_INFIX}", 1)
    replace_path(staging, ready)
    _swap_in(ready, path)
