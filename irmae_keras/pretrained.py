"""Pretrained presets: trained autoencoders with their weights and how they were made.

A preset is a directory with three files: `config.json` (the model, as Keras
serialises it), `model.weights.h5` (float32 weights) and `metadata.json` (how it was
trained: the command, the settings, the optimizer steps, the hardware, and what it
measures on its eval images: effective rank, eval MSE, colour kept).

Where presets live:

- **built-in** presets ship inside the package (`irmae_keras/weights/NAME/`) and load
  with no network. Nothing writes there but a maintainer shipping one, explicitly:
  `python -m training.pretrained RUN_DIR NAME --out irmae_keras/weights/NAME --overwrite`.
- **user** presets live in `$KERAS_HOME/irmae_keras/presets/NAME/` (`KERAS_HOME`
  defaults to `~/.keras`, as in Keras). `save_to_preset(NAME)` and
  `python -m training.pretrained RUN_DIR NAME` write them; a user preset may not take
  a built-in's name.
- any **directory** (a path with a `/`) written by `save_to_preset(DIR)`.

`from_preset(NAME)` finds built-in names first, then user names. A preset is written
whole into a staging directory beside the old one and swapped in by renames
(`irmae_keras.staging`): an interrupted write leaves the old preset or the new one,
never a mix, and the next write repairs what it left. An existing preset is replaced
only with `overwrite=True`. Symbolic links in a preset are never followed.

Example:
```python
import irmae_keras

irmae_keras.list_presets()                       # a table: name, data, rank, MSE, colour, ...
model = irmae_keras.Autoencoder.from_preset("shapes_irmae_l2")
codes = model.encoder(images)                    # images: float32 (N, 32, 32, 3) in [0, 1]
model.save_to_preset("my_preset")                # $KERAS_HOME/irmae_keras/presets/my_preset
model = irmae_keras.Autoencoder.from_preset("my_preset")
```
"""

import contextlib
import dataclasses
import fcntl
import json
import os
import re
import shutil
import stat

import keras

from irmae_keras import staging
from irmae_keras.api_export import irmae_export

PRESETS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")  # built-in
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
PRESET_FILES = (CONFIG_FILE, WEIGHTS_FILE, METADATA_FILE)
BUILT_IN = "built-in"
USER = "user"
# Letters, digits, "_" and "-", starting with a letter or digit: never a path, a
# hidden file or "..", and the same on every file system.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
NAME_RULE = "letters, digits, _ and -, starting with a letter or digit, at most 64 characters"


class PresetError(ValueError):
    """A preset that cannot be found, read or written as asked: one line saying what,
    where and how to fix it."""


def user_presets_dir():
    """Where user presets live: `$KERAS_HOME/irmae_keras/presets`.

    `KERAS_HOME` defaults, as in Keras, to `~/.keras` (`/tmp/.keras` when the home
    folder is not writable). Read at each call, so a changed `KERAS_HOME` applies.
    """
    home = os.environ.get("KERAS_HOME")
    if not home:
        base = os.path.expanduser("~")
        home = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
    return os.path.join(home, "irmae_keras", "presets")


def is_name(name_or_dir):
    """Whether `name_or_dir` names a preset (`NAME_PATTERN`) rather than a directory."""
    return isinstance(name_or_dir, str) and NAME_PATTERN.fullmatch(name_or_dir) is not None


def check_name(name):
    """`name` if it is a plain preset name (`NAME_RULE`), else a PresetError."""
    if not is_name(name):
        raise PresetError(f"preset name {name!r} is not a plain name: use {NAME_RULE}.")
    return name


def _is_path(name_or_dir):
    text = os.fspath(name_or_dir)
    return (not isinstance(name_or_dir, str) or os.sep in text or (os.altsep or os.sep) in text
            or text.startswith("~"))


def _built_in(name):
    return staging.settled_directory(os.path.join(PRESETS_DIR, name))


def _user(name):
    return staging.settled_directory(os.path.join(user_presets_dir(), name))


