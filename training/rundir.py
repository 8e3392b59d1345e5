"""`RunDir`: the one owner of a run directory's files, its state and its lock.

A run directory (`saved_models/<run-name>/`, as `python -m training.fit` writes it)
holds `config.json`, `model.keras`, `status.json`, `history.csv`, `backup/`,
`logs/`, `spectrum.json`, `figures/`, `export/`, and, after the evaluation CLIs,
`evaluation/` and `classification/`. Only this module spells those names.

Every write is atomic (temp file, then rename). The state of a run is derived from
its files, not trusted from `status.json` alone: a finished run whose export or
figures are missing is "complete" but not "finished", and the next run of the same
command rebuilds what is missing. A process that works on a run holds its lock
(`.<run-name>.lock` beside the directory, so that it survives the directory being
swapped); a second process on the same run fails with one line naming the holder.

Example:
```python
run = RunDir("saved_models/shapes-irmae-l2-n32-s0")
config, model = run.load()
codes = model.encoder(images)
```
"""

import contextlib
import csv
import fcntl
import json
import os
import socket
import sys
import time

from export.atomic import check_writable_dir
from export.atomic import recover_staged_directory
from export.errors import UsageError
from irmae_keras.utils import TEMP_PREFIX
from irmae_keras.utils import write_json_atomic
from training.config import RunConfig

CONFIG_FILE = "config.json"
MODEL_FILE = "model.keras"
STATUS_FILE = "status.json"
HISTORY_FILE = "history.csv"
SPECTRUM_FILE = "spectrum.json"
TIMING_FILE = "experiment_timing.json"
BACKUP_DIR = "backup"
LOGS_DIR = "logs"
FIGURES_DIR = "figures"
EXPORT_DIR = "export"
EVALUATION_DIR = "evaluation"
CLASSIFICATION_DIR = "classification"
FIGURE_FILES = ("spectrum.png", "reconstructions.png")


