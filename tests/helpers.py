"""Shared test helpers in the manner of KerasHub's TestCase."""

import contextlib
import hashlib
import json
import os
import subprocess
import sys

import keras
import numpy as np
import tensorflow as tf

from tests.killing import changed_environment

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The settings of a tiny run: 64 images, n = 4, two epochs (the session's `tiny_runs`).
TINY_RUN = dict(train_size=64, eval_size=64, latent_dim=4, batch_size=16, epochs=2, export=False)

# How many eval images the session's `tiny_export` is exported with, and the files every
# export of a model with a linear stack holds besides its SavedModel and manifest.
EXPORT_EVAL_IMAGES = 64
EXPORT_FULL_FILES = {"encoder.onnx", "decoder.onnx", "autoencoder.onnx", "encoder.tflite", "decoder.tflite"}


def run_serialization_test(obj):
    """get_config → from_config → identical config (as JSON)."""
    config = obj.get_config()
    clone = obj.__class__.from_config(config)
    assert json.dumps(clone.get_config(), sort_keys=True, default=str) == json.dumps(
        config, sort_keys=True, default=str
    )
    # Through Keras' own serialisation too, which uses the registered name.
    revived = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(obj)
    )
    assert type(revived) is type(obj)
    return clone


def run_layer_test(layer_cls, init_kwargs, input_data, expected_output_shape,
                   expected_num_trainable_weights, expected_num_non_trainable_weights=0):
    """Builds `layer_cls(**init_kwargs)` on `input_data` and checks what KerasHub's helper
    checks: the output shape(s) (called and from `compute_output_shape`; a tuple of
    shapes for a layer with several outputs), the weight counts, and the get_config round
    trip, whose clone computes the same outputs from the same weights. Returns the layer."""

    def shapes(value):
        return [tuple(v.shape) for v in keras.tree.flatten(value)]

    layer = layer_cls(**init_kwargs)
    output = layer(input_data)
    expected = (list(expected_output_shape) if isinstance(expected_output_shape[0], tuple)
                else [tuple(expected_output_shape)])
    assert shapes(output) == expected
    declared = layer.compute_output_shape(tuple(input_data.shape))
    assert [tuple(s) for s in (declared if isinstance(declared[0], tuple) else [declared])] == expected
    assert len(layer.trainable_weights) == expected_num_trainable_weights
    assert len(layer.non_trainable_weights) == expected_num_non_trainable_weights
    clone = run_serialization_test(layer)
    clone(input_data)
    clone.set_weights(layer.get_weights())
    for got, want in zip(keras.tree.flatten(clone(input_data)), keras.tree.flatten(output)):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(want),
                                   atol=1e-6)
    return layer


def run_model_saving_test(model, inputs, tmp_path, atol=1e-6):
    """`.keras` save → load (safe_mode=True) → outputs allclose."""
    path = os.path.join(str(tmp_path), "model.keras")
    model.save(path)
    restored = keras.models.load_model(path, safe_mode=True)
    assert type(restored) is type(model)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored(inputs)),
        keras.ops.convert_to_numpy(model(inputs)),
        atol=atol,
    )
    return restored


def random_images(shape, batch=4, seed=0):
    """Float32 images in [0, 1] of shape (batch, *shape)."""
    return np.random.default_rng(seed).random((batch, *shape), dtype=np.float32)


