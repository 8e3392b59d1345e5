"""Tests of training.data: the shapes semantics, every dataset offline, and bad input."""

import logging
import os
import socket
import time

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from irmae_keras import paper
from training import data
from training.data import digits
from training.data import tfds as data_tfds
from export.errors import DataError

COLOUR = (0.25, 0.5, 0.75)


# ---------------------------------------------------------------------------------------------
# Helpers and fixtures


def _shape_factors(kind, size, x, y, colour=COLOUR):
    return np.array([[kind, size, *colour, x, y]], np.float32)


def _lit_pixels(image):
    """(row, col) of every non-black pixel."""
    return {tuple(int(v) for v in p) for p in np.argwhere(image.max(axis=-1) > 0)}


def _all_batches(dataset):
    return [batch for batch in dataset]


def _concatenated(dataset):
    """Images and labels of a (images, labels) dataset as two numpy arrays."""
    batches = _all_batches(dataset)
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])


def _save(path, array, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def _noise_image(seed, height=40, width=40):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _truncate(path):
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    return path


@pytest.fixture
def image_tree(tmp_path):
    """Two classes of 6 images each in mixed formats, and a hidden folder to be ignored."""
    root = tmp_path / "images"
    for index in range(6):
        _save(root / "cats" / f"cat{index}.png", _noise_image(index))
        _save(root / "dogs" / f"dog{index}.jpg", _noise_image(10 + index), quality=95)
    _save(root / ".cache" / "hidden.png", _noise_image(99))
    return root


def _celeb_a_image(seed):
    """A 218×178 aligned-CelebA-sized image: white inside the central 148 square, black out."""
    image = np.zeros((218, 178, 3), np.uint8)
    image[35:183, 15:163] = 255 if seed % 2 == 0 else 200
    return image


@pytest.fixture
def celeb_a_dir(tmp_path):
    """Six CelebA-style files (2 per partition) with a partition and an attribute file.

    The attribute header is written in reverse order, so labels must be matched by name.
    """
    root = tmp_path / "celeba"
    names = [f"{i:06d}.jpg" for i in range(1, 7)]
    for i, name in enumerate(names):
        _save(root / "img_align_celeba" / name, _celeb_a_image(i), format="JPEG", quality=100)
    partition = "".join(f"{name} {i // 2}\n" for i, name in enumerate(names))
    (root / "list_eval_partition.txt").write_text(partition)
    header = list(reversed(data.CELEB_A_ATTRIBUTES))
    rows = [
        " ".join([name] + ["1" if (i + j) % 3 == 0 else "-1" for j in range(40)])
        for i, name in enumerate(names)
    ]
    (root / "list_attr_celeba.txt").write_text(
        "\n".join([str(len(names)), " ".join(header)] + rows) + "\n"
    )
    return root


@pytest.fixture
def tfds_online(monkeypatch):
    """tfds mocked with random examples; the connectivity probe pretends to be online."""
    monkeypatch.setattr(data_tfds, "download_host_reachable", lambda host, timeout_s=3.0: True)
    with tfds.testing.mock_data(num_examples=5):
        yield


# ---------------------------------------------------------------------------------------------
# Shapes: semantics


class TestShapesRendering:
    def test_circle_radius_3_at_8_8_covers_exactly_its_29_pixels(self):
        image = data.render_shapes(_shape_factors(0, 3, 8, 8)).numpy()[0]
        spans = {5: (8, 8), 6: (6, 10), 7: (6, 10), 8: (5, 11), 9: (6, 10), 10: (6, 10), 11: (8, 8)}
        expected = {(row, col) for row, (lo, hi) in spans.items() for col in range(lo, hi + 1)}
        assert len(expected) == 29
        assert _lit_pixels(image) == expected

    def test_x_is_the_column_and_y_the_row(self):
        image = data.render_shapes(_shape_factors(0, 3, 20, 10)).numpy()[0]
        assert image[10, 20].max() > 0
        assert image[20, 10].max() == 0

    def test_square_corners_are_inclusive(self):
        image = data.render_shapes(_shape_factors(1, 3, 8, 10)).numpy()[0]
        expected = {(row, col) for row in range(10, 14) for col in range(8, 12)}
        assert _lit_pixels(image) == expected

    def test_square_is_clipped_at_the_image_border(self):
        image = data.render_shapes(_shape_factors(1, 8, 24, 24)).numpy()[0]
        assert _lit_pixels(image) == {(r, c) for r in range(24, 32) for c in range(24, 32)}

    def test_shape_has_its_colour_on_black(self):
        image = data.render_shapes(_shape_factors(0, 5, 16, 16)).numpy()[0]
        lit = image.max(axis=-1) > 0
        np.testing.assert_array_equal(image[lit], np.tile(np.float32(COLOUR), (lit.sum(), 1)))
        assert np.all(image[~lit] == 0)
        assert image.dtype == np.float32 and image.shape == (32, 32, 3)


class TestShapesFactors:
    @pytest.fixture(scope="class")
    def factors(self):
        return data.sample_shapes_factors(60_000, seed=0)

    def test_columns_and_dtype(self, factors):
        assert data.SHAPES_FACTORS == ("type", "size", "r", "g", "b", "x", "y")
        assert factors.shape == (60_000, 7) and factors.dtype == np.float32

    def test_discrete_factors_are_integers_in_range(self, factors):
        kind, size, x, y = factors[:, 0], factors[:, 1], factors[:, 5], factors[:, 6]
        assert set(np.unique(kind)) == {0.0, 1.0}
        assert set(np.unique(size)) == set(np.arange(3, 9, dtype=np.float32))
        assert set(np.unique(x)) == set(np.arange(8, 25, dtype=np.float32))
        assert set(np.unique(y)) == set(np.arange(8, 25, dtype=np.float32))

    def test_discrete_factors_are_roughly_uniform(self, factors):
        assert abs(factors[:, 0].mean() - 0.5) < 0.01
        for column, count in ((1, 6), (5, 17), (6, 17)):
            _, frequencies = np.unique(factors[:, column], return_counts=True)
            np.testing.assert_allclose(frequencies / len(factors), 1 / count, atol=0.01)

    def test_colours_are_uniform_in_zero_one(self, factors):
        colours = factors[:, 2:5]
        assert colours.min() >= 0 and colours.max() < 1
        np.testing.assert_allclose(colours.mean(axis=0), 0.5, atol=0.01)
        np.testing.assert_allclose((colours < 0.1).mean(axis=0), 0.1, atol=0.01)
        assert len(np.unique(colours)) > 0.99 * colours.size  # continuous, not quantised


class TestShapesGeneration:
    def test_deterministic_for_a_seed(self):
        first, first_factors = data.generate_shapes(20, seed=3)
        second, second_factors = data.generate_shapes(20, seed=3)
        np.testing.assert_array_equal(first, second)
        np.testing.assert_array_equal(first_factors, second_factors)

    def test_seeds_and_splits_give_different_images(self):
        train = data.sample_shapes_factors(50, seed=3)
        assert not np.array_equal(train, data.sample_shapes_factors(50, seed=4))
        assert not np.array_equal(train, data.sample_shapes_factors(50, seed=3, split="eval"))
        np.testing.assert_array_equal(
            data.sample_shapes_factors(50, 3, "eval"), data.sample_shapes_factors(50, 3, "test")
        )

    def test_first_rows_do_not_depend_on_n(self):
        np.testing.assert_array_equal(
            data.sample_shapes_factors(10, seed=1), data.sample_shapes_factors(1000, seed=1)[:10]
        )

    def test_images_match_their_factors(self):
        images, factors = data.generate_shapes(50, seed=2)
        assert images.shape == (50, 32, 32, 3) and images.dtype == np.float32
        np.testing.assert_array_equal(images, data.render_shapes(factors).numpy())
        assert images.min() == 0 and images.max() < 1

    def test_pipeline_renders_the_same_images_as_numpy(self):
        dataset = data.load_dataset("shapes", "eval", 16, labels=True, size=40, seed=5)
        images, labels = _concatenated(dataset)
        expected_images, expected_factors = data.generate_shapes(40, seed=5, split="eval")
        np.testing.assert_array_equal(images, expected_images)
        np.testing.assert_array_equal(labels, expected_factors)

    def test_default_sizes(self):
        assert data.dataset_info("shapes").sizes == {
            "train": 50_000,
            "eval": 10_000,
            "test": 10_000,
        }
        dataset = data.load_dataset("shapes", "eval", batch_size=1000)
        assert sum(int(batch.shape[0]) for batch in dataset) == 10_000


# ---------------------------------------------------------------------------------------------
# Pipeline behaviour (on shapes and digits, which need no files)


def _first_labels(dataset):
    return next(iter(dataset))[1].numpy()


class TestPipeline:
    def test_batches_keep_the_final_partial_batch(self):
        dataset = data.load_dataset("shapes", "train", 16, size=40)
        assert [int(batch.shape[0]) for batch in dataset] == [16, 16, 8]

    def test_train_is_shuffled_reproducibly_by_seed(self):
        def first(seed):
            dataset = data.load_dataset("shapes", "train", 8, labels=True, size=64, seed=seed)
            return _first_labels(dataset)

        in_order = data.sample_shapes_factors(8, seed=0)
        assert not np.array_equal(first(0), in_order)
        np.testing.assert_array_equal(first(0), first(0))

    def test_shuffle_order_depends_on_seed_and_epoch(self):
        dataset = data.load_dataset("digits", "train", 64, labels=True, seed=0)
        epoch_one, epoch_two = _first_labels(dataset), _first_labels(dataset)
        assert not np.array_equal(epoch_one, epoch_two)
        other_seed = _first_labels(data.load_dataset("digits", "train", 64, labels=True, seed=1))
        assert not np.array_equal(epoch_one, other_seed)

    def test_eval_keeps_a_fixed_order(self):
        dataset = data.load_dataset("digits", "eval", 100, labels=True)
        np.testing.assert_array_equal(_first_labels(dataset), _first_labels(dataset))
        _, expected = digits.digits_arrays("eval")
        np.testing.assert_array_equal(_first_labels(dataset), expected[:100])

    def test_labels_false_yields_images_only(self):
        batch = next(iter(data.load_dataset("digits", "eval", 4)))
        assert isinstance(batch, tf.Tensor) and batch.shape == (4, 32, 32, 1)

    @pytest.mark.parametrize("name", ["shapes", "digits"])
    def test_in_memory_datasets_shard_by_data(self, name):
        dataset = data.load_dataset(name, "eval", 8, size=16)
        policy = dataset.options().experimental_distribute.auto_shard_policy
        assert policy == tf.data.experimental.AutoShardPolicy.DATA

    def test_every_dataset_reports_skipped_files(self):
        assert data.load_dataset("shapes", "eval", 8, size=8).skipped_files.count == 0


# ---------------------------------------------------------------------------------------------
# Digits


class TestDigits:
    def test_split_is_stratified_disjoint_and_complete(self):
        from sklearn.datasets import load_digits

        targets = load_digits().target
        split = digits.digits_split(targets)
        assert (len(split["train"]), len(split["eval"])) == (1433, 364)
        assert not set(split["train"]) & set(split["eval"])
        assert len(split["train"]) + len(split["eval"]) == 1797
        eval_per_class = np.bincount(targets[split["eval"]], minlength=10)
        assert eval_per_class.min() >= 34 and eval_per_class.max() <= 37

    def test_images_are_32x32_in_zero_one_with_labels(self):
        images, labels = data.load_arrays("digits", "eval", labels=True)
        assert images.shape == (364, 32, 32, 1) and images.dtype == np.float32
        assert images.min() == 0 and images.max() == 1
        assert labels.dtype == np.int32 and set(labels) == set(range(10))

    def test_resize_is_bilinear_from_values_over_16(self):
        from sklearn.datasets import load_digits

        first = load_digits().images[0][None, :, :, None] / 16.0  # position 0 of class 0: eval
        expected = tf.image.resize(first.astype(np.float32), (32, 32), method="bilinear")
        np.testing.assert_allclose(data.load_arrays("digits", "eval", limit=1), expected, atol=1e-6)

    def test_test_split_is_the_eval_split(self):
        np.testing.assert_array_equal(
            data.load_arrays("digits", "test", limit=20),
            data.load_arrays("digits", "eval", limit=20),
        )


# ---------------------------------------------------------------------------------------------
# tensorflow-datasets: mnist and celeb_a through the real tfds code, mocked data


class TestTfdsMocked:
    def test_mnist_is_32x32x1_in_zero_one_with_labels(self, tfds_online):
        for split in data.SPLITS:
            images, labels = _concatenated(data.load_dataset("mnist", split, 4, labels=True))
            assert images.shape == (5, 32, 32, 1) and images.dtype == np.float32
            assert 0 <= images.min() and images.max() <= 1 and images.std() > 0
            assert labels.dtype == np.int32 and labels.min() >= 0 and labels.max() <= 9

    def test_celeb_a_is_64x64x3_with_40_attributes(self, tfds_online):
        for split in data.SPLITS:
            images, labels = _concatenated(data.load_dataset("celeb_a", split, 2, labels=True))
            assert images.shape == (5, 64, 64, 3) and images.dtype == np.float32
            assert 0 <= images.min() and images.max() <= 1 and images.std() > 0
            assert labels.shape == (5, 40) and set(np.unique(labels)) <= {0, 1}

    def test_size_caps_the_examples(self, tfds_online):
        assert (
            _concatenated(data.load_dataset("mnist", "train", 2, labels=True, size=3))[0].shape[0]
            == 3
        )


class TestTfdsOffline:
    def test_unprepared_dataset_fails_fast_with_instructions(self, monkeypatch, tmp_path):
        monkeypatch.setattr(data_tfds, "download_host_reachable", lambda host, timeout_s=3.0: False)
        started = time.monotonic()
        with pytest.raises(DataError) as raised:
            data.load_dataset("mnist", data_dir=tmp_path)
        assert time.monotonic() - started < 10
        message = str(raised.value)
        assert "mnist is not prepared" in message and str(tmp_path) in message
        assert "tfds.load('mnist')" in message and "--data-dir" in message
        assert "--dataset folder" in message and "\n" not in message

    def test_celeb_a_message_mentions_the_official_files(self, monkeypatch, tmp_path):
        monkeypatch.setattr(data_tfds, "download_host_reachable", lambda host, timeout_s=3.0: False)
        with pytest.raises(DataError, match="img_align_celeba/ and list_eval_partition.txt"):
            data.load_dataset("celeb_a", data_dir=tmp_path)

    def test_probe_returns_within_10_seconds_here(self):
        started = time.monotonic()
        reachable = data.download_host_reachable(data.DOWNLOAD_HOSTS["mnist"])
        assert isinstance(reachable, bool)
        assert time.monotonic() - started < 10

    def test_probe_is_bounded_when_the_connection_hangs(self, monkeypatch):
        def hang(*args, **kwargs):
            time.sleep(3)
            raise OSError("timed out")

        monkeypatch.setattr(socket, "create_connection", hang)
        started = time.monotonic()
        assert data.download_host_reachable("example.invalid", timeout_s=0.3) is False
        assert time.monotonic() - started < 2

    def test_probe_returns_as_soon_as_the_lookup_fails(self, monkeypatch):
        def fail(*args, **kwargs):
            raise socket.gaierror(-2, "Name or service not known")

        monkeypatch.setattr(socket, "create_connection", fail)
        started = time.monotonic()
        assert data.download_host_reachable("example.invalid", timeout_s=5) is False
        assert time.monotonic() - started < 1

    def test_probe_reports_an_open_connection(self, monkeypatch):
        class Connection:
            def close(self):
                pass

        monkeypatch.setattr(socket, "create_connection", lambda *args, **kwargs: Connection())
        assert data.download_host_reachable("example.invalid", timeout_s=5) is True

    def test_real_offline_load_fails_within_10_seconds(self, tmp_path):
        if data.download_host_reachable(data.DOWNLOAD_HOSTS["mnist"]):
            pytest.skip("the download host is reachable: this test is for offline machines")
        started = time.monotonic()
        with pytest.raises(DataError, match="cannot be reached"):
            data.load_dataset("mnist", data_dir=tmp_path)
        assert time.monotonic() - started < 10

    def test_failed_download_becomes_a_data_error(self, monkeypatch, tmp_path):
        def fail(self, *args, **kwargs):
            raise OSError("quota exceeded")

        monkeypatch.setattr(data_tfds, "download_host_reachable", lambda host, timeout_s=3.0: True)
        monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", fail)
        with pytest.raises(DataError, match="downloading it failed .*quota exceeded"):
            data.load_dataset("mnist", data_dir=tmp_path)

    def test_missing_data_dir(self, tmp_path):
        with pytest.raises(DataError, match="does not exist"):
            data.load_dataset("mnist", data_dir=tmp_path / "nowhere")


# ---------------------------------------------------------------------------------------------
# CelebA from the official files


class TestCelebAFolder:
    def test_splits_follow_the_partition_file_in_name_order(self, celeb_a_dir):
        for split, first in (("train", 0), ("eval", 2), ("test", 4)):
            images, labels = data.load_arrays("celeb_a", split, labels=True, data_dir=celeb_a_dir)
            assert images.shape == (2, 64, 64, 3)
            # Even-numbered files are white (255) inside the crop, odd ones grey (200).
            np.testing.assert_allclose(images[:, 32, 32, 0], [1.0, 200 / 255], atol=0.02)
            assert labels.shape == (2, 40) and labels.dtype == np.int32

    def test_crops_the_central_148_square(self, celeb_a_dir):
        images = data.load_arrays("celeb_a", "train", data_dir=celeb_a_dir)
        assert images[0].min() > 0.9  # the black border lies outside the crop

    def test_attributes_are_matched_by_name(self, celeb_a_dir):
        _, labels = data.load_arrays("celeb_a", "eval", labels=True, data_dir=celeb_a_dir)
        # File i has attribute column j (reversed header) set when (i + j) % 3 == 0.
        for row, i in enumerate((2, 3)):
            expected = [int((i + (39 - k)) % 3 == 0) for k in range(40)]
            np.testing.assert_array_equal(labels[row], expected)

    def test_missing_partition_file(self, celeb_a_dir):
        (celeb_a_dir / "list_eval_partition.txt").unlink()
        with pytest.raises(DataError, match="no list_eval_partition.txt"):
            data.load_dataset("celeb_a", data_dir=celeb_a_dir)

    def test_malformed_partition_line_names_file_and_line(self, celeb_a_dir):
        (celeb_a_dir / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg seven\n")
        with pytest.raises(DataError, match=r"list_eval_partition.txt:2: expected"):
            data.load_dataset("celeb_a", data_dir=celeb_a_dir)

    def test_labels_need_the_attribute_file(self, celeb_a_dir):
        (celeb_a_dir / "list_attr_celeba.txt").unlink()
        assert data.load_arrays("celeb_a", "eval", data_dir=celeb_a_dir).shape == (2, 64, 64, 3)
        with pytest.raises(DataError, match="labels=True needs list_attr_celeba.txt"):
            data.load_dataset("celeb_a", labels=True, data_dir=celeb_a_dir)

    def test_listed_but_missing_image_is_named(self, celeb_a_dir):
        (celeb_a_dir / "img_align_celeba" / "000003.jpg").unlink()
        with pytest.raises(DataError, match="000003.jpg"):
            data.load_dataset("celeb_a", "eval", data_dir=celeb_a_dir)
        dataset = data.load_dataset("celeb_a", "eval", data_dir=celeb_a_dir, skip_corrupt=True)
        assert sum(int(b.shape[0]) for b in dataset) == 1
        assert dataset.skipped_files.count == 1


# ---------------------------------------------------------------------------------------------
# Folder of images


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
        _save(tmp_path / "a.png", stripes)
        _save(tmp_path / "b.png", stripes)
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
        _save(tmp_path / "c.bmp", red)
        _save(tmp_path / "d.png", rgba)
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
        _save(tmp_path / "only.png", _noise_image(0))
        assert data.load_arrays("folder", "train", data_dir=tmp_path).shape[0] == 1
        with pytest.raises(DataError, match="only 1 image, so its eval split is empty"):
            data.load_dataset("folder", "eval", data_dir=tmp_path)


class TestFolderLabels:
    def test_label_is_the_index_of_the_sorted_top_level_folder(self, image_tree):
        for split in ("train", "eval"):
            dataset = data.load_dataset(
                "folder", split, 32, labels=True, data_dir=image_tree, shuffle=False
            )
            _, labels = _concatenated(dataset)
            files = data.split_folder_files(data.list_image_files(str(image_tree)))[split]
            np.testing.assert_array_equal(
                labels, [0 if f.startswith("cats/") else 1 for f in files]
            )
        info = data.dataset_info("folder", image_tree)
        assert info.num_classes == 2 and info.label_names == ("cats", "dogs")

    def test_labels_need_sub_directories(self, tmp_path):
        for i in range(3):
            _save(tmp_path / f"{i}.png", _noise_image(i))
        with pytest.raises(DataError, match="labels=True needs one sub-directory per class"):
            data.load_dataset("folder", labels=True, data_dir=tmp_path)

    def test_labels_refuse_images_outside_class_folders(self, image_tree):
        _save(image_tree / "stray.png", _noise_image(5))
        with pytest.raises(DataError, match="directly in .*first: stray.png"):
            data.load_dataset("folder", labels=True, data_dir=image_tree)


class TestCorruptImages:
    @pytest.fixture
    def broken_tree(self, image_tree):
        (image_tree / "cats" / "random.jpg").write_bytes(np.random.default_rng(0).bytes(500))
        _truncate(_save(image_tree / "dogs" / "cut.png", _noise_image(50)))
        return image_tree

    def test_unreadable_file_stops_before_training_with_its_name(self, broken_tree):
        with pytest.raises(DataError) as raised:
            for split in ("train", "eval"):
                data.load_dataset("folder", split, data_dir=broken_tree)
        message = str(raised.value)
        assert "random.jpg" in message or "cut.png" in message
        assert "skip_corrupt=True" in message and "unreadable" in message

    def test_truncated_jpeg_is_named_while_iterating(self, tmp_path):
        for i in range(3):
            _save(tmp_path / f"{i}.jpg", _noise_image(i, 64, 64), quality=95)
        broken = _truncate(tmp_path / "1.jpg")
        dataset = data.load_dataset("folder", "train", data_dir=tmp_path)
        with pytest.raises(tf.errors.OpError) as raised:
            _all_batches(dataset)
        assert str(broken) in str(raised.value)
        error = data.data_error_from(raised.value)
        assert isinstance(error, DataError) and str(broken) in str(error)

    def test_skip_corrupt_skips_and_reports(self, broken_tree, caplog):
        _truncate(_save(broken_tree / "cats" / "cut.jpg", _noise_image(60, 64, 64), quality=95))
        total, skipped = 0, {}
        with caplog.at_level(logging.WARNING, logger="training.data"):
            for split in ("train", "eval"):
                dataset = data.load_dataset(
                    "folder", split, 4, data_dir=broken_tree, skip_corrupt=True
                )
                total += sum(int(batch.shape[0]) for batch in dataset)
                skipped.update(dataset.skipped_files.reasons)
        assert total == 12
        assert sorted(os.path.basename(path) for path in skipped) == [
            "cut.jpg",
            "cut.png",
            "random.jpg",
        ]
        assert "skipped" in caplog.text and "cut.jpg" in caplog.text

    def test_data_error_from_ignores_other_errors(self):
        assert data.data_error_from(ValueError("something else")) is None


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


# ---------------------------------------------------------------------------------------------
# Arguments, info, arrays


class TestArguments:
    def test_unknown_dataset(self):
        with pytest.raises(
            DataError, match="unknown dataset 'mnsit'; choose one of: shapes, digits"
        ):
            data.load_dataset("mnsit")

    def test_unknown_split(self):
        with pytest.raises(DataError, match="unknown split 'valid' for dataset 'digits'"):
            data.load_dataset("digits", "valid")

    @pytest.mark.parametrize("batch_size", [0, -1, 2.5, True, "32"])
    def test_bad_batch_size(self, batch_size):
        with pytest.raises(DataError, match="batch_size must be a positive integer"):
            data.load_dataset("digits", batch_size=batch_size)

    def test_bad_size(self):
        with pytest.raises(DataError, match="size must be a positive integer or None"):
            data.load_dataset("shapes", size=0)

    @pytest.mark.parametrize("shape", [(64, 64), (64, 64, 2), (0, 64, 3), "64", (64.0, 64, 3)])
    def test_invalid_image_shape(self, shape):
        with pytest.raises(DataError, match="image_shape must be \\(height, width, channels\\)"):
            data.load_dataset("digits", image_shape=shape)

    def test_image_shape_a_dataset_cannot_give(self):
        with pytest.raises(DataError, match="not available for 'shapes'"):
            data.load_dataset("shapes", image_shape=(64, 64, 3))
        with pytest.raises(DataError, match="'mnist': it is grayscale"):
            data.load_dataset("mnist", image_shape=(32, 32, 3))

    def test_digits_accept_another_size(self):
        assert data.load_arrays("digits", limit=2, image_shape=(16, 16, 1)).shape == (2, 16, 16, 1)


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

    def test_folder_info_counts_the_files(self, image_tree):
        sizes = data.dataset_info("folder", image_tree).sizes
        assert sizes["train"] + sizes["eval"] == 12 and sizes["test"] == sizes["eval"]

    def test_load_arrays_gives_the_first_eval_images_in_order(self):
        images, factors = data.load_arrays("shapes", "eval", limit=10, labels=True, seed=7)
        expected_images, expected_factors = data.generate_shapes(10, seed=7, split="eval")
        np.testing.assert_array_equal(images, expected_images)
        np.testing.assert_array_equal(factors, expected_factors)


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


class TestRunEvalImages:
    def test_a_run_with_seed_3_gets_its_own_eval_images(self):
        from training.config import RunConfig

        config = RunConfig(dataset="shapes", seed=3, eval_size=8).resolved()
        images = data.run_eval_images(config, 8)
        np.testing.assert_array_equal(images, data.generate_shapes(8, seed=3, split="eval")[0])
        assert not np.array_equal(images, data.generate_shapes(8, seed=0, split="eval")[0])


class TestSkipCorruptWarning:
    def test_the_warning_shows_the_named_files_own_error(self, tmp_path, caplog):
        from training.data.common import Options
        from training.data.common import SkippedFiles
        from training.data.pipeline import readable_files

        first = tmp_path / "a.png"
        first.write_bytes(b"")
        _truncate(_save(tmp_path / "b.png", _noise_image(50)))
        good = _save(tmp_path / "c.png", _noise_image(51))
        paths = [str(first), str(tmp_path / "b.png"), good]
        reasons = data.check_image_files(paths)
        assert len(set(reasons.values())) == 2  # two different errors
        options = Options(batch_size=1, seed=0, shuffle=False, labels=False, image_shape=(8, 8, 3),
                          skip_corrupt=True, skipped=SkippedFiles())
        with caplog.at_level(logging.WARNING, logger="training.data"):
            kept, _ = readable_files(paths, np.zeros(3), "here", options)
        assert kept == [good]
        assert f"(first: {str(first)!r}, {reasons[str(first)]})" in caplog.text


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

    def test_a_fifo_named_by_a_reader_is_unreadable_not_opened(self, tmp_path):
        from tests.helpers import within_seconds

        os.mkfifo(tmp_path / "000001.jpg")
        with within_seconds(10):
            unreadable = data.check_image_files([str(tmp_path / "000001.jpg")])
        assert list(unreadable.values()) == ["not a regular file (a FIFO, socket or device)"]

    def test_file_names_that_are_not_utf8_are_read(self, tmp_path):
        root = os.fsencode(str(tmp_path))
        for index in range(12):
            name = os.fsdecode(root + b"/" + bytes([0xE0 + index]) + b"\xff image.png")
            Image.fromarray(_noise_image(index)).save(name)
        Image.fromarray(_noise_image(99)).save(tmp_path / "plain.png")
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
            Image.fromarray(_noise_image(index)).save(tmp_path / f"{index}.png")
        odd = os.fsdecode(os.fsencode(str(tmp_path)) + b"/\xff.png")
        with open(odd, "wb") as handle:
            handle.write(b"not an image")
        with pytest.raises(DataError, match=r"cannot read image .*\\udcff\.png"):
            for split in ("train", "eval"):
                data.load_dataset("folder", split, data_dir=tmp_path)


def _folder_config(root):
    from training.config import RunConfig

    return RunConfig(dataset="folder", data_dir=str(root), architecture="shapes").resolved()
