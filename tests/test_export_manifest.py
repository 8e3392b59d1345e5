"""export/manifest.py: manifest.json fingerprints every file and records the parity, rank,
dataset and versions of the session's `tiny_export`."""

import os
import shutil

import numpy as np
import onnxruntime
import pytest

import irmae_keras
from export import manifest as manifest_lib
from tests.helpers import EXPORT_EVAL_IMAGES
from tests.helpers import sha256_of
from tests.helpers import to_numpy
from training.rundir import RunDir

LATENT = 4


@pytest.mark.slow
def test_manifest_fingerprints_match_the_files(tiny_export, tiny_export_source, tmp_path):
    out, manifest, _ = tiny_export
    for artifact in manifest["artifacts"]:
        path = os.path.join(out, artifact["path"])
        if artifact["format"] == "onnx":
            assert artifact["sha256"] == sha256_of(path)
            assert artifact["bytes"] == os.path.getsize(path)
    assert manifest_lib.verify_files(out) == []
    assert manifest["source"]["sha256"] == sha256_of(RunDir(tiny_export_source[1]).model_path)
    assert manifest["source"]["config"]["dataset"] == "shapes"
    # A changed byte in any artifact, the SavedModel included, is caught.
    copy = shutil.copytree(out, tmp_path / "copy")
    with open(copy / "decoder.onnx", "r+b") as handle:
        handle.seek(100)
        byte = handle.read(1)
        handle.seek(100)
        handle.write(bytes([byte[0] ^ 1]))
    (copy / "savedmodel" / "fingerprint.pb").write_bytes(b"x")
    assert sorted(manifest_lib.verify_files(copy)) == ["decoder.onnx", "savedmodel"]


@pytest.mark.slow
def test_manifest_records_parity_rank_dataset_and_versions(tiny_export, tiny_export_source, shapes_eval_images):
    _, manifest, _ = tiny_export
    model, _ = tiny_export_source
    assert manifest["dataset"] == "shapes" and manifest["eval_images"] == EXPORT_EVAL_IMAGES
    assert manifest["model"] == {
        "architecture": "shapes", "variant": "irmae", "latent_dim": LATENT,
        "linear_layers": 2, "image_shape": [32, 32, 3], "folded": "dense"}
    assert manifest["effective_rank"] == irmae_keras.effective_rank(
        to_numpy(model.encoder(shapes_eval_images)))
    assert len(manifest["spectrum"]) == LATENT and manifest["spectrum"][0] == 1.0
    parities = []
    for artifact in manifest["artifacts"]:
        entries = artifact["signatures"].values() if "signatures" in artifact else [artifact]
        parities += [entry["parity"] for entry in entries]
    assert len(parities) == 3 + 3 + 2 + 2  # SavedModel signatures, ONNX files, compact pair, LiteRT
    for parity in parities:
        assert set(parity) == {"1", "7"}
        assert all(0 <= diff <= 1e-4 for diff in parity.values())
    folding = manifest["folding"]
    assert folding["mode"] == "dense"
    assert max(folding["max_abs_diff"].values()) <= 1e-5
    codes = to_numpy(model.encoder(shapes_eval_images))
    assert folding["allowed"]["codes"] == pytest.approx(1e-5 * max(1.0, np.abs(codes).max()))
    assert folding["allowed"]["reconstruction"] == pytest.approx(1e-5)  # tanh output: |x| <= 1
    versions = manifest["versions"]
    assert tuple(map(int, versions["tf2onnx"].split(".")[:2])) >= (1, 17)
    assert versions["onnxruntime"] == onnxruntime.__version__
    assert versions["irmae-keras"] == irmae_keras.__version__
