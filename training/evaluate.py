"""`python -m training.evaluate RUN_DIR`: spectrum, generation grids and FID of a trained run.

    python -m training.evaluate saved_models/shapes-irmae-l2-n32-s0
    python -m training.evaluate RUN --task gmm --seed 3
    python -m training.evaluate RUN --task spectrum --compare RUN_AE RUN_L4

Every task reads the first `--eval-size` images of the run's eval split (fixed
order) and their codes; the results are merged into `evaluation.json` beside
the figures. All numbers and figures are computed before anything is written, so
an error (one line, exit 2) leaves the output directory as it was.
"""

import argparse
import os

from export.errors import ArgumentParser
from export.errors import UsageError
from export.errors import run_cli
from training.evaluation.evaluation import COMPARE_FILE
from training.evaluation.evaluation import DOMAIN_FEATURES_FILE
from training.evaluation.evaluation import EVAL_IMAGES
from training.evaluation.evaluation import FEATURES
from irmae_keras import paper
from training.evaluation.evaluation import check_memory
from training.evaluation.evaluation import default_features
from training.evaluation.evaluation import minimum_images
from training.evaluation.evaluation import TASKS
from training.evaluation.evaluation import Settings
from training.evaluation.evaluation import evaluate
from training.rundir import EVALUATION_DIR
from training.rundir import RunDir

DESCRIPTION = """\
Evaluates a trained run (a directory written by python -m training.fit) with the
protocols of docs/evaluation.md, on the first --eval-size images of its eval split:

  spectrum        singular values of the code covariance, effective rank (1 % threshold)
                  and entropy rank; spectrum.png
  reconstruction  MSE of the reconstructions of all those images; reconstruction.png (the
                  first 50, each row of originals above its reconstructions)
  interpolation   10 pairs of eval codes (image k and k+10) x 10 linear steps, decoded, the
                  endpoints being the reconstructions (paper Fig. 3); interpolation.png
  mvg, gmm        100 images from a Gaussian / 4-component GMM fitted on the eval codes;
                  mvg.png, gmm.png
  pca             the 10x10 grid over the first two of 4 principal components, -2 to +2
                  standard deviations; pca.png
  fid             FID of N generated images against the first N eval images (samplers
                  fitted on those images' codes, --seed): mvg, gmm, interpolation midpoints,
                  reconstructions (the floor through this decoder) and N train images (the
                  floor of a perfect generator at this N)
  all             every task above (default)

The results are merged into OUT/evaluation.json: a later --task gmm keeps the spectrum.
OUT is RUN_DIR/evaluation unless --out is given.
"""

EPILOG = """\
examples:
  python -m training.evaluate saved_models/shapes-irmae-l2-n32-s0
  python -m training.evaluate saved_models/shapes-irmae-l2-n32-s0 --task fid --num-samples 2000
  python -m training.evaluate saved_models/shapes-irmae-l2-n32-s0 --task spectrum \\
      --compare saved_models/shapes-ae-l0-n32-s0 saved_models/shapes-irmae-l4-n32-s0
  python -m training.evaluate saved_models/celeb_a-irmae-l4-n512-s0 --task fid \\
      --inception-weights ~/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5

Features for FID: "domain" trains a small CNN on the run's train labels (digit classes, shapes
factors, a folder's class sub-folders; a folder without them: which way each image was
rotated) on first use and keeps it as OUT/domain_features.keras, reused on later calls; pass
--domain-features FILE to score several runs with one network. "inception" (CelebA's default)
needs Keras' ImageNet InceptionV3 weights, which are never downloaded here.

Errors (not a run directory, a bad flag, a mixture that does not converge, missing weights) are
one line on stderr and exit code 2; nothing is written then.
"""


# ----------------------------------------------------------------- arguments


