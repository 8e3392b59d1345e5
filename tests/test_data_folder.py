"""Tests of training.data.folder: any directory of images, its split, classes and bad input."""

import logging
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from export.errors import DataError
from tests.data_helpers import concatenated
from tests.data_helpers import make_image_tree
from tests.data_helpers import noise_image
from tests.data_helpers import save_image
from training import data


@pytest.fixture
def image_tree(tmp_path):
    return make_image_tree(tmp_path / "images")


class TestFolderImages:
    def test_default_shape_and_range(self, image_tree):
        images = np.concatenate(
            [data.load_arrays("folder", s, data_dir=image_tree) for s in ("train", "eval")]
        )
        assert images.shape == (12, 64, 64, 3) and images.dtype == np.float32
        assert 0 <= images.min() and images.max() <= 1

    def test_any_shape_and_grayscale(self, image_tree):
        images = data.load_arrays("folder", "train", data_dir=image_tree, image_shape=(8, 12, 1))
        assert images.shape[1:] == (8, 12, 1)

    def test_center_crop_to_the_target_aspect(self, tmp_path):
        stripes = np.zeros((150, 300, 3), np.uint8)
        stripes[:, :75, 0] = stripes[:, 75:225, 1] = stripes[:, 225:, 2] = 255
        save_image(tmp_path / "a.png", stripes)
        save_image(tmp_path / "b.png", stripes)
        image = data.load_arrays("folder", "train", data_dir=tmp_path, image_shape=(32, 32, 3))[0]
        np.testing.assert_array_equal(image, np.broadcast_to([0, 1, 0], (32, 32, 3)))

    def test_first_gif_frame_alpha_and_16_bit(self, tmp_path):
        red, blue = (
            np.full((20, 20, 3), colour, np.uint8) for colour in ((255, 0, 0), (0, 0, 255))
        )
        frames = [Image.fromarray(red), Image.fromarray(blue)]
        frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
        Image.fromarray(np.full((20, 20), 128 * 257, np.uint16)).save(tmp_path / "b.png")
        rgba = np.dstack([red, np.zeros((20, 20), np.uint8)])
        save_image(tmp_path / "c.bmp", red)
        save_image(tmp_path / "d.png", rgba)
        decoded = {
            path.name: data.decode_image(str(path), (4, 4, 3)) for path in tmp_path.iterdir()
        }
        np.testing.assert_array_equal(decoded["a.gif"][0, 0], [255, 0, 0])
        np.testing.assert_array_equal(decoded["b.png"][0, 0], [128, 128, 128])
        np.testing.assert_array_equal(decoded["c.bmp"][0, 0], [255, 0, 0])
        np.testing.assert_array_equal(decoded["d.png"][0, 0], [255, 0, 0])

    def test_hidden_entries_are_ignored(self, image_tree):
        assert all("hidden" not in path for path in data.list_image_files(str(image_tree)))
        assert len(data.list_image_files(str(image_tree))) == 12

    def test_folder_shards_by_data(self, image_tree):
        dataset = data.load_dataset("folder", "train", 4, data_dir=image_tree)
        policy = dataset.options().experimental_distribute.auto_shard_policy
        assert policy == tf.data.experimental.AutoShardPolicy.DATA

    def test_auto_shard_rewrite_keeps_a_share_of_the_batches(self, image_tree):
        from tensorflow.python.data.experimental.ops import distribute

        dataset = data.load_dataset("folder", "train", 2, data_dir=image_tree, shuffle=False)
        total = sum(int(b.shape[0]) for b in dataset)
        shards = [distribute._AutoShardDataset(dataset, num_workers=2, index=i) for i in (0, 1)]
        assert sum(int(b.shape[0]) for shard in shards for b in shard) == total


