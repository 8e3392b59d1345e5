"""End to end: a tiny trained shapes IRMAE exported once; many tests read its outputs."""

import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap

import keras
import numpy as np
import onnx
import onnxruntime
import pytest
import tensorflow as tf
from PIL import Image

import export
import irmae_keras
from export import api
from export import atomic
from export import manifest as manifest_lib
from export import verify
from export.__main__ import main as export_main
from training import data
from training.config import RunConfig
from export.errors import UsageError
from export.errors import run_cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LATENT = 4
EVAL = 64
FULL_FILES = {"encoder.onnx", "decoder.onnx", "autoencoder.onnx", "encoder.tflite", "decoder.tflite"}


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _make_run(directory, model, dataset="shapes"):
    os.makedirs(directory, exist_ok=True)
    model.save(os.path.join(directory, "model.keras"))
    config = RunConfig(dataset=dataset, latent_dim=model.latent_dim).resolved()
    with open(os.path.join(directory, "config.json"), "w") as handle:
        json.dump(config.document(), handle)
    return str(directory)


def _cli(argv, capsys):
    """Runs the export CLI in-process as `python -m export` would: (exit code, out, err)."""
    with pytest.raises(SystemExit) as exit_info:
        run_cli(export_main, argv, prog="export")
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def _staging_leftovers(directory):
    return [name for name in os.listdir(directory) if ".staging-" in name or ".old-" in name]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A shapes IRMAE (n=4, l=2) trained a few steps, saved as a run directory."""
    keras.utils.set_random_seed(0)
    images, _ = data.generate_shapes(96, seed=1)
    model = irmae_keras.build_autoencoder("shapes", latent_dim=LATENT, linear_layers=2)
    model.compile()
    model.fit(images, epochs=2, batch_size=32, verbose=0)
    run_dir = _make_run(tmp_path_factory.mktemp("run") / "shapes-irmae", model)
    return model, run_dir


@pytest.fixture(scope="module")
def eval_images():
    return data.load_arrays("shapes", "eval", limit=EVAL)


@pytest.fixture(scope="module")
def exported(trained):
    """`python -m export RUN_DIR --rank auto --eval-size 64`, run once in-process."""
    _, run_dir = trained
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert export_main([run_dir, "--rank", "auto", "--eval-size", str(EVAL)]) == 0
    out = os.path.join(run_dir, "export")
    return out, manifest_lib.read_manifest(out), stdout.getvalue()


@pytest.fixture(scope="module")
def compact_rank(exported):
    return exported[1]["compact"]["rank"]


def _session(path):
    return onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])


def _run(path, batch):
    session = _session(path)
    return session.run(None, {session.get_inputs()[0].name: batch})[0]


# --- the export directory -------------------------------------------------------------


@pytest.mark.slow
def test_export_writes_every_artifact_and_leaves_no_staging(exported, trained, compact_rank):
    out, _, _ = exported
    k = compact_rank
    assert sorted(os.listdir(out)) == sorted(
        ["savedmodel", "manifest.json", *FULL_FILES, f"encoder_rank{k}.onnx",
         f"decoder_rank{k}.onnx"])
    assert sorted(os.listdir(trained[1])) == ["config.json", "export", "model.keras"]


@pytest.mark.slow
def test_manifest_fingerprints_match_the_files(exported, trained, tmp_path):
    out, manifest, _ = exported
    for artifact in manifest["artifacts"]:
        path = os.path.join(out, artifact["path"])
        if artifact["format"] == "onnx":
            assert artifact["sha256"] == _sha256(path)
            assert artifact["bytes"] == os.path.getsize(path)
    assert manifest_lib.verify_files(out) == []
    assert manifest["source"]["sha256"] == _sha256(os.path.join(trained[1], "model.keras"))
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
def test_manifest_records_parity_rank_dataset_and_versions(exported, trained, eval_images):
    _, manifest, _ = exported
    model, _ = trained
    assert manifest["dataset"] == "shapes" and manifest["eval_images"] == EVAL
    assert manifest["model"] == {
        "architecture": "shapes", "variant": "irmae", "latent_dim": LATENT,
        "linear_layers": 2, "image_shape": [32, 32, 3], "folded": "dense"}
    assert manifest["effective_rank"] == irmae_keras.effective_rank(
        _np(model.encoder(eval_images)))
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
    codes = _np(model.encoder(eval_images))
    assert folding["allowed"]["codes"] == pytest.approx(1e-5 * max(1.0, np.abs(codes).max()))
    assert folding["allowed"]["reconstruction"] == pytest.approx(1e-5)  # tanh output: |x| <= 1
    versions = manifest["versions"]
    assert tuple(map(int, versions["tf2onnx"].split(".")[:2])) >= (1, 17)
    assert versions["onnxruntime"] == onnxruntime.__version__
    assert versions["irmae-keras"] == irmae_keras.__version__


@pytest.mark.slow
def test_cli_prints_a_summary(exported, compact_rank):
    out, manifest, stdout = exported
    assert f"to {out}" in stdout
    for name in ("savedmodel", *FULL_FILES, f"encoder_rank{compact_rank}.onnx"):
        assert name in stdout
    assert f"effective rank (1 % threshold) on {EVAL} eval images: " \
           f"{manifest['effective_rank']} of {LATENT}" in stdout
    assert f"compact rank {compact_rank}: MSE" in stdout


# --- ONNX -------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name, input_name, output_name, input_shape, output_shape", [
    ("encoder.onnx", "image", "code", [None, 32, 32, 3], [None, LATENT]),
    ("decoder.onnx", "code", "image", [None, LATENT], [None, 32, 32, 3]),
    ("autoencoder.onnx", "image", "reconstruction", [None, 32, 32, 3], [None, 32, 32, 3]),
])
def test_onnx_files_are_valid_with_dynamic_batch_and_metadata(
        exported, name, input_name, output_name, input_shape, output_shape):
    out, manifest, _ = exported
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
def test_onnx_matches_keras_at_an_unchecked_batch_size(exported, trained, eval_images):
    out, _, _ = exported
    model, _ = trained
    x = eval_images[10:13]
    codes = _np(model.encoder(x))
    assert np.abs(_run(os.path.join(out, "encoder.onnx"), x) - codes).max() <= 1e-4
    assert np.abs(_run(os.path.join(out, "decoder.onnx"), codes) - _np(model.decoder(codes))
                  ).max() <= 1e-4
    assert np.abs(_run(os.path.join(out, "autoencoder.onnx"), x) - _np(model(x))).max() <= 1e-4


# --- SavedModel ------------------------------------------------------------------------


@pytest.mark.slow
def test_savedmodel_signatures_are_named_with_a_dynamic_batch(exported, trained, eval_images):
    out, manifest, _ = exported
    model, _ = trained
    loaded = tf.saved_model.load(os.path.join(out, "savedmodel"))
    assert {"encode", "decode", "reconstruct"} <= set(loaded.signatures)
    x = eval_images[:5]
    codes = loaded.signatures["encode"](image=tf.constant(x))["code"].numpy()
    np.testing.assert_allclose(codes, _np(model.encoder(x)), atol=1e-5)
    images = loaded.signatures["decode"](code=tf.constant(codes))["image"].numpy()
    np.testing.assert_allclose(images, _np(model.decoder(codes)), atol=1e-5)
    reconstruction = loaded.signatures["reconstruct"](image=tf.constant(x))["reconstruction"]
    np.testing.assert_allclose(reconstruction.numpy(), _np(model(x)), atol=1e-5)
    signatures = manifest["artifacts"][0]["signatures"]
    assert signatures["encode"]["inputs"] == [
        {"name": "image", "shape": [None, 32, 32, 3], "dtype": "float32"}]
    assert signatures["decode"]["outputs"] == [
        {"name": "image", "shape": [None, 32, 32, 3], "dtype": "float32"}]


@pytest.mark.slow
def test_savedmodel_loads_in_a_process_that_cannot_import_this_project(
        exported, trained, eval_images, tmp_path):
    out, _, _ = exported
    model, _ = trained
    np.save(tmp_path / "x.npy", eval_images[:3])
    np.save(tmp_path / "codes.npy", _np(model.encoder(eval_images[:3])))
    script = textwrap.dedent(f"""
        import importlib.abc, sys
        PROJECT = ("irmae_keras", "training", "export")

        class Blocker(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in PROJECT:
                    raise ImportError("this project must not be needed: " + name)

        sys.meta_path.insert(0, Blocker())
        sys.path = [p for p in sys.path if p not in ("", ".", {ROOT!r})]
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
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": "", "TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "loaded without the project" in result.stdout


# --- compact models ----------------------------------------------------------------------


@pytest.mark.slow
def test_compact_models_encode_to_k_numbers_and_reconstruct_as_reported(
        exported, eval_images, compact_rank):
    out, manifest, _ = exported
    k = compact_rank
    assert k == max(1, manifest["effective_rank"])
    coordinates = _run(os.path.join(out, f"encoder_rank{k}.onnx"), eval_images)
    assert coordinates.shape == (EVAL, k)
    # Centred principal coordinates: mean zero over the eval codes they were fit on.
    np.testing.assert_allclose(coordinates.mean(axis=0), 0.0, atol=1e-4)
    compact = _run(os.path.join(out, f"decoder_rank{k}.onnx"), coordinates)
    full = _run(os.path.join(out, "autoencoder.onnx"), eval_images)
    report = manifest["compact"]
    assert report["rank"] == k and 0 < report["explained_variance"] <= 1
    np.testing.assert_allclose(np.mean((compact - eval_images) ** 2), report["mse"], rtol=1e-4)
    np.testing.assert_allclose(np.mean((full - eval_images) ** 2), report["full_mse"], rtol=1e-4)
    np.testing.assert_allclose(np.abs(compact - full).max(), report["max_abs_diff_vs_full"],
                               rtol=1e-2, atol=1e-6)
    props = {p.key: p.value for p in onnx.load(os.path.join(out, f"encoder_rank{k}.onnx"))
             .metadata_props}
    assert props["latent_size"] == str(k) and props["rank"] == str(k)
    assert props["model_latent_size"] == str(LATENT)


@pytest.mark.slow
def test_encode_tool_on_the_exported_compact_encoder(exported, eval_images, compact_rank,
                                                     tmp_path, capsys):
    from export import encode

    out, _, _ = exported
    paths = []
    for i in range(3):
        paths.append(str(tmp_path / f"shape{i}.png"))
        Image.fromarray(np.round(eval_images[i] * 255).astype("uint8")).save(paths[-1])
    onnx_path = os.path.join(out, f"encoder_rank{compact_rank}.onnx")
    with pytest.raises(SystemExit) as exit_info:
        run_cli(encode.main, ["--onnx", onnx_path, *paths, "--out", str(tmp_path / "c.npy")])
    assert exit_info.value.code == 0, capsys.readouterr().err
    codes = np.load(tmp_path / "c.npy")
    quantised = np.round(eval_images[:3] * 255).astype("float32") / 255
    np.testing.assert_allclose(codes, _run(onnx_path, quantised), atol=1e-6)
    assert codes.shape == (3, compact_rank)
    assert json.loads((tmp_path / "c.names.json").read_text()) == paths


# --- failures leave nothing behind -----------------------------------------------------


@pytest.mark.slow
def test_failed_parity_check_fails_the_export_and_leaves_nothing(
        trained, monkeypatch, tmp_path, capsys):
    _, run_dir = trained
    monkeypatch.setattr(verify, "PARITY_TOLERANCE", 0.0)
    out = tmp_path / "exports" / "new"
    code, stdout, stderr = _cli([run_dir, "--out", str(out), "--eval-size", "8"], capsys)
    assert code == 2
    assert len(stderr.strip().splitlines()) == 1
    assert "max abs diff" in stderr and "exceeds 0" in stderr and "not written" in stderr
    assert not out.exists() and os.listdir(out.parent) == []
    assert stdout == ""


@pytest.mark.slow
def test_a_corrupt_artifact_fails_verification_and_keeps_the_old_export(
        trained, eval_images, monkeypatch, tmp_path):
    model, _ = trained
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
        export.export_model(model, str(out), eval_images=eval_images[:8], overwrite=True)
    assert sorted(os.listdir(out)) == ["old.txt"]
    assert _staging_leftovers(tmp_path) == []


@pytest.mark.slow
def test_overwrite_replaces_an_old_export_once_the_new_one_passed(trained, eval_images,
                                                                   tmp_path):
    model, _ = trained
    out = tmp_path / "export"
    out.mkdir()
    (out / "old.txt").write_text("the previous export")
    manifest = export.export_model(model, str(out), eval_images=eval_images[:8],
                                   dataset="shapes", overwrite=True, absorb=True, opset=18)
    assert sorted(os.listdir(out)) == sorted(["savedmodel", "manifest.json", *FULL_FILES])
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
    np.testing.assert_allclose(_run(encoder, images[:4]), _np(model.encoder(images[:4])),
                               atol=1e-5)
    np.testing.assert_array_equal(_run(encoder, images[:4]), _run(encoder, images[:4]))


def test_an_existing_output_is_refused_without_overwrite(trained, tmp_path, capsys):
    _, run_dir = trained
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, stderr = _cli([run_dir, "--out", str(out)], capsys)
    assert code == 2
    assert stderr == f"export: error: {out} already exists; pass --overwrite to replace it.\n"
    assert os.listdir(out) == ["keep.txt"]


# --- bad input: one line on stderr, exit 2, nothing written -----------------------------


def _bad_input(path, capsys, *extra):
    out = os.path.join(os.path.dirname(str(path)), "never")
    code, stdout, stderr = _cli([str(path), "--out", out, "--data", "shapes", *extra], capsys)
    assert code == 2
    assert len(stderr.splitlines()) == 1 and stderr.startswith("export: error: ")
    assert stdout == "" and not os.path.exists(out)
    return stderr


def test_a_model_that_is_not_one_of_ours_is_rejected(tmp_path, capsys):
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    plain.save(tmp_path / "plain.keras")
    stderr = _bad_input(tmp_path / "plain.keras", capsys)
    assert "holds a Sequential" in stderr and "not an irmae_keras Autoencoder" in stderr


def test_a_missing_model_is_rejected(tmp_path, capsys):
    stderr = _bad_input(tmp_path / "nothing.keras", capsys)
    assert "does not exist" in stderr


def test_a_directory_without_a_model_is_rejected(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    stderr = _bad_input(tmp_path / "run", capsys)
    assert "is not a run directory: it has no model.keras" in stderr


def test_a_corrupt_model_file_is_rejected(tmp_path, capsys):
    (tmp_path / "model.keras").write_bytes(np.random.default_rng(0).bytes(4096))
    stderr = _bad_input(tmp_path / "model.keras", capsys)
    assert "not a .keras archive" in stderr


def test_a_model_with_nan_weights_is_rejected(trained, tmp_path, capsys):
    model, _ = trained
    broken = irmae_keras.Autoencoder.from_config(model.get_config())
    broken.set_weights(model.get_weights())
    kernel = broken.linear_stack.kernels[0]
    kernel.assign(np.full(kernel.shape, np.nan, "float32"))
    broken.save(tmp_path / "model.keras")
    stderr = _bad_input(tmp_path / "model.keras", capsys)
    assert "NaN or infinite values in weight" in stderr and "linear_stack" in stderr


@pytest.mark.parametrize("rank, message", [
    ("5", "--rank 5 exceeds the model's latent size 4"),
    ("0", "--rank must be auto, full or an integer K >= 1; got '0'"),
    ("seven", "--rank must be auto, full or an integer K >= 1; got 'seven'"),
    ("-2", "--rank must be auto, full or an integer K >= 1; got '-2'"),
])
def test_a_bad_rank_is_rejected(trained, rank, message, capsys):
    _, run_dir = trained
    stderr = _bad_input(os.path.join(run_dir, "model.keras"), capsys, "--rank", rank)
    assert message in stderr


@pytest.mark.parametrize("argv, message", [
    (["--opset", "12"], "--opset must be an integer from 13 to 18"),
    (["--opset", "x"], "argument --opset: invalid int value: 'x'"),
    (["--eval-size", "3"], "--eval-size must be an integer >= 7"),
    (["--format", "onnx,tflite"], "--format takes a comma-separated list of savedmodel, onnx, litert; got onnx,tflite."),
])
def test_bad_options_are_rejected(trained, argv, message, capsys):
    _, run_dir = trained
    stderr = _bad_input(os.path.join(run_dir, "model.keras"), capsys, *argv)
    assert message in stderr


def test_a_bare_model_file_needs_a_dataset(trained, tmp_path, capsys):
    model, _ = trained
    model.save(tmp_path / "bare.keras")
    code, _, stderr = _cli([str(tmp_path / "bare.keras")], capsys)
    assert code == 2
    assert "has no run configuration beside it: pass --data DATASET" in stderr
    assert sorted(os.listdir(tmp_path)) == ["bare.keras"]


@pytest.mark.slow  # spawns processes or trains and exports end to end
def test_the_cli_in_a_subprocess_prints_one_line_and_exits_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "export", str(tmp_path / "missing")], cwd=ROOT,
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr == (
        f"export: error: {tmp_path / 'missing'} does not exist; pass a run directory or a "
        "model .keras file.\n")
    assert result.stdout == ""


def test_help_documents_the_artifacts_and_defaults():
    result = subprocess.run([sys.executable, "-m", "export", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    text_of_help = " ".join(result.stdout.split())  # argparse wraps to the terminal width
    for text in ("encoder_rankK.onnx", "manifest.json", "(default: full)", "(default: 17)",
                 "(default: 1000)", "--overwrite", "parity", "exit code 2"):
        assert text in text_of_help


# --- API and helpers -----------------------------------------------------------------


def test_export_model_checks_its_arguments(trained, eval_images, tmp_path):
    model, _ = trained
    out = str(tmp_path / "out")
    with pytest.raises(UsageError, match=r"must have shape \(examples, 32, 32, 3\)"):
        export.export_model(model, out, eval_images=eval_images[:, :16])
    with pytest.raises(UsageError, match="at least 7 eval images; got 6"):
        export.export_model(model, out, eval_images=eval_images[:6])
    with pytest.raises(UsageError, match=r"in \[0, 1\]"):
        export.export_model(model, out, eval_images=eval_images[:8] * 2)
    with pytest.raises(UsageError, match="not an irmae_keras Autoencoder"):
        export.export_model(keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)]), out,
                            eval_images=eval_images[:8])
    with pytest.raises(UsageError, match="--rank 9 exceeds"):
        export.export_model(model, out, eval_images=eval_images[:8], rank=9)
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


