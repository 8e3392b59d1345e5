"""Tests of training.data.tfds: mnist and celeb_a through the real tfds code on mocked data,
and the offline probe that fails fast."""

import socket
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

from export.errors import DataError
from tests.data_helpers import concatenated
from training import data
from training.data import tfds as data_tfds


@pytest.fixture
def tfds_online(monkeypatch):
    """tfds mocked with random examples; the connectivity probe pretends to be online."""
    monkeypatch.setattr(data_tfds, "download_host_reachable", lambda host, timeout_s=3.0: True)
    with tfds.testing.mock_data(num_examples=5):
        yield


class TestTfdsMocked:
    def test_mnist_is_32x32x1_in_zero_one_with_labels(self, tfds_online):
        for split in data.SPLITS:
            images, labels = concatenated(data.load_dataset("mnist", split, 4, labels=True))
            assert images.shape == (5, 32, 32, 1) and images.dtype == np.float32
            assert 0 <= images.min() and images.max() <= 1 and images.std() > 0
            assert labels.dtype == np.int32 and labels.min() >= 0 and labels.max() <= 9

    def test_celeb_a_is_64x64x3_with_40_attributes(self, tfds_online):
        for split in data.SPLITS:
            images, labels = concatenated(data.load_dataset("celeb_a", split, 2, labels=True))
            assert images.shape == (5, 64, 64, 3) and images.dtype == np.float32
            assert 0 <= images.min() and images.max() <= 1 and images.std() > 0
            assert labels.shape == (5, 40) and set(np.unique(labels)) <= {0, 1}

    def test_size_caps_the_examples(self, tfds_online):
        assert (
            concatenated(data.load_dataset("mnist", "train", 2, labels=True, size=3))[0].shape[0]
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
        reachable = data.download_host_reachable(data.MNIST_TFDS.host)
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
        if data.download_host_reachable(data.MNIST_TFDS.host):
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
