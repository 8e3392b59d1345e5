"""export/api.py: `export_model` writes every artifact through a staging directory, checks
each against Keras, and replaces an old export only once the new one passed."""

import os

import keras
import numpy as np
import onnx
import pytest

import export
import irmae_keras
from export import api
from export import verify
from export.errors import UsageError
from tests.helpers import EXPORT_EVAL_IMAGES
from tests.helpers import EXPORT_FULL_FILES
from tests.helpers import onnx_run
from tests.helpers import to_numpy
from training.rundir import RunDir

LATENT = 4


def _staging_leftovers(directory):
    return [name for name in os.listdir(directory) if ".staging-" in name or ".old-" in name]


# --- the export directory -------------------------------------------------------------


@pytest.mark.slow
def test_export_writes_every_artifact_and_leaves_no_staging(tiny_export, tiny_export_source,
                                                           tiny_export_rank):
    out, _, _ = tiny_export
    k = tiny_export_rank
    assert sorted(os.listdir(out)) == sorted(
        ["savedmodel", "manifest.json", *EXPORT_FULL_FILES, f"encoder_rank{k}.onnx",
         f"decoder_rank{k}.onnx"])
    run = RunDir(tiny_export_source[1])
    assert sorted(os.path.join(run.path, name) for name in os.listdir(run.path)) == sorted(
        [run.config_path, run.export_dir, run.model_path])


@pytest.mark.slow
def test_compact_models_encode_to_k_numbers_and_reconstruct_as_reported(
        tiny_export, shapes_eval_images, tiny_export_rank):
    out, manifest, _ = tiny_export
    k = tiny_export_rank
    assert k == max(1, manifest["effective_rank"])
    coordinates = onnx_run(os.path.join(out, f"encoder_rank{k}.onnx"), shapes_eval_images)
    assert coordinates.shape == (EXPORT_EVAL_IMAGES, k)
    # Centred principal coordinates: mean zero over the eval codes they were fit on.
    np.testing.assert_allclose(coordinates.mean(axis=0), 0.0, atol=1e-4)
    compact = onnx_run(os.path.join(out, f"decoder_rank{k}.onnx"), coordinates)
    full = onnx_run(os.path.join(out, "autoencoder.onnx"), shapes_eval_images)
    report = manifest["compact"]
    assert report["rank"] == k and 0 < report["explained_variance"] <= 1
    np.testing.assert_allclose(np.mean((compact - shapes_eval_images) ** 2), report["mse"], rtol=1e-4)
    np.testing.assert_allclose(np.mean((full - shapes_eval_images) ** 2), report["full_mse"], rtol=1e-4)
    np.testing.assert_allclose(np.abs(compact - full).max(), report["max_abs_diff_vs_full"],
                               rtol=1e-2, atol=1e-6)
    props = {p.key: p.value for p in onnx.load(os.path.join(out, f"encoder_rank{k}.onnx"))
             .metadata_props}
    assert props["latent_size"] == str(k) and props["rank"] == str(k)
    assert props["model_latent_size"] == str(LATENT)


# --- arguments ---------------------------------------------------------------------------


def test_export_model_checks_its_arguments(tiny_export_source, shapes_eval_images, tmp_path):
    model, _ = tiny_export_source
    out = str(tmp_path / "out")
    with pytest.raises(UsageError, match=r"must have shape \(examples, 32, 32, 3\)"):
        export.export_model(model, out, eval_images=shapes_eval_images[:, :16])
    with pytest.raises(UsageError, match="at least 7 eval images; got 6"):
        export.export_model(model, out, eval_images=shapes_eval_images[:6])
    with pytest.raises(UsageError, match=r"in \[0, 1\]"):
        export.export_model(model, out, eval_images=shapes_eval_images[:8] * 2)
    with pytest.raises(UsageError, match="not an irmae_keras Autoencoder"):
        export.export_model(keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)]), out,
                            eval_images=shapes_eval_images[:8])
    with pytest.raises(UsageError, match="--rank 9 exceeds"):
        export.export_model(model, out, eval_images=shapes_eval_images[:8], rank=9)
    assert not os.path.exists(out)


