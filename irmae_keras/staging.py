"""Atomic writes on the TensorFlow side: a new file or directory is written whole at a
staging path beside its destination, then renamed into place.

Files: `atomic_path` yields a temporary path (`.tmp-*`) that becomes the destination when
the block succeeds; `write_json_atomic` and `save_model_atomic` write through it.

Directories: a new directory is written whole beside the old one, then swapped in by
renames that a killed process can always finish or undo. The steps, each named by a
hidden sibling of the destination `NAME`: `.NAME.staging-*` (being written: incomplete)
→ `.NAME.ready-*` (complete, about to replace `NAME`) → `NAME` retired to `.NAME.old-*`
→ ready renamed to `NAME` → retired deleted. `recover_staged_directory` turns whatever a
kill left back into one `NAME`; `settled_directory` tells a reader, without writing
anything, which complete directory to use meanwhile. Presets (`irmae_keras.pretrained`),
exports and run directories all swap through this module.

This is the one home of atomic writes for everything that imports TensorFlow: it lives in
the library, the lowest layer, because the library writes files itself (figures, presets,
FID features) and imports no higher layer. The TF-free deploy path has its own writer,
`export.atomic.write_file_atomic` (importing the library imports Keras).
"""

import contextlib
import errno
import json
import os
import shutil
import tempfile

TEMP_PREFIX = ".tmp-"  # how atomic_path names its temp files (a killed writer's leftovers)
STAGING_INFIX = ".staging-"  # being written: incomplete, deleted by recovery
READY_INFIX = ".ready-"  # complete, about to replace the destination
RETIRED_INFIX = ".old-"  # the replaced destination, deleted once the swap is done


# ------------------------------------------------------------------------ files


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
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json_atomic(path, document):
    """Writes `document` as indented, key-sorted JSON to `path` through `atomic_path`."""
    with atomic_path(path) as temp:
        with open(temp, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2, sort_keys=True)
            handle.write("\n")


def save_model_atomic(model, path):
    """`model.save(path)` (a `.keras` file) that never leaves a partial file at `path`."""
    with atomic_path(path) as temp:
        model.save(temp)


def current_umask():
    """The process umask (reading it means setting it; it is put straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# ------------------------------------------------------------------ directories


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
            os.replace(retired, path)


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
        os.replace(path, retired)
    os.replace(ready, path)
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
    os.replace(staging, ready)
    _swap_in(ready, path)
