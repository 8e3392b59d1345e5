"""LiteRT (TensorFlow Lite) files of Keras models, with a dynamic batch axis.

float32 by default; `quantize=True` writes dynamic-range int8 weights (about 4× smaller;
activations stay float), whose accuracy cost the export measures and records. The files
run in the LiteRT interpreter (`pip install ai-edge-litert`; TensorFlow's deprecated
`tf.lite.Interpreter` where it is absent).
"""

import functools

import numpy as np
import tensorflow as tf

from irmae_keras.tf_logs import native_stderr_silenced

# An int8 artifact is not held to the float parity tolerance: it is checked to stay within
# this share of the outputs' scale (a broken conversion), and its real error is recorded.
INT8_TOLERANCE = 0.1


def write_litert(keras_model, path, *, quantize=False):
    """Converts a single-input, single-output Keras model to a `.tflite` file with
    Keras' own LiteRT export (`model.export(format="litert")`: a dynamic batch axis).

    Args:
        keras_model: `keras.Model`. Input `(batch, ...)`, one output.
        path: str. The `.tflite` file to write.
        quantize: bool. Dynamic-range int8 weights. Defaults to False.
    """
    options = {"optimizations": [tf.lite.Optimize.DEFAULT]} if quantize else {}
    keras_model.export(path, format="litert", verbose=False, **options)


def interpreter_class():
    """The LiteRT interpreter: `ai_edge_litert`'s, else TensorFlow's."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter
    return Interpreter


def runner(path):
    """A callable numpy batch → the output of `path` in the LiteRT interpreter (any batch
    size: the input is resized to each batch). Loads on the first call, so that a broken
    file fails inside the parity check that runs it."""

    @functools.cache
    def interpreter(shape):
        # The interpreter announces its CPU delegate on stderr; a CLI's output stays clean.
        with native_stderr_silenced():
            engine = interpreter_class()(model_path=path)
            engine.resize_tensor_input(engine.get_input_details()[0]["index"], list(shape))
            engine.allocate_tensors()
        return engine

    def run(batch):
        engine = interpreter(batch.shape)  # one interpreter per batch shape, allocated once
        source, target = engine.get_input_details()[0], engine.get_output_details()[0]
        engine.set_tensor(source["index"], np.ascontiguousarray(batch, np.float32))
        engine.invoke()
        return engine.get_tensor(target["index"]).copy()

    return run


def describe(path):
    """Input and output shapes (None = dynamic) and dtypes of a `.tflite` file."""
    engine = interpreter_class()(model_path=path)

    def one(detail):
        shape = [None if d < 0 else int(d) for d in detail["shape_signature"]]
        return {"name": detail["name"], "shape": shape, "dtype": np.dtype(detail["dtype"]).name}

    return {"inputs": [one(d) for d in engine.get_input_details()],
            "outputs": [one(d) for d in engine.get_output_details()]}
