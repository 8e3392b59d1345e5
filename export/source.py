"""Loading the model to export from a `.keras` file, checked (no run directories here)."""

import os
import zipfile

from export.errors import UsageError

MAX_REASON = 300


def load_model_file(model_path):
    """The `irmae_keras.Autoencoder` of a `.keras` file (safe mode, not compiled),
    checked by `check_model`; every problem is a UsageError in one line."""
    import keras

    import irmae_keras  # noqa: F401  (registers Autoencoder and its layers for loading)

    if not os.path.isfile(model_path):
        raise UsageError(f"{model_path} does not exist or is not a file; pass a .keras model file.")
    if model_path.endswith(".keras") and not zipfile.is_zipfile(model_path):
        # Keras would report a corrupt archive as "File not found".
        raise UsageError(
            f"cannot load {model_path}: not a .keras archive (corrupt or truncated file?)."
        )
    try:
        model = keras.models.load_model(model_path, safe_mode=True, compile=False)
    except Exception as error:  # Keras raises many types for a file it cannot read
        reason = " ".join(str(error).split()) or type(error).__name__
        if len(reason) > MAX_REASON:  # Keras quotes a whole model config in some errors
            reason = reason[:MAX_REASON] + " ..."
        raise UsageError(f"cannot load {model_path} as a Keras model: {reason}") from None
    check_model(model, model_path)
    return model


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
