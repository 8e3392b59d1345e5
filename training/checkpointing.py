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
import secrets

import keras
import numpy as np


TEMP_PREFIX = ".tmp-"


def atomic_target(path):
    """A fresh temp path beside `path`: same directory (so `os.replace` is
    atomic) and same name at the end (Keras picks the format from the suffix)."""
    directory, name = os.path.split(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    return os.path.join(directory, f"{TEMP_PREFIX}{secrets.token_hex(4)}-{name}")


def remove_stale_temps(directory):
    """Deletes temp files a killed process left in `directory` (not recursive)."""
    if not os.path.isdir(directory):
        return
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if name.startswith(TEMP_PREFIX) and os.path.isfile(path):
            os.remove(path)


def write_json_atomic(path, document):
    """Writes JSON to `path` through a temp file and a rename."""
    temp = atomic_target(path)
    with open(temp, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(temp, path)


def save_model_atomic(model, path):
    """`model.save(path)` that never leaves a partial file at `path`."""
    temp = atomic_target(path)
    try:
        model.save(temp)
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)


def weights_are_finite(model):
    return all(np.all(np.isfinite(keras.ops.convert_to_numpy(w))) for w in model.weights)


def _logs_are_finite(logs):
    return all(
        not isinstance(value, (int, float)) or math.isfinite(value)
        for value in (logs or {}).values()
    )


class AtomicModelCheckpoint(keras.callbacks.Callback):
    """Saves the whole model (`.keras`) at every epoch end, atomically.

    Args:
        filepath: str. Where the model goes, e.g. `run_dir/model.keras`.
        enabled: bool. `False` on non-chief workers, which train but write nothing.
    """

    def __init__(self, filepath, enabled=True):
        super().__init__()
        self.filepath = filepath
        self.enabled = enabled
        self.last_saved_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        if not self.enabled or not _logs_are_finite(logs) or not weights_are_finite(self.model):
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
        backup_dir: str. Where the state lives (`run_dir/backup`).
        write: bool. `False` on non-chief workers: they restore from the chief's
            backup (a shared directory) but never write it.
        delete_checkpoint: bool. Remove the backup when training ends normally.
    """

    def __init__(self, backup_dir, write=True, delete_checkpoint=True):
        super().__init__(backup_dir, save_freq="epoch", delete_checkpoint=delete_checkpoint,
                         double_checkpoint=False)
        self.write = write
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

    def _load_model(self):
        try:
            with open(self._metadata_path, encoding="utf-8") as handle:
                metadata = json.load(handle)
            weights = os.path.join(self.backup_dir, metadata["weights"])
            epoch = int(metadata["epoch"])
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise OSError(f"unreadable training backup {self._metadata_path}: {error}") from error
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(weights)
        self.model._initial_epoch = epoch

    def on_train_end(self, logs=None):
        if self.write:
            super().on_train_end(logs)

    def _save_model(self):
        if not self.write or not weights_are_finite(self.model):
            return
        os.makedirs(self.backup_dir, exist_ok=True)
        name = f"epoch-{self._current_epoch:04d}.weights.h5"
        target = os.path.join(self.backup_dir, name)
        temp = atomic_target(target)
        self.model.save_weights(temp, overwrite=True)
        os.replace(temp, target)
        write_json_atomic(self._metadata_path, {"epoch": self._current_epoch, "weights": name})
        for old in os.listdir(self.backup_dir):
            if old.startswith("epoch-") and old != name:
                os.remove(os.path.join(self.backup_dir, old))
