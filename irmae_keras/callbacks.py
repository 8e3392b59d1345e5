"""Training callbacks: the code rank while training, and reconstruction grids.

Both are plain `keras.callbacks.Callback`s (callbacks are not serialised).

**Order matters.** Keras passes one `logs` dict to the callbacks in list order,
then to `History` and the progress bar, which it appends last. `RankMonitor`
adds `effective_rank` and `entropy_rank` to that dict, so a `CSVLogger` or
Keras `TensorBoard` callback records them only when it comes *after*
`RankMonitor` in the `callbacks` list; `History` always does.

Example:
```python
model.fit(images, epochs=100, callbacks=[
    RankMonitor(eval_images[:2048], log_dir="run/logs/rank"),
    ReconstructionGrid(eval_images[:8], log_dir="run/logs/images"),
    keras.callbacks.CSVLogger("run/history.csv"),  # after RankMonitor
])
```
"""

import keras
import numpy as np
import tensorflow as tf

from irmae_keras import plots
from irmae_keras.analysis import rank_from_spectrum
from irmae_keras.analysis import singular_spectrum
from irmae_keras.paper import RANK_THRESHOLD
from irmae_keras.utils import check_images
from irmae_keras.utils import check_int
from irmae_keras.utils import map_in_batches


class _EpochSummaryCallback(keras.callbacks.Callback):
    """Shared parts: the every-`frequency`-epochs test and a lazily opened summary writer."""

    def __init__(self, log_dir, frequency):
        super().__init__()
        self.log_dir = log_dir
        self.frequency = check_int("frequency", frequency, 1)
        self._writer = None

    def _due(self, epoch):
        return (epoch + 1) % self.frequency == 0

    def _summary_writer(self):
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        return self._writer

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class RankMonitor(_EpochSummaryCallback):
    """Logs the effective rank of the codes of a fixed eval batch while training.

    Every `frequency`-th epoch it encodes `eval_images` with `model.encoder`,
    computes the singular spectrum of the code covariance and adds to the epoch
    `logs`:

    - `effective_rank`: the number of normalised singular values above
      `threshold` (`analysis.effective_rank`);
    - `entropy_rank`: the entropy effective rank (Roy & Vetterli, 2007).

    On the other epochs, and when the codes are not finite (a diverged model),
    both are NaN, so every epoch has the same keys (`CSVLogger` fixes its
    columns at the first epoch). Put it before
    `CSVLogger` / `TensorBoard` in the callback list (see the module docstring).

    With `log_dir` it also writes TensorBoard summaries at step = epoch:
    scalars `rank/effective_rank` and `rank/entropy_rank`, a histogram
    `rank/log10_spectrum` of log10 of the normalised singular values (floored
    at 1e-12), and an image `rank/spectrum` of the spectrum plot.

    Args:
        eval_images: float32 array `(N, H, W, C)` in [0, 1], N >= 2. A fixed
            batch: the same images every time, so epochs compare.
        log_dir: str or None. TensorBoard directory. Defaults to `None`.
        threshold: float. Fraction of the largest singular value that counts.
            Defaults to `0.01`.
        frequency: int. Every how many epochs. Defaults to `1`.
        max_images: int. Uses the first `max_images` of `eval_images`; the
            covariance of n-dimensional codes needs well over n of them.
            Defaults to `2048`.
        batch_size: int. Encoder batch size. Defaults to `256`.
        intrinsic_dim: int or None. Marked on the spectrum image. Defaults to
            `None`.

    Attributes:
        spectrum: the last computed normalised spectrum, or `None`.
    """

    def __init__(self, eval_images, log_dir=None, threshold=RANK_THRESHOLD, frequency=1,
                 max_images=2048, batch_size=256, intrinsic_dim=None):
        super().__init__(log_dir, frequency)
        check_int("max_images", max_images, 2)
        self.eval_images = check_images("eval_images", eval_images, 2)[:max_images]
        # Validates `threshold` now rather than after the first epoch.
        rank_from_spectrum(np.ones(1), threshold)
        self.threshold = threshold
        self.batch_size = check_int("batch_size", batch_size, 1)
        self.intrinsic_dim = intrinsic_dim
        self.spectrum = None

    def on_train_begin(self, logs=None):
        if not isinstance(getattr(self.model, "encoder", None), keras.Model):
            raise ValueError(
                "RankMonitor needs a model with an `.encoder` sub-model (an "
                f"irmae_keras Autoencoder); received {type(self.model).__name__}."
            )

    def on_epoch_end(self, epoch, logs=None):
        logs = {} if logs is None else logs
        logs["effective_rank"] = logs["entropy_rank"] = float("nan")
        if not self._due(epoch):
            return
        codes = map_in_batches(
            lambda x: self.model.encoder(x, training=False), self.eval_images, self.batch_size
        )
        if not np.all(np.isfinite(codes)):
            # A diverged model: the ranks are undefined; stopping is TerminateOnNaN's job.
            return
        self.spectrum = singular_spectrum(codes)
        rank = rank_from_spectrum(self.spectrum, self.threshold)
        entropy = rank_from_spectrum(self.spectrum, method="entropy")
        logs["effective_rank"] = rank
        logs["entropy_rank"] = entropy
        if self.log_dir is not None:
            self._write_summaries(epoch, rank, entropy)

    def _write_summaries(self, epoch, rank, entropy):
        figure = plots.spectrum_figure(
            self.spectrum, intrinsic_dim=self.intrinsic_dim, threshold=self.threshold,
            title=f"Code spectrum, epoch {epoch + 1} (rank {rank})",
        )
        with self._summary_writer().as_default(step=epoch):
            tf.summary.scalar("rank/effective_rank", rank)
            tf.summary.scalar("rank/entropy_rank", entropy)
            tf.summary.histogram(
                "rank/log10_spectrum", np.log10(np.maximum(self.spectrum, plots.SPECTRUM_FLOOR))
            )
            tf.summary.image("rank/spectrum", plots.figure_to_array(figure)[None])
        self._writer.flush()


