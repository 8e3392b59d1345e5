"""The training CLI end to end on tiny shapes runs (seconds each)."""

import csv
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from PIL import Image

from irmae_keras.staging import STAGING_INFIX
from irmae_keras.staging import TEMP_PREFIX
from tests.helpers import REPO
from tests.helpers import assert_unchanged
from tests.helpers import call_main
from tests.helpers import make_run
from tests.helpers import random_images
from tests.helpers import run_cli
from tests.helpers import snapshot
from tests.helpers import tiny_config
from training import trainer
from training.config import RunConfig
from training.rundir import FIGURE_FILES
from training.rundir import RunDir
from export.errors import RunFailed
from export.errors import UsageError
from export.manifest import MANIFEST

TINY = ["--train-size", "64", "--eval-size", "32", "-n", "4", "--batch-size", "16", "--epochs", "2", "--quiet"]


def _history(run_dir):
    with open(RunDir(run_dir).history_path, newline="") as handle:
        return list(csv.DictReader(handle))


def _fit(args, capsys):
    """`python -m training.fit ARGS` in this process, where TensorFlow is loaded already:
    (exit code, stdout, stderr). A test that needs a process of its own (to kill it)
    starts one; the same command after it runs here."""
    from training import fit

    return call_main(fit.main, args, "training.fit", capsys)


@pytest.fixture(autouse=True)
def _graph_mode(graph_mode):
    """model.fit as users run it; the tiny runs are faster as graphs too."""


