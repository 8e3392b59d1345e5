"""`python -m training.fit`: train an IRMAE or a baseline and write a run directory.

    python -m training.fit                                  # IRMAE on generated shapes
    python -m training.fit --dataset mnist --model ae -l 0
    python -m training.fit --strategy mirrored --batch-size 256

The run directory `OUTPUT_DIR/RUN_NAME/` holds `config.json`, `model.keras`,
`backup/`, `logs/`, `history.csv`, `spectrum.json`, `figures/` and `export/`;
running the same command again resumes an unfinished run. The work is
`training.trainer.train`; this module is its command line.
"""

import argparse
import dataclasses

from export.errors import ArgumentParser
from export.errors import UsageError
from export.errors import run_cli
from irmae_keras import paper
from training import config as run_config


def build_parser():
    defaults = run_config.RunConfig()
    table = "\n".join(
        f"  {name:<8} architecture {p['architecture']:<8} n={p['latent_dim']:<4} l={p['linear_layers']} (irmae)"
        for name, p in ((name, paper.ARCHITECTURES[source.architecture])
                        for name, source in run_config.DATASETS.items())
    )
    parser = ArgumentParser(
        prog="python -m training.fit",
        description="Train an implicit rank-minimizing autoencoder (or a baseline) and "
        "write a run directory: model, checkpoints, TensorBoard logs, history, the "
        "singular-value spectrum of the codes, and exported SavedModel/ONNX artifacts.",
        epilog="Paper defaults per dataset (used when -n / -l are not given; an explicit\n--architecture brings its own n and l):\n" + table
        + "\nOther defaults follow the official code: Adam, lr 1e-4, batch 32, 100 epochs."
        "\nThe same command again resumes an unfinished run from its last epoch.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS,
    )
    add = parser.add_argument
    add("--config", metavar="FILE", help="repeat a run: read its config.json (flags given here override it)")
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", choices=tuple(run_config.DATASETS), help=f"training data (default: {defaults.dataset})")
    data.add_argument("--data-dir", metavar="DIR", help="dataset location: a tensorflow-datasets dir, the CelebA folder, or the image folder for --dataset folder")
    data.add_argument("--skip-corrupt", action="store_true", help="skip unreadable image files (reported) instead of stopping")
    data.add_argument("--train-size", type=int, metavar="N", help="number of training images (default: all; 50 000 generated for shapes)")
    data.add_argument("--eval-size", type=int, metavar="N", help="number of eval images (default: all; 10 000 generated for shapes)")
    model = parser.add_argument_group("model")
    model.add_argument("--model", choices=run_config.MODELS, help=f"variant (default: {defaults.model})")
    model.add_argument("--architecture", choices=run_config.ARCHITECTURES, help="encoder/decoder, with its own n and l unless -n/-l are given (default: the dataset's; a folder gets the celeb_a model, 64x64x3, a 781 MB model.keras: --architecture shapes trains a few-MB model on 32x32 images)")
    model.add_argument("-l", "--linear-layers", type=int, metavar="L", help="depth of the linear stack (default: the dataset's l for irmae, 0 otherwise)")
    model.add_argument("-n", "--latent-dim", type=int, metavar="N", help="latent size (default: the dataset's n)")
    model.add_argument("--init-scale", type=float, help=f"multiplies the stack's init bound U(-1/sqrt(n), 1/sqrt(n)) (default: {defaults.init_scale})")
    model.add_argument("--stack-initializer", metavar="NAME", help="a Keras initializer for the stack instead of the default, e.g. glorot_uniform")
    model.add_argument("--tying", choices=run_config.TYINGS, help=f"stack weight tying (default: {defaults.tying})")
    model.add_argument("--freeze-stack", action="store_true", help="keep the stack at its random init (an ablation)")
    model.add_argument("--stack-activation", metavar="NAME", help="activation between the stack's matrices (nonlinear control; default: none)")
    model.add_argument("--penalty", type=float, help=f"L1/L2 code penalty for ae_l1/ae_l2 (default: {defaults.penalty})")
    model.add_argument("--kl-weight", type=float, help=f"VAE beta (default: {defaults.kl_weight})")
    train = parser.add_argument_group("training")
    train.add_argument("--epochs", type=int, help=f"epochs (default: {defaults.epochs})")
    train.add_argument("--batch-size", type=int, metavar="B", help=f"global batch size, split across replicas (default: {defaults.batch_size})")
    train.add_argument("--lr", type=float, help=f"learning rate (default: {defaults.lr})")
    train.add_argument("--optimizer", choices=run_config.OPTIMIZERS, help=f"optimizer: adam is torch.optim.Adam's update (epsilon after the bias correction), adam-keras Keras' placement of epsilon; sgd uses momentum 0.9 (default: {defaults.optimizer})")
    train.add_argument("--seed", type=int, help=f"random seed for weights, data order and generated data (default: {defaults.seed})")
    train.add_argument("--steps-per-epoch", type=int, metavar="S", help="steps per epoch (default: one pass over the training data)")
    hardware = parser.add_argument_group("hardware")
    hardware.add_argument("--strategy", choices=run_config.STRATEGIES, help="auto: mirrored when more than one GPU is visible; multi_worker reads TF_CONFIG (default: auto)")
    hardware.add_argument("--mixed-precision", action="store_true", help="mixed_float16 on GPU, mixed_bfloat16 on CPU; the stack and code stay float32")
    hardware.add_argument("--jit-compile", action="store_true", help="compile the train step with XLA (slower on CPU)")
    hardware.add_argument("--steps-per-execution", type=_steps_per_execution, metavar="N|auto",
                          help="batches per compiled call; fewer Python round trips, callbacks see every "
                          "N-th batch. auto: up to 16 for small models, 1 for large ones (default: auto)")
    output = parser.add_argument_group("output")
    output.add_argument("--run-name", metavar="NAME", help="run directory name (default: DATASET-MODEL-lL-nN-sSEED)")
    output.add_argument("--output-dir", metavar="DIR", help=f"where run directories go (default: {defaults.output_dir})")
    output.add_argument("--no-export", dest="export", action="store_false", help="skip the SavedModel/ONNX export at the end")
    output.add_argument("--overwrite", action="store_true", help="replace an existing run directory whose settings differ")
    output.add_argument("--quiet", action="store_true", help="one line per epoch instead of a progress bar")
    return parser


def _steps_per_execution(text):
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be auto or an integer >= 1, not {text!r}") from None


def parse_args(argv):
    """Returns `(RunConfig, options)` from the command line (UsageError if bad)."""
    given = vars(build_parser().parse_args(argv))
    options = {key: given.pop(key, False) for key in ("overwrite", "quiet")}
    if "config" in given:
        base = run_config.RunConfig.load(given.pop("config"))
    else:
        base = run_config.RunConfig()
    if "dataset" in given and given["dataset"] != base.dataset:
        # A new dataset brings its own defaults, not those of the file's dataset.
        base = dataclasses.replace(base, architecture=None, latent_dim=None, linear_layers=None)
    if "model" in given and "linear_layers" not in given:
        base = dataclasses.replace(base, linear_layers=None)
    try:
        config = dataclasses.replace(base, **given)
    except TypeError as error:
        raise UsageError(str(error)) from None
    return config.resolved(), options


def main(argv):
    config, options = parse_args(argv)
    from training.trainer import train

    result = train(config, overwrite=options["overwrite"], quiet=options["quiet"])
    print(f"run directory: {result.run_dir}")
    return 0


if __name__ == "__main__":
    run_cli(main, prog="training.fit")
