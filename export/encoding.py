"""Encoding image files with an exported encoder ONNX file: onnxruntime, numpy and
Pillow only (no TensorFlow). `python -m export.encode` is its command line.

The codes and the names of the encoded files are a pair of files, `codes.npy` and
`codes.names.json`, written as one (`save_codes`) and read as one (`load_codes`).
"""

import contextlib
import fcntl
import json
import os
import shutil
import stat
import tempfile

import numpy as np
import onnxruntime
from PIL import Image
from PIL import UnidentifiedImageError

from export import images as preprocessing
from export.errors import UsageError


def open_session(path, threads=None):
    """An onnxruntime session on `path` and its input description from the metadata.

    Returns:
        `(session, spec)`: spec has `height`, `width`, `channels`, `low`, `high`.
    """
    if os.path.isdir(path):
        raise UsageError(f"--onnx {path} is a directory; pass the encoder.onnx (or "
                         "encoder_rankK.onnx) file inside an export directory.")
    if not os.path.isfile(path):
        raise UsageError(f"--onnx {path} does not exist.")
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    try:
        session = onnxruntime.InferenceSession(
            path, options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types
        raise UsageError(f"cannot load {path} with onnxruntime: "
                         f"{str(error).splitlines()[0] if str(error) else error!r}") from None
    metadata = session.get_modelmeta().custom_metadata_map
    try:
        height, width, channels = json.loads(metadata["image_size"])
        low, high = json.loads(metadata["value_range"])
        layout = metadata["layout"]
    except (KeyError, ValueError, TypeError):
        raise UsageError(
            f"{path} lacks the image_size / value_range / layout metadata of an encoder "
            "written by python -m export.") from None
    shape = session.get_inputs()[0].shape
    output = session.get_outputs()[0].shape
    if (layout != "NHWC" or len(shape) != 4 or list(shape[1:]) != [height, width, channels]
            or len(output) != 2):
        raise UsageError(
            f"{path} is not an image encoder of python -m export (input {shape}, output "
            f"{output}, layout {layout}); pass encoder.onnx or encoder_rankK.onnx.")
    spec = {"height": height, "width": width, "channels": channels, "low": low, "high": high}
    return session, spec


class NotRegularFile(OSError):
    """A FIFO, socket or device where an image file was expected: never read (a FIFO
    would block its reader until someone writes to it)."""


def open_regular(path):
    """`path` opened for reading if it is a regular file (a link to one is followed).

    The file is opened without blocking, then checked with `fstat`, so a FIFO is
    refused without hanging and nothing can swap it in between check and read.

    Raises:
        IsADirectoryError, NotRegularFile, or the OSError of `open`.
    """
    handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(handle).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(path)
        if not stat.S_ISREG(mode):
            raise NotRegularFile(path)
        os.set_blocking(handle, True)
        return os.fdopen(handle, "rb")
    except BaseException:
        os.close(handle)
        raise


def load_image(path, spec):
    """An image file as float32 (height, width, channels) in the model's value range,
    through training's preprocessing (`export.images`). Only a regular file is read.

    Raises:
        OSError or ValueError (with a reason) when the file cannot be read as an image.
    """
    with open_regular(path) as handle:
        pixels = preprocessing.load_image(handle, (spec["height"], spec["width"], spec["channels"]))
    return spec["low"] + pixels * (spec["high"] - spec["low"])


def describe_error(error):
    if isinstance(error, NotRegularFile):
        return "not a regular file (a FIFO, socket or device), not read"
    if isinstance(error, UnidentifiedImageError):
        return "not an image file Pillow can read"
    if isinstance(error, FileNotFoundError):
        return "no such file"
    if isinstance(error, IsADirectoryError):
        return "is a directory"
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def encode_files(session, paths, spec, report, batch_size=64):
    """Codes of the readable files of `paths`, read and encoded `batch_size` at a
    time (memory: one batch of images); `report(path, reason)` for each unreadable one.

    Returns:
        `(codes, names)`: float32 (encoded, code size) and the encoded paths.
    """
    input_name = session.get_inputs()[0].name
    parts, names = [], []
    for start in range(0, len(paths), batch_size):
        batch = []
        for path in paths[start:start + batch_size]:
            try:
                batch.append(load_image(path, spec))
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
                report(path, describe_error(error))
                continue
            names.append(path)
        if batch:
            parts.append(session.run(None, {input_name: np.stack(batch).astype("float32")})[0])
    return (np.concatenate(parts) if parts else None), names


# --------------------------------------------------------------- the codes pair

PAIR_STAGING_INFIX = ".pair-staging-"  # being written: incomplete, deleted by repair
PAIR_READY_INFIX = ".pair-ready-"  # complete: its files are moved into place by repair


def names_path(out):
    """The file beside `out` that lists the encoded images: codes.npy → codes.names.json."""
    stem = out[:-4] if out.endswith(".npy") else out
    return f"{stem}.names.json"


def _pair_folders(out, infix):
    parent, name = os.path.split(os.path.abspath(out))
    prefix = f".{name}{infix}"
    return sorted(os.path.join(parent, entry) for entry in os.listdir(parent) if entry.startswith(prefix))


@contextlib.contextmanager
def _folder_lock(out):
    """One writer of a pair at a time in `out`'s folder (held for the short write and
    swap only), so that one's repair never deletes another's staging."""
    handle = os.open(os.path.dirname(os.path.abspath(out)), os.O_RDONLY | os.O_DIRECTORY)
    try:
        with contextlib.suppress(OSError):  # a file system without locks: go on unlocked
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # releases the lock


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _move_in(ready, out):
    """The files of the complete pair `ready` replace `out`'s, then `ready` goes."""
    for final in (out, names_path(out)):
        staged = os.path.join(ready, os.path.basename(final))
        if os.path.lexists(staged):
            os.replace(staged, final)
    os.rmdir(ready)


def _repair(out):
    for staging in _pair_folders(out, PAIR_STAGING_INFIX):
        _remove(staging)
    for ready in _pair_folders(out, PAIR_READY_INFIX):
        if os.path.isdir(ready) and not os.path.islink(ready):
            _move_in(ready, out)
        else:
            _remove(ready)


def repair_codes(out):
    """Finishes or undoes a `save_codes` that was interrupted (a kill, a full disk):
    an incomplete new pair is deleted, a complete one is moved into place."""
    with _folder_lock(out):
        _repair(out)


def write_new_file(path, write):
    """Calls `write(handle)` on a new binary file `path` (it must not exist)."""
    with open(path, "xb") as handle:
        write(handle)


def save_codes(out, codes, names):
    """Writes `out` (the codes, .npy) and `names_path(out)` (the files, JSON) as one.

    Both files are written into a hidden staging folder beside `out`; only when both
    are complete is the folder renamed ready (the commit), then each file is moved
    into place. A full disk or a file-size limit while writing leaves the old pair
    as it was; an interruption after the commit is finished by `repair_codes` (and
    `load_codes` reads the new pair meanwhile).
    """
    listing = (json.dumps(names, indent=1) + "\n").encode("utf-8")
    parent, name = os.path.split(os.path.abspath(out))
    with _folder_lock(out):
        _repair(out)
        staging = tempfile.mkdtemp(prefix=f".{name}{PAIR_STAGING_INFIX}", dir=parent)
        try:
            write_new_file(os.path.join(staging, name), lambda handle: np.save(handle, codes))
            write_new_file(os.path.join(staging, os.path.basename(names_path(out))),
                           lambda handle: handle.write(listing))
            ready = staging.replace(f".{name}{PAIR_STAGING_INFIX}", f".{name}{PAIR_READY_INFIX}", 1)
            os.replace(staging, ready)
        except BaseException:
            _remove(staging)
            raise
        _move_in(ready, out)


def load_codes(out):
    """The codes and file names of a pair written by `save_codes`, as one: a pair
    whose swap was interrupted reads as its new, complete pair (nothing is written).

    Returns:
        `(codes, names)`: float32 (images, code size) and the list of file names.

    Raises:
        UsageError: a missing or unreadable file, or files that do not pair up.
    """
    ready = [folder for folder in _pair_folders(out, PAIR_READY_INFIX) if os.path.isdir(folder)]

    def current(path):
        staged = os.path.join(ready[-1], os.path.basename(path)) if ready else None
        return staged if staged and os.path.isfile(staged) else path

    try:
        codes = np.load(current(out), allow_pickle=False)
        with open(current(names_path(out)), encoding="utf-8") as handle:
            names = json.load(handle)
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read the codes {out} and {names_path(out)}: {error}") from None
    if not isinstance(names, list) or len(names) != len(codes):
        raise UsageError(f"{out} and {names_path(out)} do not pair up: {len(codes)} codes, "
                         f"{len(names) if isinstance(names, list) else 'no list of'} names.")
    return codes, names
