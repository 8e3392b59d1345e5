"""RunDir and the recovery rules: nothing a user has is ever lost.

Each case checks the one-line message, the exit code where a CLI is involved, and that
files that existed before are byte-identical afterwards. The fault-injection tests kill
real processes at every rename (`tests/killing.py`) and check that the same command then
finishes.
"""

import json
import os
import re
import signal

import keras
import numpy as np
import pytest
from PIL import Image

from export.atomic import check_writable_dir
from export.errors import DataError
from export.errors import UsageError
from irmae_keras.staging import READY_INFIX
from irmae_keras.staging import RETIRED_INFIX
from irmae_keras.staging import STAGING_INFIX
from irmae_keras.staging import recover_staged_directory
from tests.helpers import assert_unchanged
from tests.helpers import call_main
from tests.helpers import make_run
from tests.helpers import snapshot
from tests.helpers import tiny_config
from tests.helpers import within_seconds
from training import rundir
from training import trainer
from training.config import RunConfig
from training.rundir import RunDir

TINY = ["--train-size", "64", "--eval-size", "32", "-n", "4", "--batch-size", "16", "--quiet"]


def _tiny_run_config(tmp_path):
    """The config of a tiny one-epoch run at tmp_path/run, resolved."""
    return tiny_config(tmp_path, eval_size=32, epochs=1).resolved()


def _fake_finished_run(tmp_path, model_bytes=b"not a zip"):
    run = make_run(tmp_path / "run", model_bytes=model_bytes, eval_size=32, epochs=1)
    run.write_status(state="complete", exported=False)
    return _tiny_run_config(tmp_path), run


class TestLock:
    def test_a_second_holder_gets_one_line_naming_the_first(self, tmp_path):
        run = RunDir(str(tmp_path / "run"))
        with run.lock():
            with pytest.raises(UsageError, match=rf"{run.path} is in use by process {os.getpid()} on "):
                with run.lock():
                    pass
        with run.lock():  # released at the end of the block
            pass

    def test_the_lock_lives_beside_the_run_so_a_swap_keeps_it(self, tmp_path):
        run = RunDir(str(tmp_path / "run"))
        assert os.path.dirname(run.lock_path) == str(tmp_path)

    @pytest.mark.slow
    def test_fit_on_a_locked_run_exits_2_and_writes_nothing(self, tmp_path, warm_interpreter):
        run = RunDir(str(tmp_path / "run"))
        with run.lock():  # held by this process; the run is another one
            result = warm_interpreter.cli("training.fit", *TINY, "--epochs", "1", "--output-dir", tmp_path,
                                          "--run-name", "run", "--no-export")
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1 and "is in use by process" in result.stderr
        assert not os.path.exists(run.path)


class TestRecovery:
    def _folder(self, path, marker):
        os.makedirs(path)
        with open(os.path.join(path, "manifest.json"), "w") as handle:
            handle.write(marker)
        return path

    def _content(self, path):
        with open(os.path.join(path, "manifest.json")) as handle:
            return handle.read()

    def test_an_incomplete_staging_folder_is_deleted_and_the_old_one_kept(self, tmp_path):
        target = self._folder(str(tmp_path / "export"), "old")
        self._folder(str(tmp_path / f".export{STAGING_INFIX}abc"), "half")
        recover_staged_directory(target)
        assert os.listdir(tmp_path) == ["export"] and self._content(target) == "old"

    @pytest.mark.parametrize("old_present", [True, False])
    def test_a_ready_folder_replaces_the_old_one(self, tmp_path, old_present):
        target = str(tmp_path / "export")
        if old_present:
            self._folder(target, "old")
        self._folder(str(tmp_path / f".export{READY_INFIX}abc"), "new")
        recover_staged_directory(target)
        assert os.listdir(tmp_path) == ["export"] and self._content(target) == "new"

    def test_a_retired_folder_is_put_back_when_the_swap_never_happened(self, tmp_path):
        target = str(tmp_path / "export")
        self._folder(str(tmp_path / f".export{RETIRED_INFIX}abc"), "old")
        recover_staged_directory(target)
        assert os.listdir(tmp_path) == ["export"] and self._content(target) == "old"

    def test_a_retired_folder_is_deleted_after_a_finished_swap(self, tmp_path):
        target = self._folder(str(tmp_path / "export"), "new")
        self._folder(str(tmp_path / f".export{RETIRED_INFIX}abc"), "old")
        recover_staged_directory(target)
        assert os.listdir(tmp_path) == ["export"] and self._content(target) == "new"


