"""Crash-safe checkpoints: every file is written to a temp path, then renamed.

Keras' own `ModelCheckpoint` and `BackupAndRestore` write in place: a SIGKILL
while saving leaves a half-written `model.keras`, or backup weights one epoch
ahead of the epoch counter. These subclasses keep the Keras callback interface
and make each save atomic; neither saves weights that are no longer finite (a
NaN epoch must not replace the last good state).
"""

import json
import math
import os

import keras
import numpy as np

from export.errors import UsageError
from irmae_keras.staging import atomic_path
from irmae_keras.staging import save_model_atomic
from irmae_keras.staging import write_json_atomic


def weights_are_finite(model):
    return all(np.all(np.isfinite(keras.ops.convert_to_numpy(w))) for w in model.weights)


def _logs_are_finite(logs):
    return all(
        not isinstance(value, (int, float)) or math.isfinite(value)
        for value in (logs or {}).values()
    )


class AtomicModelCheckpoint(keras.callbacks.Callback):
    """Saves the whole model (`.keras`) at every epoch end, atomically.

    Under MultiWorkerMirroredStrategy every worker must save (saving creates
    variables, which is a collective operation): non-chief workers pass a path
    in a scratch directory.

    Args:
        filepath: str. Where the model goes, e.g. `run_dir/model.keras`.
    """

    def __init__(self, filepath):
        super().__init__()
        self.filepath = filepath
        self.last_saved_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        if not _logs_are_finite(logs) or not weights_are_finite(self.model):
            return
        save_model_atomic(self.model, self.filepath)
        self.last_saved_epoch = epoch


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` whose saved state is always one consistent epoch.

    Each epoch's weights go to their own file `epoch-NNNN.weights.h5` (temp file,
    then rename); only then does `training_metadata.json` move atomically to
    name that file and epoch; older weight files are removed after. A kill at
    any point leaves the metadata naming a complete file of the epoch it states.

    Args:
        backup_dir: str. Where the state is restored from (`run_dir/backup`).
        write_dir: str or None. Where it is saved; defaults to `backup_dir`.
            Non-chief workers of a multi-worker run restore from the chief's
            backup (a shared directory) and save into a scratch directory: every
            worker must save, since saving is a collective operation there.
        delete_checkpoint: bool. Remove the written backup when training ends
            normally.
    """

    def __init__(self, backup_dir, write_dir=None, delete_checkpoint=True):
        super().__init__(write_dir or backup_dir, save_freq="epoch",
                         delete_checkpoint=delete_checkpoint, double_checkpoint=False)
        self.restore_dir = backup_dir
        self._metadata_path = os.path.join(backup_dir, "training_metadata.json")

    @staticmethod
    def saved_epoch(backup_dir):
        """The number of completed epochs a backup holds (0 if none)."""
        try:
            with open(os.path.join(backup_dir, "training_metadata.json"), encoding="utf-8") as handle:
                return int(json.load(handle)["epoch"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def on_train_begin(self, logs=None):
        self._load_model()

    def on_train_end(self, logs=None):
        # A run stopped by TerminateOnNaN keeps its backup of the last finite epoch, so
        # that the same command resumes from it instead of from epoch 1.
        if self.model.stop_training and not weights_are_finite(self.model):
            return
        super().on_train_end(logs)

    def _load_model(self):
        try:
            with open(self._metadata_path, encoding="utf-8") as handle:
                metadata = json.load(handle)
            weights = os.path.join(self.restore_dir, metadata["weights"])
            epoch = int(metadata["epoch"])
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise UsageError(
                f"unreadable training backup {self._metadata_path} ({type(error).__name__}: "
                f"{' '.join(str(error).split())}); delete {self.restore_dir} to train again from epoch 1."
            ) from None
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(weights)
        self.model._initial_epoch = epoch

    def _save_model(self):
        if not weights_are_finite(self.model):
            return
        os.makedirs(self.backup_dir, exist_ok=True)
        name = f"epoch-{self._current_epoch:04d}.weights.h5"
        with atomic_path(os.path.join(self.backup_dir, name)) as temp:
            self.model.save_weights(temp, overwrite=True)
        metadata_path = os.path.join(self.backup_dir, "training_metadata.json")
        write_json_atomic(metadata_path, {"epoch": self._current_epoch, "weights": name})
        for old in os.listdir(self.backup_dir):
            if old.startswith("epoch-") and old != name:
                os.remove(os.path.join(self.backup_dir, old))
