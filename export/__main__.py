"""`python -m export RUN_DIR | MODEL.keras`: fold, export, verify, write a manifest."""

import argparse
import os

from training.errors import ArgumentParser
from training.errors import UsageError
from training.errors import import_tensorflow_quietly
from training.errors import run_cli

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
  manifest.json        sha256 and size of each artifact, input/output names and shapes,
                       parity figures, effective rank, dataset, versions

Every artifact is run in TensorFlow / onnxruntime at batch sizes 1 and 7 and must match
the Keras model to 1e-4 (max abs diff; relative to the values' scale beyond 1). Everything
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
        "--eval-size", type=int, default=1000, metavar="N",
        help="eval images used for the checks, effective rank and compact models "
             "(default: %(default)s)")
    parser.add_argument(
        "--overwrite", action="store_true",
        help="replace an existing export directory, once the new export has passed every "
             "check (default: refuse)")
    return parser


def _dataset(args, source):
    dataset = args.data or (source.config.dataset if source.config else None)
    if dataset is None:
        raise UsageError(
            f"{source.model_path} has no run configuration beside it: pass --data DATASET "
            "for the eval images.")
    data_dir = args.data_dir
    if data_dir is None and source.config and source.config.dataset == dataset:
        data_dir = source.config.data_dir
    return dataset, data_dir


def main(argv):
    args = build_parser().parse_args(argv)
    if args.eval_size < 7:
        raise UsageError(f"--eval-size must be an integer >= 7; got {args.eval_size}.")
    # Cheap checks first; TensorFlow loads after them.
    import_tensorflow_quietly()
    from export import onnx as onnx_export
    from export.api import export_model
    from export.api import parse_rank
    from export.api import resolve_rank
    from export.atomic import check_destination
    from export.manifest import summary_lines
    from export.source import eval_images
    from export.source import load_source

    rank = parse_rank(args.rank)
    onnx_export.check_opset(args.opset)
    base = args.source if os.path.isdir(args.source) else os.path.dirname(args.source)
    out = args.out or os.path.join(base, "export")
    check_destination(out, args.overwrite)
    source = load_source(args.source)
    resolve_rank(rank, source.model.latent_dim)
    dataset, data_dir = _dataset(args, source)
    images = eval_images(dataset, limit=args.eval_size,
                         image_shape=source.model.image_shape, data_dir=data_dir)
    manifest = export_model(
        source.model, out, eval_images=images, dataset=dataset, rank=rank,
        opset=args.opset, overwrite=args.overwrite, absorb=args.absorb,
        source={"path": os.path.abspath(source.model_path), "sha256": source.sha256,
                "run_dir": source.run_dir and os.path.abspath(source.run_dir),
                "config": source.config.to_dict() if source.config else None},
    )
    print("\n".join(summary_lines(manifest, out)))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    run_cli(main, prog="export")
