"""One run configuration: every setting of a training run, paper defaults per dataset.

`config.json` in a run directory holds `{"config": {...}, "versions": {...},
"git_commit": ..., "hardware": {...}}`; `RunConfig.load(path)` reads it back, so a run can be repeated
with `python -m training.fit --config RUN_DIR/config.json`.

"""

import dataclasses
import hashlib
import json
import math
import os
import re
import stat
import subprocess
import sys
import typing

from export.errors import UsageError
from export.manifest import package_versions
from irmae_keras import paper
from irmae_keras.layers import TYING_MODES
from irmae_keras.models import VARIANTS
from training.data.registry import DATASETS  # name → DataSource: each dataset's defaults
from training.data.registry import get as dataset_source

MODELS = VARIANTS  # the library's variants
OPTIMIZERS = ("adam", "adam-keras", "sgd", "rmsprop")
STRATEGIES = ("auto", "default", "mirrored", "multi_worker")
TYINGS = TYING_MODES
# Each architecture's paper n and l: irmae_keras.paper, read here and not restated.
ARCHITECTURES = tuple(paper.IMAGE_SHAPES)
# Budget settings that make a default run name of their own when not the paper's.
RUN_NAME_TAGS = (("train_size", "train"), ("eval_size", "eval"), ("epochs", "ep"),
                 ("steps_per_epoch", "spe"), ("batch_size", "b"), ("lr", "lr"), ("optimizer", ""))
# Model settings an experiment's run name tags when not the default: field → its part.
EXPERIMENT_NAME_PARTS = (("init_scale", lambda value: name_part("init", value)), ("stack_initializer", str),
                         ("tying", str), ("freeze_stack", lambda value: "frozen"), ("stack_activation", str))
# Longest --run-name in bytes: the lock and swap names beside it add up to 20 to the
# file system's 255.
MAX_RUN_NAME_BYTES = 200
SEED_LIMIT = 2**32  # numpy's seeds are 32-bit
FOLDER_HASH_DIGITS = 8  # of the folder's real path, in a folder run's default name


