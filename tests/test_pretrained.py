"""Pretrained presets: save_to_preset → from_preset, the built-in ones, bad presets."""

import json
import os

import numpy as np
import pytest

import irmae_keras
from irmae_keras import pretrained
from tests.helpers import random_images

BUILT_IN = ("digits_irmae_l8", "shapes_ae", "shapes_irmae_l2")


class TestRoundTrip:
    def test_save_to_preset_then_from_preset_gives_the_same_model(self, tmp_path):
        model = irmae_keras.build_autoencoder("shapes", latent_dim=4)
        images = random_images((32, 32, 3), batch=3)
        path = model.save_to_preset(str(tmp_path / "p"), metadata={"note": "a test"})
        restored = irmae_keras.Autoencoder.from_preset(path)
        assert type(restored) is irmae_keras.Autoencoder and restored.latent_dim == 4
        np.testing.assert_allclose(np.asarray(restored(images)), np.asarray(model(images)), atol=1e-6)
        metadata = json.loads((tmp_path / "p" / "metadata.json").read_text())
        assert metadata["note"] == "a test" and metadata["variant"] == "irmae"
        assert sorted(os.listdir(tmp_path / "p")) == ["config.json", "metadata.json", "model.weights.h5"]

    def test_a_run_directory_becomes_a_preset_with_its_numbers(self, tiny_runs, tmp_path):
        from training.rundir import RunDir

        run = RunDir(tiny_runs["shapes"])
        path = run.save_preset(str(tmp_path / "p"), command="python -m training.fit ...")
        metadata = json.loads((tmp_path / "p" / "metadata.json").read_text())
        spectrum = json.loads(open(run.spectrum_path).read())
        assert metadata["effective_rank"] == spectrum["effective_rank"]
        assert metadata["eval_mse"] == spectrum["eval_mse"] and metadata["command"].startswith("python")
        _, model = run.load()
        images = random_images((32, 32, 3), batch=2)
        np.testing.assert_allclose(np.asarray(irmae_keras.Autoencoder.from_preset(path)(images)),
                                   np.asarray(model(images)), atol=1e-6)


class TestBadPresets:
    def test_an_unknown_name_lists_the_built_in_ones(self):
        with pytest.raises(ValueError, match=r"unknown preset 'nope': not a built-in preset \(digits_irmae_l8"):
            irmae_keras.Autoencoder.from_preset("nope")

    def test_a_corrupt_weights_file_is_one_clear_error(self, tmp_path):
        model = irmae_keras.build_autoencoder("shapes", latent_dim=4)
        path = model.save_to_preset(str(tmp_path / "p"))
        (tmp_path / "p" / "model.weights.h5").write_bytes(b"not hdf5")
        with pytest.raises(ValueError, match="cannot load model.weights.h5 .* corrupt"):
            irmae_keras.Autoencoder.from_preset(path)

    def test_a_missing_file_is_named(self, tmp_path):
        model = irmae_keras.build_autoencoder("shapes", latent_dim=4)
        path = model.save_to_preset(str(tmp_path / "p"))
        os.remove(tmp_path / "p" / "config.json")
        with pytest.raises(ValueError, match="is incomplete: it has no config.json"):
            irmae_keras.Autoencoder.from_preset(path)


class TestBuiltIn:
    def test_the_built_in_presets_are_listed_with_how_they_were_trained(self):
        presets = irmae_keras.list_presets()
        assert tuple(presets) == BUILT_IN
        for metadata in presets.values():
            assert metadata["command"].startswith("python -m training.")
            assert 1 <= metadata["effective_rank"] <= metadata["latent_dim"] and metadata["eval_mse"] > 0

    @pytest.mark.parametrize("name", BUILT_IN)
    def test_load_encode_decode_offline_as_the_metadata_says(self, name):
        from training import data

        metadata = irmae_keras.list_presets()[name]
        model = irmae_keras.Autoencoder.from_preset(name)
        images = data.load_arrays(metadata["dataset"], "eval", limit=256,
                                  seed=metadata["settings"]["seed"], image_shape=model.image_shape)
        codes = np.asarray(model.encoder(images))
        reconstructions = np.clip(np.asarray(model.decoder(codes)), 0, 1)
        assert codes.shape == (256, metadata["latent_dim"])
        mse = float(np.mean((reconstructions - images) ** 2))
        assert mse == pytest.approx(metadata["eval_mse"], rel=0.25)  # 256 of its eval images
        assert abs(irmae_keras.effective_rank(codes) - metadata["effective_rank"]) <= 1


def test_preset_files_ship_with_the_package():
    for name in BUILT_IN:
        folder = os.path.join(pretrained.PRESETS_DIR, name)
        assert sorted(os.listdir(folder)) == ["config.json", "metadata.json", "model.weights.h5"]
        assert os.path.getsize(os.path.join(folder, "model.weights.h5")) < 16 * 2**20  # a few MB
