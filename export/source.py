"""The model to export (a run directory or a `.keras` file) and the images to check it on."""

import dataclasses
import os
import zipfile

import keras
import numpy as np

import irmae_keras
from export.manifest import sha256_file
from training.config import RunConfig
from training.errors import UsageError

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"


@dataclasses.dataclass
class Source:
    """A loaded model and where it came from.

    Attributes:
        model: `irmae_keras.Autoencoder`.
        model_path: str. The `.keras` file.
        run_dir: str or None. The run directory, when the model sits in one.
        config: `RunConfig` or None. The run's configuration.
        sha256: str. Of the `.keras` file.
    """

    model: object
    model_path: str
    run_dir: str | None
    config: RunConfig | None
    sha256: str


def load_source(path):
    """Loads `path`: a run directory (its `model.keras`) or a `.keras` file.

    A `config.json` beside the model makes its directory a run directory. Every
    problem is a UsageError in one line: missing, unreadable, not an
    `Autoencoder` of irmae_keras, non-finite weights.
    """
    if not os.path.exists(path):
        raise UsageError(f"{path} does not exist; pass a run directory or a model .keras file.")
    model_path = os.path.join(path, MODEL_FILE) if os.path.isdir(path) else path
    if not os.path.isfile(model_path):
        raise UsageError(f"{path} is not a run directory: it has no {MODEL_FILE}.")
    run_dir = os.path.dirname(os.path.abspath(model_path))
    if not os.path.isfile(os.path.join(run_dir, CONFIG_FILE)):
        run_dir = None
    model = _load_model(model_path)
    check_model(model, model_path)
    return Source(
        model=model,
        model_path=model_path,
        run_dir=run_dir,
        config=RunConfig.load(run_dir) if run_dir else None,
        sha256=sha256_file(model_path),
    )


def _load_model(model_path):
    if model_path.endswith(".keras") and not zipfile.is_zipfile(model_path):
        # Keras would report a corrupt archive as "File not found".
        raise UsageError(
            f"cannot load {model_path}: not a .keras archive (corrupt or truncated file?)."
        )
    try:
        return keras.models.load_model(model_path, safe_mode=True, compile=False)
    except Exception as error:  # Keras raises many types for a file it cannot read
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"cannot load {model_path} as a Keras model: {reason}") from None


def check_model(model, where="the model"):
    """UsageError unless `model` is an irmae_keras Autoencoder with finite weights."""
    if not isinstance(model, irmae_keras.Autoencoder):
        raise UsageError(
            f"{where} holds a {type(model).__name__} named {getattr(model, 'name', '?')!r}, "
            "not an irmae_keras Autoencoder (build one with irmae_keras.build_autoencoder)."
        )
    for weight in model.weights:
        if not np.all(np.isfinite(keras.ops.convert_to_numpy(weight))):
            raise UsageError(
                f"{where} has NaN or infinite values in weight {weight.path!r}; "
                "the training diverged: export an earlier checkpoint."
            )


def eval_images(dataset, *, limit, image_shape, data_dir=None):
    """The first `limit` images of `dataset`'s eval split (float32 [0, 1], NHWC)."""
    from training import data

    return data.load_arrays(
        dataset, "eval", limit=limit, data_dir=data_dir, image_shape=tuple(image_shape)
    )