class ReconstructionGrid(_EpochSummaryCallback):
    """Writes originals above their reconstructions to TensorBoard.

    Every `frequency`-th epoch the image summary `reconstructions` (step =
    epoch) holds a 2 × N grid: the N `images` in the top row, the model's
    reconstructions (clipped to [0, 1]) below.

    Args:
        images: float32 array `(N, H, W, C)` in [0, 1], a fixed batch (N of 8
            or so reads well).
        log_dir: str. TensorBoard directory.
        frequency: int. Every how many epochs. Defaults to `1`.
    """

    def __init__(self, images, log_dir, frequency=1):
        if not log_dir:
            raise ValueError(
                f"`log_dir` must be a directory path for the TensorBoard summaries; "
                f"received {log_dir!r}."
            )
        super().__init__(log_dir, frequency)
        self.images = check_images("images", images)

    def on_epoch_end(self, epoch, logs=None):
        if not self._due(epoch):
            return
        reconstructions = keras.ops.convert_to_numpy(self.model(self.images, training=False))
        grid = plots.reconstruction_grid(self.images, reconstructions, cols=len(self.images))
        with self._summary_writer().as_default(step=epoch):
            tf.summary.image("reconstructions", grid[None])
        self._writer.flush()


class StepProgbarLogger(keras.callbacks.ProgbarLogger):
    """Keras' progress bar, counting steps right when several run per compiled call.

    With `steps_per_execution` > 1 Keras reports each call's last step as its first
    step + steps_per_execution - 1, so the last call of an epoch whose step count is
    not a multiple of it shows `16/8` or `640/625`, and a negative time left. This bar
    counts at most the epoch's steps. `Autoencoder.fit`, `evaluate` and `predict` use it
    whenever they print a progress bar and no other `ProgbarLogger` was passed.
    """

    def _counted(self, batch):
        return batch if self.target is None else min(batch, self.target - 1)

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(self._counted(batch), logs)

    def on_test_batch_end(self, batch, logs=None):
        super().on_test_batch_end(self._counted(batch), logs)

    def on_predict_batch_end(self, batch, logs=None):
        super().on_predict_batch_end(self._counted(batch), logs)


def with_step_progbar(callbacks, verbose):
    """`callbacks` plus a `StepProgbarLogger` where Keras would add its own bar: a
    printing `verbose` and no `ProgbarLogger` among them. A `CallbackList` (what `fit`
    hands its own validation `evaluate`) is already complete and is returned as it is."""
    if isinstance(callbacks, keras.callbacks.CallbackList):
        return callbacks
    callbacks = list(callbacks or [])
    if verbose != 0 and not any(isinstance(c, keras.callbacks.ProgbarLogger) for c in callbacks):
        callbacks.append(StepProgbarLogger())
    return callbacks
