"""From a trained irmae_keras model to deployable SavedModel and ONNX artifacts.

`python -m export RUN_DIR` writes RUN_DIR/export/; `export.export_model(...)` is the
same from Python. This package imports no TensorFlow until `export_model` is used, so
the TF-free deploy tool `python -m export.encode` stays light.
"""

__all__ = ["export_model"]


def __getattr__(name):
    # Lazy: `import export.encode` must not pull in TensorFlow through this package.
    if name == "export_model":
        from export.api import export_model

        return export_model
    raise AttributeError(f"module 'export' has no attribute {name!r}")