def test_staged_directory_is_all_or_nothing(tmp_path):
    target = tmp_path / "target"
    with pytest.raises(RuntimeError):
        with atomic.staged_directory(target) as staging:
            (open(os.path.join(staging, "half.txt"), "w")).close()
            raise RuntimeError("fail midway")
    assert os.listdir(tmp_path) == []
    with atomic.staged_directory(target) as staging:
        open(os.path.join(staging, "a.txt"), "w").close()
    assert os.listdir(target) == ["a.txt"]
    with pytest.raises(UsageError, match="already exists"):
        with atomic.staged_directory(target):
            pass
    with pytest.raises(RuntimeError):
        with atomic.staged_directory(target, overwrite=True):
            raise RuntimeError("the new export failed")
    assert os.listdir(target) == ["a.txt"]
    with atomic.staged_directory(target, overwrite=True) as staging:
        open(os.path.join(staging, "b.txt"), "w").close()
    assert os.listdir(target) == ["b.txt"]
    assert sorted(os.listdir(tmp_path)) == ["target"]


def test_check_close_scales_the_tolerance_beyond_one():
    assert verify.check_close("x", [1.0 + 5e-5], [1.0], 1e-4) == pytest.approx(5e-5)
    assert verify.check_close("x", [50.0 + 2e-3], [50.0], 1e-4) == pytest.approx(2e-3, rel=1e-3)
    with pytest.raises(verify.ParityError, match="x: max abs diff 0.002 .* exceeds 0.0001"):
        verify.check_close("x", [0.5 + 2e-3], [0.5], 1e-4)
    with pytest.raises(verify.ParityError, match="max abs diff nan"):
        verify.check_close("x", [np.nan], [0.5], 1e-4)
    with pytest.raises(verify.ParityError, match="max abs diff inf"):
        verify.check_close("x", [[0.5]], [0.5], 1e-4)