class TestRunDirectory:
    def test_complete_run_directory(self, tmp_path):
        exported = []
        result = trainer.train(
            tiny_config(tmp_path, eval_size=32, export=True),
            export_fn=lambda model, config, run, images: exported.append((run.path, len(images))),
        )
        run_dir = str(tmp_path / "run")
        run = RunDir(run_dir)
        assert result.run_dir == run_dir and result.epochs_completed == 2
        for path in (run.config_path, run.model_path, run.history_path, run.spectrum_path, run.status_path,
                     *map(run.figure_path, FIGURE_FILES), run.logs_dir):
            assert os.path.exists(path), path
        assert not os.path.exists(run.backup_dir)  # removed after a normal end
        rows = _history(run_dir)
        assert [row["epoch"] for row in rows] == ["0", "1"]
        assert {"loss", "mse", "val_loss", "effective_rank", "entropy_rank"} <= set(rows[0])
        spectrum = json.loads(open(run.spectrum_path).read())
        assert spectrum["latent_dim"] == 4 and len(spectrum["singular_values"]) == 4
        assert spectrum["effective_rank"] == result.effective_rank and 1 <= result.effective_rank <= 4
        assert spectrum["intrinsic_dimension"] == 7 and spectrum["num_codes"] == 32
        document = json.loads(open(run.config_path).read())
        assert document["config"]["latent_dim"] == 4 and document["versions"]["keras"]
        assert json.loads(open(run.status_path).read())["state"] == "complete"
        model = keras.models.load_model(run.model_path)
        assert model.latent_dim == 4 and model.linear_layers == 2
        assert exported == [(run_dir, 32)]  # the export hook ran once, with the eval images
        assert result.exported

    @pytest.mark.slow
    def test_end_of_run_export_writes_verified_artifacts(self, tmp_path):
        result = trainer.train(tiny_config(tmp_path, export=True, epochs=1))
        run = RunDir(result.run_dir)
        export_dir = run.export_dir
        export_name = os.path.basename(export_dir)
        manifest = json.loads(open(os.path.join(export_dir, MANIFEST)).read())
        for name in ("encoder.onnx", "decoder.onnx", "autoencoder.onnx", "savedmodel"):
            assert os.path.exists(os.path.join(export_dir, name)), name
        assert manifest["dataset"] == "shapes"
        assert manifest["source"]["run_dir"] == os.path.abspath(result.run_dir)
        assert json.loads(open(run.status_path).read())["exported"]
        # A second run of the same command finds the export done and leaves it.
        before = os.path.getmtime(os.path.join(export_dir, MANIFEST))
        trainer.train(tiny_config(tmp_path, export=True, epochs=1))
        assert os.path.getmtime(os.path.join(export_dir, MANIFEST)) == before
        # A finished run whose export (or figures) went missing gets them back, and a
        # leftover staging folder of a killed export is cleaned up.
        import shutil

        shutil.rmtree(export_dir)
        os.remove(run.figure_path("spectrum.png"))
        os.makedirs(os.path.join(result.run_dir, f".{export_name}{STAGING_INFIX}killed"))
        again = trainer.train(tiny_config(tmp_path, export=True, epochs=1))
        assert again.exported and again.resumed_from_epoch == 0
        assert os.path.exists(os.path.join(export_dir, "encoder.onnx"))
        assert os.path.exists(run.figure_path("spectrum.png"))
        assert not [n for n in os.listdir(result.run_dir) if n.startswith(f".{export_name}.")]

    def test_no_export_skips_the_hook(self, tmp_path):
        called = []
        result = trainer.train(tiny_config(tmp_path, epochs=1), export_fn=lambda *a: called.append(a))
        assert called == [] and not result.exported

    def test_the_same_command_on_a_complete_run_does_not_train_again(self, tmp_path, capsys):
        config = tiny_config(tmp_path, epochs=1)
        trainer.train(config)
        model_path = RunDir(tmp_path / "run").model_path
        before = os.path.getmtime(model_path)
        capsys.readouterr()
        result = trainer.train(config)
        assert os.path.getmtime(model_path) == before
        assert "effective rank" in capsys.readouterr().out
        assert len(_history(result.run_dir)) == 1

    def test_other_settings_are_refused_then_overwritten(self, tmp_path):
        trainer.train(tiny_config(tmp_path, epochs=1))
        config_path = RunDir(tmp_path / "run").config_path
        with open(config_path) as handle:
            config_before = handle.read()
        with pytest.raises(UsageError, match=r"holds a run with other settings \(latent_dim differ\); pass --overwrite"):
            trainer.train(tiny_config(tmp_path, epochs=1, latent_dim=5))
        with open(config_path) as handle:
            assert handle.read() == config_before
        result = trainer.train(tiny_config(tmp_path, epochs=1, latent_dim=5), overwrite=True)
        assert len(result.spectrum) == 5

    def test_a_directory_that_is_not_a_run_is_refused(self, tmp_path):
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "notes.txt").write_text("mine")
        with pytest.raises(UsageError, match="holds no run"):
            trainer.train(tiny_config(tmp_path))
        assert os.listdir(tmp_path / "run") == ["notes.txt"]

    def test_bad_data_writes_nothing_and_keeps_an_old_run(self, tmp_path):
        trainer.train(tiny_config(tmp_path, epochs=1))
        before = sorted(os.listdir(tmp_path / "run"))
        with pytest.raises(UsageError, match="missing"):
            trainer.train(tiny_config(tmp_path, dataset="folder", data_dir=str(tmp_path / "missing"),
                                  architecture="shapes"), overwrite=True)
        assert sorted(os.listdir(tmp_path / "run")) == before

    @pytest.mark.parametrize("steps_per_execution", [1, "auto"])
    def test_nan_loss_stops_and_keeps_the_last_good_model(self, tmp_path, monkeypatch, steps_per_execution):
        class PoisonSecondEpoch(keras.callbacks.Callback):
            # Before the epoch's first execution, whether it runs 1 or all 4 steps.
            def on_train_batch_begin(self, batch, logs=None):
                if self.params and self._epoch == 1:
                    for weight in self.model.trainable_weights:
                        weight.assign(np.full(weight.shape, np.nan))

            def on_epoch_begin(self, epoch, logs=None):
                self._epoch = epoch

        original = trainer._callbacks
        monkeypatch.setattr(trainer, "_callbacks", lambda *a: [PoisonSecondEpoch()] + original(*a))
        with pytest.raises(RunFailed, match="training stopped in epoch 2: the loss became NaN"):
            trainer.train(tiny_config(tmp_path, epochs=3, steps_per_execution=steps_per_execution))
        run = RunDir(tmp_path / "run")
        model = keras.models.load_model(run.model_path)
        assert all(np.all(np.isfinite(w)) for w in model.get_weights())
        assert json.loads(open(run.status_path).read())["state"] == "failed"
        # The backup keeps epoch 1, so the same command resumes there, not at epoch 1.
        from training.checkpointing import AtomicBackupAndRestore

        assert AtomicBackupAndRestore.saved_epoch(run.backup_dir) == 1

    def test_a_nan_in_the_first_epoch_says_nothing_was_kept(self, tmp_path, monkeypatch):
        class PoisonFirstBatch(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                for weight in self.model.trainable_weights:
                    weight.assign(np.full(weight.shape, np.nan))

        original = trainer._callbacks
        monkeypatch.setattr(trainer, "_callbacks", lambda *a: [PoisonFirstBatch()] + original(*a))
        with pytest.raises(RunFailed, match="in epoch 1: .*no epoch finished, so nothing was kept"):
            trainer.train(tiny_config(tmp_path, epochs=2))


def test_spectrum_and_eval_mse_cover_every_eval_image(tmp_path, capsys):
    config = RunConfig(dataset="shapes", latent_dim=4).resolved()
    model = trainer.build_model(config)
    images = random_images((32, 32, 3), batch=130)
    run = RunDir(str(tmp_path))
    document = trainer.write_spectrum(model, config, run, images)
    expected = np.mean((np.clip(model.predict(images, verbose=0), 0, 1) - images) ** 2)
    assert document["eval_mse"] == pytest.approx(expected, rel=1e-5)
    assert document["num_codes"] == 130
    assert "on 130 eval images" in capsys.readouterr().out
    saved = json.loads(open(run.spectrum_path).read())
    assert saved["eval_mse"] == document["eval_mse"]
    assert os.path.exists(run.figure_path("reconstructions.png"))


class TestStepsPerExecution:
    @pytest.mark.parametrize(
        "dataset, batch_size, expected",
        # 64 GFLOP per call: shapes 80 and mnist 147 MFLOP per sample, celeb_a 12.4 GFLOP.
        [("shapes", 32, 16), ("mnist", 32, 13), ("shapes", 256, 3), ("mnist", 256, 1), ("celeb_a", 32, 1)],
    )
    def test_auto_groups_small_steps_only(self, dataset, batch_size, expected):
        config = RunConfig(dataset=dataset, batch_size=batch_size).resolved()
        assert trainer.steps_per_execution(config, trainer.build_model(config)) == expected

    @pytest.mark.parametrize("setting, steps_per_epoch, expected", [
        (8, None, 8), (8, 12, 6), (8, 7, 7), (16, 5, 5), ("auto", 10, 10), ("auto", 17, 1), (1, 12, 1),
    ])
    def test_an_epoch_of_given_steps_is_never_overrun(self, setting, steps_per_epoch, expected):
        config = RunConfig(steps_per_execution=setting, steps_per_epoch=steps_per_epoch).resolved()
        model = trainer.build_model(config)
        assert trainer.steps_per_execution(config, model) == expected
        assert model.steps_per_execution == expected

    @pytest.mark.parametrize("steps_per_epoch", [None, 3])
    def test_grouped_steps_train_exactly_as_single_steps(self, tmp_path, steps_per_epoch):
        # 80 images at batch 16: 5 steps per epoch, the last call of a group of 4 is partial.
        runs = []
        for name, setting in (("single", 1), ("grouped", 4)):
            result = trainer.train(tiny_config(tmp_path, run_name=name, train_size=80, epochs=2,
                                           steps_per_epoch=steps_per_epoch, steps_per_execution=setting))
            model = keras.models.load_model(RunDir(result.run_dir).model_path)
            runs.append((_history(result.run_dir), model))
        (history_one, model_one), (history_two, model_two) = runs
        assert int(model_two.optimizer.iterations) == int(model_one.optimizer.iterations) == 2 * (steps_per_epoch or 5)
        for row_one, row_two in zip(history_one, history_two):
            np.testing.assert_allclose(float(row_two["loss"]), float(row_one["loss"]), rtol=1e-5)
        for a, b in zip(model_one.get_weights(), model_two.get_weights()):
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)

    def test_one_step_per_call_across_replicas(self, tmp_path, mirrored_strategy):
        config = RunConfig(strategy="mirrored").resolved()
        with mirrored_strategy.scope():
            assert trainer.steps_per_execution(config, trainer.build_model(config)) == 1
        with pytest.raises(UsageError, match="--steps-per-execution 4 needs a single replica"):
            trainer.train(tiny_config(tmp_path, strategy="mirrored", steps_per_execution=4))
        assert not os.path.exists(tmp_path / "run")

    def test_changing_it_resumes_the_same_run(self, tmp_path):
        trainer.train(tiny_config(tmp_path, epochs=1, steps_per_execution=1))
        result = trainer.train(tiny_config(tmp_path, epochs=1, steps_per_execution=4))
        assert result.epochs_completed == 1


