"""Tests of training.data.loading: dataset_info, load_arrays, run_eval_images and
check_every_image, on the built-in datasets."""

import dataclasses

import numpy as np
import pytest

from export.errors import DataError
from irmae_keras import paper
from training import data


class TestInfoAndArrays:
    def test_every_dataset_has_info(self):
        for name in data.DATASETS:
            info = data.dataset_info(name)
            assert info.architecture == data.DATASETS[name].architecture
            assert info.image_shape == paper.IMAGE_SHAPES[info.architecture]
            assert info.splits == ("train", "eval", "test")
        assert data.dataset_info("digits").sizes == {"train": 1433, "eval": 364, "test": 364}
        assert data.dataset_info("celeb_a").label_shape == (40,)
        assert data.dataset_info("folder").sizes["train"] is None

    def test_architectures(self):
        assert {name: source.architecture for name, source in data.DATASETS.items()} == {
            "shapes": "shapes",
            "digits": "mnist",
            "mnist": "mnist",
            "celeb_a": "celeb_a",
            "folder": "celeb_a",
        }

    def test_load_arrays_gives_the_first_eval_images_in_order(self):
        images, factors = data.load_arrays("shapes", "eval", limit=10, labels=True, seed=7)
        expected_images, expected_factors = data.generate_shapes(10, seed=7, split="eval")
        np.testing.assert_array_equal(images, expected_images)
        np.testing.assert_array_equal(factors, expected_factors)


class TestRunEvalImages:
    def test_a_run_with_seed_3_gets_its_own_eval_images(self):
        from training.config import RunConfig

        config = RunConfig(dataset="shapes", seed=3, eval_size=8).resolved()
        images = data.run_eval_images(config, 8)
        np.testing.assert_array_equal(images, data.generate_shapes(8, seed=3, split="eval")[0])
        assert not np.array_equal(images, data.generate_shapes(8, seed=0, split="eval")[0])


class TestCheckEveryImage:
    def test_a_dataset_without_image_files_needs_no_check(self):
        from training.config import RunConfig

        assert data.DATASETS["shapes"].check_images is None
        data.check_every_image(RunConfig(dataset="shapes").resolved())  # nothing to decode

    def test_a_folder_run_decodes_every_file_unless_it_skips_corrupt_ones(self, tmp_path):
        from training.config import RunConfig

        for index in range(3):
            (tmp_path / f"{index}.png").write_bytes(b"not an image")
        config = RunConfig(dataset="folder", data_dir=str(tmp_path), architecture="shapes").resolved()
        with pytest.raises(DataError, match="cannot read image .*png"):
            data.check_every_image(config)
        skipping = dataclasses.replace(config, skip_corrupt=True)
        data.check_every_image(skipping)
