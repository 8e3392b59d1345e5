"""`python -m export.encode`: image files → codes with an exported encoder, without TensorFlow.

Needs only onnxruntime, numpy and Pillow. The image size, channels, layout and value
range come from the ONNX file's metadata (written by `python -m export`), so the same
command serves `encoder.onnx` (n numbers per image) and `encoder_rankK.onnx` (K).
"""

import argparse
import os
import sys

from export import images as preprocessing
from export.atomic import check_writable_dir
from export.encoding import encode_files
from export.encoding import names_path
from export.encoding import open_session
from export.encoding import repair_codes
from export.encoding import save_codes
from export.errors import ArgumentParser
from export.errors import UsageError
from export.errors import run_cli

PROG = "python -m export.encode"


def build_parser():
    parser = ArgumentParser(
        prog=PROG,
        description=(
            "Encodes image files with an exported encoder ONNX file (encoder.onnx or "
            "encoder_rankK.onnx) using onnxruntime only. Each image goes through the "
            "preprocessing of training (export/images.py: EXIF orientation, the model's "
            "channels, centre crop to its aspect ratio, bilinear resize, its value range, "
            "read from the file's metadata), in batches, so memory stays bounded. "
            "Unreadable files, and anything that is not a regular file (a FIFO, socket or "
            "device), are reported one line each on stderr and skipped."),
        epilog=(
            "writes OUT (float32 array, one row per encoded image) and OUT's stem + "
            ".names.json (the encoded files, in row order), replaced together: an "
            "interrupted write leaves the old pair or the new one. Exit 0 when at least one image "
            "was encoded, 2 when none could be or on a usage error (one line on stderr).\n\n"
            "example:\n  python -m export.encode --onnx export/encoder_rank7.onnx "
            "--dir photos/ --out codes.npy"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("images", nargs="*", metavar="IMAGE", help="image files to encode")
    parser.add_argument("--onnx", required=True, metavar="FILE",
                        help="an encoder ONNX file written by python -m export")
    parser.add_argument("--dir", metavar="D",
                        help="encode the image files under D and its sub-folders, as training's "
                             "folder dataset finds them (by extension, hidden files left out, "
                             "sorted by path) instead of IMAGE arguments")
    parser.add_argument("--out", required=True, metavar="OUT.npy",
                        help="where to write the codes (.npy); an existing file is kept unless "
                             "--overwrite")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing OUT.npy and its .names.json")
    parser.add_argument("--batch-size", type=int, default=64, metavar="N",
                        help="images per onnxruntime call (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, metavar="N",
                        help="onnxruntime intra-op threads (default: the CPU count, "
                             "%(default)s)")
    return parser


def _image_files(directory):
    if not os.path.isdir(directory):
        raise UsageError(f"--dir {directory} is not a directory.")
    return [os.path.join(directory, *relative.split("/"))
            for relative in preprocessing.list_image_files(directory)]


def _paths(args):
    if args.dir and args.images:
        raise UsageError("pass IMAGE files or --dir D, not both.")
    if not args.dir and not args.images:
        raise UsageError("nothing to encode: pass IMAGE files or --dir D.")
    paths = _image_files(args.dir) if args.dir else args.images
    if not paths:
        raise UsageError(
            f"--dir {args.dir} holds no image files ({', '.join(preprocessing.IMAGE_EXTENSIONS)}) "
            "in it or its sub-folders.")
    return paths


def _check_out(out, overwrite):
    """Refuses, before any work, an OUT that would destroy or cannot be written."""
    if not out.endswith(".npy"):  # never a model or any other file, even with --overwrite
        raise UsageError(f"--out {out} must end in .npy (a numpy array file).")
    out_dir = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(out_dir):
        raise UsageError(f"--out {out}: directory {out_dir} does not exist.")
    check_writable_dir(out_dir, "--out")
    repair_codes(out)  # what an interrupted earlier write left: its complete pair, or nothing
    for path in (out, names_path(out)):
        if os.path.islink(path):
            raise UsageError(f"--out {out}: {path} is a symbolic link; codes are never written through "
                             "or over one: remove the link or choose another name.")
        if os.path.isdir(path):
            raise UsageError(f"--out {out}: {path} is a directory; choose a file name ending in .npy.")
        if os.path.lexists(path) and not overwrite:
            raise UsageError(f"--out {out}: {path} already exists; pass --overwrite to replace it "
                             "or choose another name.")


def main(argv):
    args = build_parser().parse_args(argv)
    if args.batch_size < 1 or args.threads < 1:
        raise UsageError("--batch-size and --threads must be integers >= 1.")
    _check_out(args.out, args.overwrite)
    paths = _paths(args)
    session, spec = open_session(args.onnx, args.threads)
    codes, names = encode_files(
        session, paths, spec,
        lambda path, why: print(f"export.encode: skipped {shown(path)}: {why}", file=sys.stderr),
        args.batch_size)
    if codes is None:
        raise UsageError(f"none of the {len(paths)} images could be read; nothing written.")
    save_codes(args.out, codes, names)
    print(f"encoded {len(names)} of {len(paths)} images to {shown(args.out)} "
          f"({codes.shape[0]}×{codes.shape[1]} float32); names in {shown(names_path(args.out))}")
    return 0


def shown(path):
    """`path` printable on any terminal: a name that is not valid UTF-8 shows its bytes
    escaped (\\xff) instead of failing to print."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


if __name__ == "__main__":
    run_cli(main, prog="export.encode")
