"""Reading a run directory (`config.json` + `model.keras`, as `training.fit` writes it).

`check_run_dir` needs no TensorFlow, so CLIs reject a wrong path before the slow
import; `load_run` then loads the model. Every problem is a UsageError in one line.

Example:
```python
config, model = load_run("saved_models/shapes-irmae-l2-n32-s0")
codes = model.encoder(images)
```
"""

import os
import zipfile

from training.config import RunConfig
from training.errors import UsageError

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
MAX_REASON = 300


def check_run_dir(run_dir):
    """The run's configuration, after checking that `run_dir` holds a model and one.

    Args:
        run_dir: str. A directory written by `python -m training.fit`.

    Returns:
        `RunConfig`, resolved (dataset defaults filled in).

    Raises:
        UsageError: the path does not exist, is not a directory, or lacks
            `config.json` or `model.keras`.
    """
    if not os.path.exists(run_dir):
        raise UsageError(f"{run_dir} does not exist; pass a run directory written by training.fit.")
    if not os.path.isdir(run_dir):
        raise UsageError(f"{run_dir} is not a directory; pass a run directory written by training.fit.")
    for name in (CONFIG_FILE, MODEL_FILE):
        if not os.path.isfile(os.path.join(run_dir, name)):
            raise UsageError(
                f"{run_dir} is not a run directory: it has no {name} (training.fit writes one)."
            )
    return RunConfig.load(run_dir).resolved()


def load_run(run_dir):
    """Loads a run directory's configuration and trained autoencoder.

    Args:
        run_dir: str. A directory written by `python -m training.fit`.

    Returns:
        `(config, model)`: the resolved `RunConfig` and the
        `irmae_keras.Autoencoder` of `run_dir/model.keras`.

    Raises:
        UsageError: not a run directory, an unreadable model, a model that is
            not an irmae_keras Autoencoder, or one with non-finite weights.
    """
    config = check_run_dir(run_dir)
    model_path = os.path.join(run_dir, MODEL_FILE)
    model = load_model_file(model_path)
    check_model(model, model_path)
    return config, model


def load_model_file(model_path):
    """`keras.models.load_model(model_path)` (safe mode, not compiled), or a UsageError."""
    import keras

    import irmae_keras  # noqa: F401  (registers Autoencoder and its layers for loading)

    if model_path.endswith(".keras") and not zipfile.is_zipfile(model_path):
        # Keras would report a corrupt archive as "File not found".
        raise UsageError(
            f"cannot load {model_path}: not a .keras archive (corrupt or truncated file?)."
        )
    try:
        return keras.models.load_model(model_path, safe_mode=True, compile=False)
    except Exception as error:  # Keras raises many types for a file it cannot read
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if len(reason) > MAX_REASON:  # Keras quotes a whole model config in some errors
            reason = reason[:MAX_REASON] + " ..."
        raise UsageError(f"cannot load {model_path} as a Keras model: {reason}") from None


def check_model(model, where="the model"):
    """UsageError unless `model` is an irmae_keras Autoencoder with finite weights."""
    import keras
    import numpy as np

    import irmae_keras

    if not isinstance(model, irmae_keras.Autoencoder):
        raise UsageError(
            f"{where} holds a {type(model).__name__} named {getattr(model, 'name', '?')!r}, "
            "not an irmae_keras Autoencoder (build one with irmae_keras.build_autoencoder)."
        )
    for weight in model.weights:
        if not np.all(np.isfinite(keras.ops.convert_to_numpy(weight))):
            raise UsageError(
                f"{where} has NaN or infinite values in weight {weight.path!r}; "
                "the training diverged: use an earlier checkpoint."
            )


def output_dir(run_dir, out, default_name):
    """Where a CLI writes: `out`, else `run_dir/default_name`; UsageError if it is a file.

    Nothing is created here: a command that fails writes nothing.
    """
    path = out or os.path.join(run_dir, default_name)
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"--out {path} exists and is not a directory.")
    return path


def run_label(config):
    """A short legend label: run name, variant, depth l."""
    return f"{config.run_name} ({config.model}, l={config.linear_layers})"