def square_images(shape, batch=8, seed=0):
    """Black images with one bright square each: structure a few steps can learn.

    Unlike uniform noise, their binary cross-entropy floor is near zero, so every
    variant's loss can fall visibly in a handful of steps.
    """
    rng = np.random.default_rng(seed)
    height, width, channels = shape
    images = np.zeros((batch, *shape), np.float32)
    for i in range(batch):
        size = rng.integers(height // 4, height // 2)
        top, left = rng.integers(0, height - size), rng.integers(0, width - size)
        images[i, top:top + size, left:left + size, :] = rng.uniform(0.5, 1.0, channels)
    return images


def codes_of_rank(k, n=16, examples=2000, seed=0, noise=0.0):
    """Codes spanning exactly k orthonormal directions, scales in [1, 2], mean 3."""
    rng = np.random.default_rng(seed)
    directions, _ = np.linalg.qr(rng.normal(size=(n, n)))
    latent = rng.normal(size=(examples, k)) * rng.uniform(1, 2, size=k)
    return latent @ directions[:, :k].T + noise * rng.normal(size=(examples, n)) + 3.0


@contextlib.contextmanager
def graph_functions():
    """Runs `tf.function`s as graphs meanwhile: for module-scoped fixtures, which
    cannot use the function-scoped `graph_mode` fixture."""
    tf.config.run_functions_eagerly(False)
    try:
        yield
    finally:
        tf.config.run_functions_eagerly(True)


@contextlib.contextmanager
def within_seconds(seconds):
    """Raises TimeoutError in the block after `seconds`: a test of something that must
    not hang (a FIFO opened for reading) fails instead of hanging the suite. The main
    thread only (SIGALRM)."""
    import signal

    def expired(signum, frame):
        raise TimeoutError(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def onnx_session(path):
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def onnx_run(path, batch):
    """The first output of the ONNX file at `path` on `batch` (its one input)."""
    session = onnx_session(path)
    return session.run(None, {session.get_inputs()[0].name: batch})[0]


# --- processes and command lines ---------------------------------------------------------


def run_python(*argv, env=None, cwd=REPO, timeout=600, **popen):
    """`python ARGV...` in a fresh process from the repository root, TensorFlow's C++ lines
    off; `env` adds to (or, for a key set to None, removes from) this process' environment;
    `popen` goes to subprocess.run (preexec_fn=...). Returns the CompletedProcess
    (returncode, stdout, stderr as text)."""
    return subprocess.run([sys.executable, *map(str, argv)], cwd=cwd, env=python_environment(env),
                          capture_output=True, text=True, timeout=timeout, **popen)


def python_environment(env=None):
    """The environment of a test's child Python: this process' with TensorFlow's C++ lines
    off, `env` added (a key set to None removed)."""
    return changed_environment(dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), env)


def run_cli(module, *args, **kwargs):
    """`python -m MODULE ARGS...` as a user runs it: see `run_python`."""
    return run_python("-m", module, *args, **kwargs)


def call_main(main, argv, prog, capsys):
    """A CLI's `main` run in-process as `python -m` runs it (through
    `export.errors.run_cli`): (exit code, stdout, stderr)."""
    import pytest

    from export.errors import run_cli as run_wrapped

    with pytest.raises(SystemExit) as exit_info:
        run_wrapped(main, [str(arg) for arg in argv], prog=prog)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


# --- run directories ---------------------------------------------------------------------


def tiny_config(output_dir, run_name="run", **overrides):
    """The RunConfig of a tiny run (`TINY_RUN`, then `overrides`) at output_dir/run_name."""
    from training.config import RunConfig

    return RunConfig(output_dir=str(output_dir), run_name=run_name, **{**TINY_RUN, **overrides})


def make_run(path, model=None, model_bytes=None, **overrides):
    """A run directory at `path` as `RunDir` writes one: config.json from `tiny_config`
    (resolved; `overrides` on top, e.g. dataset=, latent_dim=), and the model file saved
    from `model` or holding `model_bytes`. Returns its RunDir."""
    from training.rundir import RunDir

    path = os.path.abspath(str(path))
    config = tiny_config(os.path.dirname(path), os.path.basename(path), **overrides).resolved()
    run = RunDir(path)
    os.makedirs(run.path, exist_ok=True)
    run.write_config(config)
    if model is not None:
        model.save(run.model_path)
    elif model_bytes is not None:
        with open(run.model_path, "wb") as handle:
            handle.write(model_bytes)
    return run


def row_labels(document):
    """The labels of an experiment's result rows, in order."""
    return [row["label"] for row in document["rows"]]


# --- paper-budget runs committed without their models -----------------------------------

COMMITTED_MACHINE = {"cores": 2, "cpu": "Test CPU", "gpus": [], "python": "3", "tensorflow": "2"}


def commit_run(root, config, rank, ranks_by_epoch, state="complete", mse=0.001, colour=0.9):
    """A run as the paper budget's CPU path commits it under `root`: its config (with the
    machine), status, history and spectrum, no model. Returns its RunDir."""
    import csv

    from training.rundir import RunDir

    run = RunDir(os.path.join(root, config.run_name))
    os.makedirs(run.path)
    with open(run.config_path, "w") as handle:
        json.dump(dict(config.to_dict(), hardware=COMMITTED_MACHINE), handle)
    with open(run.status_path, "w") as handle:
        json.dump({"state": state, "epochs": len(ranks_by_epoch)}, handle)
    with open(run.history_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", "effective_rank", "entropy_rank"])
        writer.writerows([epoch, r, r * 0.8] for epoch, r in enumerate(ranks_by_epoch))
    values = [1.0] + [0.5] * (rank - 1) + [1e-4] * (config.latent_dim - rank)
    with open(run.spectrum_path, "w") as handle:
        json.dump({"effective_rank": rank, "entropy_rank": rank * 0.8, "singular_values": values,
                   "eval_mse": mse, "colour_kept": colour, "num_codes": 10_000}, handle)
    return run


def fig2_trial(label):
    """Fig. 2's trial `label` at the paper's budget, seed 0."""
    from training.experiments import budgets
    from training.experiments import shapes_rank

    return next(t for t in shapes_rank.fig2_trials(budgets.BUDGETS["paper"])
                if t.label == label and t.config.seed == 0)


def commit_fig2_runs(results_root):
    """Four of Fig. 2's six models finished at the paper's budget (AE 12, IRMAE l=2 6,
    l=4 4, VAE 3), AE+L2 half-way, AE+L1 not started, under RESULTS/paper/runs as the
    results page reads them. Returns RESULTS."""
    from training.experiments import runner

    root = os.path.join(str(results_root), "paper", runner.PAPER_RUNS_DIR)
    os.makedirs(root)
    for label, rank, mse in (("AE", 12, 1.2e-4), ("IRMAE l=2", 6, 2.2e-4), ("IRMAE l=4", 4, 3e-3),
                             ("VAE", 3, 7.7e-3)):
        commit_run(root, fig2_trial(label).config, rank, [rank - 1] * 90 + [rank] * 10, mse=mse)
    commit_run(root, fig2_trial("AE+L2").config, 9, [9] * 46, state="training")
    return results_root


# --- nothing touched ---------------------------------------------------------------------


def sha256_of(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def snapshot(root):
    """sha256 of every file under `root`, by relative path: compare two with `assert_unchanged`."""
    digests = {}
    for directory, _, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            digests[os.path.relpath(path, root)] = sha256_of(path)
    return digests


def assert_unchanged(root, before):
    """`root`'s files are those of `before` (a `snapshot`), byte for byte."""
    after = snapshot(root)
    changed = sorted(name for name in set(before) | set(after) if before.get(name) != after.get(name))
    assert not changed, f"{root}: changed, added or removed: {changed}"