class TestStrategies:
    def test_mirrored_run_matches_a_single_replica_run(self, tmp_path):
        # The training set is one global batch: tf.distribute's dataset cloning
        # reorders a seeded shuffle, but not which images form a batch.
        settings = dict(epochs=2, train_size=16, batch_size=16, lr=1e-3)
        one = trainer.train(tiny_config(tmp_path, run_name="one", **settings))
        two = trainer.train(tiny_config(tmp_path, run_name="two", strategy="mirrored", **settings))
        assert trainer.make_strategy("mirrored").num_replicas_in_sync == 2
        for row_one, row_two in zip(_history(one.run_dir), _history(two.run_dir)):
            np.testing.assert_allclose(float(row_two["loss"]), float(row_one["loss"]), rtol=1e-5)
        first = keras.models.load_model(RunDir(one.run_dir).model_path).get_weights()
        second = keras.models.load_model(RunDir(two.run_dir).model_path).get_weights()
        for a, b in zip(first, second):
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)

    def test_batch_not_divisible_by_replicas(self, tmp_path):
        with pytest.raises(UsageError, match="--batch-size 15 is not divisible by the 2 replicas"):
            trainer.train(tiny_config(tmp_path, strategy="mirrored", batch_size=15))
        assert not os.path.exists(tmp_path / "run")

    def test_multi_worker_without_tf_config(self, tmp_path, monkeypatch):
        monkeypatch.delenv("TF_CONFIG", raising=False)
        with pytest.raises(UsageError, match="needs the TF_CONFIG environment variable"):
            trainer.train(tiny_config(tmp_path, strategy="multi_worker"))

    @pytest.mark.slow  # spawns processes or trains and exports end to end
    def test_mixed_precision_and_xla_run_and_restore_the_policy(self, tmp_path):
        result = trainer.train(tiny_config(tmp_path, epochs=1, mixed_precision=True, jit_compile=True))
        assert keras.config.dtype_policy().name == "float32"
        assert np.isfinite(result.eval_mse)
        model = keras.models.load_model(RunDir(result.run_dir).model_path)
        assert model.linear_stack.dtype_policy.compute_dtype == "float32"


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_multi_worker_training_on_two_local_processes(tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    args = TINY + ["--strategy", "multi_worker", "--output-dir", str(tmp_path / "out"),
                   "--run-name", "mw", "--no-export", "--steps-per-epoch", "2"]
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    processes = []
    for index in range(2):
        env = dict(environment, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "training.fit", *args], cwd=REPO, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        ))
    outputs = [p.communicate(timeout=400)[0] for p in processes]
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-3000:]
    run = RunDir(tmp_path / "out" / "mw")
    # the run, and its lock file beside it (hidden)
    assert sorted(os.listdir(tmp_path / "out")) == [os.path.basename(run.lock_path), "mw"]
    for path in (run.config_path, run.model_path, run.history_path, run.spectrum_path, run.figures_dir,
                 run.logs_dir):
        assert os.path.exists(path), path
    assert len(_history(run.path)) == 2
    assert json.loads(open(run.status_path).read())["state"] == "complete"


