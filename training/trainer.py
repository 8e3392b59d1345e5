"""`train(config)`: one training run end to end, into its run directory.

Strategy, data, model, callbacks, `model.fit`, the spectrum and figures of the
eval codes, and the export. `python -m training.fit` is its command line; the
experiments and benchmarks call it directly. The run directory's files belong to
`training.rundir.RunDir`.
"""

import dataclasses
import json
import math
import os
import re
import shutil
import sys
import tempfile

from export.errors import RunFailed
from export.errors import UsageError
from export.verify import EXPORT_EVAL_IMAGES
from export.verify import PARITY_BATCHES
from irmae_keras.paper import ADAM_EPSILON
from training.data.registry import intrinsic_dimension
from training.rundir import RunDir

# Settings that may change between a run and its resumption without making it
# another run (where it runs, what happens after training). Not data_dir: the data a
# run was trained on is part of what the run is.
RESUMABLE_DIFFERENCES = ("export", "strategy", "output_dir", "jit_compile",
                         "steps_per_execution")
SPECTRUM_CODES = 10_000
PRINTED_SINGULAR_VALUES = 32  # the rest are in spectrum.json
MONITOR_IMAGES = 1_000


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
        return FusedAdam(config.lr, epsilon=ADAM_EPSILON, epsilon_placement=placement)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(config.lr, momentum=0.9)
    return keras.optimizers.RMSprop(config.lr)


# ------------------------------------------------------------------ training


def plan(run, config, overwrite):
    """What to do with the run directory; deletes nothing.

    Returns "new", "replace" (an old run to delete, with `overwrite`), "resume"
    or "complete"; raises UsageError when the directory holds another run and
    `overwrite` is not set, or is not a run directory at all. "complete" is
    derived from the files: the status says so and the model is there.
    """
    if not os.path.exists(run.path):
        return "new"
    if not os.path.isdir(run.path):
        raise UsageError(f"{run.path} exists and is not a directory; choose another --run-name or --output-dir.")
    if overwrite:
        return "replace"
    if not run.has_config():
        if os.listdir(run.path):
            raise UsageError(
                f"{run.path} exists but holds no run (no config.json); pass --overwrite to "
                "replace it or choose another --run-name."
            )
        return "new"
    existing = _comparable(run.read_config().to_dict())
    wanted = _comparable(config.to_dict())
    if existing != wanted:
        changed = sorted(key for key, value in wanted.items() if existing.get(key) != value)
        from training.checkpointing import AtomicBackupAndRestore

        if not os.path.exists(run.model_path) and not AtomicBackupAndRestore.saved_epoch(run.backup_dir):
            # No epoch was ever saved (a start that failed): there is nothing to lose.
            print(f"note: {run.path} holds a run of other settings ({', '.join(changed)}) that "
                  "never finished an epoch; it is replaced.")
            return "replace"
        raise UsageError(
            f"{run.path} holds a run with other settings ({', '.join(changed)} differ); "
            "pass --overwrite to replace it, or choose another --run-name."
        )
    complete = run.read_status().get("state") == "complete" and os.path.isfile(run.model_path)
    return "complete" if complete else "resume"


def _comparable(config_dict):
    values = {k: v for k, v in config_dict.items() if k not in RESUMABLE_DIFFERENCES}
    if isinstance(values.get("data_dir"), str):  # one folder, whichever path names it
        values["data_dir"] = os.path.realpath(os.path.expanduser(values["data_dir"]))
    return values


def load_data(config, steps_per_epoch=None):
    """`(train, eval, eval_images)`: the run's tf.data pipelines and its first
    eval images as an array (the spectrum's, at most SPECTRUM_CODES)."""
    from irmae_keras.architectures import image_shape
    from training import data

    common = {"seed": config.seed, "data_dir": config.data_dir,
              "image_shape": image_shape(config.architecture),
              "skip_corrupt": config.skip_corrupt}
    train = data.load_dataset(config.dataset, "train", config.batch_size, size=config.train_size, **common)
    if steps_per_epoch:
        train = train.repeat()
    evaluation = data.load_dataset(config.dataset, "eval", config.batch_size, size=config.eval_size, **common)
    eval_images = data.run_eval_images(config, min(config.eval_size or SPECTRUM_CODES, SPECTRUM_CODES))
    if len(eval_images) < 2:
        raise UsageError(
            f"the eval split of {config.dataset} has {len(eval_images)} image(s); the spectrum needs at least 2."
        )
    return train, evaluation, eval_images


