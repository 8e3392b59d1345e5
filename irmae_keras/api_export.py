"""One decorator that names a public symbol and registers it for `.keras` loading."""

import keras

PACKAGE = "irmae_keras"


class irmae_export:
    """Registers a class or function as serializable under the `irmae_keras` package.

    Args:
        path: str. The public dotted name, e.g. `"irmae_keras.layers.LinearStack"`.
            Recorded on the symbol as `_irmae_public_name` for documentation.
    """

    def __init__(self, path):
        self.path = path

    def __call__(self, symbol):
        symbol._irmae_public_name = self.path
        name = self.path.split(".")[-1]
        return keras.saving.register_keras_serializable(package=PACKAGE, name=name)(
            symbol
        )
