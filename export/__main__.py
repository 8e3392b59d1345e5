"""`python -m export RUN_DIR | MODEL.keras`: fold, export, verify, write a manifest."""

import argparse
import os

from export.errors import ArgumentParser
from export.errors import UsageError
from export.errors import run_cli
from export.manifest import FORMATS
from export.verify import EXPORT_EVAL_IMAGES
from export.verify import PARITY_BATCHES

DESCRIPTION = """\
Exports a trained irmae_keras autoencoder for deployment.

The linear stack is folded into one matrix (or, with --absorb, into the encoder's
last layer) and checked against the trained model on eval images. Then the export
directory receives:

  savedmodel/          TensorFlow SavedModel, signatures encode (image -> code),
                       decode (code -> image), reconstruct (image -> reconstruction)
  encoder.onnx         image -> code           (ONNX, dynamic batch, NHWC float32 in [0, 1])
  decoder.onnx         code -> image
  autoencoder.onnx     image -> reconstruction
  encoder_rankK.onnx   image -> K principal coordinates of the code   (--rank auto|K)
  decoder_rankK.onnx   K coordinates -> image                          (--rank auto|K)
  encoder.tflite       image -> code  (LiteRT, float32, dynamic batch)
  decoder.tflite       code -> image
  encoder_int8.tflite  the same with dynamic-range int8 weights, error recorded (--int8)
  decoder_int8.tflite
  manifest.json        sha256 and size of each artifact, input/output names and shapes,
                       parity figures, effective rank, dataset, versions

Every artifact is run in TensorFlow / onnxruntime / the LiteRT interpreter at batch sizes 1
and 7 and must match the Keras model to 1e-4 (int8: 0.1, its real error is recorded) (max abs diff; relative to the values' scale beyond 1). Everything
is written in a staging directory and renamed into place only when all checks pass: a
failed export leaves nothing behind, and --overwrite replaces an old export only then.
"""

EPILOG = """\
examples:
  python -m export saved_models/shapes-irmae-l2-n32-s0
  python -m export saved_models/shapes-irmae-l2-n32-s0 --rank auto --overwrite
  python -m export model.keras --data mnist --out /tmp/mnist-export --opset 18

Errors (missing or unreadable model, not an irmae_keras autoencoder, NaN weights, bad
--rank, existing output, failed parity check) are one line on stderr and exit code 2.
"""


def build_parser():
    parser = ArgumentParser(
        prog="python -m export",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "source", metavar="RUN_DIR|MODEL.keras",
        help="a run directory (model.keras + config.json, as training.fit writes) or a "
             ".keras file of an irmae_keras Autoencoder")
    parser.add_argument(
        "--out", metavar="DIR",
        help="export directory (default: RUN_DIR/export, or export/ beside MODEL.keras)")
    parser.add_argument(
        "--rank", default="full", metavar="auto|K|full",
        help="also write rank-K compact encoder/decoder ONNX files: auto = the effective "
             "rank of the eval codes (1%% threshold), K = 1..latent size, full = none "
             "(default: %(default)s)")
    parser.add_argument(
        "--absorb", action="store_true",
        help="fold the stack into the encoder's last layer instead of one Dense "
             "(default: off)")
    parser.add_argument(
        "--opset", type=int, default=17, metavar="N",
        help="ONNX opset, 13 to 18 (default: %(default)s)")
    parser.add_argument(
        "--data", metavar="DATASET",
        help="dataset of the eval images: shapes, digits, mnist, celeb_a, folder "
             "(default: the run's config.json)")
    parser.add_argument(
        "--data-dir", metavar="D",
        help="data directory for --data (default: the run's config.json)")
    parser.add_argument(
        "--eval-size", type=int, default=EXPORT_EVAL_IMAGES, metavar="N",
        help="eval images used for the checks, effective rank and compact models "
             "(default: %(default)s)")
    parser.add_argument(
        "--format", default=",".join(FORMATS), metavar="LIST",
        help="comma-separated formats to write: savedmodel, onnx, litert (default: %(default)s)")
    parser.add_argument(
        "--int8", action="store_true",
        help="also write LiteRT files with dynamic-range int8 weights, their error measured "
             "on the eval images and recorded in the manifest (default: off)")
    parser.add_argument(
        "--overwrite", action="store_true",
        help="replace an existing export directory, once the new export has passed every "
             "check (default: refuse)")
    return parser


def _dataset(args, config):
    """The dataset of the eval images: --data, else the run's; UsageError without either."""
    dataset = args.data or (config.dataset if config else None)
    if dataset is None:
        raise UsageError(
            f"{args.source} has no run configuration beside it: pass --data DATASET "
            "for the eval images.")
    return dataset


def _same_dir(a, b):
    return a is not None and b is not None and os.path.realpath(a) == os.path.realpath(b)


def _eval_images(args, run, config, model):
    """The run's own eval images (its seed, data directory, skipping), or those of
    --data / --data-dir for a model without a run or when asked for."""
    from training import data

    dataset = _dataset(args, config)
    if config and dataset == config.dataset and (args.data_dir is None or _same_dir(args.data_dir, config.data_dir)):
        return dataset, data.run_eval_images(config, args.eval_size, model.image_shape)
    return dataset, data.load_arrays(dataset, "eval", limit=args.eval_size, data_dir=args.data_dir,
                                     image_shape=tuple(model.image_shape))


def main(argv):
    args = build_parser().parse_args(argv)
    needed = max(PARITY_BATCHES)  # the parity checks run a batch of that many images
    if args.eval_size < needed:
        raise UsageError(f"--eval-size must be an integer >= {needed}; got {args.eval_size}.")
    import irmae_keras  # noqa: F401  (first: TensorFlow's oneDNN default and quiet start-up)
    import contextlib

    from export import onnx as onnx_export
    from export.api import check_formats
    from export.api import parse_rank
    from training.rundir import locate_model
    from export.atomic import check_writable_dir

    # Cheap checks first, before TensorFlow loads and before anything is touched.
    rank = parse_rank(args.rank)
    formats = check_formats(args.format.split(","))
    onnx_export.check_opset(args.opset)
    model_path, run = locate_model(args.source)
    config = run.check() if run else None
    _dataset(args, config)  # before the output's lock file is made
    out = args.out or (run.export_dir if run else os.path.join(os.path.dirname(os.path.abspath(model_path)), "export"))
    check_writable_dir(out, "--out")
    from export.api import export_model
    from export.api import resolve_rank
    from export.atomic import check_destination
    from export.manifest import sha256_file
    from export.manifest import summary_lines
    from export.source import load_model_file
    from irmae_keras.staging import recover_staged_directory

    from training.rundir import hold_lock

    with contextlib.ExitStack() as locks:
        # The run's lock; a model without a run locks its output instead: two exports
        # into one folder would each delete the other's staging folder.
        locks.enter_context(run.lock() if run else hold_lock(out, "--out"))
        recover_staged_directory(out)  # what a killed export left
        check_destination(out, args.overwrite)
        model = load_model_file(model_path)
        resolve_rank(rank, model.latent_dim)
        dataset, images = _eval_images(args, run, config, model)
        manifest = export_model(
            model, out, eval_images=images, dataset=dataset, rank=rank,
            opset=args.opset, overwrite=args.overwrite, absorb=args.absorb, formats=formats,
            int8=args.int8,
            source={"path": os.path.abspath(model_path), "sha256": sha256_file(model_path),
                    "run_dir": run and os.path.abspath(run.path),
                    "config": config.to_dict() if config else None},
        )
    print("\n".join(summary_lines(manifest, out)))
    return 0


if __name__ == "__main__":
    run_cli(main, prog="export")
