"""`python -m training.pretrained RUN_DIR NAME --command "..."`: a finished run → a preset.

Writes a user preset, `$KERAS_HOME/irmae_keras/presets/NAME/` (KERAS_HOME defaults to
~/.keras, as in Keras), or `--out DIR`: the model's config and float32 weights, and
metadata with the command that trained it, its settings, optimizer steps, hardware,
effective rank, eval MSE and colour kept. `irmae_keras.Autoencoder.from_preset(NAME)`
then loads it with no network. An existing preset is replaced only with --overwrite; a
user preset may not take a built-in preset's name. Shipping a built-in preset is
explicit: --out irmae_keras/weights/NAME --overwrite.

`python -m training.pretrained --from-official CKPT NAME` makes a preset of a checkpoint of
the official PyTorch code (`torch.save(net.state_dict(), path)`, either file format; read
without PyTorch): architecture, variant, n and l come from its tensors, and the metadata
records the file and its sha256. Evaluation and export then take it like any preset.

`python -m training.pretrained --refresh PRESET` (for maintainers) measures a preset
again on the eval images its settings name (effective rank, eval MSE, colour kept),
adds its optimizer steps and hardware, and rewrites its metadata.json; the weights are
kept byte for byte.
"""

import argparse
import json
import os

from export.errors import ArgumentParser
from export.errors import UsageError
from export.errors import run_cli
from irmae_keras import pretrained
from training.rundir import RunDir

PROG = "python -m training.pretrained"
# Metadata keys a refresh writes afresh: an old value must not survive beside them.
HARDWARE_KEYS = ("hardware", "hardware_source", "hardware_unknown_reason")