def preset_path(name_or_dir):
    """The directory of a preset: a built-in name, a user name or a directory path.

    A directory an interrupted write left half-swapped resolves to the complete one
    (the new or the old preset), without writing anything.

    Raises:
        PresetError: an unknown name, a bad name, no preset at the path.
    """
    if _is_path(name_or_dir):
        path = os.path.expanduser(os.fspath(name_or_dir))
        found = staging.settled_directory(os.path.abspath(path))
        if found is None:
            raise PresetError(f"no preset directory at {path}: pass a directory written by "
                              "save_to_preset, or a preset name (irmae_keras.list_presets()).")
        return found
    if not is_name(name_or_dir):
        raise PresetError(f"{name_or_dir!r} is neither a preset name ({NAME_RULE}) nor a directory "
                          "path (one with a /, e.g. ./my_preset).")
    found = _built_in(name_or_dir) or _user(name_or_dir)
    if found is None:
        names = ", ".join(list_presets()) or "none"
        hint = (f"; the folder ./{name_or_dir} is not searched: pass './{name_or_dir}'"
                if os.path.isdir(name_or_dir) else "")
        raise PresetError(f"unknown preset {name_or_dir!r}: not a built-in or user preset "
                          f"({names}) nor a directory written by save_to_preset{hint}.")
    return found


def preset_destination(name_or_dir):
    """Where `save_preset(model, name_or_dir)` writes: a user preset's directory for a
    plain name, the directory itself for a path.

    Raises:
        PresetError: a bad name, or a built-in's name (a user preset may not take it;
            a maintainer ships a built-in by its path, `irmae_keras/weights/NAME`).
    """
    if _is_path(name_or_dir):
        return os.path.abspath(os.path.expanduser(os.fspath(name_or_dir)))
    name = check_name(name_or_dir)
    if _built_in(name):
        raise PresetError(f"{name!r} is a built-in preset: choose another name for yours (a "
                          f"built-in is replaced only by its path, {os.path.join(PRESETS_DIR, name)}).")
    return os.path.join(user_presets_dir(), name)


def check_replaceable(path, overwrite, flag="overwrite=True"):
    """PresetError unless `path` is free, or an existing preset directory (nothing but a
    preset's files) that `overwrite` allows to replace. A symbolic link is never replaced
    (nor followed)."""
    if not os.path.lexists(path):
        return
    if os.path.islink(path):
        raise PresetError(f"{path} is a symbolic link; presets never follow one: remove it or "
                          "choose another name.")
    if not os.path.isdir(path):
        raise PresetError(f"{path} exists and is not a directory; choose another name.")
    others = sorted(set(os.listdir(path)) - set(PRESET_FILES))
    if others:  # never replace a folder that holds more than a preset, even with overwrite
        raise PresetError(f"{path} exists and is not a preset (it holds {others[0]}); choose another "
                          "directory.")
    if not overwrite:
        raise PresetError(f"preset {path} already exists; pass {flag} to replace it.")