class TestFolderSplit:
    def test_split_is_stable_disjoint_complete_and_about_ten_percent(self):
        names = [f"class{i % 3}/image{i}.png" for i in range(400)]
        split = data.split_folder_files(names)
        assert split == data.split_folder_files(list(reversed(names)))
        assert sorted(split["train"] + split["eval"]) == sorted(names)
        assert 20 <= len(split["eval"]) <= 60

    def test_adding_files_moves_no_other_file(self):
        names = [f"image{i}.png" for i in range(100)]
        before = data.split_folder_files(names)
        after = data.split_folder_files(names + [f"extra{i}.png" for i in range(50)])
        assert set(before["eval"]) <= set(after["eval"])

    @pytest.mark.parametrize("count", [2, 3, 5])
    def test_tiny_folders_get_one_image_in_each_split(self, count):
        split = data.split_folder_files([f"{i}.png" for i in range(count)])
        assert split["train"] and split["eval"]

    def test_a_single_image_has_no_eval_split(self, tmp_path):
        save_image(tmp_path / "only.png", noise_image(0))
        assert data.load_arrays("folder", "train", data_dir=tmp_path).shape[0] == 1
        with pytest.raises(DataError, match="only 1 image, so its eval split is empty"):
            data.load_dataset("folder", "eval", data_dir=tmp_path)


class TestFolderLabels:
    def test_label_is_the_index_of_the_sorted_top_level_folder(self, image_tree):
        for split in ("train", "eval"):
            dataset = data.load_dataset(
                "folder", split, 32, labels=True, data_dir=image_tree, shuffle=False
            )
            _, labels = concatenated(dataset)
            files = data.split_folder_files(data.list_image_files(str(image_tree)))[split]
            np.testing.assert_array_equal(
                labels, [0 if f.startswith("cats/") else 1 for f in files]
            )
        info = data.dataset_info("folder", image_tree)
        assert info.num_classes == 2 and info.label_names == ("cats", "dogs")

    def test_labels_need_sub_directories(self, tmp_path):
        for i in range(3):
            save_image(tmp_path / f"{i}.png", noise_image(i))
        with pytest.raises(DataError, match="labels=True needs one sub-directory per class"):
            data.load_dataset("folder", labels=True, data_dir=tmp_path)

    def test_labels_refuse_images_outside_class_folders(self, image_tree):
        save_image(image_tree / "stray.png", noise_image(5))
        with pytest.raises(DataError, match="directly in .*first: stray.png"):
            data.load_dataset("folder", labels=True, data_dir=image_tree)


class TestFolderBadInput:
    def test_needs_data_dir(self):
        with pytest.raises(DataError, match="folder dataset needs data_dir.*--data-dir"):
            data.load_dataset("folder")

    def test_missing_data_dir(self, tmp_path):
        with pytest.raises(DataError, match="nowhere.*does not exist"):
            data.load_dataset("folder", data_dir=tmp_path / "nowhere")

    def test_empty_folder(self, tmp_path):
        with pytest.raises(DataError, match="is empty; put .png"):
            data.load_dataset("folder", data_dir=tmp_path)

    def test_folder_without_images(self, tmp_path):
        (tmp_path / "notes.txt").write_text("no pictures here")
        with pytest.raises(DataError, match="has 1 files but no image"):
            data.load_dataset("folder", data_dir=tmp_path)


class TestFolderInfo:
    def test_folder_info_counts_the_files(self, image_tree):
        sizes = data.dataset_info("folder", image_tree).sizes
        assert sizes["train"] + sizes["eval"] == 12 and sizes["test"] == sizes["eval"]