def check_export_images(config, eval_images):
    """UsageError, before the first step, when the eval split is too small for the
    export at the end of the run (its parity checks run a batch of max(PARITY_BATCHES))."""
    needed = max(PARITY_BATCHES)
    if len(eval_images) < needed:
        where = f"the folder {config.data_dir}" if config.data_dir else config.dataset
        raise UsageError(
            f"the eval split of {where} has {len(eval_images)} image(s); the export at the end of "
            f"the run checks its files on {needed}: add images (or a larger --eval-size), or pass "
            "--no-export to train without exporting."
        )


def build_model(config):
    """The run's compiled `Autoencoder` (call inside the strategy's scope); UsageError in
    one line when the settings do not make a model."""
    try:
        return _build_model(config)
    except UsageError:
        raise
    # Keras says what it cannot build with a ValueError/TypeError (KeyError for a name
    # that needs arguments); the settings are the user's.
    except (ValueError, TypeError, KeyError) as error:
        raise UsageError(
            f"cannot build the {config.model} model of {config.architecture} from these settings "
            f"({type(error).__name__}: {' '.join(str(error).split())}); check the model flags "
            "(-n, -l, --stack-initializer, --stack-activation)."
        ) from None


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
        name=re.sub(r"[^A-Za-z0-9_.]", "_", config.run_name),  # a valid Keras scope name
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
    """Batches per compiled call for `--steps-per-execution` (`auto` or N): the
    library's rule (`irmae_keras.models.auto_steps_per_execution`) at the run's batch
    size; an explicit N is lowered to a divisor of --steps-per-epoch (Keras runs
    whole executions and would overrun the epoch); 1 with several replicas (see
    check_steps_per_execution)."""
    from irmae_keras.models import auto_steps_per_execution
    from irmae_keras.models import divisor_steps

    if config.steps_per_execution == "auto":
        return auto_steps_per_execution(model, config.batch_size, config.steps_per_epoch)
    if model.distribute_strategy.num_replicas_in_sync > 1:
        return 1
    return divisor_steps(config.steps_per_execution, config.steps_per_epoch)


def _callbacks(config, run, writable, eval_images):
    import keras

    from irmae_keras.callbacks import RankMonitor
    from irmae_keras.callbacks import ReconstructionGrid
    from training.checkpointing import AtomicBackupAndRestore
    from training.checkpointing import AtomicModelCheckpoint

    monitor = eval_images[:MONITOR_IMAGES]
    return [
        # RankMonitor first: it adds the ranks to the logs CSVLogger writes.
        RankMonitor(monitor, log_dir=writable.logs_dir, intrinsic_dim=intrinsic_dimension(config.dataset)),
        ReconstructionGrid(monitor[:8], log_dir=writable.logs_dir),
        keras.callbacks.CSVLogger(writable.history_path, append=True),
        keras.callbacks.TensorBoard(log_dir=writable.logs_dir, write_graph=False, update_freq="epoch"),
        keras.callbacks.TerminateOnNaN(),
        # Every worker saves (a collective under MultiWorkerMirroredStrategy); the
        # non-chief ones into their scratch directory. All restore from the chief's.
        AtomicModelCheckpoint(writable.model_path),
        AtomicBackupAndRestore(run.backup_dir, write_dir=writable.backup_dir),
    ]