def _lstat_regular(path, what):
    """PresetError unless `path` is a regular file, not a symbolic link."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        raise PresetError(f"preset {what} is incomplete: it has no {os.path.basename(path)}.") from None
    if stat.S_ISLNK(mode):
        raise PresetError(f"preset {what}: {os.path.basename(path)} is a symbolic link; presets "
                          "never follow one (copy the file in its place).")
    if not stat.S_ISREG(mode):
        raise PresetError(f"preset {what}: {os.path.basename(path)} is not a regular file.")


def _check_preset_dir(path):
    if os.path.islink(path):
        raise PresetError(f"preset {path} is a symbolic link; presets never follow one: pass the "
                          "real directory.")
    if not os.path.isdir(path):
        raise PresetError(f"preset {path} is not a directory.")
    for name in PRESET_FILES:
        _lstat_regular(os.path.join(path, name), path)


def load_preset(name_or_dir):
    """The `Autoencoder` of a preset (built-in name, user name or directory), weights
    loaded, not compiled. PresetError, in one line, for a missing or corrupt preset."""
    path = preset_path(name_or_dir)
    _check_preset_dir(path)
    config = _read_json(os.path.join(path, CONFIG_FILE), path)
    try:
        model = keras.saving.deserialize_keras_object(config, safe_mode=True)
    except Exception as error:  # Keras raises many types for a config it cannot build
        raise PresetError(f"preset {path}: cannot build its model ({_first_line(error)}).") from None
    try:
        model.load_weights(os.path.join(path, WEIGHTS_FILE))
    except Exception as error:  # h5py and Keras raise many types for a bad file
        raise PresetError(f"preset {path}: cannot load {WEIGHTS_FILE} ({_first_line(error)}); "
                          "the file is corrupt or belongs to another model.") from None
    return model


def read_metadata(name_or_dir):
    """The `metadata.json` of a preset, as a dict."""
    path = preset_path(name_or_dir)
    _check_preset_dir(path)
    return _read_json(os.path.join(path, METADATA_FILE), path)


def preset_document(model, metadata=None):
    """The metadata a preset of `model` holds: its shape, the Keras version, and
    `metadata` (how it was trained and what it measures), checked to be JSON."""
    if metadata is not None and not isinstance(metadata, dict):
        raise PresetError(f"`metadata` must be a dict; received {type(metadata).__name__}.")
    document = {"architecture": model.architecture, "variant": model.variant,
                "latent_dim": model.latent_dim, "linear_layers": model.linear_layers,
                "image_shape": list(model.image_shape), "keras_version": keras.__version__,
                **(metadata or {})}
    try:
        json.dumps(document, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise PresetError(f"`metadata` must hold JSON values only ({_first_line(error)}).") from None
    return document


@contextlib.contextmanager
def writer_lock(parent):
    """Holds the lock of the presets folder `parent` (creating it): one writer at a
    time, so that one's repair of an interrupted write never deletes another's
    staging. Released by the OS if the process dies."""
    try:
        os.makedirs(parent, exist_ok=True)
        handle = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as error:
        raise PresetError(f"cannot create or open the presets folder {parent} ({_first_line(error)}); "
                          "set KERAS_HOME to a writable folder or pass a directory.") from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PresetError(f"another process is writing a preset in {parent}; wait for it to "
                              "finish, then run this again.") from None
        yield
    finally:
        os.close(handle)  # closing releases the lock


def save_preset(model, name_or_dir, metadata=None, overwrite=False):
    """Writes `model` as a preset: a plain name → a user preset, a path → that directory.

    The whole preset (config, float32 weights, metadata) is written into a staging
    directory beside the destination and swapped in by renames that an interruption
    at any point leaves recoverable (the old preset or the new one, never a mix).

    Args:
        model: an `Autoencoder`.
        name_or_dir: str. A plain name (`NAME_RULE`) or a directory path.
        metadata: dict or None. JSON-ready: how it was trained, what it measures.
        overwrite: bool. Replace an existing preset. Defaults to False.

    Returns:
        str. The preset's directory.

    Raises:
        PresetError: a bad or built-in name, an existing preset without `overwrite`,
            a symbolic link, metadata that is not JSON, another writer at work.
    """
    path = preset_destination(name_or_dir)
    document = preset_document(model, metadata)
    check_replaceable(path, overwrite)
    with writer_lock(os.path.dirname(path)):
        with staging.staged_directory(path, lambda p: check_replaceable(p, overwrite)) as folder:
            write_preset_files(model, folder, document)
    return path


def write_preset_files(model, folder, document):
    """The three files of a preset into `folder` (a staging directory: nobody reads
    it before it is swapped in whole, so no per-file temporary names)."""
    with open(os.path.join(folder, CONFIG_FILE), "x", encoding="utf-8") as handle:
        json.dump(keras.saving.serialize_keras_object(model), handle, indent=2, sort_keys=True)
        handle.write("\n")
    model.save_weights(os.path.join(folder, WEIGHTS_FILE))
    write_metadata(folder, document)


def write_metadata(folder, document):
    """`metadata.json` of the preset `folder`, written as the JSON of `document`."""
    text = json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n"
    with open(os.path.join(folder, METADATA_FILE), "x", encoding="utf-8") as handle:
        handle.write(text)


def replace_metadata(name_or_dir, document):
    """Replaces only the metadata of an existing preset (the weights stay byte-identical),
    through the same staged swap as `save_preset`: the other two files are copied into
    the staging directory, the new metadata written beside them."""
    path = preset_path(name_or_dir)
    _check_preset_dir(path)
    with writer_lock(os.path.dirname(path)):
        with staging.staged_directory(path, lambda p: check_replaceable(p, True)) as folder:
            for name in (CONFIG_FILE, WEIGHTS_FILE):
                shutil.copyfile(os.path.join(path, name), os.path.join(folder, name),
                                follow_symlinks=False)
            write_metadata(folder, document)
    return path


def measure(model, images, batch_size=500):
    """What a preset records about its quality, measured on `images` (its eval images):
    the effective rank (1 % threshold) and entropy rank of the codes, the MSE of the
    reconstructions (clipped to [0, 1]) and the share of colour they keep.

    Returns:
        dict with `effective_rank`, `entropy_rank`, `eval_mse`, `eval_images`,
        `colour_kept` (None for grey images).
    """
    from irmae_keras import sampling
    from irmae_keras.analysis import spectrum_document

    codes = sampling.encode(model, images, batch_size)
    document = spectrum_document(codes, sampling.decode(model, codes), images)
    return {"effective_rank": document["effective_rank"], "entropy_rank": document["entropy_rank"],
            "eval_mse": document["eval_mse"], "eval_images": document["num_codes"],
            "colour_kept": document["colour_kept"]}


# ------------------------------------------------------------------- listing


@dataclasses.dataclass(frozen=True)
class PresetInfo:
    """What a user chooses a preset by, flat. `list_presets()` gives one per preset.

    Attributes:
        name: str. What `from_preset` takes.
        kind: str. "built-in" (ships in the package) or "user" (`user_presets_dir()`).
        data: str or None. The dataset it was trained on.
        model: str or None. Variant, latent size n and depth l, e.g. "irmae n=32 l=2".
        effective_rank, eval_mse, eval_images: measured on its eval images.
        colour_kept: float or None. Share of the images' colour its reconstructions keep
            (None: grey images, or not recorded).
        command: str or None. The command that trained it.
        steps: int or None. Optimizer steps it was trained for.
        paper_steps: int or None. The steps of the paper's schedule (100 epochs of the
            whole train split, batch 32) on that data.
        hardware: str or None. The machine it was trained on ("unknown" with the reason
            in `metadata` when that was not recorded).
        problem: str or None. Why its metadata could not be read, if so.
        path: str. Its directory (not shown in the table).
        metadata: dict. The whole `metadata.json` (not shown in the table).
    """

    name: str
    kind: str
    data: str | None = None
    model: str | None = None
    effective_rank: int | None = None
    eval_mse: float | None = None
    eval_images: int | None = None
    colour_kept: float | None = None
    command: str | None = None
    steps: int | None = None
    paper_steps: int | None = None
    hardware: str | None = None
    problem: str | None = None
    path: str = dataclasses.field(default="", repr=False)
    metadata: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_metadata(cls, name, kind, path, metadata):
        get = metadata.get
        variant = get("variant")
        model = None
        if variant:
            model = f"{variant} n={get('latent_dim')}" + (f" l={get('linear_layers')}" if get("linear_layers") else "")
        return cls(name=name, kind=kind, data=get("dataset"), model=model,
                   effective_rank=get("effective_rank"), eval_mse=get("eval_mse"),
                   eval_images=get("eval_images"), colour_kept=get("colour_kept"),
                   command=get("command"), steps=get("steps"), paper_steps=get("paper_steps"),
                   hardware=get("hardware"), path=path, metadata=dict(metadata))

    @property
    def paper_budget(self):
        """Whether it was trained for at least the paper's number of steps."""
        return self.steps is not None and self.paper_steps is not None and self.steps >= self.paper_steps

    def cells(self):
        """The table row: every value as text, none printed as None."""
        if self.problem:
            return [self.name, self.kind, "", "", "", "", self.problem]
        return [self.name, self.kind, _text(self.data), _text(self.model), _text(self.effective_rank),
                _mse_text(self.eval_mse, self.eval_images), self.colour_text()]

    def colour_text(self):
        if self.colour_kept is not None:
            return f"{self.colour_kept:.0%}"
        if (self.metadata.get("image_shape") or [None])[-1] == 1:
            return "n/a (grey images)"
        return "not recorded"

    def training_text(self):
        """How it was trained, one line: command; steps (share of the paper's); hardware."""
        if self.problem:
            return self.problem
        parts = [self.command or "command not recorded"]
        if self.steps is not None:
            budget = f"{self.steps:,} steps"
            if self.paper_steps:
                budget += f", {self.steps / self.paper_steps:.0%} of the paper's schedule ({self.paper_steps:,})"
            parts.append(budget)
        hardware = self.hardware or "not recorded"
        if self.metadata.get("hardware_unknown_reason"):
            hardware += f" ({self.metadata['hardware_unknown_reason']})"
        parts.append(f"hardware: {hardware}")
        return "; ".join(parts)

    def __str__(self):
        return f"{self.name} ({self.kind}): " + ", ".join(self.cells()[2:]) + f"; {self.training_text()}"

    __repr__ = __str__  # readable in a notebook too: no None, no nested dicts