def build_parser():
    parser = ArgumentParser(prog=PROG, description=__doc__.split("\n\n", 1)[1],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", nargs="?", metavar="RUN_DIR", help="a finished run directory of training.fit")
    parser.add_argument("name", nargs="?", metavar="NAME",
                        help=f"the preset's name ({pretrained.NAME_RULE}), e.g. my_shapes")
    parser.add_argument("--command", help="the command that trained the run, recorded for whoever uses "
                                          "the preset (required with RUN_DIR)")
    parser.add_argument("--out", metavar="DIR",
                        help="write the preset to DIR instead of the user presets folder (its last "
                             "folder must be NAME); irmae_keras/weights/NAME ships a built-in one")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing preset")
    parser.add_argument("--from-official", metavar="CKPT",
                        help="make the preset of an official PyTorch IRMAE checkpoint instead of a "
                             "run: then only NAME follows")
    parser.add_argument("--refresh", metavar="PRESET",
                        help="measure the preset PRESET (a name or directory) again on its eval "
                             "images and rewrite its metadata; no RUN_DIR then")
    parser.add_argument("--hardware-from", metavar="FILE.json",
                        help="with --refresh: a JSON record with the \"hardware\" of the run that "
                             "trained the preset (its run's config.json or its experiment's "
                             "results.json); without it an unrecorded hardware stays 'unknown', "
                             "with the reason")
    return parser


def preset_error(error):
    """The library's one-line preset error as the CLI's (exit 2)."""
    return UsageError(str(error).replace("overwrite=True", "--overwrite"))


def destination(args):
    """Where the preset goes, checked before any work: a plain NAME, a free (or
    --overwrite) directory that is no symbolic link, never a built-in by its name."""
    try:
        pretrained.check_name(args.name)
        if args.out:
            path = os.path.abspath(args.out)
            if os.path.basename(path) != args.name:
                raise UsageError(f"--out {args.out} must end in the preset's name: .../{args.name}.")
        else:
            path = pretrained.preset_destination(args.name)
        pretrained.check_replaceable(path, args.overwrite, flag="--overwrite")
    except pretrained.PresetError as error:
        raise preset_error(error) from None
    return path


def make_preset(args):
    if not (args.run_dir and args.name):
        raise UsageError("pass RUN_DIR and NAME (or --refresh PRESET).")
    if args.hardware_from:
        raise UsageError("--hardware-from goes with --refresh; a run records its own hardware.")
    if not args.command:
        raise UsageError("--command is required: the command that trained the run, for the "
                         "preset's users.")
    path = destination(args)
    run = RunDir(args.run_dir)
    with run.lock():
        try:
            path = run.save_preset(path, args.command, overwrite=args.overwrite)
        except pretrained.PresetError as error:
            raise preset_error(error) from None
    where = "" if args.out else f"; irmae_keras.Autoencoder.from_preset({args.name!r}) loads it"
    print(f"wrote preset {args.name} to {path}{where}")


def official_preset(args):
    """A preset of an official PyTorch checkpoint: `--from-official CKPT NAME`."""
    from export.manifest import sha256_file
    from irmae_keras.models import Autoencoder

    args.name = args.name or args.run_dir  # the one positional is NAME here
    if args.name is None or (args.run_dir and args.name != args.run_dir):
        raise UsageError("--from-official CKPT takes NAME only (no RUN_DIR).")
    if args.hardware_from:
        raise UsageError("--hardware-from goes with --refresh.")
    path = destination(args)
    checkpoint = args.from_official
    if not os.path.isfile(checkpoint):
        raise UsageError(f"--from-official {checkpoint} is not a file.")
    try:
        model = Autoencoder.from_official_checkpoint(checkpoint)
    except ValueError as error:
        raise UsageError(f"--from-official {checkpoint}: {error}") from None
    metadata = {
        "source": "official PyTorch checkpoint",
        "checkpoint": os.path.basename(checkpoint),
        "checkpoint_sha256": sha256_file(checkpoint),
        "command": args.command or "the official IRMAE code (facebookresearch/irmae), converted by "
                                   f"{PROG} --from-official",
    }
    try:
        path = pretrained.save_preset(model, path, metadata=metadata, overwrite=args.overwrite)
    except pretrained.PresetError as error:
        raise preset_error(error) from None
    print(f"wrote preset {args.name} ({model.variant}, {model.architecture} architecture, "
          f"n={model.latent_dim}, l={model.linear_layers}) to {path}")


def read_hardware(path):
    """The hardware record of a run or experiment document, and how to name its source
    without a path of this machine."""
    try:
        with open(path, encoding="utf-8") as handle:
            hardware = json.load(handle).get("hardware")
    except (OSError, ValueError, AttributeError) as error:
        raise UsageError(f"--hardware-from {path}: cannot read a JSON object ({error}).") from None
    if not (isinstance(hardware, dict) and {"cpu", "cores", "gpus"} <= set(hardware)):
        raise UsageError(f"--hardware-from {path} holds no \"hardware\" record (cpu, cores, gpus); pass "
                         "a run's config.json or an experiment's results.json.")
    relative = os.path.relpath(path)
    return hardware, relative if not relative.startswith("..") else os.path.basename(path)


def refreshed_metadata(path, old, hardware_from=None):
    """The metadata of the preset at `path`, measured again on its eval images."""
    from training import data
    from training.config import RunConfig
    from training.provenance import HARDWARE_UNKNOWN
    from training.provenance import preset_metadata

    if not isinstance(old.get("settings"), dict) or not old.get("command"):
        raise UsageError(f"preset {path} records no settings or command to measure it by; make it "
                         f"again from its run ({PROG} RUN_DIR NAME --command ...).")
    settings = {key: value for key, value in old["settings"].items() if key != "output_dir"}
    config = RunConfig.from_dict(settings, source=f"{path} metadata").resolved()
    model = pretrained.load_preset(path)
    limit = old.get("eval_images") or config.eval_size
    images = data.run_eval_images(config, limit, model.image_shape)
    if limit is not None and len(images) != limit:
        raise UsageError(f"preset {path} was measured on {limit} eval images; its settings give "
                         f"{len(images)} here.")
    numbers = pretrained.measure(model, images)
    hardware, source = read_hardware(hardware_from) if hardware_from else (None, None)
    new = preset_metadata(
        config, old["command"], numbers, hardware, hardware_source=source,
        hardware_unknown_reason="not recorded when the preset was made, and its run directory was "
                                "not kept")
    if not hardware and old.get("hardware") not in (None, HARDWARE_UNKNOWN):
        new.update({key: old[key] for key in HARDWARE_KEYS if key in old})  # known before: kept
        new.pop("hardware_unknown_reason", None)
    kept = {key: value for key, value in old.items() if key not in HARDWARE_KEYS}
    return {**kept, **new}


def refresh(args):
    if args.run_dir or args.name or args.command or args.out or args.overwrite:
        raise UsageError("--refresh PRESET takes no RUN_DIR, NAME, --command, --out or --overwrite.")
    try:
        path = pretrained.preset_path(args.refresh)
        old = pretrained.read_metadata(path)
        document = refreshed_metadata(path, old, args.hardware_from)
        pretrained.replace_metadata(path, document)
    except pretrained.PresetError as error:
        raise preset_error(error) from None
    for key in ("effective_rank", "eval_mse", "colour_kept", "steps", "hardware"):
        before, after = old.get(key), document.get(key)
        shown = "n/a (grey images)" if after is None else after
        print(f"{key}: {shown}" + ("" if before == after else
                                   f" (was {'not recorded' if before is None else before})"))
    print(f"refreshed {os.path.join(path, pretrained.METADATA_FILE)}")


def main(argv):
    args = build_parser().parse_args(argv)
    if args.refresh:
        refresh(args)
    elif args.from_official:
        official_preset(args)
    else:
        make_preset(args)
    return 0


if __name__ == "__main__":
    run_cli(main, prog="training.pretrained")