def write_spectrum(model, config, run, eval_images):
    """Prints and saves the spectrum and effective rank of the eval codes, and
    the figures. Returns the spectrum document."""
    from irmae_keras import plots
    from irmae_keras import sampling
    from irmae_keras.analysis import spectrum_document
    from irmae_keras.staging import write_json_atomic

    codes = sampling.encode(model, eval_images)
    reconstructions = sampling.decode(model, codes)  # the codes decoded, clipped to [0, 1]
    document = dict(spectrum_document(codes, reconstructions, eval_images),
                    intrinsic_dimension=intrinsic_dimension(config.dataset))
    spectrum, rank, entropy = document["singular_values"], document["effective_rank"], document["entropy_rank"]
    write_json_atomic(run.spectrum_path, document)
    plots.plot_spectrum(
        {config.run_name: spectrum},
        run.figure_path("spectrum.png"),
        intrinsic_dim=document["intrinsic_dimension"],
        title=f"Singular values of the eval codes ({config.dataset}, {config.model}, l={config.linear_layers})",
    )
    # Up to 5 rows of 10 originals, each above its reconstructions, rows labelled.
    cols = min(10, len(eval_images))
    pairs = min(50, len(eval_images)) // cols * cols
    plots.save_reconstruction_figure(eval_images[:pairs], reconstructions[:pairs],
                                     run.figure_path("reconstructions.png"), cols=cols)
    print(
        f"effective rank: {rank} of {codes.shape[1]} (singular values above 1% of the largest); "
        f"entropy rank {entropy:.2f}; eval MSE {document['eval_mse']:.5f} on {len(codes)} eval images"
    )
    more = len(spectrum) - PRINTED_SINGULAR_VALUES
    print("normalised singular values: " + " ".join(f"{v:.3g}" for v in spectrum[:PRINTED_SINGULAR_VALUES])
          + (f" ... ({more} more in {run.spectrum_path})" if more > 0 else ""))
    for line in spectrum_notes(codes, document, config.dataset):
        print(line)
    return document


def spectrum_notes(codes, document, dataset=None):
    """What a reader of the rank should know: a rank bounded by too few eval codes,
    reconstructions that keep little of the images' colour (with what is known of
    that on `dataset`)."""
    import irmae_keras

    notes = []
    if len(codes) <= codes.shape[1]:
        notes.append(
            f"note: {len(codes)} eval codes for a latent size of {codes.shape[1]}: the rank cannot "
            f"exceed {len(codes) - 1}, so it measures the eval set as much as the model; use more "
            "eval images (--eval-size, or more files in the folder)."
        )
    kept = document.get("colour_kept")
    if kept is not None and kept < irmae_keras.analysis.GREY_COLOUR_KEPT:
        notes.append(
            f"note: the reconstructions keep {kept:.0%} of the eval images' colour: they are nearly "
            "grey. " + ("Colour, 3 of the shapes' 7 factors, is learned late; longer runs keep it "
                        "(docs/results.md)." if dataset == "shapes" else
                        "Train longer (--epochs) if colour matters.")
        )
    return notes


def run_export(model, config, run, eval_images):
    """The export step at the end of a run: what `python -m export RUN_DIR` does."""
    from export import export_model
    from export.manifest import sha256_file

    manifest = export_model(
        model, run.export_dir, eval_images=eval_images[:EXPORT_EVAL_IMAGES],
        dataset=config.dataset, overwrite=True,
        source={"path": os.path.abspath(run.model_path), "sha256": sha256_file(run.model_path),
                "run_dir": os.path.abspath(run.path), "config": config.to_dict()},
    )
    print(f"exported SavedModel, ONNX and LiteRT to {run.export_dir}")
    return manifest


def train(config, overwrite=False, quiet=False, export_fn=run_export):
    """Trains one run end to end; returns a RunResult.

    Everything is checked (settings, output directory, lock, data) before any old
    file is touched. A finished run is not retrained: what it lacks (spectrum,
    figures, export) is rebuilt.

    Raises:
        UsageError: bad settings or data, a run in use by another process
            (nothing written).
        RunFailed: training diverged (NaN); the last finite epoch stays in
            model.keras and backup/, so the same command resumes from it.
    """
    import contextlib

    from export.atomic import check_writable_dir

    config = config.resolved()
    run = RunDir.of(config)
    check_writable_dir(config.output_dir, "--output-dir")
    strategy = make_strategy(config.strategy)
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise UsageError(
            f"--batch-size {config.batch_size} is not divisible by the {replicas} replicas; "
            f"use a multiple of {replicas}."
        )
    check_steps_per_execution(config, replicas)
    chief = is_chief(strategy)
    with run.lock() if chief else contextlib.nullcontext():
        if chief:
            if not (overwrite and os.path.lexists(run.path)):  # a replaced run is only deleted
                # Links and special files first: repairing must not reach through them.
                run.check_files()
                # A killed process's temp files and half-swapped export are ours to clean
                # first; they never make a run directory look like someone else's.
                run.repair()
            state = plan(run, config, overwrite)
        else:
            state = "resume"
        return _train(config, run, state, chief, strategy, quiet, export_fn)


