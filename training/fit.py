"""`python -m training.fit`: train an IRMAE or a baseline and write a run directory.

    python -m training.fit                                  # IRMAE on generated shapes
    python -m training.fit --dataset mnist --model ae -l 0
    python -m training.fit --strategy mirrored --batch-size 256

The run directory `OUTPUT_DIR/RUN_NAME/` holds `config.json`, `model.keras`,
`backup/`, `logs/`, `history.csv`, `spectrum.json`, `figures/` and `export/`;
running the same command again resumes an unfinished run.
"""

import argparse
import csv
import dataclasses
import json
import math
import os
import shutil
import sys
import tempfile
import time

from training import config as run_config
from training.errors import ArgumentParser
from training.errors import RunFailed
from training.errors import UsageError
from training.errors import import_tensorflow_quietly
from training.errors import run_cli

# Settings that may change between a run and its resumption without making it
# another run (where it runs, what happens after training).
RESUMABLE_DIFFERENCES = ("export", "strategy", "output_dir", "data_dir", "jit_compile",
                         "steps_per_execution")
SPECTRUM_CODES = 10_000
MONITOR_IMAGES = 1_000
EXPORT_IMAGES = 1_000  # as `python -m export --eval-size`
STATUS_FILE = "status.json"
# --steps-per-execution auto: enough batches per compiled call for about this much
# training work (≈ 0.3 s on 2 CPU cores), at most AUTO_MAX_STEPS. Each call costs
# ~0.6 ms of Python and callbacks; big steps gain nothing from grouping and keep the
# progress bar and TerminateOnNaN per batch.
AUTO_EXECUTION_FLOPS = 64e9
AUTO_MAX_STEPS = 16
INTRINSIC_DIMENSION = {"shapes": 7}


@dataclasses.dataclass
class RunResult:
    """What a finished run reports."""

    run_dir: str
    epochs_completed: int
    effective_rank: int
    entropy_rank: float
    spectrum: list
    eval_mse: float | None
    exported: bool
    resumed_from_epoch: int = 0


# ---------------------------------------------------------------- arguments


def build_parser():
    defaults = run_config.RunConfig()
    table = "\n".join(
        f"  {name:<8} architecture {d['architecture']:<8} n={d['latent_dim']:<4} l={d['linear_layers']} (irmae)"
        for name, d in run_config.DATASET_DEFAULTS.items()
    )
    parser = ArgumentParser(
        prog="python -m training.fit",
        description="Train an implicit rank-minimizing autoencoder (or a baseline) and "
        "write a run directory: model, checkpoints, TensorBoard logs, history, the "
        "singular-value spectrum of the codes, and exported SavedModel/ONNX artifacts.",
        epilog="Paper defaults per dataset (used when -n / -l are not given):\n" + table
        + "\nOther defaults follow the official code: Adam, lr 1e-4, batch 32, 100 epochs."
        "\nThe same command again resumes an unfinished run from its last epoch.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS,
    )
    add = parser.add_argument
    add("--config", metavar="FILE", help="repeat a run: read its config.json (flags given here override it)")
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", choices=run_config.DATASETS, help=f"training data (default: {defaults.dataset})")
    data.add_argument("--data-dir", metavar="DIR", help="dataset location: a tensorflow-datasets dir, the CelebA folder, or the image folder for --dataset folder")
    data.add_argument("--skip-corrupt", action="store_true", help="skip unreadable image files (reported) instead of stopping")
    data.add_argument("--train-size", type=int, metavar="N", help="number of training images (default: all; 50 000 generated for shapes)")
    data.add_argument("--eval-size", type=int, metavar="N", help="number of eval images (default: all; 10 000 generated for shapes)")
    model = parser.add_argument_group("model")
    model.add_argument("--model", choices=run_config.MODELS, help=f"variant (default: {defaults.model})")
    model.add_argument("--architecture", choices=run_config.ARCHITECTURES, help="encoder/decoder (default: the dataset's)")
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


# ----------------------------------------------------------------- strategy

_STRATEGIES = {}


