"""`python -m export.encode`: image files → codes with an exported encoder, without TensorFlow.

Needs only onnxruntime, numpy and Pillow. The image size, channels, layout and value
range come from the ONNX file's metadata (written by `python -m export`), so the same
command serves `encoder.onnx` (n numbers per image) and `encoder_rankK.onnx` (K).
"""

import argparse
import json
import os
import sys

import numpy as np
import onnxruntime
from PIL import Image
from PIL import ImageOps
from PIL import UnidentifiedImageError

from export.atomic import write_file_atomic
from export.errors import ArgumentParser
from export.errors import UsageError
from export.errors import run_cli

PROG = "python -m export.encode"


def build_parser():
    parser = ArgumentParser(
        prog=PROG,
        description=(
            "Encodes image files with an exported encoder ONNX file (encoder.onnx or "
            "encoder_rankK.onnx) using onnxruntime only. Each image is converted to the "
            "model's channels (RGB or grayscale), resized bilinearly to its size and scaled "
            "to its value range, all read from the file's metadata. Unreadable files are "
            "reported one line each on stderr and skipped."),
        epilog=(
            "writes OUT (float32 array, one row per encoded image) and OUT's stem + "
            ".names.json (the encoded files, in row order). Exit 0 when at least one image "
            "was encoded, 2 when none could be or on a usage error (one line on stderr).\n\n"
            "example:\n  python -m export.encode --onnx export/encoder_rank7.onnx "
            "--dir photos/ --out codes.npy"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("images", nargs="*", metavar="IMAGE", help="image files to encode")
    parser.add_argument("--onnx", required=True, metavar="FILE",
                        help="an encoder ONNX file written by python -m export")
    parser.add_argument("--dir", metavar="D",
                        help="encode the image files in D (not recursive; by extension, "
                             "sorted by name) instead of IMAGE arguments")
    parser.add_argument("--out", required=True, metavar="OUT.npy",
                        help="where to write the codes (.npy)")
    parser.add_argument("--batch-size", type=int, default=64, metavar="N",
                        help="images per onnxruntime call (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, metavar="N",
                        help="onnxruntime intra-op threads (default: the CPU count, "
                             "%(default)s)")
    return parser


def names_path(out):
    """The file beside `out` that lists the encoded images: codes.npy → codes.names.json."""
    stem = out[:-4] if out.endswith(".npy") else out
    return f"{stem}.names.json"


def open_session(path, threads=None):
    """An onnxruntime session on `path` and its input description from the metadata.

    Returns:
        `(session, spec)`: spec has `height`, `width`, `channels`, `low`, `high`.
    """
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
    if layout != "NHWC" or len(shape) != 4 or list(shape[1:]) != [height, width, channels]:
        raise UsageError(
            f"{path} is not an image encoder of python -m export (input {shape}, layout "
            f"{layout}); pass encoder.onnx or encoder_rankK.onnx.")
    spec = {"height": height, "width": width, "channels": channels, "low": low, "high": high}
    return session, spec


def load_image(path, spec):
    """An image file as float32 (height, width, channels) in the model's value range.

    Raises:
        OSError or ValueError (with a reason) when the file cannot be read as an image.
    """
    with Image.open(path) as image:
        image.load()
        image = ImageOps.exif_transpose(image)
        image = image.convert("L" if spec["channels"] == 1 else "RGB")
        size = (spec["width"], spec["height"])
        if image.size != size:
            image = image.resize(size, Image.Resampling.BILINEAR)
        pixels = np.asarray(image, dtype="float32") / 255.0
    pixels = pixels.reshape(spec["height"], spec["width"], spec["channels"])
    return spec["low"] + pixels * (spec["high"] - spec["low"])


def _reason(error):
    if isinstance(error, UnidentifiedImageError):
        return "not an image file Pillow can read"
    if isinstance(error, FileNotFoundError):
        return "no such file"
    if isinstance(error, IsADirectoryError):
        return "is a directory"
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def load_images(paths, spec, report):
    """Reads the images that can be read; calls `report(path, reason)` for each that cannot."""
    images, names = [], []
    for path in paths:
        try:
            images.append(load_image(path, spec))
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            report(path, _reason(error))
            continue
        names.append(path)
    return images, names


def encode(session, images, batch_size=64):
    """Codes of a float32 NHWC array, `batch_size` images per call."""
    input_name = session.get_inputs()[0].name
    return np.concatenate([
        session.run(None, {input_name: images[i:i + batch_size]})[0]
        for i in range(0, len(images), batch_size)
    ])


def _image_files(directory):
    if not os.path.isdir(directory):
        raise UsageError(f"--dir {directory} is not a directory.")
    extensions = {ext.lower() for ext in Image.registered_extensions()}
    return [
        os.path.join(directory, name) for name in sorted(os.listdir(directory))
        if os.path.splitext(name)[1].lower() in extensions and not name.startswith(".")
    ]


def _paths(args):
    if args.dir and args.images:
        raise UsageError("pass IMAGE files or --dir D, not both.")
    if not args.dir and not args.images:
        raise UsageError("nothing to encode: pass IMAGE files or --dir D.")
    paths = _image_files(args.dir) if args.dir else args.images
    if not paths:
        raise UsageError(f"--dir {args.dir} holds no image files.")
    return paths


def main(argv):
    args = build_parser().parse_args(argv)
    if args.batch_size < 1 or args.threads < 1:
        raise UsageError("--batch-size and --threads must be integers >= 1.")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        raise UsageError(f"--out {args.out}: directory {out_dir} does not exist.")
    paths = _paths(args)
    session, spec = open_session(args.onnx, args.threads)
    images, names = load_images(
        paths, spec, lambda path, why: print(f"export.encode: skipped {path}: {why}", file=sys.stderr))
    if not images:
        raise UsageError(f"none of the {len(paths)} images could be read; nothing written.")
    codes = encode(session, np.stack(images).astype("float32"), args.batch_size)
    write_file_atomic(args.out, lambda handle: np.save(handle, codes))
    listing = json.dumps(names, indent=1) + "\n"
    write_file_atomic(names_path(args.out), lambda handle: handle.write(listing.encode()))
    print(f"encoded {len(names)} of {len(paths)} images to {args.out} "
          f"({codes.shape[0]}×{codes.shape[1]} float32); names in {names_path(args.out)}")
    return 0


if __name__ == "__main__":
    run_cli(main, prog="export.encode")
