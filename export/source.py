"""The model to export (a run directory or a `.keras` file) and the images to check it on."""

import dataclasses
import os

from export.manifest import sha256_file
from training.config import RunConfig
from training.errors import UsageError
from training.rundir import CONFIG_FILE
from training.rundir import MODEL_FILE
from training.rundir import check_model
from training.rundir import load_model_file


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
    model = load_model_file(model_path)
    check_model(model, model_path)
    return Source(
        model=model,
        model_path=model_path,
        run_dir=run_dir,
        config=RunConfig.load(run_dir) if run_dir else None,
        sha256=sha256_file(model_path),
    )


def eval_images(dataset, *, limit, image_shape, data_dir=None):
    """The first `limit` images of `dataset`'s eval split (float32 [0, 1], NHWC)."""
    from training import data

    return data.load_arrays(
        dataset, "eval", limit=limit, data_dir=data_dir, image_shape=tuple(image_shape)
    )