@pytest.mark.slow
def test_sigkill_then_the_same_command_resumes_and_finishes(tmp_path, capsys, warm_interpreter):
    args = ["--train-size", "256", "--eval-size", "32", "-n", "4", "--batch-size", "16",
            "--epochs", "6", "--quiet", "--no-export", "--output-dir", str(tmp_path), "--run-name", "r"]
    pid = warm_interpreter.start(0, "training.fit", *args)  # a process of its own, imports done
    run = RunDir(tmp_path / "r")
    metadata = os.path.join(run.backup_dir, "training_metadata.json")
    deadline = time.time() + 300
    while time.time() < deadline:
        if os.path.exists(metadata) and json.loads(open(metadata).read())["epoch"] >= 2:
            break
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    assert warm_interpreter.finish().returncode == -signal.SIGKILL
    killed_at = json.loads(open(metadata).read())["epoch"]
    assert 2 <= killed_at < 6
    keras.models.load_model(run.model_path)  # never half-written

    code, out, err = _fit(args, capsys)
    assert code == 0, err[-3000:]
    assert f"resuming {tmp_path / 'r'} after epoch {killed_at} of 6" in out
    assert [row["epoch"] for row in _history(str(tmp_path / "r"))] == [str(e) for e in range(6)]
    assert json.loads(open(run.status_path).read())["state"] == "complete"
    assert not [n for n in os.listdir(tmp_path / "r") if n.startswith(TEMP_PREFIX)]


class TestCommandLine:
    def test_bad_flag_is_one_line_exit_2_and_writes_nothing(self, tmp_path, capsys):
        code, _, err = _fit(["--model", "vae", "-l", "4", "--output-dir", str(tmp_path)], capsys)
        assert code == 2
        assert err.strip().splitlines() == [
            "training.fit: error: --model vae has no linear layers: -l/--linear-layers must be 0, "
            "got 4 (use --model irmae for a linear stack)."
        ]
        assert os.listdir(tmp_path) == []

    def test_unknown_flag(self, tmp_path, capsys):
        code, _, err = _fit(["--frobnicate"], capsys)
        assert code == 2
        assert len(err.strip().splitlines()) == 1
        assert "unrecognized arguments: --frobnicate" in err

    @pytest.mark.slow
    def test_cli_trains_and_prints_the_effective_rank(self, tmp_path, capsys):
        code, out, err = _fit(TINY + ["--output-dir", str(tmp_path), "--no-export"], capsys)
        assert code == 0, err[-3000:]
        assert "effective rank:" in out
        assert f"run directory: {tmp_path / 'shapes-irmae-l2-n4-s0'}" in out

    @pytest.mark.slow
    def test_diverging_cli_run_exits_1_with_one_line(self, tmp_path, capsys):
        code, _, err = _fit(TINY + ["--output-dir", str(tmp_path), "--no-export", "--optimizer", "sgd", "--lr", "1e12"],
                            capsys)
        assert code == 1, err[-2000:]
        last = err.strip().splitlines()[-1]
        assert last.startswith("training.fit: error: training stopped in epoch 1: the loss became NaN")


