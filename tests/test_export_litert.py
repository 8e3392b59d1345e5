"""export/litert.py: the LiteRT files of an export, float32 and int8."""

import os

import numpy as np
import pytest

import export
from export import manifest as manifest_lib
from tests.helpers import onnx_session


@pytest.mark.slow  # spawns processes or trains and exports end to end
class TestLiteRT:
    def test_the_default_export_holds_verified_litert_files(self, tiny_export, shapes_eval_images):
        from export import litert

        out, manifest, _ = tiny_export
        entries = {a["path"]: a for a in manifest["artifacts"] if a["format"] == "litert"}
        assert sorted(entries) == ["decoder.tflite", "encoder.tflite"]
        for name, entry in entries.items():
            assert entry["weights"] == "float32" and set(entry["parity"]) == {"1", "7"}
            assert max(entry["parity"].values()) <= manifest["parity_tolerance"]
            assert entry["inputs"][0]["shape"][0] is None  # a dynamic batch
        assert manifest_lib.verify_files(out) == []
        codes = litert.runner(os.path.join(out, "encoder.tflite"))(shapes_eval_images[:5])
        onnx_codes = onnx_session(os.path.join(out, "encoder.onnx")).run(None, {"image": shapes_eval_images[:5]})[0]
        np.testing.assert_allclose(codes, onnx_codes, atol=1e-4)

    @pytest.mark.slow
    def test_int8_files_record_their_measured_cost(self, tiny_export_source, shapes_eval_images, tmp_path):
        model, _ = tiny_export_source
        manifest = export.export_model(model, str(tmp_path / "e"), eval_images=shapes_eval_images[:16],
                                formats=("litert",), int8=True)
        entries = {a["path"]: a for a in manifest["artifacts"]}
        assert sorted(entries) == ["decoder.tflite", "decoder_int8.tflite", "encoder.tflite",
                                   "encoder_int8.tflite"]
        for name in ("encoder_int8.tflite", "decoder_int8.tflite"):
            cost = entries[name]["int8_cost"]
            assert 0 < cost["mean_abs_diff"] <= cost["max_abs_diff"] < 0.1
            assert entries[name]["bytes"] < entries[name.replace("_int8", "")]["bytes"] / 2