def make_strategy(name):
    """The tf.distribute strategy for `--strategy` (one instance per process:
    a second MirroredStrategy would reuse the first one's collective keys)."""
    import tensorflow as tf

    if name in _STRATEGIES:
        return _STRATEGIES[name]
    if name == "multi_worker":
        # Must come first: collective ops are configured before TF initialises
        # its context, which listing devices would do.
        strategy = _multi_worker_strategy()
    else:
        gpus = tf.config.list_logical_devices("GPU")
        if name == "auto":
            name = "mirrored" if len(gpus) > 1 else "default"
        if name in _STRATEGIES:
            return _STRATEGIES[name]
        if name == "default":
            strategy = tf.distribute.get_strategy()
        else:
            devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
            strategy = tf.distribute.MirroredStrategy(devices)
    _STRATEGIES[name] = strategy
    return strategy


def _multi_worker_strategy():
    import tensorflow as tf

    if not os.environ.get("TF_CONFIG"):
        raise UsageError(
            "--strategy multi_worker needs the TF_CONFIG environment variable "
            '(e.g. {"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}}).'
        )
    try:
        json.loads(os.environ["TF_CONFIG"])
        return tf.distribute.MultiWorkerMirroredStrategy()
    except (ValueError, KeyError) as error:
        raise UsageError(f"TF_CONFIG is not a valid cluster description: {error}.") from None
    except RuntimeError as error:
        raise UsageError(
            f"MultiWorkerMirroredStrategy could not start ({error}); it must be created "
            "before TensorFlow runs anything: use --strategy multi_worker in a fresh process."
        ) from None


