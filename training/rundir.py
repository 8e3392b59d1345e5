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
import errno
import fcntl
import json
import os
import socket
import stat
import sys
import time

from export.atomic import check_writable_dir
from export.errors import UsageError
from irmae_keras.staging import TEMP_PREFIX
from irmae_keras.staging import recover_staged_directory
from irmae_keras.staging import write_json_atomic
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
# What the project writes in a run directory: never a symbolic link, a FIFO or a device.
RUN_FILES = (CONFIG_FILE, MODEL_FILE, STATUS_FILE, HISTORY_FILE, SPECTRUM_FILE, TIMING_FILE)
RUN_DIRS = (BACKUP_DIR, LOGS_DIR, FIGURES_DIR, EXPORT_DIR, EVALUATION_DIR, CLASSIFICATION_DIR)
SPECTRUM_KEYS = ("singular_values", "effective_rank", "entropy_rank", "eval_mse", "num_codes")


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
        """`.NAME.lock` beside the run's real directory: an alias (a symbolic link to the
        run) gets the same lock."""
        return lock_path_of(self.path)

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
        self.check_files()
        for name in (CONFIG_FILE, MODEL_FILE):
            if not os.path.isfile(self.file(name)):
                raise UsageError(
                    f"{self.path} is not a run directory: it has no {name} (training.fit writes one)."
                )
        return self.read_config().resolved()

    def check_files(self):
        """UsageError naming the first of the run's own files or folders (config.json,
        backup/, everything under logs/, ...) that is a symbolic link or a special file
        (a FIFO, a socket, a device): they are never followed or opened, so no command
        reads or writes outside the run or blocks on a pipe. The run directory itself may
        be reached through a link (its lock is that of its real path)."""
        if not os.path.isdir(self.path):
            return
        for name in RUN_FILES:
            check_entry(self.file(name), "file")
        for name in RUN_DIRS:
            if check_entry(self.file(name), "directory"):
                # os.walk lists a link to a directory among the directories, never entering it.
                for root, directories, files in os.walk(self.file(name)):
                    for entry in directories + files:
                        check_entry(os.path.join(root, entry), None)

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

    def read_spectrum(self):
        """`spectrum.json` as a dict holding every key of SPECTRUM_KEYS; UsageError in one
        line when it is missing, unreadable or incomplete."""
        try:
            with open(self.spectrum_path, encoding="utf-8") as handle:
                spectrum = json.load(handle)
        except (OSError, ValueError):
            spectrum = None
        missing = (list(SPECTRUM_KEYS) if not isinstance(spectrum, dict)
                   else [key for key in SPECTRUM_KEYS if key not in spectrum])
        if missing:
            raise UsageError(
                f"{self.spectrum_path} is missing, unreadable or lacks {', '.join(missing)}: run the "
                "same training.fit command again, which rewrites it (the model is not retrained)."
            )
        return spectrum

    def read_timing(self):
        try:
            with open(self.timing_path, encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return None

    def history_column(self, name):
        """The values of one `history.csv` column, one per logged epoch."""
        try:
            with open(self.history_path, encoding="utf-8", newline="") as handle:
                return [float(row[name]) for row in csv.DictReader(handle)]
        except (ValueError, KeyError, TypeError, csv.Error) as error:
            raise UsageError(
                f"{self.history_path} has no readable {name!r} column ({type(error).__name__}: "
                f"{error}); it is a log: move it away, or retrain the run with --overwrite."
            ) from None

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
        try:
            with open(self.history_path, newline="", encoding="utf-8") as handle:
                rows = list(csv.reader(handle))
        except (ValueError, csv.Error) as error:  # not text, or a NUL byte
            raise UsageError(
                f"{self.history_path} is not a CSV text file ({type(error).__name__}); move it away "
                "and run the same command again: the run resumes and starts a new history."
            ) from None
        if not rows:
            return
        kept = [rows[0]] + [row for row in rows[1:] if row and row[0].isdigit() and int(row[0]) < epochs]
        from irmae_keras.staging import atomic_path

        with atomic_path(self.history_path) as temp:
            with open(temp, "w", newline="", encoding="utf-8") as handle:
                csv.writer(handle).writerows(kept)

    def repair(self):
        """Brings back what a killed process left half-done: temp files are
        removed, an export swap interrupted mid-way is completed or undone."""
        for directory in (self.path, self.backup_dir):
            remove_stale_temps(directory)
        recover_staged_directory(self.export_dir)

    def save_preset(self, name_or_dir, command, overwrite=False):
        """Writes the run's model as a pretrained preset (`irmae_keras.pretrained`: a plain
        name is a user preset, a path that directory), with what a user of the preset
        should know (`training.provenance.preset_metadata`): the command that trained it,
        its settings, optimizer steps and hardware, and its spectrum's effective rank,
        eval MSE and colour kept."""
        from training.provenance import preset_metadata

        config, model = self.load()
        spectrum = self.read_spectrum()
        try:
            with open(self.config_path, encoding="utf-8") as handle:
                hardware = json.load(handle).get("hardware")
        except (OSError, ValueError, AttributeError):
            hardware = None
        numbers = dict(spectrum, eval_images=spectrum["num_codes"], colour_kept=spectrum.get("colour_kept"))
        metadata = preset_metadata(config, command, numbers, hardware,
                                   hardware_unknown_reason=f"the run's {CONFIG_FILE} does not record it")
        return model.save_to_preset(name_or_dir, metadata=metadata, overwrite=overwrite)

    # -------------------------------------------------------------------- lock

    @contextlib.contextmanager
    def lock(self):
        """Holds the run's lock for the block (`hold_lock`): UsageError naming the
        holder if another process has it, whatever path it reached the run by."""
        with hold_lock(self.path, "--output-dir"):
            yield self


# ------------------------------------------------------------------ helpers


def lock_path_of(path):
    """The lock file of a run or export directory: `.NAME.lock` beside its real path."""
    parent, name = os.path.split(os.path.realpath(path))
    return os.path.join(parent, f".{name}.lock")


@contextlib.contextmanager
def hold_lock(path, flag):
    """Holds the exclusive lock of the directory `path` (a run, an export) for the block.

    The lock file (`lock_path_of`) is keyed by the real path, so every alias of one
    directory gets one lock; it is opened without following a link and must be a plain
    file of one name (a link or a hard link would have another file truncated). A
    second holder gets a UsageError naming the first. The OS releases the lock when the
    process dies (kill -9 included), so a stale lock file never blocks a rerun.

    Args:
        path: str. The directory (it need not exist yet).
        flag: str. The option that chose its parent, for messages (`--output-dir`).
    """
    lock = lock_path_of(path)
    check_writable_dir(os.path.dirname(lock), flag)
    os.makedirs(os.path.dirname(lock), exist_ok=True)
    try:
        descriptor = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                             0o666)
    except OSError as error:
        why = "is a symbolic link" if error.errno == errno.ELOOP else f"cannot be opened ({error.strerror})"
        raise UsageError(f"the lock file {lock} {why}; delete it (it is made again).") from None
    info = os.fstat(descriptor)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(descriptor)
        raise UsageError(f"the lock file {lock} is not a plain file of one name (a hard link or a "
                         "special file); delete it (it is made again).")
    with os.fdopen(descriptor, "r+", encoding="utf-8") as handle:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = handle.read(1000).strip() or "another process"
            raise UsageError(f"{path} is in use by {holder}; wait for it to finish or stop it, "
                             "then run the command again.") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()} on {socket.gethostname()} "
                     f"(started {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(sys.argv[:1])})\n")
        handle.flush()
        yield path


