"""A TensorFlow SavedModel with `encode`, `decode` and `reconstruct` serving signatures.

The artifact needs neither this project nor Keras to load: `tf.saved_model.load(path)
.signatures["encode"](image=batch)["code"]`; `keras.layers.TFSMLayer(path,
call_endpoint="encode")` wraps a signature as a layer.
"""

import functools

import keras
import tensorflow as tf

# signature → (input name, output name); `encode` comes first, so it is also
# `serving_default` (the endpoint TF-Serving calls when none is named).
SIGNATURES = {
    "encode": ("image", "code"),
    "decode": ("code", "image"),
    "reconstruct": ("image", "reconstruction"),
}


def _image_spec(model):
    return tf.TensorSpec((None, *model.image_shape), tf.float32, name="image")


def _code_spec(model):
    return tf.TensorSpec((None, model.latent_dim), tf.float32, name="code")


def signature_functions(model):
    """The signature name → (`tf.function`, input spec) of an `Autoencoder`."""

    @tf.function
    def encode(image):
        return {"code": model.encoder(image, training=False)}

    @tf.function
    def decode(code):
        return {"image": model.decoder(code, training=False)}

    @tf.function
    def reconstruct(image):
        return {"reconstruction": model(image, training=False)}

    return {
        "encode": (encode, _image_spec(model)),
        "decode": (decode, _code_spec(model)),
        "reconstruct": (reconstruct, _image_spec(model)),
    }


def write_savedmodel(model, path):
    """Writes `model` (an `Autoencoder`) as a SavedModel at `path`."""
    # No `archive.track(model)`: the endpoints' variables are saved anyway, and
    # tracking the model would store every weight a second time (Keras 3.15).
    archive = keras.export.ExportArchive()
    for name, (function, spec) in signature_functions(model).items():
        archive.add_endpoint(name, function, [spec])
    archive.write_out(path, verbose=False)


def read_back(path):
    """Loads the SavedModel at `path` with plain TensorFlow.

    Returns:
        `(runners, description)`: signature name → callable(numpy batch) → numpy
        output, and signature name → its input and output names, shapes, dtypes.
    """
    loaded = tf.saved_model.load(path)
    runners, description = {}, {}
    for name, (input_name, output_name) in SIGNATURES.items():
        signature = loaded.signatures[name]
        runners[name] = functools.partial(_run, signature, input_name, output_name)
        description[name] = {
            "inputs": _describe(signature.structured_input_signature[1]),
            "outputs": _describe(signature.structured_outputs),
        }
    return runners, description


def _run(signature, input_name, output_name, batch):
    return signature(**{input_name: tf.constant(batch)})[output_name].numpy()


def _describe(specs):
    return [
        {"name": name, "shape": spec.shape.as_list(), "dtype": spec.dtype.name}
        for name, spec in sorted(specs.items())
    ]