class TestFilesThatAreNotImages:
    """Only regular files are read: a FIFO named like an image would block forever."""
    def test_a_fifo_in_a_folder_is_left_out_with_one_warning(self, image_tree, caplog):
        from tests.helpers import within_seconds

        os.mkfifo(image_tree / "cats" / "pipe.png")
        with within_seconds(30), caplog.at_level(logging.WARNING, logger="training.data"):
            images = data.load_arrays("folder", "train", data_dir=image_tree)
            images_eval = data.load_arrays("folder", "eval", data_dir=image_tree)
            data.check_every_image(_folder_config(image_tree))
        assert len(images) + len(images_eval) == 12
        assert caplog.text.count("not regular files") == 1 and "cats/pipe.png" in caplog.text

    def test_file_names_that_are_not_utf8_are_read(self, tmp_path):
        root = os.fsencode(str(tmp_path))
        for index in range(12):
            name = os.fsdecode(root + b"/" + bytes([0xE0 + index]) + b"\xff image.png")
            Image.fromarray(noise_image(index)).save(name)
        Image.fromarray(noise_image(99)).save(tmp_path / "plain.png")
        train = data.load_arrays("folder", "train", data_dir=tmp_path, image_shape=(32, 32, 3))
        evaluation = data.load_arrays("folder", "eval", data_dir=tmp_path, image_shape=(32, 32, 3))
        assert len(train) + len(evaluation) == 13
        # The split hashes the name's bytes as on disk: a valid name keeps its split.
        import hashlib

        from training.data.folder import stable_fraction

        for raw in (b"plain.png", b"\xff image.png"):
            expected = int.from_bytes(hashlib.sha256(raw).digest()[:8], "big") / 2.0**64
            assert stable_fraction(os.fsdecode(raw)) == expected

    def test_a_bad_image_with_an_odd_name_is_one_line(self, tmp_path):
        for index in range(4):
            Image.fromarray(noise_image(index)).save(tmp_path / f"{index}.png")
        odd = os.fsdecode(os.fsencode(str(tmp_path)) + b"/\xff.png")
        with open(odd, "wb") as handle:
            handle.write(b"not an image")
        with pytest.raises(DataError, match=r"cannot read image .*\\udcff\.png"):
            for split in ("train", "eval"):
                data.load_dataset("folder", split, data_dir=tmp_path)


class TestOnePreprocessing:
    def test_a_non_square_image_gets_the_same_codes_in_training_and_in_export_encode(self, tmp_path):
        import irmae_keras
        from export import encoding
        from export.images import IMAGE_EXTENSIONS  # noqa: F401  (the same rule for both)

        rng = np.random.default_rng(3)
        folder = tmp_path / "photos"
        folder.mkdir()
        for i in range(20):  # 50 wide, 30 high: a centre crop, then a resize
            Image.fromarray(rng.integers(0, 255, (30, 50, 3), dtype=np.uint8)).save(folder / f"{i}.png")
        trained = data.load_arrays("folder", "eval", data_dir=str(folder), image_shape=(32, 32, 3))
        eval_names = data.split_folder_files(data.list_image_files(str(folder)))["eval"]
        spec = {"height": 32, "width": 32, "channels": 3, "low": 0.0, "high": 1.0}
        deployed = np.stack([encoding.load_image(str(folder / name), spec) for name in eval_names])
        model = irmae_keras.build_autoencoder("shapes", latent_dim=4)
        codes_trained = np.asarray(model.encoder(trained))
        codes_deployed = np.asarray(model.encoder(deployed))
        assert np.max(np.abs(codes_trained - codes_deployed)) <= 1e-5
        assert np.max(np.abs(trained - deployed)) <= 1e-6

    def test_exif_orientation_is_applied(self, tmp_path):
        from export.images import decode_image

        pixels = np.zeros((10, 20, 3), np.uint8)
        pixels[:, :10] = 255  # left half white
        image = Image.fromarray(pixels)
        exif = image.getexif()
        exif[0x0112] = 6  # "rotate 90° clockwise to view"
        image.save(tmp_path / "r.jpg", exif=exif, quality=100)
        upright = decode_image(str(tmp_path / "r.jpg"), (20, 10, 3))
        assert upright[:10].mean() > 200 and upright[10:].mean() < 50  # white on top once rotated


def _folder_config(root):
    from training.config import RunConfig

    return RunConfig(dataset="folder", data_dir=str(root), architecture="shapes").resolved()