class Presets(dict):
    """`list_presets()`'s result: name → `PresetInfo`, printed as a table."""

    HEADER = ("preset", "kind", "data", "model", "effective rank", "eval MSE (images)", "colour kept")

    def __repr__(self):
        if not self:
            return f"no presets (built-in: {PRESETS_DIR}; user: {user_presets_dir()})"
        rows = [list(self.HEADER)] + [info.cells() for info in self.values()]
        widths = [max(len(row[i]) for row in rows) for i in range(len(self.HEADER))]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
        lines.append("how each was trained:")
        lines += [f"  {name}: {info.training_text()}" for name, info in self.items()]
        return "\n".join(lines)

    __str__ = __repr__


def _leftover_name(entry):
    """The preset name of an interrupted swap's leftover `.NAME.ready-*`/`.NAME.old-*`."""
    for infix in (staging.READY_INFIX, staging.RETIRED_INFIX):
        if entry.startswith(".") and infix in entry:
            return entry[1:entry.index(infix)]
    return None


def _names_in(folder):
    if not os.path.isdir(folder):
        return []
    names = set()
    for entry in os.listdir(folder):
        name = entry if is_name(entry) else _leftover_name(entry)
        if name and is_name(name):
            names.add(name)
    return sorted(names)


def _info(name, kind, path):
    try:
        _check_preset_dir(path)
        metadata = _read_json(os.path.join(path, METADATA_FILE), path)
        if not isinstance(metadata, dict):
            raise PresetError(f"preset {path}: {METADATA_FILE} is not a JSON object.")
    except PresetError as error:
        return PresetInfo(name=name, kind=kind, problem=f"unreadable: {error}", path=path)
    return PresetInfo.from_metadata(name, kind, path, metadata)