@dataclasses.dataclass
class RunConfig:
    """Every setting of one training run.

    `None` fields take the dataset's paper default when `resolved()` is called.
    """

    dataset: str = "shapes"
    data_dir: str | None = None
    skip_corrupt: bool = False
    architecture: str | None = None
    model: str = "irmae"
    linear_layers: int | None = None
    latent_dim: int | None = None
    epochs: int = paper.EPOCHS
    batch_size: int = paper.BATCH_SIZE
    lr: float = paper.LEARNING_RATE
    optimizer: str = "adam"
    init_scale: float = 1.0
    stack_initializer: str | None = None
    tying: str = "none"
    freeze_stack: bool = False
    stack_activation: str | None = None
    penalty: float = paper.PENALTY
    kl_weight: float = paper.KL_WEIGHT
    seed: int = 0
    train_size: int | None = None
    eval_size: int | None = None
    steps_per_epoch: int | None = None
    strategy: str = "auto"
    mixed_precision: bool = False
    jit_compile: bool = False
    steps_per_execution: int | str = "auto"
    run_name: str | None = None
    output_dir: str = "saved_models"
    export: bool = True

    def resolved(self):
        """A copy with dataset defaults filled in, validated (UsageError if not)."""
        _check_choice("--dataset", self.dataset, DATASETS)
        config = dataclasses.replace(self)
        if config.architecture is None:
            config.architecture = dataset_source(self.dataset).architecture
        _check_choice("--architecture", config.architecture, ARCHITECTURES)
        # An explicit architecture brings its own paper sizes (a folder trained with
        # the shapes architecture gets n=32, l=2), unless -n / -l are given.
        defaults = paper.ARCHITECTURES[config.architecture]
        if config.latent_dim is None:
            config.latent_dim = defaults["latent_dim"]
        if config.linear_layers is None:
            config.linear_layers = defaults["linear_layers"] if config.model == "irmae" else 0
        if config.data_dir:
            _check_path("--data-dir", config.data_dir)
            # Where the data is, whatever directory the command runs from: part of the run.
            config.data_dir = os.path.abspath(os.path.expanduser(config.data_dir))
        if config.run_name is None:
            config.run_name = config.default_run_name()
        config.validate()
        return config

    # ------------------------------------------------------------- run names
    # Two kinds of run name, built from the same parts (each rule below is written once):
    # a run's default name tags the training settings that differ from the paper's; an
    # experiment's names the model settings it varies and its budget, which stands for
    # the training settings. Neither can become the other without renaming the runs that
    # committed results and the README are keyed by.

    def default_run_name(self):
        """`DATASET-MODEL-lL-nN-sSEED`, then each training-budget setting that differs
        from the paper's (`-train20000-eval2000-ep10`), so that runs of other settings
        never share a default name (the quickstart's and the paper's, say). A folder's
        DATASET is `folder-NAME-HASH`: another image folder is another run."""
        parts = [self._name_stem(), name_part("s", self.seed)]
        parts += [name_part(tag, getattr(self, field)) for field, tag in RUN_NAME_TAGS if self._is_not_default(field)]
        return "-".join(parts)

    def experiment_run_name(self, budget, size=None):
        """An experiment's run name: `DATASET-MODEL-lL-nN`, each model setting that
        differs from the default and the optimizer with its learning rate when either
        does (`-init0.3`, `-frozen`, `-sgd1`), `-sSEED`, the settings of a run smaller
        than its budget's (`-epochs3-trainsize5000`, sorted), then the budget's name:
        `shapes-irmae-l2-n32-init0.3-s0-cpu`. A run one experiment trained is reused by
        another that asks for the same settings.

        Args:
            budget: str. The budget's name (`cpu`, `paper`, ...).
            size: dict or None. The training settings that make this run smaller than
                the budget's runs (the optimizer sweep's); a sized run never shares a
                name with the full-size run of the same settings.
        """
        parts = [self._name_stem()]
        parts += [part(getattr(self, field)) for field, part in EXPERIMENT_NAME_PARTS if self._is_not_default(field)]
        if self._is_not_default("optimizer") or self._is_not_default("lr"):
            parts.append(name_part(self.optimizer, self.lr))
        parts.append(name_part("s", self.seed))
        parts += [name_part(key.replace("_", ""), value) for key, value in sorted((size or {}).items())]
        parts.append(budget)
        return "-".join(parts)

    def _name_stem(self):
        """What every run name starts with: `DATASET-MODEL-lL-nN` (`ld` before the depth
        is resolved)."""
        depth = self.linear_layers if self.linear_layers is not None else "d"
        return "-".join([self.data_name(), self.model, name_part("l", depth), name_part("n", self.latent_dim)])

    def _is_not_default(self, field):
        return getattr(self, field) != getattr(RunConfig, field)

    def data_name(self):
        """The data part of the default run name: the dataset, and for a folder its base
        name and a short hash of its real path (`folder-holidays-1a2b3c4d`)."""
        if not dataset_source(self.dataset).needs_data_dir or not self.data_dir:
            return self.dataset
        real = os.path.realpath(os.path.expanduser(self.data_dir))
        base = re.sub(r"[^A-Za-z0-9_]+", "_", os.path.basename(real)).strip("_")[:32] or "root"
        digest = hashlib.sha256(os.fsencode(real)).hexdigest()[:FOLDER_HASH_DIGITS]
        return f"{self.dataset}-{base}-{digest}"

    def validate(self):
        _check_choice("--dataset", self.dataset, DATASETS)
        _check_choice("--model", self.model, MODELS)
        _check_choice("--optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("--strategy", self.strategy, STRATEGIES)
        _check_choice("--tying", self.tying, TYINGS)
        _check_choice("--architecture", self.architecture, ARCHITECTURES)
        fits = dataset_source(self.dataset).fits
        if self.architecture not in fits:
            raise UsageError(
                f"--architecture {self.architecture} does not fit --dataset {self.dataset}; "
                f"use {' or '.join(fits)}."
            )
        _check_min("--linear-layers", self.linear_layers, 0)
        _check_min("--latent-dim", self.latent_dim, 1)
        _check_min("--epochs", self.epochs, 1)
        _check_min("--batch-size", self.batch_size, 1)
        _check_min("--seed", self.seed, 0)
        if self.seed >= SEED_LIMIT:
            raise UsageError(f"--seed must be below 2**32 ({SEED_LIMIT}); got {self.seed}.")
        spe = self.steps_per_execution
        if spe != "auto" and (isinstance(spe, bool) or not isinstance(spe, int) or spe < 1):
            raise UsageError(f"--steps-per-execution must be auto or an integer >= 1; got {spe!r}.")
        for flag, value in (("--steps-per-epoch", self.steps_per_epoch),
                            ("--train-size", self.train_size),
                            ("--eval-size", self.eval_size)):
            if value is not None:
                _check_min(flag, value, 1)
        for flag, value in (("--lr", self.lr), ("--init-scale", self.init_scale)):
            if not (value > 0 and math.isfinite(value)):
                raise UsageError(f"{flag} must be a finite number > 0; got {value}.")
        _check_keras_name("--stack-initializer", self.stack_initializer, "initializer",
                          "glorot_uniform, he_normal, orthogonal")
        _check_keras_name("--stack-activation", self.stack_activation, "activation",
                          "relu, tanh, gelu")
        if self.stack_initializer is not None and self.init_scale != 1.0:
            raise UsageError(
                "--init-scale scales the default stack initializer; it cannot be combined "
                f"with --stack-initializer {self.stack_initializer}."
            )
        for flag, value in (("--penalty", self.penalty), ("--kl-weight", self.kl_weight)):
            if not (value >= 0 and math.isfinite(value)):
                raise UsageError(f"{flag} must be a finite number >= 0; got {value}.")
        if self.model in ("ae", "vae") and self.linear_layers:
            raise UsageError(
                f"--model {self.model} has no linear layers: -l/--linear-layers must be 0, "
                f"got {self.linear_layers} (use --model irmae for a linear stack)."
            )
        if self.model == "irmae" and self.linear_layers == 0:
            raise UsageError(
                "--model irmae needs -l/--linear-layers >= 1 (use --model ae for l = 0)."
            )
        if dataset_source(self.dataset).needs_data_dir and not self.data_dir:
            raise UsageError(f"--dataset {self.dataset} needs --data-dir DIR (a folder of images).")
        if self.run_name is not None and (
            not self.run_name or os.sep in self.run_name or "\0" in self.run_name
            or self.run_name.startswith(".")
        ):
            raise UsageError(
                f"--run-name must be a plain directory name, not hidden (no leading '.'); "
                f"got {self.run_name!r}."
            )
        if self.run_name is not None and len(os.fsencode(self.run_name)) > MAX_RUN_NAME_BYTES:
            raise UsageError(f"--run-name is {len(os.fsencode(self.run_name))} bytes long; use at "
                             f"most {MAX_RUN_NAME_BYTES}.")
        _check_path("--output-dir", self.output_dir)
        if self.data_dir is not None:
            _check_path("--data-dir", self.data_dir)

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values, source="config"):
        """Builds a config from a dict; unknown keys are a UsageError naming them."""
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise UsageError(
                f"{source}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}."
            )
        for field in dataclasses.fields(cls):
            if field.name in values and not _has_type(values[field.name], field.type):
                raise UsageError(
                    f"{source}: setting {field.name!r} must be {_type_name(field.type)}; "
                    f"got {values[field.name]!r}."
                )
        return cls(**values)

    @classmethod
    def load(cls, path):
        """Reads `config.json` (a run directory or the file itself)."""
        _check_path("--config", path)
        if os.path.isdir(path):
            path = os.path.join(path, "config.json")
        try:
            # A FIFO would block open() until someone writes to it: only regular files.
            if not stat.S_ISREG(os.stat(path).st_mode):
                raise UsageError(f"run configuration {path} is not a regular file; pass a run "
                                 "directory or its config.json.")
            with open(path, encoding="utf-8") as handle:
                document = json.load(handle)
        except FileNotFoundError:
            raise UsageError(f"no run configuration at {path}: pass a run directory or its config.json.") from None
        except (OSError, ValueError) as error:  # ValueError: not JSON, or not UTF-8 text
            raise UsageError(f"cannot read run configuration {path}: {' '.join(str(error).split())}.") from None
        values = document.get("config", document) if isinstance(document, dict) else None
        if not isinstance(values, dict):
            raise UsageError(f"{path} is not a run configuration (expected a JSON object).")
        return cls.from_dict(values, source=path)

    def document(self):
        """What `config.json` holds: the settings, package versions, git commit."""
        return {
            "config": self.to_dict(),
            "versions": package_versions(),
            "python": sys.version.split()[0],
            "git_commit": git_commit(),
            "hardware": hardware(),
        }


