import csv
import io

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorboard.backend.event_processing import event_accumulator

import irmae_keras
from irmae_keras.callbacks import RankMonitor
from irmae_keras.callbacks import ReconstructionGrid
from tests.helpers import square_images


def _model():
    model = irmae_keras.build_autoencoder("shapes", latent_dim=8)
    model.compile()
    return model


def _events(log_dir):
    """{tag: [(step, tensor proto)]} of every summary written under `log_dir`."""
    accumulator = event_accumulator.EventAccumulator(
        str(log_dir), size_guidance={event_accumulator.TENSORS: 0}
    )
    accumulator.Reload()
    return {
        tag: [(event.step, event.tensor_proto) for event in accumulator.Tensors(tag)]
        for tag in accumulator.Tags()["tensors"]
    }


def _decode_image_summary(tensor_proto):
    # An image summary is a string tensor [width, height, PNG bytes...].
    encoded = tf.make_ndarray(tensor_proto)
    return np.asarray(Image.open(io.BytesIO(encoded[2])))


def _read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


class TestRankMonitor:
    def test_logs_reach_history_csv_and_tensorboard(self, tmp_path):
        images = square_images((32, 32, 3), batch=16)
        model = _model()
        monitor = RankMonitor(images, log_dir=str(tmp_path / "rank"), intrinsic_dim=7)
        history = model.fit(
            images, epochs=2, batch_size=8, verbose=0,
            callbacks=[monitor, keras.callbacks.CSVLogger(str(tmp_path / "history.csv"))],
        )
        ranks = history.history["effective_rank"]
        entropies = history.history["entropy_rank"]
        assert len(ranks) == 2 and all(1 <= r <= 8 for r in ranks)
        assert all(1.0 <= e <= 8.0 for e in entropies)
        # The last value is the rank of the trained model's codes of those images.
        codes = keras.ops.convert_to_numpy(model.encoder(images))
        assert ranks[-1] == irmae_keras.effective_rank(codes)
        assert entropies[-1] == pytest.approx(irmae_keras.effective_rank(codes, method="entropy"), rel=1e-5)
        np.testing.assert_allclose(monitor.spectrum, irmae_keras.singular_spectrum(codes), atol=1e-5)

        rows = _read_csv(tmp_path / "history.csv")
        assert [int(float(row["effective_rank"])) for row in rows] == ranks
        np.testing.assert_allclose([float(row["entropy_rank"]) for row in rows], entropies)

        events = _events(tmp_path / "rank")
        assert set(events) == {"rank/effective_rank", "rank/entropy_rank", "rank/log10_spectrum", "rank/spectrum"}
        assert [step for step, _ in events["rank/effective_rank"]] == [0, 1]
        assert [float(tf.make_ndarray(t)) for _, t in events["rank/effective_rank"]] == ranks
        histogram = tf.make_ndarray(events["rank/log10_spectrum"][-1][1])  # rows: left, right, count
        assert histogram[:, 2].sum() == 8
        picture = _decode_image_summary(events["rank/spectrum"][0][1])
        assert picture.shape == (440, 640, 3) and picture.std() > 10

    def test_frequency_logs_nan_on_skipped_epochs(self, graph_mode):
        images = square_images((32, 32, 3), batch=8)
        history = _model().fit(images, epochs=3, batch_size=8, verbose=0, callbacks=[RankMonitor(images, frequency=2)])
        ranks = history.history["effective_rank"]
        assert np.isnan(ranks[0]) and np.isnan(ranks[2]) and ranks[1] >= 1
        assert np.isnan(history.history["entropy_rank"][0])

    def test_a_csv_logger_before_the_monitor_misses_the_ranks(self, tmp_path):
        images = square_images((32, 32, 3), batch=8)
        _model().fit(images, epochs=1, verbose=0, callbacks=[
            keras.callbacks.CSVLogger(str(tmp_path / "early.csv")), RankMonitor(images),
        ])
        assert "effective_rank" not in _read_csv(tmp_path / "early.csv")[0]

    def test_max_images_keeps_the_first_images(self):
        images = square_images((32, 32, 3), batch=10)
        np.testing.assert_array_equal(RankMonitor(images, max_images=4).eval_images, images[:4])

    def test_needs_an_autoencoder(self):
        inputs = keras.Input((32, 32, 3))
        plain = keras.Model(inputs, keras.layers.Conv2D(3, 1)(inputs))
        plain.compile(loss="mse")
        images = square_images((32, 32, 3), batch=4)
        with pytest.raises(ValueError, match=r"RankMonitor needs a model with an `\.encoder` sub-model"):
            plain.fit(images, images, epochs=1, verbose=0, callbacks=[RankMonitor(images)])

    @pytest.mark.parametrize(
        "kwargs, match",
        [
            ({"threshold": 1.0}, r"`threshold` must be in \[0, 1\)"),
            ({"frequency": 0}, "`frequency` must be an integer >= 1"),
            ({"max_images": 1}, "`max_images` must be an integer >= 2"),
        ],
    )
    def test_invalid_arguments(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            RankMonitor(square_images((32, 32, 3), batch=4), **kwargs)

    def test_invalid_images(self):
        with pytest.raises(ValueError, match=r"`eval_images` must be an array \(N >= 2, height, width, channels\)"):
            RankMonitor(np.zeros((1, 32, 32, 3)))


class TestReconstructionGrid:
    def test_writes_originals_above_reconstructions(self, tmp_path):
        images = square_images((32, 32, 3), batch=4)
        model = _model()
        model.fit(images, epochs=2, verbose=0, callbacks=[ReconstructionGrid(images, str(tmp_path), frequency=2)])
        events = _events(tmp_path)
        assert list(events) == ["reconstructions"]
        assert [step for step, _ in events["reconstructions"]] == [1]  # only the 2nd epoch
        grid = _decode_image_summary(events["reconstructions"][0][1])
        assert grid.shape == (64, 128, 3)
        np.testing.assert_array_equal(grid[:32], irmae_keras.plots.image_grid(images, 1, 4))
        reconstructions = np.clip(keras.ops.convert_to_numpy(model(images)), 0, 1)
        np.testing.assert_array_equal(grid[32:], irmae_keras.plots.image_grid(reconstructions, 1, 4))

    def test_needs_a_log_dir(self):
        with pytest.raises(ValueError, match="`log_dir` must be a directory path"):
            ReconstructionGrid(square_images((32, 32, 3), batch=2), None)


def test_rank_monitor_logs_nan_ranks_for_a_diverged_model():
    model = irmae_keras.build_autoencoder("shapes", latent_dim=4, linear_layers=2)
    model.compile()
    for weight in model.linear_stack.weights:
        weight.assign(np.full(weight.shape, np.nan))
    monitor = RankMonitor(square_images((32, 32, 3), batch=8))
    monitor.set_model(model)
    logs = {}
    monitor.on_epoch_end(0, logs)
    assert np.isnan(logs["effective_rank"]) and np.isnan(logs["entropy_rank"])
    assert monitor.spectrum is None


class TestStepProgbarLogger:
    """Keras reports a compiled call's last step as first + steps_per_execution - 1, so an
    epoch of 3 steps run 16 per call showed `16/3`; the bar counts the epoch's steps."""

    @staticmethod
    def _counts(text):
        import re

        return re.findall(r"(\d+)/(\d+)", text.replace("\x1b", " "))

    def test_a_call_past_the_epochs_end_counts_the_epochs_steps(self):
        bar = irmae_keras.callbacks.StepProgbarLogger()
        bar.set_params({"verbose": 1, "epochs": 1, "steps": 3})
        bar.on_epoch_begin(0)
        bar.on_train_batch_end(3)  # the second call of 2 steps, as Keras numbers it
        assert bar.seen == 3

    def test_fit_counts_the_steps_it_ran(self, capsys):
        model = irmae_keras.build_autoencoder("shapes", latent_dim=4)
        model.compile(steps_per_execution=16)
        images = square_images((32, 32, 3), batch=12)
        model.fit(images, batch_size=4, epochs=1, verbose=1)  # 3 steps in a call of 16
        counts = self._counts(capsys.readouterr().out)
        assert counts and all(int(done) <= int(total) == 3 for done, total in counts)
        assert ("3", "3") in counts

    def test_keras_own_bar_is_kept_when_given(self):
        given = keras.callbacks.ProgbarLogger()
        assert irmae_keras.callbacks.with_step_progbar([given], verbose=1) == [given]
        assert irmae_keras.callbacks.with_step_progbar(None, verbose=0) == []
