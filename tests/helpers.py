"""Shared test helpers in the manner of KerasHub's TestCase."""

import contextlib
import json
import os

import keras
import numpy as np
import tensorflow as tf


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
