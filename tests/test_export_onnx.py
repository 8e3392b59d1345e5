"""export/onnx.py: the ONNX files of the session's `tiny_export` are valid, carry their
metadata, take any batch size and match Keras."""

import os

import numpy as np
import onnx
import pytest

import irmae_keras
from tests.helpers import onnx_run
from tests.helpers import to_numpy

LATENT = 4


@pytest.mark.slow
@pytest.mark.parametrize("name, input_name, output_name, input_shape, output_shape", [
    ("encoder.onnx", "image", "code", [None, 32, 32, 3], [None, LATENT]),
    ("decoder.onnx", "code", "image", [None, LATENT], [None, 32, 32, 3]),
    ("autoencoder.onnx", "image", "reconstruction", [None, 32, 32, 3], [None, 32, 32, 3]),
])
def test_onnx_files_are_valid_with_dynamic_batch_and_metadata(
        tiny_export, name, input_name, output_name, input_shape, output_shape):
    out, manifest, _ = tiny_export
    proto = onnx.load(os.path.join(out, name))
    onnx.checker.check_model(proto, full_check=True)
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [17]
    (graph_input,), (graph_output,) = proto.graph.input, proto.graph.output
    assert (graph_input.name, graph_output.name) == (input_name, output_name)
    for value, shape in ((graph_input, input_shape), (graph_output, output_shape)):
        dims = value.type.tensor_type.shape.dim
        assert dims[0].dim_param == "batch"
        assert [d.dim_value for d in dims[1:]] == shape[1:]
    props = {p.key: p.value for p in proto.metadata_props}
    assert props == {
        "artifact": name[:-5], "layout": "NHWC", "value_range": "[0.0, 1.0]",
        "image_size": "[32, 32, 3]", "latent_size": str(LATENT),
        "model_latent_size": str(LATENT), "effective_rank": str(manifest["effective_rank"]),
        "dataset": "shapes", "architecture": "shapes", "variant": "irmae", "folded": "dense",
        "irmae_keras_version": irmae_keras.__version__}
    entry = next(a for a in manifest["artifacts"] if a["path"] == name)
    assert entry["inputs"] == [{"name": input_name, "shape": input_shape, "dtype": "float32"}]
    assert entry["outputs"][0]["name"] == output_name and entry["opset"] == 17


@pytest.mark.slow
def test_onnx_matches_keras_at_an_unchecked_batch_size(tiny_export, tiny_export_source, shapes_eval_images):
    out, _, _ = tiny_export
    model, _ = tiny_export_source
    x = shapes_eval_images[10:13]
    codes = to_numpy(model.encoder(x))
    assert np.abs(onnx_run(os.path.join(out, "encoder.onnx"), x) - codes).max() <= 1e-4
    assert np.abs(onnx_run(os.path.join(out, "decoder.onnx"), codes) - to_numpy(model.decoder(codes))
                  ).max() <= 1e-4
    assert np.abs(onnx_run(os.path.join(out, "autoencoder.onnx"), x) - to_numpy(model(x))).max() <= 1e-4
