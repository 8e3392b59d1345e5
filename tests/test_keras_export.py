"""Keras' own `model.export(...)` works for every part of an Autoencoder, folded or not.

Every format this Keras offers for a TensorFlow model (`tf_saved_model`, `onnx`,
`litert`) × {autoencoder, encoder, decoder} × {trained stack, folded stack}: the file is
run in its own runtime (TensorFlow, onnxruntime, the LiteRT interpreter) at two batch
sizes and must match the Keras model.
"""

import numpy as np
import pytest

import irmae_keras
from export import litert
from export.verify import PARITY_TOLERANCE
from tests.helpers import random_images

FORMATS = ("tf_saved_model", "onnx", "litert")
EXTENSION = {"tf_saved_model": "", "onnx": ".onnx", "litert": ".tflite"}


@pytest.fixture(scope="module")
def models():
    model = irmae_keras.build_autoencoder("shapes", latent_dim=4)
    images = random_images((32, 32, 3), batch=3)
    model(images)
    return {False: model, True: irmae_keras.fold_linear_stack(model)}


def _part(model, part):
    return {"autoencoder": model, "encoder": model.encoder, "decoder": model.decoder}[part]


def _run(fmt, path, batch):
    if fmt == "tf_saved_model":
        import tensorflow as tf

        loaded = tf.saved_model.load(path)  # kept: its variables live as long as it does
        return loaded.serve(tf.constant(batch)).numpy()
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: batch})[0]
    return litert.runner(path)(batch)


@pytest.mark.slow
@pytest.mark.usefixtures("graph_mode")
@pytest.mark.parametrize("folded", [False, True], ids=["stack", "folded"])
@pytest.mark.parametrize("part", ["autoencoder", "encoder", "decoder"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_keras_export_matches_the_keras_model(models, fmt, part, folded, tmp_path):
    model = _part(models[folded], part)
    shape = (4,) if part == "decoder" else (32, 32, 3)
    inputs = np.random.default_rng(0).random((7, *shape)).astype("float32")
    path = str(tmp_path / f"{part}{EXTENSION[fmt]}")
    model.export(path, format=fmt, verbose=False)
    for batch in (1, 7):  # a dynamic batch axis in every format
        np.testing.assert_allclose(_run(fmt, path, inputs[:batch]), np.asarray(model(inputs[:batch])),
                                   atol=PARITY_TOLERANCE)
