"""ONNX files of Keras models through tf2onnx, with a dynamic batch axis and metadata.

Every file carries `metadata_props` that a TF-free consumer (`export.encode`)
reads: `layout`, `value_range` and `image_size` (JSON), `latent_size`, ...
"""

import functools
import json

import onnx
import onnxruntime
import tensorflow as tf
import tf2onnx

from export.errors import UsageError

DEFAULT_OPSET = 17
# tf2onnx 1.17 writes opsets up to 18; below 13 it lacks ops these models use.
MIN_OPSET = 13
MAX_OPSET = max(tf2onnx.constants.OPSET_TO_IR_VERSION)
BATCH_AXIS = "batch"


def check_opset(opset):
    """UsageError unless `opset` is an int tf2onnx can write."""
    if isinstance(opset, bool) or not isinstance(opset, int) or not (
        MIN_OPSET <= opset <= MAX_OPSET
    ):
        raise UsageError(
            f"--opset must be an integer from {MIN_OPSET} to {MAX_OPSET} "
            f"(tf2onnx {tf2onnx.__version__}); got {opset!r}."
        )
    return opset


def write_onnx(keras_model, path, *, input_name, output_name, opset, metadata):
    """Converts a single-input, single-output Keras model to an ONNX file.

    Args:
        keras_model: `keras.Model`. Input `(batch, ...)`, one output.
        path: str. The `.onnx` file to write.
        input_name: str. Name of the ONNX graph input.
        output_name: str. Name of the ONNX graph output.
        opset: int. ONNX opset.
        metadata: dict of str → str. Stored as `metadata_props`.

    Returns:
        The `onnx.ModelProto` written (checked with `onnx.checker`).
    """
    spec = tf.TensorSpec(
        (None, *keras_model.input_shape[1:]), tf.float32, name=input_name
    )

    @tf.function
    def forward(inputs):
        return {output_name: keras_model(inputs, training=False)}

    proto, _ = tf2onnx.convert.from_function(forward, [spec], opset=check_opset(opset))
    for value in (*proto.graph.input, *proto.graph.output):
        # tf2onnx names the unknown batch axis "unk__N"; one readable name ties
        # input and output batch sizes together.
        value.type.tensor_type.shape.dim[0].dim_param = BATCH_AXIS
    onnx.helper.set_model_props(proto, dict(metadata))
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, path)
    return proto


def describe(proto):
    """Opset, input and output names / shapes / dtypes of an ONNX model (None = dynamic)."""
    return {
        "opset": next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
        "inputs": [_describe_value(v) for v in proto.graph.input],
        "outputs": [_describe_value(v) for v in proto.graph.output],
    }


def _describe_value(value):
    tensor = value.type.tensor_type
    return {
        "name": value.name,
        "shape": [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim],
        "dtype": onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name,
    }


def metadata(model, *, artifact, latent_size, effective_rank, dataset, version, rank=None):
    """The `metadata_props` of one artifact of an exported `Autoencoder`.

    Args:
        model: the exported `Autoencoder`.
        artifact: str. `"encoder"`, `"decoder"`, `"autoencoder"`, `"encoder_rank7"`...
        latent_size: int. Width of the code this artifact reads or writes (n, or K
            for a compact artifact).
        effective_rank: int. Of the eval codes (1 % threshold).
        dataset: str or None.
        version: str. irmae_keras version.
        rank: int or None. K of a compact artifact.
    """
    props = {
        "artifact": artifact,
        "layout": "NHWC",
        "value_range": json.dumps([0.0, 1.0]),
        "image_size": json.dumps(list(model.image_shape)),
        "latent_size": str(latent_size),
        "model_latent_size": str(model.latent_dim),
        "effective_rank": str(effective_rank),
        "dataset": dataset or "unknown",
        "architecture": model.architecture or "custom",
        "variant": model.variant,
        "folded": model.folded,
        "irmae_keras_version": version,
    }
    if rank is not None:
        props["rank"] = str(rank)
    return props


def runner(path, threads=None):
    """A callable numpy batch → first output of `path` in onnxruntime.

    The session opens on the first call, so that a file onnxruntime cannot load
    fails inside the parity check that runs it.
    """

    @functools.cache
    def session():
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    def run(batch):
        return session().run(None, {session().get_inputs()[0].name: batch})[0]

    return run
