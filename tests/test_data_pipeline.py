"""Tests of training.data.pipeline: batching, shuffling, sharding, corrupt and unreadable
files (on shapes and digits, which need no files, and on folders of images)."""

import logging
import os

import numpy as np
import pytest
import tensorflow as tf

from export.errors import DataError
from tests.data_helpers import all_batches
from tests.data_helpers import make_image_tree
from tests.data_helpers import noise_image
from tests.data_helpers import save_image
from training import data
from training.data import digits


def truncate(path):
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    return path


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


class TestCorruptImages:
    @pytest.fixture
    def broken_tree(self, tmp_path):
        """The two-class tree with an image that is random bytes and a truncated PNG."""
        tree = make_image_tree(tmp_path / "images")
        (tree / "cats" / "random.jpg").write_bytes(np.random.default_rng(0).bytes(500))
        truncate(save_image(tree / "dogs" / "cut.png", noise_image(50)))
        return tree

    def test_unreadable_file_stops_before_training_with_its_name(self, broken_tree):
        with pytest.raises(DataError) as raised:
            for split in ("train", "eval"):
                data.load_dataset("folder", split, data_dir=broken_tree)
        message = str(raised.value)
        assert "random.jpg" in message or "cut.png" in message
        assert "skip_corrupt=True" in message and "unreadable" in message

    def test_truncated_jpeg_is_named_while_iterating(self, tmp_path):
        for i in range(3):
            save_image(tmp_path / f"{i}.jpg", noise_image(i, 64, 64), quality=95)
        broken = truncate(tmp_path / "1.jpg")
        dataset = data.load_dataset("folder", "train", data_dir=tmp_path)
        with pytest.raises(tf.errors.OpError) as raised:
            all_batches(dataset)
        assert str(broken) in str(raised.value)
        error = data.data_error_from(raised.value)
        assert isinstance(error, DataError) and str(broken) in str(error)

    def test_skip_corrupt_skips_and_reports(self, broken_tree, caplog):
        truncate(save_image(broken_tree / "cats" / "cut.jpg", noise_image(60, 64, 64), quality=95))
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


class TestSkipCorruptWarning:
    def test_the_warning_shows_the_named_files_own_error(self, tmp_path, caplog):
        from training.data.common import Options
        from training.data.common import SkippedFiles
        from training.data.pipeline import readable_files

        first = tmp_path / "a.png"
        first.write_bytes(b"")
        truncate(save_image(tmp_path / "b.png", noise_image(50)))
        good = save_image(tmp_path / "c.png", noise_image(51))
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
    def test_a_fifo_named_by_a_reader_is_unreadable_not_opened(self, tmp_path):
        from tests.helpers import within_seconds

        os.mkfifo(tmp_path / "000001.jpg")
        with within_seconds(10):
            unreadable = data.check_image_files([str(tmp_path / "000001.jpg")])
        assert list(unreadable.values()) == ["not a regular file (a FIFO, socket or device)"]