class TestSpectrumSummary:
    def test_long_spectra_are_cut_and_a_small_eval_set_is_named(self, tmp_path, capsys):
        config = RunConfig(dataset="shapes", latent_dim=40).resolved()
        model = trainer.build_model(config)
        document = trainer.write_spectrum(model, config, RunDir(str(tmp_path)), random_images((32, 32, 3), batch=20))
        out = capsys.readouterr().out
        values_line = next(line for line in out.splitlines() if line.startswith("normalised singular values"))
        assert len(values_line.split(":")[1].split("...")[0].split()) == trainer.PRINTED_SINGULAR_VALUES
        assert "(8 more in" in values_line
        assert "note: 20 eval codes for a latent size of 40: the rank cannot exceed 19" in out
        assert len(document["singular_values"]) == 40

    def test_grey_reconstructions_are_said_plainly(self):
        images = np.zeros((4, 8, 8, 3), "float32")
        images[:, 2:6, 2:6, 0] = 1.0  # red squares
        grey = np.repeat(images.mean(axis=-1, keepdims=True), 3, axis=-1)
        notes = trainer.spectrum_notes(np.zeros((4, 2)), {"colour_kept": 0.0}, "shapes")
        assert any("nearly grey" in note and "shapes' 7 factors" in note for note in notes)
        # Another dataset's run is not told about the shapes' factors.
        (note,) = trainer.spectrum_notes(np.zeros((4, 2)), {"colour_kept": 0.0}, "folder")
        assert "nearly grey" in note and "shapes" not in note and "--epochs" in note
        assert trainer.spectrum_notes(np.zeros((4, 2)), {"colour_kept": 1.0}) == []
        from irmae_keras import analysis

        assert analysis.colour_kept(grey, images) == 0.0


