import json
import os

import keras
import numpy as np
import pytest

from irmae_keras.staging import write_json_atomic
from training.checkpointing import AtomicBackupAndRestore
from training.checkpointing import AtomicModelCheckpoint
from training.rundir import RunDir
from training.rundir import remove_stale_temps


def _tiny_model():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    return model


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(16, 3)).astype("float32"), rng.normal(size=(16, 2)).astype("float32")


class _NaNAtEpoch(keras.callbacks.Callback):
    """Poisons the weights during one epoch, as a diverging run would."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self._epoch == self.epoch:
            for weight in self.model.weights:
                weight.assign(np.full(weight.shape, np.nan))

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch


def test_atomic_model_checkpoint_saves_each_epoch_without_temp_files(tmp_path):
    model = _tiny_model()
    path = str(tmp_path / "model.keras")
    callback = AtomicModelCheckpoint(path)
    model.fit(*_data(), epochs=2, batch_size=8, verbose=0, callbacks=[callback])
    assert callback.last_saved_epoch == 1
    assert os.listdir(tmp_path) == ["model.keras"]
    restored = keras.models.load_model(path)
    np.testing.assert_allclose(restored.get_weights()[0], model.get_weights()[0])


def test_nan_epoch_keeps_the_last_good_model(tmp_path):
    model = _tiny_model()
    path = str(tmp_path / "model.keras")
    checkpoint = AtomicModelCheckpoint(path)
    backup = AtomicBackupAndRestore(str(tmp_path / "backup"), delete_checkpoint=False)
    model.fit(*_data(), epochs=4, batch_size=8, verbose=0,
              callbacks=[_NaNAtEpoch(2), keras.callbacks.TerminateOnNaN(), checkpoint, backup])
    assert checkpoint.last_saved_epoch == 1
    assert np.all(np.isfinite(keras.models.load_model(path).get_weights()[0]))
    assert AtomicBackupAndRestore.saved_epoch(str(tmp_path / "backup")) == 2


def test_backup_restores_from_one_directory_and_writes_to_another(tmp_path):
    shared, scratch = str(tmp_path / "chief"), str(tmp_path / "worker")
    model = _tiny_model()
    model.fit(*_data(), epochs=2, batch_size=8, verbose=0,
              callbacks=[AtomicBackupAndRestore(shared, delete_checkpoint=False)])
    worker = _tiny_model()
    history = worker.fit(*_data(), epochs=3, batch_size=8, verbose=0,
                         callbacks=[AtomicBackupAndRestore(shared, write_dir=scratch,
                                                           delete_checkpoint=False)])
    assert history.epoch == [2]
    assert AtomicBackupAndRestore.saved_epoch(shared) == 2  # the chief's backup is untouched
    assert AtomicBackupAndRestore.saved_epoch(scratch) == 3


def test_backup_resumes_weights_optimizer_and_epoch(tmp_path):
    backup_dir = str(tmp_path / "backup")
    model = _tiny_model()
    model.fit(*_data(), epochs=3, batch_size=8, verbose=0,
              callbacks=[AtomicBackupAndRestore(backup_dir, delete_checkpoint=False)])
    assert sorted(os.listdir(backup_dir)) == ["epoch-0003.weights.h5", "training_metadata.json"]
    assert AtomicBackupAndRestore.saved_epoch(backup_dir) == 3

    resumed = _tiny_model()
    history = resumed.fit(*_data(), epochs=5, batch_size=8, verbose=0,
                          callbacks=[AtomicBackupAndRestore(backup_dir)])
    assert history.epoch == [3, 4]
    assert int(resumed.optimizer.iterations) == 10  # 3 restored epochs of 2 steps + 2 more
    assert not os.path.exists(backup_dir)  # a run that ends normally removes its backup


def test_a_kill_between_weights_and_metadata_restores_a_consistent_epoch(tmp_path):
    backup_dir = str(tmp_path / "backup")
    model = _tiny_model()
    model.fit(*_data(), epochs=2, batch_size=8, verbose=0,
              callbacks=[AtomicBackupAndRestore(backup_dir, delete_checkpoint=False)])
    epoch_two = model.get_weights()
    # The next epoch's weights reached disk, the metadata did not move yet.
    model.fit(*_data(), epochs=1, batch_size=8, verbose=0)
    model.save_weights(os.path.join(backup_dir, "epoch-0003.weights.h5"))
    open(os.path.join(backup_dir, ".tmp-dead-epoch-0004.weights.h5"), "w").close()

    restored = _tiny_model()
    history = restored.fit(*_data(), epochs=2, batch_size=8, verbose=0,
                           callbacks=[AtomicBackupAndRestore(backup_dir, delete_checkpoint=False)])
    assert history.epoch == []  # epoch 2 of 2 was complete: nothing left to train
    for saved, loaded in zip(epoch_two, restored.get_weights()):
        np.testing.assert_array_equal(saved, loaded)


@pytest.mark.parametrize("content", [b"{", b"\xff\xfe binary", b'{"epoch": 1}'])
def test_unreadable_backup_metadata_is_one_line_naming_the_fix(tmp_path, content):
    from export.errors import UsageError

    backup_dir = tmp_path / "backup"
    backup_dir.mkdir()
    (backup_dir / "training_metadata.json").write_bytes(content)
    with pytest.raises(UsageError, match=rf"unreadable training backup .*; delete {backup_dir} to train again"):
        _tiny_model().fit(*_data(), epochs=1, verbose=0,
                          callbacks=[AtomicBackupAndRestore(str(backup_dir))])
    assert (backup_dir / "training_metadata.json").read_bytes() == content


def test_write_json_atomic_and_stale_temp_cleanup(tmp_path):
    write_json_atomic(str(tmp_path / "a.json"), {"x": 1})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1}
    (tmp_path / ".tmp-1234-model.keras").write_text("partial")
    (tmp_path / "keep.txt").write_text("keep")
    remove_stale_temps(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["a.json", "keep.txt"]


def test_truncate_history_drops_epochs_that_will_be_redone(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss\n0,1.0\n1,0.5\n2,0.4\n")
    RunDir(str(tmp_path)).truncate_history(2)
    assert path.read_text().splitlines() == ["epoch,loss", "0,1.0", "1,0.5"]
