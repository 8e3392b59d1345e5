"""`python -m training.pretrained RUN_DIR NAME --command "..."`: a finished run → a preset.

Writes `irmae_keras/weights/NAME/` (or `--out DIR`): the model's config and float32
weights, and metadata with the command that trained it, its settings, effective rank and
eval MSE. `irmae_keras.Autoencoder.from_preset(NAME)` then loads it with no network.
"""

import argparse
import os

from export.errors import ArgumentParser
from export.errors import run_cli
from irmae_keras.pretrained import PRESETS_DIR
from training.rundir import RunDir


def build_parser():
    parser = ArgumentParser(prog="python -m training.pretrained", description=__doc__.split("\n\n")[1],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a finished run directory of training.fit")
    parser.add_argument("name", metavar="NAME", help="the preset's name, e.g. shapes_irmae_l2")
    parser.add_argument("--command", required=True,
                        help="the command that trained the run, recorded for whoever uses the preset")
    parser.add_argument("--out", metavar="DIR",
                        help=f"where the preset goes (default: {os.path.relpath(PRESETS_DIR)}/NAME)")
    return parser


def main(argv):
    args = build_parser().parse_args(argv)
    run = RunDir(args.run_dir)
    with run.lock():
        path = run.save_preset(args.out or os.path.join(PRESETS_DIR, args.name), args.command)
    print(f"wrote preset {args.name} to {path}")
    return 0


if __name__ == "__main__":
    run_cli(main, prog="training.pretrained")