@irmae_export("irmae_keras.list_presets")
def list_presets():
    """The presets `from_preset` finds by name: built-in ones, then the user's.

    Returns:
        `Presets`: a dict, name → `PresetInfo` (data, model, effective rank, eval MSE,
        colour kept, command, steps, hardware), that prints as a table. Built-in first,
        each group sorted by name; a user preset with a built-in's name is left out
        (the built-in wins; load the user one by its path).

    Example:
    ```python
    presets = irmae_keras.list_presets()
    presets                                   # the table, in a notebook or the REPL
    presets["shapes_irmae_l2"].effective_rank
    [name for name, p in presets.items() if p.data == "shapes"]
    ```
    """
    presets = Presets()
    for name in _names_in(PRESETS_DIR):
        path = _built_in(name)
        if path is not None:
            presets[name] = _info(name, BUILT_IN, path)
    for name in _names_in(user_presets_dir()):
        path = _user(name)
        if name not in presets and path is not None:
            presets[name] = _info(name, USER, path)
    return presets


def _text(value):
    return "not recorded" if value is None else str(value)


def _mse_text(mse, images):
    if mse is None:
        return "not recorded"
    return f"{mse:.5f}" + (f" ({images})" if images else "")


def _read_json(path, what):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as error:
        raise PresetError(f"preset {what}: cannot read {os.path.basename(path)} ({_first_line(error)}).") from None


def _first_line(error):
    text = " ".join(str(error).split())
    return (text[:200] + " ...") if len(text) > 200 else (text or type(error).__name__)
