"""`python -m training.classify RUN_DIR`: downstream classification with a frozen encoder.

    python -m training.classify saved_models/mnist-irmae-l8-n128-s0
    python -m training.classify RUN --labels 10,100 --seeds 3 --no-supervised

The paper's Table 2 experiment, with model selection on a held-out validation
split instead of the best test accuracy over epochs: a small head on frozen
encoder features, trained on class-balanced labelled subsets of the training
split drawn with several seeds, against the same encoder architecture trained
from scratch on the same subsets. Results go to `RUN_DIR/classification/`.
"""

import argparse

from export.errors import ArgumentParser
from export.errors import UsageError
from export.errors import run_cli
from training.evaluation.classification import DEFAULT_FEATURES
from training.evaluation.classification import DEFAULT_LABELS
from training.evaluation.classification import DEFAULT_PATIENCE
from training.evaluation.classification import FEATURES
from training.evaluation.classification import Settings
from training.evaluation.classification import classify
from training.evaluation.classification import parse_label_counts
from training.rundir import CLASSIFICATION_DIR
from training.rundir import RunDir

DESCRIPTION = """\
Downstream classification (paper Table 2) on a run's frozen encoder.

Features: the encoder network's output before the linear stack (pre_stack, as the
official code) or the code z after it (post_stack; a VAE's mean). They are computed
once; only the head trains: [Dense n, ReLU, Dropout 0.5] x 2 -> Dense(classes, no
bias), Adam 1e-3, batch 100 (n = the run's latent size).

Protocol: a fixed class-stratified 10 % of the training split is the validation set;
for each seed and label count, a class-balanced subset of the rest is drawn with that
seed (nested: a seed's 10-image subset lies inside its 50-image one; "all" = the whole
rest). Each head trains up to --epochs epochs and stops after --patience epochs without
a better validation accuracy; the best validation epoch's weights are restored and
scored once on the test split. The supervised baseline trains the same encoder
architecture from scratch with the head on the same subsets.
"""

EPILOG = """\
outputs (OUT = RUN_DIR/classification unless --out is given):
  results.json   every seed's numbers (test and validation accuracy, best epoch, class
                 counts of the subset) and the summary: test error mean and std over seeds
  results.md     the Markdown table: label count x {encoder, supervised} test error in %

examples:
  python -m training.classify saved_models/mnist-irmae-l8-n128-s0
  python -m training.classify saved_models/digits-irmae-l8-n128-s0 --labels 10,100,all --seeds 3
  python -m training.classify RUN --features post_stack --no-supervised

Classification needs a labelled dataset: digits, mnist, or a folder with one sub-folder
per class. Errors are one line on stderr and exit code 2; nothing is written then.
"""


# ----------------------------------------------------------------- arguments


def build_parser():
    parser = ArgumentParser(
        prog="python -m training.classify",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run directory whose encoder is used")
    parser.add_argument(
        "--labels", default=DEFAULT_LABELS, metavar="LIST",
        help="comma-separated labelled-subset sizes, each at least the number of classes, or "
             "'all' (default: %(default)s)")
    parser.add_argument(
        "--seeds", type=int, default=5, metavar="K",
        help="number of seeds (0 .. K-1), each drawing its own subsets and initialisations "
             "(default: %(default)s)")
    parser.add_argument(
        "--features", choices=FEATURES, default=DEFAULT_FEATURES,
        help="encoder output the head reads (default: %(default)s)")
    parser.add_argument(
        "--epochs", type=int, default=100, metavar="E",
        help="most epochs per training (default: %(default)s)")
    parser.add_argument(
        "--patience", type=int, default=DEFAULT_PATIENCE, metavar="P",
        help="stop after P epochs without a better validation accuracy (default: %(default)s)")
    parser.add_argument(
        "--supervised", action=argparse.BooleanOptionalAction, default=True,
        help="also train the encoder architecture from scratch on the same subsets, the slow "
             "part (default: on)")
    parser.add_argument(
        "--out", metavar="DIR", help="output directory (default: RUN_DIR/classification)")
    return parser


def parse_settings(argv):
    """`Settings` from the command line; checks what needs no TensorFlow."""
    args = build_parser().parse_args(argv)
    labels = parse_label_counts(args.labels)
    for flag, value in (("--seeds", args.seeds), ("--epochs", args.epochs), ("--patience", args.patience)):
        if value < 1:
            raise UsageError(f"{flag} must be an integer >= 1; got {value}.")
    run = RunDir(args.run_dir)
    run.check()
    return Settings(
        run_dir=args.run_dir, labels=labels, seeds=args.seeds, features=args.features,
        epochs=args.epochs, patience=args.patience, supervised=args.supervised,
        out=run.output_dir(args.out, CLASSIFICATION_DIR),
    )


def main(argv):
    settings = parse_settings(argv)
    classify(settings)
    return 0


if __name__ == "__main__":
    run_cli(main, prog="training.classify")