def test_importing_export_does_not_import_tensorflow():
    script = ("import sys, export, export.encode, export.manifest, export.atomic; "
              "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.slow  # spawns processes or trains and exports end to end
class TestLiteRT:
    def test_the_default_export_holds_verified_litert_files(self, exported, eval_images):
        from export import litert

        out, manifest, _ = exported
        entries = {a["path"]: a for a in manifest["artifacts"] if a["format"] == "litert"}
        assert sorted(entries) == ["decoder.tflite", "encoder.tflite"]
        for name, entry in entries.items():
            assert entry["weights"] == "float32" and set(entry["parity"]) == {"1", "7"}
            assert max(entry["parity"].values()) <= manifest["parity_tolerance"]
            assert entry["inputs"][0]["shape"][0] is None  # a dynamic batch
        assert manifest_lib.verify_files(out) == []
        codes = litert.runner(os.path.join(out, "encoder.tflite"))(eval_images[:5])
        onnx_codes = _session(os.path.join(out, "encoder.onnx")).run(None, {"image": eval_images[:5]})[0]
        np.testing.assert_allclose(codes, onnx_codes, atol=1e-4)

    @pytest.mark.slow
    def test_int8_files_record_their_measured_cost(self, trained, eval_images, tmp_path):
        model, _ = trained
        manifest = export.export_model(model, str(tmp_path / "e"), eval_images=eval_images[:16],
                                formats=("litert",), int8=True)
        entries = {a["path"]: a for a in manifest["artifacts"]}
        assert sorted(entries) == ["decoder.tflite", "decoder_int8.tflite", "encoder.tflite",
                                   "encoder_int8.tflite"]
        for name in ("encoder_int8.tflite", "decoder_int8.tflite"):
            cost = entries[name]["int8_cost"]
            assert 0 < cost["mean_abs_diff"] <= cost["max_abs_diff"] < 0.1
            assert entries[name]["bytes"] < entries[name.replace("_int8", "")]["bytes"] / 2


# --- links and locks ---------------------------------------------------------------------


def test_atomic_writers_never_write_through_a_link(tmp_path):
    (tmp_path / "outside").write_bytes(b"precious")
    os.symlink(tmp_path / "outside", tmp_path / "codes.npy")
    with pytest.raises(UsageError, match="codes.npy is a symbolic link"):
        atomic.write_file_atomic(str(tmp_path / "codes.npy"), lambda handle: handle.write(b"new"))
    os.makedirs(tmp_path / "real-export")
    os.symlink(tmp_path / "real-export", tmp_path / "export")
    with pytest.raises(UsageError, match="export is a symbolic link; refusing to replace it"):
        atomic.check_destination(str(tmp_path / "export"), overwrite=True)
    assert (tmp_path / "outside").read_bytes() == b"precious" and os.path.isdir(tmp_path / "real-export")


def test_a_model_file_export_holds_the_lock_of_its_output(trained, tmp_path, capsys):
    from training.rundir import hold_lock

    _, run_dir = trained
    model = tmp_path / "model.keras"
    shutil.copy(os.path.join(run_dir, "model.keras"), model)
    out = tmp_path / "X"
    # Another `python -m export model.keras --out X --overwrite` is writing X.
    with hold_lock(str(out), "--out"):
        code, _, stderr = _cli([str(model), "--out", str(out), "--overwrite", "--data", "shapes"], capsys)
    assert code == 2 and stderr.startswith(f"export: error: {out} is in use by process {os.getpid()}")
    assert not os.path.exists(out)


def test_a_run_reached_through_a_link_shares_the_runs_lock(trained, tmp_path, capsys):
    from training.rundir import RunDir

    _, run_dir = trained
    os.symlink(run_dir, tmp_path / "alias")
    with RunDir(run_dir).lock():  # training.fit trains the run
        code, _, stderr = _cli([str(tmp_path / "alias"), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and f"{tmp_path / 'alias'} is in use by process {os.getpid()}" in stderr
    assert not os.path.exists(tmp_path / "out")