def is_chief(strategy):
    """True for the one worker that writes the run directory."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    if resolver.task_type == "chief":
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()


def build_optimizer(config):
    import keras

    from irmae_keras.optimizers import FusedAdam

    if config.optimizer in ("adam", "adam-keras"):
        # PyTorch's epsilon (1e-8) and, for "adam", PyTorch's placement of it: the
        # official code's update (docs/replay.md).
        placement = "keras" if config.optimizer == "adam-keras" else "pytorch"
        return FusedAdam(config.lr, epsilon=1e-8, epsilon_placement=placement)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(config.lr, momentum=0.9)
    return keras.optimizers.RMSprop(config.lr)


# ------------------------------------------------------------ run directory


def _comparable(config_dict):
    return {k: v for k, v in config_dict.items() if k not in RESUMABLE_DIFFERENCES}


def read_status(run_dir):
    try:
        with open(os.path.join(run_dir, STATUS_FILE), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def inspect_run_dir(run_dir, config, overwrite):
    """Decides what to do with `run_dir`; deletes nothing.

    Returns "new", "replace" (an old run to delete, with `overwrite`), "resume"
    or "complete"; raises UsageError when the directory holds another run and
    `overwrite` is not set, or is not a run directory at all.
    """
    if not os.path.exists(run_dir):
        return "new"
    if not os.path.isdir(run_dir):
        raise UsageError(f"{run_dir} exists and is not a directory; choose another --run-name or --output-dir.")
    if overwrite:
        return "replace"
    config_path = os.path.join(run_dir, "config.json")
    if not os.path.exists(config_path):
        if os.listdir(run_dir):
            raise UsageError(
                f"{run_dir} exists but holds no run (no config.json); pass --overwrite to "
                "replace it or choose another --run-name."
            )
        return "new"
    existing = _comparable(run_config.RunConfig.load(config_path).to_dict())
    wanted = _comparable(config.to_dict())
    if existing != wanted:
        changed = sorted(key for key, value in wanted.items() if existing.get(key) != value)
        raise UsageError(
            f"{run_dir} holds a run with other settings ({', '.join(changed)} differ); "
            "pass --overwrite to replace it, or choose another --run-name."
        )
    return "complete" if read_status(run_dir).get("state") == "complete" else "resume"


def truncate_history(path, epochs):
    """Keeps the CSV rows of the first `epochs` epochs (a resumed run redoes the
    epoch it was killed in, which CSVLogger may already have written)."""
    if not os.path.exists(path):
        return
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return
    kept = [rows[0]] + [row for row in rows[1:] if row and int(row[0]) < epochs]
    from irmae_keras.utils import atomic_path

    with atomic_path(path) as temp:
        with open(temp, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(kept)


# ------------------------------------------------------------------ training


def _load_data(config, image_shape, steps_per_epoch):
    from training import data

    common = {"seed": config.seed, "data_dir": config.data_dir, "image_shape": image_shape,
              "skip_corrupt": config.skip_corrupt}
    train = data.load_dataset(config.dataset, "train", config.batch_size, size=config.train_size, **common)
    if steps_per_epoch:
        train = train.repeat()
    evaluation = data.load_dataset(config.dataset, "eval", config.batch_size, size=config.eval_size, **common)
    limit = min(config.eval_size or SPECTRUM_CODES, SPECTRUM_CODES)
    eval_images = data.load_arrays(config.dataset, "eval", limit=limit, **common)
    if len(eval_images) < 2:
        raise UsageError(
            f"the eval split of {config.dataset} has {len(eval_images)} image(s); the spectrum needs at least 2."
        )
    return train, evaluation, eval_images


def _build_model(config):
    import irmae_keras

    model = irmae_keras.build_autoencoder(
        config.architecture,
        variant=config.model,
        latent_dim=config.latent_dim,
        linear_layers=config.linear_layers,
        init_scale=config.init_scale,
        stack_initializer=config.stack_initializer,
        tying=config.tying,
        stack_trainable=not config.freeze_stack,
        stack_activation=config.stack_activation,
        penalty=config.penalty,
        kl_weight=config.kl_weight,
        seed=config.seed,
        name=config.run_name.replace("-", "_"),
    )
    model.compile(optimizer=build_optimizer(config), jit_compile=config.jit_compile,
                  steps_per_execution=steps_per_execution(config, model))
    return model


def check_steps_per_execution(config, replicas):
    """UsageError for several steps per call across replicas.

    Keras 3.15's multi-step train function fails under MirroredStrategy ("You must
    feed a value for placeholder tensor 'while/cond/Placeholder_1'", with any
    optimizer; apparently keras-team/keras#19246), so `auto` means 1 there.
    """
    if replicas > 1 and config.steps_per_execution not in ("auto", 1):
        raise UsageError(
            f"--steps-per-execution {config.steps_per_execution} needs a single replica: Keras "
            f"cannot run several steps per call across the {replicas} replicas; use 1 or auto."
        )


def steps_per_execution(config, model):
    """Batches per compiled call for `--steps-per-execution` (`auto` or N).

    `auto` groups steps of small models only: up to AUTO_MAX_STEPS steps, together
    about AUTO_EXECUTION_FLOPS of training work; 1 with several replicas. With
    --steps-per-epoch the count is lowered to a divisor of it: Keras runs whole
    executions and would overrun the epoch.
    """
    steps = config.steps_per_execution
    if model.distribute_strategy.num_replicas_in_sync > 1:
        return 1  # see check_steps_per_execution
    if steps == "auto":
        from irmae_keras.flops import flops_per_sample

        work = flops_per_sample(model)["train"] * config.batch_size
        steps = int(max(1, min(AUTO_MAX_STEPS, AUTO_EXECUTION_FLOPS // work)))
    if config.steps_per_epoch:
        steps = max(d for d in range(1, steps + 1) if config.steps_per_epoch % d == 0)
    return steps


def _callbacks(config, run_dir, writable_dir, chief, eval_images):
    import keras

    from irmae_keras.callbacks import RankMonitor
    from irmae_keras.callbacks import ReconstructionGrid
    from training.checkpointing import AtomicBackupAndRestore
    from training.checkpointing import AtomicModelCheckpoint

    log_dir = os.path.join(writable_dir, "logs")
    monitor = eval_images[:MONITOR_IMAGES]
    return [
        # RankMonitor first: it adds the ranks to the logs CSVLogger writes.
        RankMonitor(monitor, log_dir=log_dir, intrinsic_dim=INTRINSIC_DIMENSION.get(config.dataset)),
        ReconstructionGrid(monitor[:8], log_dir=log_dir),
        keras.callbacks.CSVLogger(os.path.join(writable_dir, "history.csv"), append=True),
        keras.callbacks.TensorBoard(log_dir=log_dir, write_graph=False, update_freq="epoch"),
        keras.callbacks.TerminateOnNaN(),
        # Every worker saves (a collective under MultiWorkerMirroredStrategy); the
        # non-chief ones into their scratch directory. All restore from the chief's.
        AtomicModelCheckpoint(os.path.join(writable_dir, "model.keras")),
        AtomicBackupAndRestore(os.path.join(run_dir, "backup"),
                               write_dir=os.path.join(writable_dir, "backup")),
    ]


def encode_images(model, images, batch_size=500):
    """Codes of `images` by direct calls (no tf.distribute step, so one worker
    can do it alone)."""
    import keras
    import numpy as np

    parts = [
        keras.ops.convert_to_numpy(model.encoder(images[i:i + batch_size], training=False))
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(parts).astype("float64")


def write_spectrum(model, config, run_dir, eval_images):
    """Prints and saves the spectrum and effective rank of the eval codes, and
    the figures. Returns the spectrum document."""
    import numpy as np

    import irmae_keras
    from irmae_keras import plots
    from irmae_keras import sampling
    from training.checkpointing import write_json_atomic

    codes = encode_images(model, eval_images)
    spectrum = irmae_keras.singular_spectrum(codes)
    rank = irmae_keras.effective_rank(codes)
    entropy = irmae_keras.effective_rank(codes, method="entropy")
    reconstructions = sampling.decode(model, codes)  # the codes decoded, clipped to [0, 1]
    document = {
        "singular_values": [float(v) for v in spectrum],
        "effective_rank": rank,
        "entropy_rank": entropy,
        "threshold": 0.01,
        "num_codes": int(len(codes)),
        "latent_dim": int(codes.shape[1]),
        "eval_mse": float(np.mean((reconstructions - eval_images) ** 2)),
        "intrinsic_dimension": INTRINSIC_DIMENSION.get(config.dataset),
    }
    write_json_atomic(os.path.join(run_dir, "spectrum.json"), document)
    figures = os.path.join(run_dir, "figures")
    os.makedirs(figures, exist_ok=True)
    plots.plot_spectrum(
        {config.run_name: spectrum},
        os.path.join(figures, "spectrum.png"),
        intrinsic_dim=document["intrinsic_dimension"],
        title=f"Singular values of the eval codes ({config.dataset}, {config.model}, l={config.linear_layers})",
    )
    # Up to 5 rows of 10 originals, each above its reconstructions.
    cols = min(10, len(eval_images))
    pairs = min(50, len(eval_images)) // cols * cols
    plots.save_grid(
        plots.reconstruction_grid(eval_images[:pairs], reconstructions[:pairs], cols=cols),
        os.path.join(figures, "reconstructions.png"),
    )
    print(
        f"effective rank: {rank} of {codes.shape[1]} (singular values above 1% of the largest); "
        f"entropy rank {entropy:.2f}; eval MSE {document['eval_mse']:.5f} on {len(codes)} eval images"
    )
    print("normalised singular values: " + " ".join(f"{v:.3g}" for v in spectrum))
    return document


def run_export(model, config, run_dir, eval_images):
    """The export step at the end of a run: what `python -m export RUN_DIR` does."""
    from export import export_model
    from export.manifest import sha256_file

    model_path = os.path.join(run_dir, "model.keras")
    manifest = export_model(
        model, os.path.join(run_dir, "export"), eval_images=eval_images[:EXPORT_IMAGES],
        dataset=config.dataset, overwrite=True,
        source={"path": os.path.abspath(model_path), "sha256": sha256_file(model_path),
                "run_dir": os.path.abspath(run_dir), "config": config.to_dict()},
    )
    print(f"exported SavedModel and ONNX to {os.path.join(run_dir, 'export')}")
    return manifest


def _write_status(run_dir, chief, **status):
    if chief:
        from training.checkpointing import write_json_atomic

        write_json_atomic(os.path.join(run_dir, STATUS_FILE), dict(status, updated=time.time()))


def train(config, overwrite=False, quiet=False, export_fn=run_export):
    """Trains one run end to end; returns a RunResult.

    Raises:
        UsageError: bad settings or data (nothing written).
        RunFailed: training diverged (NaN); the last good model.keras stays.
    """
    import keras

    from training.checkpointing import AtomicBackupAndRestore
    from training.checkpointing import remove_stale_temps
    from training.checkpointing import write_json_atomic

    config = config.resolved()
    strategy = make_strategy(config.strategy)
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise UsageError(
            f"--batch-size {config.batch_size} is not divisible by the {replicas} replicas; "
            f"use a multiple of {replicas}."
        )
    check_steps_per_execution(config, replicas)
    chief = is_chief(strategy)
    run_dir = os.path.join(config.output_dir, config.run_name)
    state = inspect_run_dir(run_dir, config, overwrite) if chief else "resume"
    previous_policy = keras.config.dtype_policy()
    if config.mixed_precision:
        import tensorflow as tf

        keras.config.set_dtype_policy("mixed_float16" if tf.config.list_logical_devices("GPU") else "mixed_bfloat16")
    try:
        keras.utils.set_random_seed(config.seed)
        from irmae_keras.architectures import image_shape

        # Data problems surface here, before anything is written or replaced.
        train_data, eval_data, eval_images = _load_data(config, image_shape(config.architecture), config.steps_per_epoch)
        if state == "replace":
            shutil.rmtree(run_dir)
        # Non-chief workers train in step but write into a scratch directory.
        writable_dir = run_dir if chief else tempfile.mkdtemp(prefix="irmae-worker-")
        if chief:
            os.makedirs(run_dir, exist_ok=True)
            for directory in (run_dir, os.path.join(run_dir, "backup")):
                remove_stale_temps(directory)
            write_json_atomic(os.path.join(run_dir, "config.json"), config.document())
        status = read_status(run_dir)
        resumed = AtomicBackupAndRestore.saved_epoch(os.path.join(run_dir, "backup"))
        with strategy.scope():
            if state == "complete":
                model = keras.models.load_model(os.path.join(run_dir, "model.keras"))
            else:
                model = _build_model(config)
                _fit(model, config, run_dir, writable_dir, chief, resumed, quiet,
                     train_data, eval_data, eval_images)
        document = write_spectrum(model, config, writable_dir, eval_images)
        exported = state == "complete" and status.get("exported", False)
        summary = {"epochs": config.epochs, "effective_rank": document["effective_rank"]}
        _write_status(run_dir, chief, state="complete", exported=exported, **summary)
        if config.export and chief and not exported:
            export_fn(model, config, run_dir, eval_images)
            exported = True
            _write_status(run_dir, chief, state="complete", exported=True, **summary)
        if not chief:
            shutil.rmtree(writable_dir, ignore_errors=True)
        return RunResult(
            run_dir=run_dir,
            epochs_completed=config.epochs,
            effective_rank=document["effective_rank"],
            entropy_rank=document["entropy_rank"],
            spectrum=document["singular_values"],
            eval_mse=document["eval_mse"],
            exported=exported,
            resumed_from_epoch=resumed,
        )
    finally:
        keras.config.set_dtype_policy(previous_policy)


def _fit(model, config, run_dir, writable_dir, chief, resumed, quiet, train_data, eval_data, eval_images):
    """model.fit with the run's callbacks; RunFailed if the loss went NaN."""
    if chief:
        truncate_history(os.path.join(run_dir, "history.csv"), resumed)
        _write_status(run_dir, chief, state="training", resumed_from_epoch=resumed)
    if resumed:
        print(f"resuming {run_dir} after epoch {resumed} of {config.epochs}")
    from training.data import data_error_from

    try:
        history = model.fit(
            train_data,
            epochs=config.epochs,
            steps_per_epoch=config.steps_per_epoch,
            validation_data=eval_data,
            shuffle=False,  # the tf.data pipeline shuffles with the run's seed
            callbacks=_callbacks(config, run_dir, writable_dir, chief, eval_images),
            verbose=2 if quiet or not sys.stdout.isatty() else 1,
        )
    except Exception as error:
        # An image that fails to decode mid-epoch surfaces as a TF error; the last
        # finished epoch stays in the backup, so the run can resume once fixed.
        data_error = data_error_from(error)
        if data_error is None:
            raise
        raise data_error from None
    from training.checkpointing import weights_are_finite

    # TerminateOnNaN ends the epoch early and History does not record it, so the
    # weights, not the last logged loss, say whether the run diverged.
    finite_epochs = sum(math.isfinite(loss) for loss in history.history.get("loss", []))
    if not weights_are_finite(model) or finite_epochs < len(history.history.get("loss", [])):
        epoch = resumed + finite_epochs + 1
        _write_status(run_dir, chief, state="failed", reason="nan", epoch=epoch)
        raise RunFailed(
            f"training stopped in epoch {epoch}: the loss became NaN or infinite; "
            f"{os.path.join(run_dir, 'model.keras')} keeps the last finite epoch. "
            "Lower --lr or check the data."
        )


def main(argv):
    config, options = parse_args(argv)
    import_tensorflow_quietly()
    result = train(config, overwrite=options["overwrite"], quiet=options["quiet"])
    print(f"run directory: {result.run_dir}")
    return 0


if __name__ == "__main__":
    run_cli(main, prog="training.fit")