def build_parser():
    parser = ArgumentParser(
        prog="python -m training.evaluate",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run directory to evaluate")
    parser.add_argument(
        "--task", choices=TASKS + ("all",), default="all",
        help="what to compute (default: %(default)s)")
    parser.add_argument(
        "--compare", nargs="+", default=[], metavar="RUN_DIR",
        help="with --task spectrum or all: overlay these runs' spectra on RUN_DIR's in "
             f"OUT/{COMPARE_FILE} (paper Fig. 2)")
    parser.add_argument(
        "--eval-size", type=int, metavar="N",
        help=f"eval images used: the first N of the eval split; each task needs only what it "
             f"uses (spectrum 2, pca 5; the grids shrink to fit). Refused before any work when "
             f"the images would not fit in memory (default: {EVAL_IMAGES}, or the run's "
             f"--eval-size if smaller; all when the split is smaller)")
    parser.add_argument(
        "--num-samples", type=int, default=EVAL_IMAGES, metavar="N",
        help="FID set size: the first N eval images against N generated ones, at least 2, at "
             "most the eval images used (default: %(default)s)")
    parser.add_argument(
        "--seed", type=int, default=0, metavar="S",
        help="seed of the sampled codes (mvg, gmm figures and FID) (default: %(default)s)")
    parser.add_argument(
        "--features", choices=FEATURES,
        help="FID feature extractor (default: inception for celeb_a, domain for the others)")
    parser.add_argument(
        "--inception-weights", metavar="FILE",
        help="with --features inception: Keras' InceptionV3 no-top ImageNet weights file, "
             "checked by md5 (default: looked up in $KERAS_HOME/models or ~/.keras/models, "
             "and /tmp/.keras/models)")
    parser.add_argument(
        "--domain-features", metavar="FILE",
        help="with --features domain: a stored extractor (another run's domain_features.keras) "
             f"to score with (default: OUT/{DOMAIN_FEATURES_FILE}, trained on first use)")
    parser.add_argument(
        "--gmm-max-iter", type=int, default=100, metavar="K",
        help="EM iterations allowed for the Gaussian mixture; one that has not converged by "
             "then is an error (default: %(default)s)")
    parser.add_argument(
        "--out", metavar="DIR",
        help="output directory (default: RUN_DIR/evaluation)")
    return parser


def _at_least(flag, value, minimum, why=""):
    if value is not None and value < minimum:
        raise UsageError(f"{flag} must be an integer >= {minimum}{why}; got {value}.")


def parse_settings(argv):
    """`Settings` from the command line; checks everything that needs no TensorFlow."""
    args = build_parser().parse_args(argv)
    tasks = TASKS if args.task == "all" else (args.task,)
    _at_least("--eval-size", args.eval_size, minimum_images(tasks), f" for --task {args.task}")
    _at_least("--num-samples", args.num_samples, 2, " (a covariance needs 2 images)")
    _at_least("--seed", args.seed, 0)
    _at_least("--gmm-max-iter", args.gmm_max_iter, 1)
    if args.compare and "spectrum" not in tasks:
        raise UsageError(f"--compare goes with --task spectrum or all, not --task {args.task}.")
    run = RunDir(args.run_dir)
    config = run.check()
    for other in args.compare:
        RunDir(other).check()
    features = args.features or default_features(config.dataset)
    if args.inception_weights and features != "inception":
        raise UsageError(f"--inception-weights goes with --features inception, not {features}.")
    if args.domain_features and features != "domain":
        raise UsageError(f"--domain-features goes with --features domain, not {features}.")
    for flag, path in (("--inception-weights", args.inception_weights),
                       ("--domain-features", args.domain_features)):
        if path and not os.path.isfile(path):
            raise UsageError(f"{flag} {path} is not a file.")
    out = run.output_dir(args.out, EVALUATION_DIR)
    # The run's own eval set, up to the FID protocol's N.
    eval_size = args.eval_size or min(EVAL_IMAGES, config.eval_size or EVAL_IMAGES)
    check_memory(eval_size, paper.IMAGE_SHAPES[config.architecture])
    return Settings(
        run_dir=args.run_dir, tasks=tasks, compare=args.compare, eval_size=eval_size,
        num_samples=args.num_samples, seed=args.seed, features=features,
        inception_weights=args.inception_weights, domain_features=args.domain_features,
        gmm_max_iter=args.gmm_max_iter, out=out,
    )


def main(argv):
    settings = parse_settings(argv)
    evaluate(settings)
    return 0


if __name__ == "__main__":
    run_cli(main, prog="training.evaluate")