@contextlib.contextmanager
def locked_runs(paths):
    """Holds the lock of every run in `paths` (each real directory once) for the block."""
    with contextlib.ExitStack() as stack:
        seen = set()
        for path in paths:
            if lock_path_of(path) not in seen:
                seen.add(lock_path_of(path))
                stack.enter_context(RunDir(path).lock())
        yield


def check_entry(path, kind):
    """UsageError if `path` is a symbolic link or a special file; whether it exists.

    Args:
        path: str.
        kind: "file", "directory" or None (either) — what the project writes there.
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(mode):
        raise UsageError(
            f"{path} is a symbolic link; a run's files are never read or written through links: "
            "replace it by what it points to, or remove it."
        )
    wanted = {"file": stat.S_ISREG, "directory": stat.S_ISDIR}
    if not any(test(mode) for name, test in wanted.items() if kind in (None, name)):
        raise UsageError(
            f"{path} is a {file_kind(mode)}, not a {kind or 'file or directory'}; move it away "
            "(a run holds only the files and folders training.fit writes there)."
        )
    return True


def file_kind(mode):
    """What an `lstat` mode is, in words (for messages)."""
    for test, name in ((stat.S_ISREG, "regular file"), (stat.S_ISDIR, "directory"),
                       (stat.S_ISLNK, "symbolic link"), (stat.S_ISFIFO, "FIFO (named pipe)"),
                       (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device")):
        if test(mode):
            return name
    return "special file"


def remove_stale_temps(directory):
    """Deletes temp files a killed process left in `directory` (not recursive; a link
    is removed itself, and a linked directory is never entered)."""
    if os.path.islink(directory) or not os.path.isdir(directory):
        return
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if name.startswith(TEMP_PREFIX) and (os.path.islink(path) or os.path.isfile(path)):
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
