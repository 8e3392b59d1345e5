"""Pretrained presets: save_to_preset → from_preset, user and built-in presets, names,
replacing and interrupted writes, symbolic links, the listing, the shipped presets
measured against their records, and `python -m training.pretrained`."""

import hashlib
import json
import os
import shutil
import signal
import textwrap

import numpy as np
import pytest

import irmae_keras
from export.errors import run_cli
from irmae_keras import pretrained
from irmae_keras import staging
from tests.helpers import random_images

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILT_IN = ("digits_irmae_l8", "shapes_ae", "shapes_irmae_l2")
FILES = ["config.json", "metadata.json", "model.weights.h5"]
# The shipped presets' numbers, measured again, against their metadata: relative error 0
# with oneDNN (as they were measured), at most 1.1e-7 without it (this suite's setting:
# eval MSE, colour kept, on an AVX2 CPU); 1e-5 leaves room for another CPU's rounding.
RELATIVE_TOLERANCE = 1e-5


@pytest.fixture(autouse=True)
def keras_home(tmp_path, monkeypatch):
    """User presets go to a temporary KERAS_HOME: nothing touches the real home."""
    home = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


def user_dir(keras_home):
    return keras_home / "irmae_keras" / "presets"


def tiny_model(seed=0, latent_dim=4):
    import keras

    keras.utils.set_random_seed(seed)
    return irmae_keras.build_autoencoder("shapes", latent_dim=latent_dim)


def outputs(model, images):
    return np.asarray(model(images))