def name_part(tag, value):
    """How a setting is spelled in a run name: its tag, then its value (a float as `%g`
    without a `+`: `lr1e12`, `init0.3`, `sgd1`)."""
    return f"{tag}{value:g}".replace("+", "") if isinstance(value, float) else f"{tag}{value}"


def hardware():
    """The machine a run or experiment ran on: CPU model, CPU count, GPU names."""
    import platform

    import tensorflow as tf

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    return {"cpu": cpu, "cores": os.cpu_count(), "gpus": gpus,
            "tensorflow": tf.__version__, "python": platform.python_version()}


def _check_choice(flag, value, allowed):
    if value not in allowed:
        raise UsageError(f"{flag} must be one of {', '.join(allowed)}; got {value!r}.")


def _check_path(flag, path):
    if not isinstance(path, str) or not path or "\0" in path:
        raise UsageError(f"{flag} must be a path (non-empty, without NUL bytes); got {path!r}.")


def _check_keras_name(flag, value, kind, examples):
    """UsageError unless `value` (when given) names a Keras initializer / activation."""
    if value is None:
        return
    import keras

    getter = keras.initializers.get if kind == "initializer" else keras.activations.get
    try:
        getter(value)
    # Keras raises ValueError for unknown names and KeyError for ones that need arguments.
    except Exception:  # pylint: disable=broad-except
        raise UsageError(f"{flag} {value!r} is not a Keras {kind} usable by name; use one such as "
                         f"{examples}.") from None


def _check_min(flag, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UsageError(f"{flag} must be an integer >= {minimum}; got {value!r}.")


def _allowed_types(annotation):
    """The JSON value types a RunConfig field takes (`float` takes integers too)."""
    types = typing.get_args(annotation) or (annotation,)
    return tuple(types) + ((int,) if float in types else ())


def _has_type(value, annotation):
    allowed = _allowed_types(annotation)
    if isinstance(value, bool) and bool not in allowed:
        return False
    return isinstance(value, allowed)


def _type_name(annotation):
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             type(None): "null"}
    return " or ".join(dict.fromkeys(names[t] for t in _allowed_types(annotation) if t is not int or float not in _allowed_types(annotation)))


def git_commit():
    """The commit of the source tree this package runs from, or None."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        result = subprocess.run(
            ["git", "-C", root, "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = result.stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
        capture_output=True, text=True, timeout=10,
    ).stdout.strip()
    return f"{commit}-dirty" if dirty else commit
