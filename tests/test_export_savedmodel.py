"""export/savedmodel.py: the SavedModel of the session's `tiny_export` has named
signatures with a dynamic batch and loads without this project."""

import os
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import REPO
from tests.helpers import run_python
from tests.helpers import to_numpy


@pytest.mark.slow
def test_savedmodel_signatures_are_named_with_a_dynamic_batch(tiny_export, tiny_export_source, shapes_eval_images):
    out, manifest, _ = tiny_export
    model, _ = tiny_export_source
    loaded = tf.saved_model.load(os.path.join(out, "savedmodel"))
    assert {"encode", "decode", "reconstruct"} <= set(loaded.signatures)
    x = shapes_eval_images[:5]
    codes = loaded.signatures["encode"](image=tf.constant(x))["code"].numpy()
    np.testing.assert_allclose(codes, to_numpy(model.encoder(x)), atol=1e-5)
    images = loaded.signatures["decode"](code=tf.constant(codes))["image"].numpy()
    np.testing.assert_allclose(images, to_numpy(model.decoder(codes)), atol=1e-5)
    reconstruction = loaded.signatures["reconstruct"](image=tf.constant(x))["reconstruction"]
    np.testing.assert_allclose(reconstruction.numpy(), to_numpy(model(x)), atol=1e-5)
    signatures = manifest["artifacts"][0]["signatures"]
    assert signatures["encode"]["inputs"] == [
        {"name": "image", "shape": [None, 32, 32, 3], "dtype": "float32"}]
    assert signatures["decode"]["outputs"] == [
        {"name": "image", "shape": [None, 32, 32, 3], "dtype": "float32"}]


@pytest.mark.slow
def test_savedmodel_loads_in_a_process_that_cannot_import_this_project(
        tiny_export, tiny_export_source, shapes_eval_images, tmp_path):
    out, _, _ = tiny_export
    model, _ = tiny_export_source
    np.save(tmp_path / "x.npy", shapes_eval_images[:3])
    np.save(tmp_path / "codes.npy", to_numpy(model.encoder(shapes_eval_images[:3])))
    script = textwrap.dedent(f"""
        import importlib.abc, sys
        PROJECT = ("irmae_keras", "training", "export")

        class Blocker(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in PROJECT:
                    raise ImportError("this project must not be needed: " + name)

        sys.meta_path.insert(0, Blocker())
        sys.path = [p for p in sys.path if p not in ("", ".", {REPO!r})]
        import keras, numpy as np, tensorflow as tf
        x, codes = np.load("x.npy"), np.load("codes.npy")
        loaded = tf.saved_model.load({os.path.join(out, "savedmodel")!r})
        got = loaded.signatures["encode"](image=tf.constant(x))["code"].numpy()
        assert np.abs(got - codes).max() <= 1e-5, got
        layer = keras.layers.TFSMLayer({os.path.join(out, "savedmodel")!r},
                                       call_endpoint="encode")
        got = keras.ops.convert_to_numpy(layer(x)["code"])
        assert np.abs(got - codes).max() <= 1e-5, got
        assert not [m for m in sys.modules if m.split(".")[0] in PROJECT], sys.modules
        print("loaded without the project")
    """)
    result = run_python("-c", script, cwd=tmp_path, env={"PYTHONPATH": "", "TF_CPP_MIN_LOG_LEVEL": "2"},
                        timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "loaded without the project" in result.stdout
