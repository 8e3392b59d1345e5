"""Encoding image files with an exported encoder ONNX file: onnxruntime, numpy and
Pillow only (no TensorFlow). `python -m export.encode` is its command line."""

import json
import os

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


def load_image(path, spec):
    """An image file as float32 (height, width, channels) in the model's value range,
    through training's preprocessing (`export.images`).

    Raises:
        OSError or ValueError (with a reason) when the file cannot be read as an image.
    """
    pixels = preprocessing.load_image(path, (spec["height"], spec["width"], spec["channels"]))
    return spec["low"] + pixels * (spec["high"] - spec["low"])


def describe_error(error):
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