# Committed results (docs/results/), the README and users' run directories are keyed by
# these names: a change of naming must leave every one of them as it is.
DEFAULT_NAMES = [
    ({}, "shapes-irmae-l2-n32-s0"),
    ({"model": "ae"}, "shapes-ae-l0-n32-s0"),
    ({"model": "vae", "seed": 2}, "shapes-vae-l0-n32-s2"),
    ({"train_size": 20000, "eval_size": 2000, "epochs": 10}, "shapes-irmae-l2-n32-s0-train20000-eval2000-ep10"),
    ({"dataset": "digits"}, "digits-irmae-l8-n128-s0"),
    ({"dataset": "mnist", "model": "ae_l2"}, "mnist-ae_l2-l0-n128-s0"),
    ({"dataset": "celeb_a", "latent_dim": 64, "linear_layers": 4}, "celeb_a-irmae-l4-n64-s0"),
    ({"optimizer": "sgd", "lr": 0.001, "batch_size": 64, "steps_per_epoch": 10},
     "shapes-irmae-l2-n32-s0-spe10-b64-lr0.001-sgd"),
    ({"optimizer": "adam-keras", "lr": 1e12}, "shapes-irmae-l2-n32-s0-lr1e12-adam-keras"),
    ({"lr": 3e-05, "epochs": 1}, "shapes-irmae-l2-n32-s0-ep1-lr3e-05"),
    # Model settings are not in a default name (the experiments' names carry them).
    ({"init_scale": 0.3, "tying": "shared", "freeze_stack": True}, "shapes-irmae-l2-n32-s0"),
]
EXPERIMENT_NAMES = [
    (("paper", "shapes", "irmae", 0, {}), "shapes-irmae-l2-n32-s0-paper"),
    (("paper", "shapes", "ae", 0, {}), "shapes-ae-l0-n32-s0-paper"),
    (("cpu", "shapes", "irmae", 0, {}), "shapes-irmae-l2-n32-s0-cpu"),
    (("cpu", "shapes", "ae", 1, {}), "shapes-ae-l0-n32-s1-cpu"),
    (("cpu", "shapes", "vae", 0, {"latent_dim": 4}), "shapes-vae-l0-n4-s0-cpu"),
    (("cpu", "digits", "irmae", 0, {}), "digits-irmae-l8-n128-s0-cpu"),
    (("cpu", "shapes", "irmae", 0, {"init_scale": 0.3}), "shapes-irmae-l2-n32-init0.3-s0-cpu"),
    (("cpu", "shapes", "irmae", 0, {"init_scale": 3.0}), "shapes-irmae-l2-n32-init3-s0-cpu"),
    (("cpu", "shapes", "irmae", 0, {"stack_initializer": "glorot_uniform"}),
     "shapes-irmae-l2-n32-glorot_uniform-s0-cpu"),
    (("cpu", "shapes", "irmae", 0, {"tying": "transpose"}), "shapes-irmae-l2-n32-transpose-s0-cpu"),
    (("cpu", "shapes", "irmae", 0, {"freeze_stack": True}), "shapes-irmae-l2-n32-frozen-s0-cpu"),
    (("cpu", "shapes", "irmae", 0, {"stack_activation": "relu"}), "shapes-irmae-l2-n32-relu-s0-cpu"),
    (("cpu", "shapes", "irmae", 0, {"optimizer": "sgd", "lr": 1.0}), "shapes-irmae-l2-n32-sgd1-s0-cpu"),
    (("cpu", "shapes", "irmae", 0, {"optimizer": "adam", "lr": 0.003}), "shapes-irmae-l2-n32-adam0.003-s0-cpu"),
    (("cpu", "shapes", "irmae", 0, {"optimizer": "rmsprop", "lr": 3e-05, "size": "sweep"}),
     "shapes-irmae-l2-n32-rmsprop3e-05-s0-epochs3-trainsize5000-cpu"),
    (("cpu", "shapes", "ae", 0, {"size": "long_run"}), "shapes-ae-l0-n32-s0-epochs20-trainsize50000-cpu"),
    (("cpu", "shapes", "irmae", 1, {"stack_initializer": "orthogonal", "tying": "shared", "freeze_stack": True,
                                    "stack_activation": "tanh", "optimizer": "adam-keras", "linear_layers": 4}),
     "shapes-irmae-l4-n32-orthogonal-shared-frozen-tanh-adam-keras0.0001-s1-cpu"),
    (("smoke", "shapes", "irmae", 0, {}), "shapes-irmae-l2-n8-s0-smoke"),
    (("smoke", "digits", "ae", 0, {}), "digits-ae-l0-n16-s0-smoke"),
]


class TestRunNames:
    @pytest.mark.parametrize("settings, name", DEFAULT_NAMES)
    def test_default_names_are_pinned(self, settings, name):
        assert RunConfig(**settings).resolved().run_name == name

    @pytest.mark.parametrize("trial, name", EXPERIMENT_NAMES)
    def test_experiment_names_are_pinned(self, trial, name):
        from training.experiments import budgets

        budget, dataset, model, seed, settings = trial
        settings = dict(settings)
        if "size" in settings:
            settings["size"] = getattr(budgets.BUDGETS[budget], settings["size"])
        assert budgets.make_config(budgets.BUDGETS[budget], dataset, model, seed=seed, **settings).run_name == name

    def test_the_two_kinds_share_their_stem_and_seed(self):
        config = RunConfig(model="ae", latent_dim=7, seed=3).resolved()
        assert config.default_run_name() == "shapes-ae-l0-n7-s3"
        assert config.experiment_run_name("cpu") == "shapes-ae-l0-n7-s3-cpu"
        assert config.experiment_run_name("cpu", {"train_size": 10, "epochs": 1}) == "shapes-ae-l0-n7-s3-epochs1-trainsize10-cpu"

    def test_the_quickstart_and_the_paper_run_get_different_names(self):
        quickstart = RunConfig(train_size=20000, eval_size=2000, epochs=10).resolved().run_name
        paper = RunConfig().resolved().run_name
        assert paper == "shapes-irmae-l2-n32-s0"
        assert quickstart == "shapes-irmae-l2-n32-s0-train20000-eval2000-ep10"

    def test_a_run_name_with_odd_characters_builds_a_model(self):
        config = RunConfig(lr=1e12, optimizer="sgd", latent_dim=4).resolved()
        assert "+" not in config.run_name
        trainer.build_model(dataclasses.replace(config, run_name="a+b c"))


class TestFolderSteps:
    def test_a_folder_epoch_knows_its_steps(self, tmp_path):
        from training import data

        rng = np.random.default_rng(0)
        for i in range(30):
            Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
        dataset = data.load_dataset("folder", "train", 8, data_dir=str(tmp_path), image_shape=(32, 32, 3))
        batches = sum(1 for _ in dataset)
        assert int(dataset.cardinality()) == batches  # Keras' progress bar and steps match the data