class RunDir:
    """A run directory: its file names, reads and atomic writes, state and lock.

    Args:
        path: str. The run directory (it need not exist yet).
    """

    def __init__(self, path):
        self.path = os.fspath(path)

    def __repr__(self):
        return f"RunDir({self.path!r})"

    @classmethod
    def of(cls, config):
        """The run directory of a resolved `RunConfig`: `output_dir/run_name`."""
        return cls(os.path.join(config.output_dir, config.run_name))

    # ------------------------------------------------------------- file names

    def file(self, name):
        return os.path.join(self.path, name)

    @property
    def config_path(self):
        return self.file(CONFIG_FILE)

    @property
    def model_path(self):
        return self.file(MODEL_FILE)

    @property
    def status_path(self):
        return self.file(STATUS_FILE)

    @property
    def history_path(self):
        return self.file(HISTORY_FILE)

    @property
    def spectrum_path(self):
        return self.file(SPECTRUM_FILE)

    @property
    def timing_path(self):
        return self.file(TIMING_FILE)

    @property
    def backup_dir(self):
        return self.file(BACKUP_DIR)

    @property
    def logs_dir(self):
        return self.file(LOGS_DIR)

    @property
    def figures_dir(self):
        return self.file(FIGURES_DIR)

    @property
    def export_dir(self):
        return self.file(EXPORT_DIR)

    @property
    def lock_path(self):
        parent, name = os.path.split(os.path.abspath(self.path))
        return os.path.join(parent, f".{name}.lock")

    def figure_path(self, name):
        return os.path.join(self.figures_dir, name)

    def output_dir(self, out, default_name):
        """Where a CLI writes: `out`, else `run/default_name` (EVALUATION_DIR, ...).
        Checked now (nothing is created): UsageError if it cannot be a directory."""
        path = out or self.file(default_name)
        check_writable_dir(path, "--out")
        return path

    # ----------------------------------------------------------------- reading

    def check(self):
        """The run's resolved `RunConfig`, after checking that it is a run
        directory (config.json and model.keras). UsageError in one line."""
        if not os.path.exists(self.path):
            raise UsageError(f"{self.path} does not exist; pass a run directory written by training.fit.")
        if not os.path.isdir(self.path):
            raise UsageError(f"{self.path} is not a directory; pass a run directory written by training.fit.")
        for name in (CONFIG_FILE, MODEL_FILE):
            if not os.path.isfile(self.file(name)):
                raise UsageError(
                    f"{self.path} is not a run directory: it has no {name} (training.fit writes one)."
                )
        return self.read_config().resolved()

    def has_config(self):
        return os.path.isfile(self.config_path)

    def read_config(self):
        return RunConfig.load(self.config_path)

    def load(self):
        """`(config, model)`: the resolved config and the checked `Autoencoder`."""
        from export.source import load_model_file

        config = self.check()
        return config, load_model_file(self.model_path)

    def read_status(self):
        """`status.json` as a dict ({} when missing or unreadable)."""
        try:
            with open(self.status_path, encoding="utf-8") as handle:
                status = json.load(handle)
        except (OSError, ValueError):
            return {}
        return status if isinstance(status, dict) else {}

    def read_timing(self):
        try:
            with open(self.timing_path, encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return None

    def history_column(self, name):
        """The values of one `history.csv` column, one per logged epoch."""
        with open(self.history_path, encoding="utf-8") as handle:
            return [float(row[name]) for row in csv.DictReader(handle)]

    def missing_outputs(self, exported):
        """What a finished run should hold and does not: spectrum, figures, and
        (when it exports) a complete export. Derived from the files."""
        missing = [name for name in (SPECTRUM_FILE,) if not os.path.isfile(self.file(name))]
        missing += [f"{FIGURES_DIR}/{name}" for name in FIGURE_FILES
                    if not os.path.isfile(self.figure_path(name))]
        if exported and not export_is_complete(self.export_dir):
            missing.append(EXPORT_DIR)
        return missing

    # ----------------------------------------------------------------- writing

    def write_config(self, config):
        write_json_atomic(self.config_path, config.document())

    def write_status(self, **status):
        write_json_atomic(self.status_path, dict(status, updated=time.time()))

    def write_timing(self, document):
        write_json_atomic(self.timing_path, document)

    def truncate_history(self, epochs):
        """Keeps the CSV rows of the first `epochs` epochs (a resumed run redoes the
        epoch it was killed in, which CSVLogger may already have written)."""
        if not os.path.exists(self.history_path):
            return
        with open(self.history_path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        if not rows:
            return
        kept = [rows[0]] + [row for row in rows[1:] if row and row[0].isdigit() and int(row[0]) < epochs]
        from irmae_keras.utils import atomic_path

        with atomic_path(self.history_path) as temp:
            with open(temp, "w", newline="", encoding="utf-8") as handle:
                csv.writer(handle).writerows(kept)

    def repair(self):
        """Brings back what a killed process left half-done: temp files are
        removed, an export swap interrupted mid-way is completed or undone."""
        for directory in (self.path, self.backup_dir):
            remove_stale_temps(directory)
        recover_staged_directory(self.export_dir)

    def save_preset(self, directory, command):
        """Writes the run's model as a pretrained preset (`irmae_keras.pretrained`),
        with what a user of the preset should know: the command that trained it, its
        settings, and the effective rank and eval MSE of its spectrum."""
        config, model = self.load()
        try:
            with open(self.spectrum_path, encoding="utf-8") as handle:
                spectrum = json.load(handle)
        except (OSError, ValueError):
            raise UsageError(f"{self.path} has no readable {SPECTRUM_FILE}: finish the run first "
                             "(the same training.fit command writes it).") from None
        metadata = {
            "dataset": config.dataset,
            "command": command,
            "settings": config.to_dict(),
            "effective_rank": spectrum["effective_rank"],
            "entropy_rank": spectrum["entropy_rank"],
            "eval_mse": spectrum["eval_mse"],
            "eval_images": spectrum["num_codes"],
            "colour_kept": spectrum.get("colour_kept"),
            "optimizer": "adam-keras" if config.optimizer == "adam-keras" else config.optimizer,
        }
        return model.save_to_preset(directory, metadata=metadata)

    # -------------------------------------------------------------------- lock

    @contextlib.contextmanager
    def lock(self):
        """Holds the run's lock for the block: UsageError naming the holder if
        another process has it. The OS releases it when the process dies
        (kill -9 included), so a stale lock file never blocks a rerun."""
        parent = os.path.dirname(self.lock_path)
        check_writable_dir(parent, "--output-dir")
        os.makedirs(parent, exist_ok=True)
        handle = open(self.lock_path, "a+", encoding="utf-8")
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise UsageError(
                    f"{self.path} is in use by {holder}; wait for it to finish or stop it, "
                    "then run the command again."
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"process {os.getpid()} on {socket.gethostname()} "
                         f"(started {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(sys.argv[:1])})\n")
            handle.flush()
            yield self
        finally:
            handle.close()


# ------------------------------------------------------------------ helpers


def remove_stale_temps(directory):
    """Deletes temp files a killed process left in `directory` (not recursive)."""
    if not os.path.isdir(directory):
        return
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if name.startswith(TEMP_PREFIX) and os.path.isfile(path):
            os.remove(path)


def export_is_complete(path):
    """True when `path` holds an export whose manifest lists files that all exist."""
    from export.manifest import MANIFEST

    try:
        with open(os.path.join(path, MANIFEST), encoding="utf-8") as handle:
            manifest = json.load(handle)
    except (OSError, ValueError):
        return False
    artifacts = manifest.get("artifacts") if isinstance(manifest, dict) else None
    if not isinstance(artifacts, list) or not artifacts:
        return False
    return all(isinstance(entry, dict) and os.path.exists(os.path.join(path, str(entry.get("path"))))
               for entry in artifacts)


def locate_model(path):
    """`(model_path, run)` of a run directory or a `.keras` file: the model file and
    its RunDir (None without a config.json beside it: a config.json beside a model
    file makes its folder a run directory). Checks no more than that the paths exist."""
    if not os.path.exists(path):
        raise UsageError(f"{path} does not exist; pass a run directory or a model .keras file.")
    if os.path.isdir(path):
        run = RunDir(path)
        if not os.path.isfile(run.model_path):
            raise UsageError(f"{path} is not a run directory: it has no {MODEL_FILE}.")
        return run.model_path, (run if run.has_config() else None)
    run = RunDir(os.path.dirname(os.path.abspath(path)))
    return path, (run if run.has_config() else None)


def load_run(run_dir):
    """`RunDir(run_dir).load()`: `(config, model)` of a run directory."""
    return RunDir(run_dir).load()


def run_label(config):
    """A short legend label: run name, variant, depth l."""
    return f"{config.run_name} ({config.model}, l={config.linear_layers})"
