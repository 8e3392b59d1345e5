"""Pretrained presets: trained autoencoders with their weights, shipped in the package.

A preset is a directory with three files: `config.json` (the model, as Keras
serialises it), `model.weights.h5` (float32 weights) and `metadata.json` (how it was
trained: the command, the settings, its effective rank and eval MSE). The built-in ones
live in `irmae_keras/weights/NAME/` and load with no network; any directory written by
`save_to_preset` loads the same way.

Example:
```python
import irmae_keras

irmae_keras.list_presets()                       # {"shapes_irmae_l2": {...}, ...}
model = irmae_keras.Autoencoder.from_preset("shapes_irmae_l2")
codes = model.encoder(images)                    # images: float32 (N, 32, 32, 3) in [0, 1]
model.save_to_preset("my_preset", metadata={"note": "fine-tuned"})
```
"""

import json
import os

import keras

from irmae_keras.api_export import irmae_export
from irmae_keras.utils import atomic_path
from irmae_keras.utils import write_json_atomic

PRESETS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"


@irmae_export("irmae_keras.list_presets")
def list_presets():
    """The built-in pretrained presets: name → their metadata (what was trained, how,
    its effective rank and eval MSE).

    Returns:
        dict. Sorted by name.
    """
    presets = {}
    if os.path.isdir(PRESETS_DIR):
        for name in sorted(os.listdir(PRESETS_DIR)):
            path = os.path.join(PRESETS_DIR, name, METADATA_FILE)
            if os.path.isfile(path):
                presets[name] = _read_json(path, name)
    return presets


def preset_path(name_or_dir):
    """The directory of a built-in preset name, or `name_or_dir` itself when it is a
    directory; ValueError naming the choices otherwise."""
    if os.path.isdir(os.path.join(PRESETS_DIR, str(name_or_dir))) and os.sep not in str(name_or_dir):
        return os.path.join(PRESETS_DIR, name_or_dir)
    if os.path.isdir(name_or_dir):
        return name_or_dir
    raise ValueError(
        f"unknown preset {name_or_dir!r}: not a built-in preset ({', '.join(list_presets()) or 'none'}) "
        "nor a directory written by save_to_preset."
    )


def load_preset(name_or_dir):
    """The `Autoencoder` of a preset (built-in name or directory), weights loaded,
    not compiled. ValueError, in one line, for a missing or corrupt preset."""
    path = preset_path(name_or_dir)
    for name in (CONFIG_FILE, WEIGHTS_FILE, METADATA_FILE):
        if not os.path.isfile(os.path.join(path, name)):
            raise ValueError(f"preset {path} is incomplete: it has no {name}.")
    config = _read_json(os.path.join(path, CONFIG_FILE), path)
    try:
        model = keras.saving.deserialize_keras_object(config, safe_mode=True)
    except Exception as error:  # Keras raises many types for a config it cannot build
        raise ValueError(f"preset {path}: cannot build its model ({_first_line(error)}).") from None
    try:
        model.load_weights(os.path.join(path, WEIGHTS_FILE))
    except Exception as error:  # h5py and Keras raise many types for a bad file
        raise ValueError(f"preset {path}: cannot load {WEIGHTS_FILE} ({_first_line(error)}); "
                         "the file is corrupt or belongs to another model.") from None
    return model


def save_preset(model, directory, metadata=None):
    """Writes `model` as a preset directory (config, float32 weights, metadata), each
    file atomically. Returns `directory`."""
    os.makedirs(directory, exist_ok=True)
    config = keras.saving.serialize_keras_object(model)
    write_json_atomic(os.path.join(directory, CONFIG_FILE), config)
    with atomic_path(os.path.join(directory, WEIGHTS_FILE)) as temp:
        model.save_weights(temp)
    document = {"architecture": model.architecture, "variant": model.variant,
                "latent_dim": model.latent_dim, "linear_layers": model.linear_layers,
                "image_shape": list(model.image_shape), "keras_version": keras.__version__,
                **(metadata or {})}
    write_json_atomic(os.path.join(directory, METADATA_FILE), document)
    return directory


def _read_json(path, what):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as error:
        raise ValueError(f"preset {what}: cannot read {os.path.basename(path)} ({_first_line(error)}).") from None


def _first_line(error):
    text = " ".join(str(error).split())
    return (text[:200] + " ...") if len(text) > 200 else (text or type(error).__name__)