def _finished_run(tmp_path, **overrides):
    """A run directory as training.fit leaves it, without training (the model is a stand-in:
    these tests must stop before it is read): (its resolved config, its RunDir)."""
    run = make_run(tmp_path / "run", model_bytes=b"the old model", epochs=1, **overrides)
    run.write_status(state="complete", exported=False)
    return tiny_config(tmp_path, epochs=1, **overrides).resolved(), run


def _image_folder(path, count, size=(20, 20)):
    os.makedirs(path, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(os.path.join(path, f"{i}.png"))
    return str(path)


class TestCheckedBeforeTheOldRunGoes:
    """--overwrite deletes the old run only once the new one has been built (settings,
    model, data, export's needs); config.json is written only when the run starts."""

    def test_a_mistyped_initializer_with_overwrite_keeps_the_old_run(self, tmp_path):
        config, run = _finished_run(tmp_path)
        before = snapshot(run.path)
        with pytest.raises(UsageError, match="--stack-initializer 'glorot_unifrom' is not a Keras initializer"):
            trainer.train(dataclasses.replace(config, stack_initializer="glorot_unifrom", run_name="run"),
                          overwrite=True)
        assert_unchanged(run.path, before)

    def test_a_model_that_cannot_be_built_deletes_and_writes_nothing(self, tmp_path, monkeypatch):
        import irmae_keras

        def unbuildable(*args, **kwargs):
            raise ValueError("no such layer")

        monkeypatch.setattr(irmae_keras, "build_autoencoder", unbuildable)
        config, run = _finished_run(tmp_path)
        before = snapshot(run.path)
        with pytest.raises(UsageError, match=r"cannot build the irmae model of shapes .*no such layer"):
            trainer.train(dataclasses.replace(config, latent_dim=5), overwrite=True)
        assert_unchanged(run.path, before)
        # A new run: no config.json is left to refuse the corrected command.
        with pytest.raises(UsageError, match="cannot build"):
            trainer.train(tiny_config(tmp_path, run_name="new"))
        assert not os.path.exists(RunDir(tmp_path / "new").config_path)

    def test_a_bad_activation_on_a_new_run_leaves_nothing_to_refuse_the_fix(self, tmp_path):
        with pytest.raises(UsageError, match="--stack-activation 'relux' is not a Keras activation"):
            trainer.train(tiny_config(tmp_path, stack_activation="relux", epochs=1))
        assert not os.path.exists(tmp_path / "run")
        fixed = tiny_config(tmp_path, stack_activation="relu", epochs=1).resolved()
        assert trainer.plan(RunDir.of(fixed), fixed, False) == "new"

    def test_a_run_that_never_finished_an_epoch_is_replaced(self, tmp_path, capsys):
        # What the old order left: config.json of settings that failed to build a model.
        fixed = tiny_config(tmp_path, epochs=1, stack_activation="relu").resolved()
        os.makedirs(tmp_path / "run")
        RunDir.of(fixed).write_config(dataclasses.replace(fixed, stack_activation="relux"))
        assert trainer.plan(RunDir.of(fixed), fixed, False) == "replace"
        assert "(stack_activation) that never finished an epoch; it is replaced" in capsys.readouterr().out
        # One finished epoch (a model file) is a run: then it takes --overwrite.
        with open(RunDir.of(fixed).model_path, "wb") as handle:
            handle.write(b"epoch 1")
        with pytest.raises(UsageError, match=r"other settings \(stack_activation differ\); pass --overwrite"):
            trainer.plan(RunDir.of(fixed), fixed, False)

    def test_a_run_reached_through_a_link_is_replaced_where_it_is(self, tmp_path):
        config, run = _finished_run(tmp_path / "real")
        os.makedirs(tmp_path / "out")
        os.symlink(run.path, str(tmp_path / "out" / "run"))
        result = trainer.train(tiny_config(tmp_path / "out", epochs=1, latent_dim=5), overwrite=True)
        assert os.path.islink(tmp_path / "out" / "run") and len(result.spectrum) == 5
        assert RunDir(run.path).read_config().latent_dim == 5

    def test_an_eval_split_too_small_to_export_fails_before_the_first_step(self, tmp_path):
        from training import data

        folder = _image_folder(tmp_path / "few", 30)
        eval_files = len(data.split_folder_files([f"{i}.png" for i in range(30)])["eval"])
        assert 2 <= eval_files < 7  # enough for the spectrum, too few for the export's checks
        config = tiny_config(tmp_path, dataset="folder", data_dir=folder, architecture="shapes",
                             eval_size=None, export=True)
        with pytest.raises(UsageError, match=rf"has {eval_files} image\(s\); the export .* --no-export"):
            trainer.train(config)
        assert not os.path.exists(tmp_path / "run")

    def test_seed_minus_one_is_one_line_exit_2(self, tmp_path, capsys):
        code, _, err = _fit([*TINY, "--seed", "-1", "--output-dir", str(tmp_path)], capsys)
        assert code == 2
        assert err == "training.fit: error: --seed must be an integer >= 0; got -1.\n"
        assert os.listdir(tmp_path) == []


class TestAnotherFolderIsAnotherRun:
    def test_a_run_of_one_folder_refuses_another(self, tmp_path):
        first, second = _image_folder(tmp_path / "myimages", 1), _image_folder(tmp_path / "myimages2", 1)
        config, run = _finished_run(tmp_path, dataset="folder", data_dir=first, architecture="shapes")
        before = snapshot(run.path)
        with pytest.raises(UsageError, match=r"holds a run with other settings \(data_dir differ\)"):
            trainer.train(dataclasses.replace(config, data_dir=second))
        assert_unchanged(run.path, before)

    def test_by_default_each_folder_trains_its_own_run(self, tmp_path):
        first, second = _image_folder(tmp_path / "myimages", 1), _image_folder(tmp_path / "myimages2", 1)
        names = {RunConfig(dataset="folder", data_dir=folder, architecture="shapes", output_dir=str(tmp_path))
                 .resolved().run_name for folder in (first, second)}
        assert len(names) == 2 and all("myimages" in name for name in names)

    def test_the_same_folder_by_another_path_resumes(self, tmp_path, monkeypatch):
        folder = _image_folder(tmp_path / "pics", 1)
        monkeypatch.chdir(tmp_path)
        existing = tiny_config(tmp_path, dataset="folder", data_dir="pics", architecture="shapes").resolved()
        again = dataclasses.replace(existing, data_dir=folder + "/")
        assert trainer.plan(RunDir(str(tmp_path / "run")), again, False) == "new"
        os.makedirs(tmp_path / "run")
        RunDir(str(tmp_path / "run")).write_config(existing)
        assert trainer.plan(RunDir(str(tmp_path / "run")), again.resolved(), False) == "resume"


class TestInterruptionsAreOneLine:
    @pytest.mark.slow
    def test_ctrl_c_is_one_line_exit_130_and_the_same_command_resumes(self, tmp_path, capsys, warm_interpreter):
        # The signal goes within 10 ms of the first epoch's backup: seven epochs (each
        # with its rank, its backup and its history row) and the end of the run (the
        # spectrum, figures, the model) are left for it to land in on a fast idle host.
        epochs = 8
        args = ["--train-size", "128", "--eval-size", "32", "-n", "4", "--batch-size", "16",
                "--epochs", str(epochs), "--quiet", "--no-export", "--output-dir", str(tmp_path), "--run-name", "r"]
        # A process of its own (the warm interpreter's child takes SIGINT as a terminal's
        # Ctrl-C, even where the suite was started in the background with SIGINT ignored).
        pid = warm_interpreter.start(0, "training.fit", *args)
        metadata = os.path.join(RunDir(tmp_path / "r").backup_dir, "training_metadata.json")
        deadline = time.time() + 300
        while time.time() < deadline and not os.path.exists(metadata):
            time.sleep(0.01)
        os.kill(pid, signal.SIGINT)
        result = warm_interpreter.finish(timeout=120)
        stderr = result.stderr
        assert result.returncode == 130, stderr[-2000:]
        assert "Traceback" not in stderr
        assert stderr.strip().splitlines()[-1] == (
            "training.fit: interrupted: run the same command again to resume (finished work is kept).")
        code, _, err = _fit(args, capsys)
        assert code == 0, err[-2000:]
        assert [row["epoch"] for row in _history(str(tmp_path / "r"))] == [str(e) for e in range(epochs)]

    @pytest.mark.slow
    def test_a_file_size_limit_is_one_line_and_leaves_no_partial_file(self, tmp_path):
        import resource

        def limit():  # config, status and history fit; the model file (megabytes) does not
            resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

        result = run_cli("training.fit", *TINY, "--epochs", "1", "--no-export",
                         "--output-dir", tmp_path, "--run-name", "r", preexec_fn=limit)
        assert result.returncode == 2, result.stderr[-3000:]
        assert "Traceback" not in result.stderr
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("training.fit: error: file-size limit reached (ulimit -f)") and "resume" in last
        assert not os.path.exists(RunDir(tmp_path / "r").model_path)
        assert not [n for n in os.listdir(tmp_path / "r") if n.startswith(TEMP_PREFIX)]