def _train(config, run, state, chief, strategy, quiet, export_fn):
    import keras

    from training.checkpointing import AtomicBackupAndRestore
    from training.rundir import export_is_complete

    previous_policy = keras.config.dtype_policy()
    if config.mixed_precision:
        import tensorflow as tf

        keras.config.set_dtype_policy("mixed_float16" if tf.config.list_logical_devices("GPU") else "mixed_bfloat16")
    try:
        keras.utils.set_random_seed(config.seed)
        # Everything that can fail is built first (data, model, export's needs); the old
        # run is deleted and config.json written only once all of it has succeeded.
        train_data, eval_data, eval_images = load_data(config, config.steps_per_epoch)
        if config.export and chief and (state == "replace" or not export_is_complete(run.export_dir)):
            check_export_images(config, eval_images)
        if state == "replace":
            from training import data

            data.check_every_image(config)  # a truncated file fails now, not after the old run is gone
        resumed = 0 if state == "replace" else AtomicBackupAndRestore.saved_epoch(run.backup_dir)
        with strategy.scope():
            if state == "complete":
                from export.source import load_model_file

                model = load_model_file(run.model_path)
            else:
                model = build_model(config)
            if chief and state == "resume":
                run.truncate_history(resumed)  # refuses a history.csv that is not text
            if state == "replace":
                # Its real directory: a run reached through a link is replaced where it is.
                shutil.rmtree(os.path.realpath(run.path))
            # Non-chief workers train in step but write into a scratch directory.
            writable = run if chief else RunDir(tempfile.mkdtemp(prefix="irmae-worker-"))
            if chief:
                os.makedirs(os.path.realpath(run.path), exist_ok=True)  # train() repaired it before planning
                run.write_config(config)
            if state != "complete":
                _fit(model, config, run, writable, chief, resumed, quiet, train_data, eval_data, eval_images)
        document = write_spectrum(model, config, writable, eval_images)
        summary = {"epochs": config.epochs, "effective_rank": document["effective_rank"]}
        exported = export_is_complete(run.export_dir)
        if chief:
            run.write_status(state="complete", exported=exported, **summary)
        if config.export and chief and not exported:
            export_fn(model, config, run, eval_images)
            exported = True
            run.write_status(state="complete", exported=True, **summary)
        if not chief:
            shutil.rmtree(writable.path, ignore_errors=True)
        return RunResult(
            run_dir=run.path,
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


def _fit(model, config, run, writable, chief, resumed, quiet, train_data, eval_data, eval_images):
    """model.fit with the run's callbacks; RunFailed if the loss went NaN."""
    if chief:
        run.write_status(state="training", resumed_from_epoch=resumed)
    if resumed:
        print(f"resuming {run.path} after epoch {resumed} of {config.epochs}")
    from training.data import data_error_from

    callbacks = _callbacks(config, run, writable, eval_images)
    try:
        history = model.fit(
            train_data,
            epochs=config.epochs,
            steps_per_epoch=config.steps_per_epoch,
            validation_data=eval_data,
            shuffle=False,  # the tf.data pipeline shuffles with the run's seed
            callbacks=callbacks,
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
        if chief:
            run.write_status(state="failed", reason="nan", epoch=epoch)
        kept = (f"{run.model_path} and {run.backup_dir} keep epoch {epoch - 1}, the last finite one, "
                "and the same command resumes from it"
                if epoch > 1 and os.path.isfile(run.model_path) else "no epoch finished, so nothing was kept")
        raise RunFailed(
            f"training stopped in epoch {epoch}: the loss became NaN or infinite; {kept}. "
            "Lower --lr or check the data."
        )