def sha256(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def cli(argv, capsys):
    from training import pretrained as command

    with pytest.raises(SystemExit) as exit_info:
        run_cli(command.main, argv, prog="training.pretrained")
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


class TestRoundTrip:
    def test_save_to_preset_then_from_preset_gives_the_same_model(self, tmp_path):
        model = tiny_model()
        images = random_images((32, 32, 3), batch=3)
        path = model.save_to_preset(str(tmp_path / "p"), metadata={"note": "a test"})
        restored = irmae_keras.Autoencoder.from_preset(path)
        assert type(restored) is irmae_keras.Autoencoder and restored.latent_dim == 4
        np.testing.assert_allclose(outputs(restored, images), outputs(model, images), atol=1e-6)
        metadata = json.loads((tmp_path / "p" / "metadata.json").read_text())
        assert metadata["note"] == "a test" and metadata["variant"] == "irmae"
        assert sorted(os.listdir(tmp_path / "p")) == FILES
        assert [entry for entry in os.listdir(tmp_path) if entry.startswith(".")] == []  # no staging left

    def test_a_plain_name_is_a_user_preset_under_keras_home(self, keras_home, tmp_path):
        model = tiny_model()
        images = random_images((32, 32, 3), batch=2)
        path = model.save_to_preset("mine")
        assert path == str(user_dir(keras_home) / "mine") and sorted(os.listdir(path)) == FILES
        assert not os.path.exists(os.path.join(pretrained.PRESETS_DIR, "mine"))
        np.testing.assert_allclose(outputs(irmae_keras.Autoencoder.from_preset("mine"), images),
                                   outputs(model, images), atol=1e-6)
        listed = irmae_keras.list_presets()
        assert listed["mine"].kind == "user" and listed["shapes_ae"].kind == "built-in"
        assert list(listed)[:len(BUILT_IN)] == list(BUILT_IN)

    def test_keras_home_defaults_to_dot_keras_in_the_home_folder(self, monkeypatch, tmp_path):
        monkeypatch.delenv("KERAS_HOME")
        monkeypatch.setenv("HOME", str(tmp_path))
        assert pretrained.user_presets_dir() == str(tmp_path / ".keras" / "irmae_keras" / "presets")

    def test_a_run_directory_becomes_a_preset_with_its_record(self, tiny_runs, tmp_path):
        from training.provenance import training_steps
        from training.rundir import RunDir

        run = RunDir(tiny_runs["shapes"])
        path = run.save_preset(str(tmp_path / "p"), command="python -m training.fit ...")
        metadata = json.loads((tmp_path / "p" / "metadata.json").read_text())
        spectrum = json.loads(open(run.spectrum_path).read())
        config, model = run.load()
        assert metadata["effective_rank"] == spectrum["effective_rank"]
        assert metadata["eval_mse"] == spectrum["eval_mse"] and metadata["command"].startswith("python")
        assert metadata["colour_kept"] == spectrum["colour_kept"] is not None
        assert metadata["steps"] == training_steps(config) == 4 * 2  # 64 images / 16 × 2 epochs
        assert metadata["paper_steps"] == 1563 * 100
        hardware = json.loads(open(run.config_path).read())["hardware"]
        assert metadata["hardware"] == f"{hardware['cpu']}, {hardware['cores']} CPU cores, no GPU"
        assert "output_dir" not in metadata["settings"] and str(tmp_path) not in json.dumps(metadata)
        images = random_images((32, 32, 3), batch=2)
        np.testing.assert_allclose(outputs(irmae_keras.Autoencoder.from_preset(path), images),
                                   outputs(model, images), atol=1e-6)


class TestNamesAndReplacing:
    @pytest.mark.parametrize("name", [".hidden", "..", "a b", "x" * 65, "-x", "é", "a.b"])
    def test_a_name_that_is_no_plain_name_is_refused(self, name, keras_home):
        with pytest.raises(pretrained.PresetError, match="not a plain name|neither a preset name"):
            tiny_model().save_to_preset(name)
        assert not keras_home.exists()

    def test_a_user_preset_may_not_take_a_built_in_name(self, keras_home):
        before = sha256(os.path.join(pretrained.PRESETS_DIR, "shapes_ae", "model.weights.h5"))
        with pytest.raises(pretrained.PresetError, match="'shapes_ae' is a built-in preset"):
            tiny_model().save_to_preset("shapes_ae", overwrite=True)
        assert sha256(os.path.join(pretrained.PRESETS_DIR, "shapes_ae", "model.weights.h5")) == before
        assert not (user_dir(keras_home) / "shapes_ae").exists()

    def test_an_existing_preset_is_replaced_only_with_overwrite(self):
        old, new = tiny_model(seed=1), tiny_model(seed=2)
        images = random_images((32, 32, 3), batch=2)
        old.save_to_preset("mine")
        with pytest.raises(pretrained.PresetError, match="already exists; pass overwrite=True"):
            new.save_to_preset("mine")
        np.testing.assert_allclose(outputs(irmae_keras.Autoencoder.from_preset("mine"), images),
                                   outputs(old, images), atol=1e-6)
        new.save_to_preset("mine", overwrite=True)
        np.testing.assert_allclose(outputs(irmae_keras.Autoencoder.from_preset("mine"), images),
                                   outputs(new, images), atol=1e-6)

    def test_overwrite_never_replaces_a_folder_that_is_not_a_preset(self, tmp_path):
        folder = tmp_path / "work"
        folder.mkdir()
        (folder / "notes.txt").write_text("keep")
        with pytest.raises(pretrained.PresetError, match=r"is not a preset \(it holds notes.txt\)"):
            tiny_model().save_to_preset(str(folder), overwrite=True)
        assert os.listdir(folder) == ["notes.txt"] and sorted(os.listdir(tmp_path)) == ["work"]

    def test_metadata_that_is_not_json_is_refused_before_anything_is_written(self, keras_home):
        with pytest.raises(pretrained.PresetError, match="JSON values only"):
            tiny_model().save_to_preset("mine", metadata={"when": object()})
        assert not keras_home.exists()

    def test_an_unknown_name_lists_the_presets(self):
        with pytest.raises(ValueError, match=r"unknown preset 'nope': not a built-in or user preset "
                                             r"\(digits_irmae_l8, shapes_ae, shapes_irmae_l2\)"):
            irmae_keras.Autoencoder.from_preset("nope")


class TestBadPresets:
    def test_a_corrupt_weights_file_is_one_clear_error(self, tmp_path):
        path = tiny_model().save_to_preset(str(tmp_path / "p"))
        (tmp_path / "p" / "model.weights.h5").write_bytes(b"not hdf5")
        with pytest.raises(ValueError, match="cannot load model.weights.h5 .* corrupt"):
            irmae_keras.Autoencoder.from_preset(path)

    def test_a_missing_file_is_named(self, tmp_path):
        path = tiny_model().save_to_preset(str(tmp_path / "p"))
        os.remove(tmp_path / "p" / "config.json")
        with pytest.raises(ValueError, match="is incomplete: it has no config.json"):
            irmae_keras.Autoencoder.from_preset(path)


class TestSymbolicLinks:
    def test_a_preset_directory_that_is_a_link_is_refused(self, tmp_path, keras_home):
        real = tiny_model().save_to_preset(str(tmp_path / "real"))
        os.symlink(real, tmp_path / "link")
        with pytest.raises(pretrained.PresetError, match="link is a symbolic link; presets never follow one"):
            irmae_keras.Autoencoder.from_preset(str(tmp_path / "link"))
        user_dir(keras_home).mkdir(parents=True)
        os.symlink(real, user_dir(keras_home) / "mine")
        with pytest.raises(pretrained.PresetError, match="is a symbolic link"):
            irmae_keras.Autoencoder.from_preset("mine")

    def test_a_file_that_is_a_link_is_refused(self, tmp_path):
        path = tiny_model().save_to_preset(str(tmp_path / "p"))
        os.replace(tmp_path / "p" / "model.weights.h5", tmp_path / "elsewhere.weights.h5")
        os.symlink(tmp_path / "elsewhere.weights.h5", tmp_path / "p" / "model.weights.h5")
        with pytest.raises(pretrained.PresetError, match="model.weights.h5 is a symbolic link"):
            irmae_keras.Autoencoder.from_preset(path)

    def test_a_link_in_the_way_is_never_replaced_or_followed(self, tmp_path, keras_home):
        target = tmp_path / "target"
        target.mkdir()
        (target / "precious.txt").write_text("keep")
        user_dir(keras_home).mkdir(parents=True)
        os.symlink(target, user_dir(keras_home) / "mine")
        with pytest.raises(pretrained.PresetError, match="is a symbolic link"):
            tiny_model().save_to_preset("mine", overwrite=True)
        assert os.listdir(target) == ["precious.txt"] and os.path.islink(user_dir(keras_home) / "mine")

    def test_a_leftover_name_that_is_a_link_is_removed_not_followed(self, tmp_path, keras_home):
        elsewhere = tiny_model(seed=1).save_to_preset(str(tmp_path / "elsewhere"))
        user_dir(keras_home).mkdir(parents=True)
        planted = user_dir(keras_home) / f".mine{staging.READY_INFIX}x"
        os.symlink(elsewhere, planted)
        with pytest.raises(pretrained.PresetError, match="unknown preset 'mine'"):
            irmae_keras.Autoencoder.from_preset("mine")  # a reader ignores it
        tiny_model(seed=2).save_to_preset("mine")  # a writer's repair removes the link
        assert os.listdir(user_dir(keras_home)) == ["mine"]
        assert sorted(os.listdir(elsewhere)) == FILES


# A child process that replaces the preset "mine" and is stopped before its Nth rename
# (SIGKILL, SIGTERM or SIGINT sent to itself; tests/killing.py).
_INTERRUPTED_SAVE = textwrap.dedent("""
    import signal, sys
    import irmae_keras
    import keras
    from tests.killing import signal_at_rename

    mode, at, weights = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    keras.utils.set_random_seed(2)
    model = irmae_keras.build_autoencoder("shapes", latent_dim=4)
    model.save_weights(weights)  # the new weights, for the test to compare with
    signal_at_rename(at, getattr(signal, "SIG" + mode))
    model.save_to_preset("mine", overwrite=True)
    print("finished")
""")


@pytest.mark.slow
@pytest.mark.parametrize("mode, at, expected", [
    ("KILL", 1, "old"),  # before staging → ready: the new preset is incomplete
    ("KILL", 2, "old"),  # before the old one is retired
    ("KILL", 3, "new"),  # between retiring the old one and moving the new one in
    ("TERM", 3, "new"),
    ("INT", 3, "new"),
])
def test_an_interrupted_save_leaves_the_old_or_the_new_preset_never_a_mix(mode, at, expected, tmp_path,
                                                                          keras_home, warm_interpreter):
    old = tiny_model(seed=1)
    old.save_to_preset("mine")
    weights = str(tmp_path / "new.weights.h5")
    # `python -c` in a process of its own, forked with the imports done; it reads KERAS_HOME
    # at each call, as the library does.
    result = warm_interpreter.python_c(_INTERRUPTED_SAVE, mode, at, weights, env={"KERAS_HOME": str(keras_home)},
                                       timeout=300)
    assert "finished" not in result.stdout and result.returncode != 0, result.stderr[-2000:]
    # An uncaught KeyboardInterrupt ends Python by SIGINT, as the other two signals do.
    assert result.returncode == -getattr(signal, "SIG" + mode), result.stderr[-2000:]
    new = tiny_model(seed=5)
    new.load_weights(weights)
    images = random_images((32, 32, 3), batch=2)
    loaded = irmae_keras.Autoencoder.from_preset("mine")  # a reader ignores the leftovers
    np.testing.assert_allclose(outputs(loaded, images), outputs(old if expected == "old" else new, images),
                               atol=1e-6)
    assert irmae_keras.list_presets()["mine"].problem is None
    assert len(os.listdir(user_dir(keras_home))) > 1  # the interrupted swap's leftovers are there
    third = tiny_model(seed=3)
    third.save_to_preset("mine", overwrite=True)  # the next writer repairs, then replaces
    assert os.listdir(user_dir(keras_home)) == ["mine"]
    assert sorted(os.listdir(user_dir(keras_home) / "mine")) == FILES
    np.testing.assert_allclose(outputs(irmae_keras.Autoencoder.from_preset("mine"), images),
                               outputs(third, images), atol=1e-6)


class TestListing:
    def test_the_listing_is_a_readable_table_without_paths_dicts_or_none(self, tmp_path):
        tiny_model().save_to_preset("mine", metadata={"dataset": "shapes", "command": "python my.py"})
        presets = irmae_keras.list_presets()
        text = repr(presets)
        assert str(presets) == text
        header, *rows = text.splitlines()[:len(presets) + 1]
        assert header.split() == ["preset", "kind", "data", "model", "effective", "rank", "eval", "MSE",
                                  "(images)", "colour", "kept"]
        assert [row.split()[:2] for row in rows] == [[name, "built-in"] for name in BUILT_IN] + [["mine", "user"]]
        assert "how each was trained:" in text and "  mine: python my.py; hardware: not recorded" in text
        for forbidden in ("None", "{", "output_dir", "/work", str(tmp_path)):
            assert forbidden not in text
        info = presets["shapes_irmae_l2"]
        assert (info.data, info.model, info.kind) == ("shapes", "irmae n=32 l=2", "built-in")
        assert "None" not in repr(info) and repr(info).startswith("shapes_irmae_l2 (built-in): shapes, ")
        assert presets["digits_irmae_l8"].colour_text() == "n/a (grey images)"

    def test_an_unreadable_user_preset_is_listed_with_its_problem(self, keras_home):
        tiny_model().save_to_preset("broken")
        (user_dir(keras_home) / "broken" / "metadata.json").write_text("{not json")
        info = irmae_keras.list_presets()["broken"]
        assert info.problem.startswith("unreadable: preset ") and "cannot read metadata.json" in info.problem

    def test_a_user_folder_with_a_built_in_name_is_not_listed_and_the_built_in_wins(self, keras_home, tmp_path):
        shutil.copytree(tiny_model().save_to_preset(str(tmp_path / "p")), user_dir(keras_home) / "shapes_ae")
        assert irmae_keras.list_presets()["shapes_ae"].kind == "built-in"
        assert irmae_keras.Autoencoder.from_preset("shapes_ae").latent_dim == 32


def _absolute_paths(value):
    if isinstance(value, dict):
        return [path for item in value.values() for path in _absolute_paths(item)]
    if isinstance(value, list):
        return [path for item in value for path in _absolute_paths(item)]
    return [value] if isinstance(value, str) and (os.path.isabs(value) or "/work/" in value) else []


class TestShipped:
    def test_the_built_in_presets_are_listed_with_how_they_were_trained(self):
        presets = irmae_keras.list_presets()
        assert tuple(presets) == BUILT_IN
        for info in presets.values():
            assert info.kind == "built-in" and info.command.startswith("python -m training.")
            assert 1 <= info.effective_rank <= info.metadata["latent_dim"] and info.eval_mse > 0
            assert info.steps > 0 and info.paper_steps > 0 and info.hardware
            if info.hardware == "unknown":
                assert info.metadata["hardware_unknown_reason"]
            assert "output_dir" not in info.metadata["settings"] and _absolute_paths(info.metadata) == []

    @pytest.mark.parametrize("name", BUILT_IN)
    def test_each_reproduces_its_recorded_numbers_on_its_eval_images_offline(self, name):
        from training import data
        from training.config import RunConfig
        from training.provenance import paper_steps
        from training.provenance import training_steps

        info = irmae_keras.list_presets()[name]
        metadata = info.metadata
        config = RunConfig.from_dict(metadata["settings"]).resolved()
        assert (info.steps, info.paper_steps) == (training_steps(config), paper_steps(config))
        model = irmae_keras.Autoencoder.from_preset(name)
        images = data.run_eval_images(config, metadata["eval_images"], model.image_shape)
        measured = pretrained.measure(model, images)
        assert measured["eval_images"] == metadata["eval_images"]
        assert measured["effective_rank"] == metadata["effective_rank"]
        assert measured["eval_mse"] == pytest.approx(metadata["eval_mse"], rel=RELATIVE_TOLERANCE)
        if metadata["colour_kept"] is None:
            assert model.image_shape[-1] == 1 and measured["colour_kept"] is None
        else:
            assert measured["colour_kept"] == pytest.approx(metadata["colour_kept"], rel=RELATIVE_TOLERANCE)
        if info.data == "shapes":  # the shipped shapes models are the paper budget's, in colour
            assert info.paper_budget and measured["colour_kept"] >= 0.9

    def test_preset_files_ship_with_the_package(self):
        for name in BUILT_IN:
            folder = os.path.join(pretrained.PRESETS_DIR, name)
            assert sorted(os.listdir(folder)) == FILES
            assert os.path.getsize(os.path.join(folder, "model.weights.h5")) < 16 * 2**20  # a few MB
        assert [entry for entry in os.listdir(pretrained.PRESETS_DIR) if entry.startswith(".")] == []


class TestCommand:
    @pytest.mark.parametrize("name", ["../../x", ".x", "a/b", "x\ny", ".."])
    def test_a_name_that_is_no_plain_name_is_one_line(self, name, capsys, keras_home, tmp_path):
        code, out, err = cli([str(tmp_path / "run"), name, "--command", "c"], capsys)
        assert code == 2 and out == "" and len(err.splitlines()) == 1
        assert "is not a plain name: use letters, digits, _ and -" in err
        assert os.listdir(tmp_path) == []  # no preset, no user folder, nothing beside

    @pytest.mark.parametrize("extra", [[], ["--overwrite"]])
    def test_a_built_in_name_is_refused_without_touching_it(self, extra, capsys, tmp_path):
        before = sha256(os.path.join(pretrained.PRESETS_DIR, "shapes_ae", "metadata.json"))
        code, _, err = cli([str(tmp_path / "run"), "shapes_ae", "--command", "c", *extra], capsys)
        assert code == 2 and "'shapes_ae' is a built-in preset: choose another name" in err
        assert sha256(os.path.join(pretrained.PRESETS_DIR, "shapes_ae", "metadata.json")) == before

    def test_out_must_end_in_the_name(self, capsys, tmp_path):
        code, _, err = cli([str(tmp_path / "run"), "mine", "--command", "c", "--out", str(tmp_path / "other")],
                           capsys)
        assert code == 2 and "must end in the preset's name: .../mine" in err

    def test_a_run_becomes_a_user_preset_replaced_only_with_overwrite(self, tiny_runs, capsys, keras_home):
        run = tiny_runs["shapes"]
        code, out, err = cli([run, "mine", "--command", "python -m training.fit ..."], capsys)
        assert code == 0 and f"wrote preset mine to {user_dir(keras_home) / 'mine'}" in out, err
        assert "from_preset('mine') loads it" in out
        weights = sha256(user_dir(keras_home) / "mine" / "model.weights.h5")
        run_dir = tiny_runs["shapes_ae"]
        code, _, err = cli([run_dir, "mine", "--command", "c"], capsys)
        assert code == 2 and len(err.splitlines()) == 1 and "already exists; pass --overwrite" in err
        assert sha256(user_dir(keras_home) / "mine" / "model.weights.h5") == weights
        code, _, _ = cli([run_dir, "mine", "--command", "c", "--overwrite"], capsys)
        assert code == 0 and irmae_keras.Autoencoder.from_preset("mine").variant == "ae"

    def test_refresh_measures_and_records_without_touching_the_weights(self, tiny_runs, capsys, tmp_path):
        from training.rundir import RunDir

        run = RunDir(tiny_runs["shapes"])
        path = run.save_preset(str(tmp_path / "old"), command="python -m training.fit ...")
        metadata_path = os.path.join(path, "metadata.json")
        record = json.loads(open(metadata_path).read())
        # What a preset made before this record was kept looks like:
        old = {key: value for key, value in record.items()
               if key not in ("colour_kept", "steps", "paper_steps", "hardware")}
        old["settings"] = dict(record["settings"], output_dir="/home/someone/runs")
        with open(metadata_path, "w") as handle:
            json.dump(old, handle)
        weights, config = sha256(os.path.join(path, "model.weights.h5")), sha256(os.path.join(path, "config.json"))
        code, out, err = cli(["--refresh", path], capsys)
        assert code == 0, err
        assert "colour_kept: " in out and "(was not recorded)" in out and "hardware: unknown" in out
        refreshed = json.loads(open(metadata_path).read())
        assert refreshed["hardware"] == "unknown" and "not recorded" in refreshed["hardware_unknown_reason"]
        for key in ("effective_rank", "steps", "paper_steps"):
            assert refreshed[key] == record[key]
        for key in ("eval_mse", "colour_kept"):
            assert refreshed[key] == pytest.approx(record[key], rel=RELATIVE_TOLERANCE)
        assert "output_dir" not in refreshed["settings"] and _absolute_paths(refreshed) == []
        assert sha256(os.path.join(path, "model.weights.h5")) == weights
        assert sha256(os.path.join(path, "config.json")) == config
        assert [entry for entry in os.listdir(tmp_path) if entry.startswith(".")] == []
        hardware = tmp_path / "results.json"
        hardware.write_text(json.dumps({"hardware": {"cpu": "Xeon", "cores": 8, "gpus": []}}))
        code, out, err = cli(["--refresh", path, "--hardware-from", str(hardware)], capsys)
        refreshed = json.loads(open(metadata_path).read())
        assert code == 0 and refreshed["hardware"] == "Xeon, 8 CPU cores, no GPU", err
        assert "hardware_unknown_reason" not in refreshed and refreshed["hardware_source"] == "results.json"

    def test_refresh_takes_no_run(self, capsys, tmp_path):
        code, _, err = cli(["--refresh", "shapes_ae", str(tmp_path)], capsys)
        assert code == 2 and "--refresh PRESET takes no RUN_DIR" in err

    def test_an_official_checkpoint_becomes_a_user_preset_with_its_file_recorded(self, capsys, keras_home,
                                                                                tmp_path):
        model = tiny_model()
        checkpoint = str(tmp_path / "shapes_l2.pth")
        model.save_official_checkpoint(checkpoint, file_format="legacy")
        code, out, _ = cli(["--from-official", checkpoint, "official_shapes"], capsys)
        assert code == 0 and "(irmae, shapes architecture, n=4, l=2)" in out
        loaded = irmae_keras.Autoencoder.from_preset("official_shapes")
        images = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
        np.testing.assert_allclose(outputs(loaded, images), outputs(model, images), atol=1e-5)
        info = irmae_keras.list_presets()["official_shapes"]
        assert info.metadata["checkpoint"] == "shapes_l2.pth"
        assert info.metadata["checkpoint_sha256"] == sha256(checkpoint)
        # Again: refused without --overwrite; a file that is no checkpoint is one line.
        code, _, err = cli(["--from-official", checkpoint, "official_shapes"], capsys)
        assert code == 2 and "--overwrite" in err
        (tmp_path / "bad.pth").write_text("not a checkpoint")
        code, _, err = cli(["--from-official", str(tmp_path / "bad.pth"), "other"], capsys)
        assert code == 2 and err.count("\n") == 1 and "bad.pth" in err
        assert "other" not in irmae_keras.list_presets()