class TestOutputChecks:
    def test_a_file_is_not_an_output_directory(self, tmp_path):
        (tmp_path / "f").write_text("x")
        with pytest.raises(UsageError, match="exists and is not a directory"):
            check_writable_dir(str(tmp_path / "f"), "--out")
        with pytest.raises(UsageError, match="lies under .* which is a file"):
            check_writable_dir(str(tmp_path / "f" / "sub"), "--out")
        with pytest.raises(UsageError, match="virtual file system"):
            check_writable_dir("/proc/irmae", "--out")

    def test_fit_with_an_output_dir_under_a_file_exits_2_before_any_work(self, tmp_path, capsys):
        from training import fit

        (tmp_path / "f").write_text("x")
        code, _, err = call_main(fit.main, [*TINY, "--epochs", "1", "--output-dir", tmp_path / "f" / "runs"],
                                 "training.fit", capsys)
        assert code == 2
        assert err.count("\n") == 1
        assert (tmp_path / "f").read_text() == "x"


class TestFinishedRuns:
    def test_a_corrupt_model_in_a_finished_run_is_one_line_and_kept(self, tmp_path):
        config, run = _fake_finished_run(tmp_path)
        before = snapshot(run.path)
        with pytest.raises(UsageError, match=rf"cannot load {re.escape(run.model_path)}: not a \.keras archive"):
            trainer.train(config)
        assert_unchanged(run.path, before)

    def test_overwrite_checks_every_image_before_the_old_run_goes(self, tmp_path):
        images = tmp_path / "images"
        images.mkdir()
        rng = np.random.default_rng(0)
        for i in range(40):
            Image.fromarray(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)).save(images / f"{i}.jpg")
        whole = (images / "3.jpg").read_bytes()
        (images / "3.jpg").write_bytes(whole[: len(whole) // 2])  # passes Pillow's verify()
        config = RunConfig(dataset="folder", data_dir=str(images), architecture="shapes", latent_dim=4,
                           batch_size=4, epochs=1, output_dir=str(tmp_path), run_name="run",
                           export=False).resolved()
        run = RunDir.of(config)
        os.makedirs(run.path)
        with open(run.model_path, "wb") as handle:
            handle.write(b"the old model")
        before = snapshot(run.path)
        with pytest.raises(DataError, match=r"cannot read image .*3\.jpg"):
            trainer.train(config, overwrite=True)
        assert_unchanged(run.path, before)


@pytest.mark.slow
class TestFaultInjection:
    """A real `training.fit` / `python -m export` killed (SIGKILL, by `tests/killing.py`)
    just before each of its renames, then the same command again: it must finish with a
    loadable model and a complete, verified export.

    Only the killed run needs a process of its own, forked from a warm interpreter that
    has imported the modules once; the same command again runs here, in the test's
    interpreter, where TensorFlow is already loaded."""

    @pytest.fixture
    def killed(self, warm_interpreter):
        """`killed(module, args, kill_at)`: the CompletedProcess of `python -m MODULE ARGS`
        killed before its kill_at-th rename (returncode -9), or run to its end."""
        return lambda module, args, kill_at: warm_interpreter.run(kill_at, module, *args)

    def _at_every_rename(self, killed_run, finish):
        """For kill_at = 1, 2, ...: `killed_run(kill_at)` (a process killed before its
        kill_at-th rename), then `finish(kill_at)` (the same command here), until a run
        finds no rename left to kill at and exits 0; returns how many were killed. Each
        killed run starts while the previous one is finished here."""
        from concurrent.futures import ThreadPoolExecutor

        kill_at = 1
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(killed_run, kill_at)
            while True:
                result = pending.result()
                killed = result.returncode == -signal.SIGKILL
                if killed:
                    pending = pool.submit(killed_run, kill_at + 1)
                else:
                    assert result.returncode == 0, (kill_at, result.stderr[-2000:])
                try:
                    finish(kill_at)
                except BaseException as error:
                    error.add_note(f"the same command after a kill at rename {kill_at}; the killed "
                                   f"run's stderr ends: {result.stderr[-2000:]}")
                    raise
                if not killed:
                    return kill_at - 1
                kill_at += 1

    def _check_finished(self, run):
        model = keras.models.load_model(run.model_path, safe_mode=True)
        assert run.read_status()["state"] == "complete"
        assert all(np.all(np.isfinite(w)) for w in model.get_weights())
        leftovers = [name for name in os.listdir(run.path) + os.listdir(os.path.dirname(run.path))
                     if name.startswith(".tmp-") or any(infix in name for infix in
                                                        (STAGING_INFIX, READY_INFIX, RETIRED_INFIX))]
        assert leftovers == []

    def test_fit_survives_a_kill_at_every_rename(self, tmp_path, killed):
        from training import fit

        def args(kill_at):
            # One epoch: every kind of write of a run happens in it (config, status, model,
            # backup weights and metadata, spectrum, figures); two would double the minutes.
            return [*TINY, "--epochs", "1", "--output-dir", str(tmp_path / f"k{kill_at}"), "--run-name", "run",
                    "--no-export"]

        def finish(kill_at):
            assert fit.main(args(kill_at)) == 0
            self._check_finished(RunDir(str(tmp_path / f"k{kill_at}" / "run")))

        # config, status, model, backup weights and metadata, spectrum, two figures, status
        assert self._at_every_rename(lambda kill_at: killed("training.fit", args(kill_at), kill_at),
                                     finish) >= 9

    def test_export_survives_a_kill_at_every_rename(self, tmp_path, killed):
        import shutil

        from export.__main__ import main as export_main

        config = RunConfig(dataset="shapes", train_size=64, eval_size=32, latent_dim=4, batch_size=16,
                           epochs=1, output_dir=str(tmp_path / "base"), run_name="run", export=True)
        base = trainer.train(config, quiet=True).run_dir

        def run_of(kill_at):
            return RunDir(str(tmp_path / f"k{kill_at}" / "run"))

        def args(kill_at):
            # The SavedModel alone: every format's files are written inside the staging
            # folder without a rename, so the renames killed at are the same for each
            # (a full export, as the base's, also makes exactly four), at a quarter of
            # the time (1.0 s against 4.1 on a 2-core Xeon).
            return [run_of(kill_at).path, "--overwrite", "--eval-size", "16", "--format", "savedmodel"]

        def killed_run(kill_at):
            shutil.copytree(base, run_of(kill_at).path)
            return killed("export", args(kill_at), kill_at)

        def finish(kill_at):
            run = run_of(kill_at)
            assert export_main(args(kill_at)) == 0
            with open(os.path.join(run.export_dir, "manifest.json")) as handle:
                manifest = json.load(handle)
            assert all(os.path.exists(os.path.join(run.export_dir, a["path"])) for a in manifest["artifacts"])
            self._check_finished(run)

        # The manifest's rename inside the staging folder (a kill there leaves an incomplete
        # staging folder), then the swap: staging -> ready, old export -> retired, ready -> export.
        assert self._at_every_rename(killed_run, finish) == 4


class TestExportIsComplete:
    def test_judged_from_the_manifest_and_the_files(self, tmp_path):
        from training.rundir import export_is_complete

        export = tmp_path / "export"
        assert not export_is_complete(str(export))
        export.mkdir()
        (export / "encoder.onnx").write_bytes(b"x")
        (export / "manifest.json").write_text(json.dumps(
            {"artifacts": [{"path": "encoder.onnx"}, {"path": "savedmodel"}]}))
        assert not export_is_complete(str(export))  # savedmodel is missing
        (export / "savedmodel").mkdir()
        assert export_is_complete(str(export))
        (export / "manifest.json").write_text("{not json")
        assert not export_is_complete(str(export))


class TestEveryCliRefusesABadOutput:
    @pytest.fixture
    def fake_run(self, tmp_path):
        config, run = _fake_finished_run(tmp_path)
        (tmp_path / "a-file").write_text("keep me")
        return run

    @pytest.mark.parametrize("module, extra", [
        ("evaluate", ["--task", "spectrum"]),
        ("classify", []),
        ("export", []),
    ])
    def test_an_out_under_a_file_is_one_line_and_touches_nothing(self, fake_run, tmp_path, capsys,
                                                                 module, extra):
        if module == "export":
            from export.__main__ import main
        else:
            main = __import__(f"training.{module}", fromlist=["main"]).main
        before = snapshot(tmp_path)
        code, _, err = call_main(main, [fake_run.path, *extra, "--out", tmp_path / "a-file" / "out"], module, capsys)
        assert code == 2 and err.count("\n") == 1
        assert "lies under" in err and "which is a file" in err
        assert_unchanged(tmp_path, before)

    def test_a_finished_run_whose_model_holds_a_lambda_is_refused_in_one_line(self, tmp_path):
        lambda_model = keras.Sequential([keras.Input((2,)), keras.layers.Lambda(lambda x: x * 2)])
        path = tmp_path / "m.keras"
        lambda_model.save(path)
        config, run = _fake_finished_run(tmp_path, model_bytes=path.read_bytes())
        with pytest.raises(UsageError, match=rf"cannot load {re.escape(run.model_path)} as a Keras model: .*"):
            trainer.train(config)


class TestLinksAndSpecialFiles:
    """Nothing is read or written through a symbolic link inside a run, and no special
    file (a FIFO) is opened: one line naming it, and everything outside stays as it was."""

    @pytest.fixture
    def outside(self, tmp_path):
        """A folder outside the run, with files a link might lead a command to."""
        path = tmp_path / "outside"
        path.mkdir()
        (path / ".tmp-precious").write_text("mine")
        (path / "epoch-0001.weights.h5").write_text("mine")
        (path / os.path.basename(RunDir(str(path)).history_path)).write_text("mine")
        return path

    @pytest.mark.parametrize("where", [
        lambda run: run.backup_dir, lambda run: run.figures_dir, lambda run: run.logs_dir,
        lambda run: run.export_dir, lambda run: run.file(rundir.EVALUATION_DIR),
        lambda run: run.history_path, lambda run: run.status_path, lambda run: run.spectrum_path,
        lambda run: run.config_path, lambda run: os.path.join(run.logs_dir, "train"),
    ], ids=["backup", "figures", "logs", "export", "evaluation", "history", "status", "spectrum",
            "config", "logs-train"])
    def test_a_link_in_a_run_is_refused_before_anything_is_touched(self, tmp_path, outside, where):
        config, run = _fake_finished_run(tmp_path)
        link = where(run)
        name = os.path.basename(link)
        if name.endswith(".json"):
            target = str(outside / name)
            if os.path.exists(link):
                os.replace(link, target)  # the real file now lives outside, behind the link
            else:
                (outside / name).write_text("{}")
        else:
            target = str(RunDir(str(outside)).history_path) if link == run.history_path else str(outside)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(target, link)
        before_outside, before_run = snapshot(outside), snapshot(run.path)
        with pytest.raises(UsageError, match=rf"{link} is a symbolic link; a run's files are never"):
            trainer.train(config)
        with pytest.raises(UsageError, match=rf"{link} is a symbolic link"):
            run.check()
        assert_unchanged(outside, before_outside)
        assert_unchanged(run.path, before_run)

    def test_a_linked_history_of_a_resumable_run_creates_nothing_outside(self, tmp_path, outside):
        config = _tiny_run_config(tmp_path)
        run = make_run(tmp_path / "run", eval_size=32, epochs=1)  # started, never finished an epoch
        os.symlink(str(outside / "new.csv"), run.history_path)
        with pytest.raises(UsageError, match=rf"{re.escape(run.history_path)} is a symbolic link"):
            trainer.train(config)
        assert not (outside / "new.csv").exists()

    @pytest.mark.parametrize("where", [
        lambda run: run.status_path, lambda run: run.config_path,
        lambda run: os.path.join(run.backup_dir, "training_metadata.json"),
        lambda run: run.figure_path(rundir.FIGURE_FILES[0]),
    ], ids=["status", "config", "backup-metadata", "figures-spectrum"])
    def test_a_fifo_in_a_run_is_refused_and_never_opened(self, tmp_path, where):
        config, run = _fake_finished_run(tmp_path)
        path = where(run)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.exists(path):
            os.remove(path)
        os.mkfifo(path)
        with within_seconds(20):
            with pytest.raises(UsageError, match=rf"{path} is a FIFO \(named pipe\), not a"):
                trainer.train(config)
            with pytest.raises(UsageError, match="is a FIFO"):
                run.check()

    def test_stale_temps_are_never_deleted_through_a_linked_folder(self, tmp_path, outside):
        from training.rundir import remove_stale_temps

        backup = RunDir(str(tmp_path)).backup_dir
        os.symlink(str(outside), backup)
        os.symlink(str(outside / ".tmp-precious"), str(tmp_path / ".tmp-link"))
        remove_stale_temps(backup)
        remove_stale_temps(str(tmp_path))
        assert (outside / ".tmp-precious").read_text() == "mine"
        assert not os.path.lexists(tmp_path / ".tmp-link")  # the link itself, our leftover, goes


class TestLockFile:
    def test_a_linked_lock_file_is_refused_and_its_target_kept(self, tmp_path):
        run = RunDir(str(tmp_path / "run"))
        (tmp_path / "victim").write_text("precious")
        os.symlink(str(tmp_path / "victim"), run.lock_path)
        with pytest.raises(UsageError, match=rf"the lock file {run.lock_path} is a symbolic link; delete it"):
            with run.lock():
                pass
        assert (tmp_path / "victim").read_text() == "precious"

    def test_a_hard_linked_lock_file_is_refused(self, tmp_path):
        run = RunDir(str(tmp_path / "run"))
        (tmp_path / "victim").write_text("precious")
        os.link(str(tmp_path / "victim"), run.lock_path)
        with pytest.raises(UsageError, match="not a plain file of one name"):
            with run.lock():
                pass
        assert (tmp_path / "victim").read_text() == "precious"

    @pytest.mark.parametrize("make, message", [(os.mkfifo, "not a plain file of one name"),
                                               (os.mkdir, r"cannot be opened \(Is a directory\)")])
    def test_a_lock_file_that_is_no_file_is_one_line(self, tmp_path, make, message):
        run = RunDir(str(tmp_path / "run"))
        make(run.lock_path)
        with within_seconds(10), pytest.raises(UsageError, match=message):
            with run.lock():
                pass

    def test_an_alias_of_a_run_gets_the_same_lock(self, tmp_path):
        run = RunDir(str(tmp_path / "runs" / "run"))
        os.makedirs(run.path)
        os.symlink(run.path, str(tmp_path / "alias"))
        os.symlink(str(tmp_path / "runs"), str(tmp_path / "runs-alias"))
        for alias in (RunDir(str(tmp_path / "alias")), RunDir(str(tmp_path / "runs-alias" / "run"))):
            assert alias.lock_path == run.lock_path
            with run.lock():
                with pytest.raises(UsageError, match=rf"{alias.path} is in use by process {os.getpid()}"):
                    with alias.lock():
                        pass


class TestDamagedRunFiles:
    def test_a_history_that_is_not_text_is_one_line_on_resume(self, tmp_path):
        config = _tiny_run_config(tmp_path)
        run = make_run(tmp_path / "run", eval_size=32, epochs=1)
        with open(run.history_path, "wb") as handle:
            handle.write(b"\x89PNG\r\n\x1a\n\x00\xff binary")
        before = snapshot(run.path)
        history = re.escape(run.history_path)
        with pytest.raises(UsageError, match=rf"{history} is not a CSV text file .*move it away"):
            trainer.train(config)
        assert_unchanged(run.path, before)
        with pytest.raises(UsageError, match=rf"{history} has no readable 'loss' column"):
            run.history_column("loss")

    @pytest.mark.parametrize("content", [b'{"effective_rank": 3}', b"\xff\xfe", b"[1, 2]"])
    def test_a_spectrum_without_its_keys_is_one_line(self, tmp_path, content):
        run = RunDir(str(tmp_path))
        with open(run.spectrum_path, "wb") as handle:
            handle.write(content)
        with pytest.raises(UsageError, match=rf"{re.escape(run.spectrum_path)} is missing, unreadable or lacks "
                                             ".*singular_values"):
            run.read_spectrum()

    @pytest.mark.parametrize("content", [b"\xff\xfe garbage", b"[1, 2]", b'{"state": ["complete"]}'])
    def test_a_garbage_status_is_read_as_none(self, tmp_path, content):
        run = RunDir(str(tmp_path))
        with open(run.status_path, "wb") as handle:
            handle.write(content)
        assert run.read_status().get("state") != "complete"
