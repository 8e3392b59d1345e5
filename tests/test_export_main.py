"""export/__main__.py: `python -m export` prints a summary; a bad input, an option out of
range, an output in use or already there is one line on stderr, exit code 2, nothing written."""

import os
import shutil

import keras
import numpy as np
import pytest

import irmae_keras
from export import verify
from export.__main__ import main as export_main
from tests.helpers import EXPORT_EVAL_IMAGES
from tests.helpers import EXPORT_FULL_FILES
from tests.helpers import call_main
from tests.helpers import run_cli
from training import rundir
from training.rundir import RunDir
from training.rundir import hold_lock

LATENT = 4


def _export(argv, capsys):
    """`python -m export ARGV` in-process: (exit code, out, err)."""
    return call_main(export_main, argv, "export", capsys)


@pytest.mark.slow
def test_cli_prints_a_summary(tiny_export, tiny_export_rank):
    out, manifest, stdout = tiny_export
    assert f"to {out}" in stdout
    for name in ("savedmodel", *EXPORT_FULL_FILES, f"encoder_rank{tiny_export_rank}.onnx"):
        assert name in stdout
    assert f"effective rank (1 % threshold) on {EXPORT_EVAL_IMAGES} eval images: " \
           f"{manifest['effective_rank']} of {LATENT}" in stdout
    assert f"compact rank {tiny_export_rank}: MSE" in stdout


def test_an_existing_output_is_refused_without_overwrite(tiny_export_source, tmp_path, capsys):
    _, run_dir = tiny_export_source
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, stderr = _export([run_dir, "--out", str(out)], capsys)
    assert code == 2
    assert stderr == f"export: error: {out} already exists; pass --overwrite to replace it.\n"
    assert os.listdir(out) == ["keep.txt"]


# --- bad input: one line on stderr, exit 2, nothing written -----------------------------


def _bad_input(path, capsys, *extra):
    out = os.path.join(os.path.dirname(str(path)), "never")
    code, stdout, stderr = _export([str(path), "--out", out, "--data", "shapes", *extra], capsys)
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
    assert f"is not a run directory: it has no {rundir.MODEL_FILE}" in stderr


def test_a_corrupt_model_file_is_rejected(tmp_path, capsys):
    (tmp_path / "model.keras").write_bytes(np.random.default_rng(0).bytes(4096))
    stderr = _bad_input(tmp_path / "model.keras", capsys)
    assert "not a .keras archive" in stderr


def test_a_model_with_nan_weights_is_rejected(tiny_export_source, tmp_path, capsys):
    model, _ = tiny_export_source
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
def test_a_bad_rank_is_rejected(tiny_export_source, rank, message, capsys):
    _, run_dir = tiny_export_source
    stderr = _bad_input(RunDir(run_dir).model_path, capsys, "--rank", rank)
    assert message in stderr


@pytest.mark.parametrize("argv, message", [
    (["--opset", "12"], "--opset must be an integer from 13 to 18"),
    (["--opset", "x"], "argument --opset: invalid int value: 'x'"),
    (["--eval-size", "3"], "--eval-size must be an integer >= 7"),
    (["--format", "onnx,tflite"], "--format takes a comma-separated list of savedmodel, onnx, litert; got onnx,tflite."),
])
def test_bad_options_are_rejected(tiny_export_source, argv, message, capsys):
    _, run_dir = tiny_export_source
    stderr = _bad_input(RunDir(run_dir).model_path, capsys, *argv)
    assert message in stderr


def test_a_bare_model_file_needs_a_dataset(tiny_export_source, tmp_path, capsys):
    model, _ = tiny_export_source
    model.save(tmp_path / "bare.keras")
    code, _, stderr = _export([str(tmp_path / "bare.keras")], capsys)
    assert code == 2
    assert "has no run configuration beside it: pass --data DATASET" in stderr
    assert sorted(os.listdir(tmp_path)) == ["bare.keras"]


@pytest.mark.slow  # spawns processes or trains and exports end to end
def test_the_cli_in_a_subprocess_prints_one_line_and_exits_2(tmp_path):
    result = run_cli("export", tmp_path / "missing", timeout=300)
    assert result.returncode == 2
    assert result.stderr == (
        f"export: error: {tmp_path / 'missing'} does not exist; pass a run directory or a "
        "model .keras file.\n")
    assert result.stdout == ""


def test_help_documents_the_artifacts_and_defaults():
    result = run_cli("export", "--help", timeout=120)
    assert result.returncode == 0
    text_of_help = " ".join(result.stdout.split())  # argparse wraps to the terminal width
    for text in ("encoder_rankK.onnx", "manifest.json", "(default: full)", "(default: 17)",
                 "(default: 1000)", "--overwrite", "parity", "exit code 2"):
        assert text in text_of_help


@pytest.mark.slow
def test_failed_parity_check_fails_the_export_and_leaves_nothing(
        tiny_export_source, monkeypatch, tmp_path, capsys):
    _, run_dir = tiny_export_source
    monkeypatch.setattr(verify, "PARITY_TOLERANCE", 0.0)
    out = tmp_path / "exports" / "new"
    code, stdout, stderr = _export([run_dir, "--out", str(out), "--eval-size", "8"], capsys)
    assert code == 2
    assert len(stderr.strip().splitlines()) == 1
    assert "max abs diff" in stderr and "exceeds 0" in stderr and "not written" in stderr
    assert not out.exists() and os.listdir(out.parent) == []
    assert stdout == ""


# --- locks -------------------------------------------------------------------------------


def test_a_model_file_export_holds_the_lock_of_its_output(tiny_export_source, tmp_path, capsys):
    _, run_dir = tiny_export_source
    model = tmp_path / "model.keras"
    shutil.copy(RunDir(run_dir).model_path, model)
    out = tmp_path / "X"
    # Another `python -m export model.keras --out X --overwrite` is writing X.
    with hold_lock(str(out), "--out"):
        code, _, stderr = _export([model, "--out", out, "--overwrite", "--data", "shapes"], capsys)
    assert code == 2 and stderr.startswith(f"export: error: {out} is in use by process {os.getpid()}")
    assert not os.path.exists(out)


def test_a_run_reached_through_a_link_shares_the_runs_lock(tiny_export_source, tmp_path, capsys):
    _, run_dir = tiny_export_source
    os.symlink(run_dir, tmp_path / "alias")
    with RunDir(run_dir).lock():  # training.fit trains the run
        code, _, stderr = _export([str(tmp_path / "alias"), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and f"{tmp_path / 'alias'} is in use by process {os.getpid()}" in stderr
    assert not os.path.exists(tmp_path / "out")