@pytest.mark.parametrize("value, parsed", [
    ("auto", "auto"), ("full", "full"), ("7", 7), (3, 3), (np.int64(2), 2)])
def test_parse_rank(value, parsed):
    assert api.parse_rank(value) == parsed


def test_resolve_rank():
    assert api.resolve_rank("full", 32, 7) is None
    assert api.resolve_rank("auto", 32, 7) == 7
    assert api.resolve_rank("auto", 32, 0) == 1  # constant codes still get one coordinate
    assert api.resolve_rank(32, 32, 7) == 32
    with pytest.raises(UsageError, match="--rank 33 exceeds the model's latent size 32"):
        api.resolve_rank(33, 32, 7)


# --- failures leave nothing behind -----------------------------------------------------


@pytest.mark.slow
def test_a_corrupt_artifact_fails_verification_and_keeps_the_old_export(
        tiny_export_source, shapes_eval_images, monkeypatch, tmp_path):
    model, _ = tiny_export_source
    out = tmp_path / "export"
    out.mkdir()
    (out / "old.txt").write_text("the previous export")
    real_write = api.onnx_export.write_onnx

    def write_then_corrupt(keras_model, path, **kwargs):
        proto = real_write(keras_model, path, **kwargs)
        if path.endswith("decoder.onnx"):
            with open(path, "r+b") as handle:
                handle.truncate(os.path.getsize(path) // 2)
        return proto

    monkeypatch.setattr(api.onnx_export, "write_onnx", write_then_corrupt)
    with pytest.raises(verify.ParityError, match="decoder.onnx could not be run at batch 1"):
        export.export_model(model, str(out), eval_images=shapes_eval_images[:8], overwrite=True)
    assert sorted(os.listdir(out)) == ["old.txt"]
    assert _staging_leftovers(tmp_path) == []


@pytest.mark.slow
def test_overwrite_replaces_an_old_export_once_the_new_one_passed(tiny_export_source, shapes_eval_images,
                                                                   tmp_path):
    model, _ = tiny_export_source
    out = tmp_path / "export"
    out.mkdir()
    (out / "old.txt").write_text("the previous export")
    manifest = export.export_model(model, str(out), eval_images=shapes_eval_images[:8],
                                   dataset="shapes", overwrite=True, absorb=True, opset=18)
    assert sorted(os.listdir(out)) == sorted(["savedmodel", "manifest.json", *EXPORT_FULL_FILES])
    assert manifest["model"]["folded"] == "encoder" and manifest["compact"] is None
    assert {a["opset"] for a in manifest["artifacts"] if a["format"] == "onnx"} == {18}
    assert _staging_leftovers(tmp_path) == []


@pytest.mark.slow
def test_a_vae_without_a_stack_exports_its_mean_code(tmp_path):
    model = irmae_keras.build_autoencoder("mnist", variant="vae", latent_dim=3)
    images = np.random.default_rng(0).random((12, 32, 32, 1), dtype=np.float32)
    manifest = export.export_model(model, str(tmp_path / "vae"), eval_images=images, rank=2,
                                   dataset="digits")
    assert manifest["model"]["variant"] == "vae" and manifest["model"]["folded"] == "none"
    assert manifest["compact"]["rank"] == 2
    encoder = str(tmp_path / "vae" / "encoder.onnx")
    props = {p.key: p.value for p in onnx.load(encoder).metadata_props}
    assert (props["variant"], props["dataset"], props["image_size"]) == (
        "vae", "digits", "[32, 32, 1]")
    # The deployed code is the posterior mean: deterministic, equal to Keras in inference.
    np.testing.assert_allclose(onnx_run(encoder, images[:4]), to_numpy(model.encoder(images[:4])),
                               atol=1e-5)
    np.testing.assert_array_equal(onnx_run(encoder, images[:4]), onnx_run(encoder, images[:4]))
