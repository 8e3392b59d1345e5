"""Encoder and decoder networks of the official IRMAE code, by name.

Every convolution has kernel 4, stride 2 and padding 1 unless noted; for even
input sizes PyTorch's padding 1 equals Keras' `padding="same"` (one pixel on each
side), which `tests/test_architectures.py` checks against numpy.
"""

import math

import keras

from irmae_keras.paper import IMAGE_SHAPES
from irmae_keras.utils import check_choice
from irmae_keras.utils import check_int
from irmae_keras.utils import float32_if_mixed

ARCHITECTURES = {name: {"image_shape": shape} for name, shape in IMAGE_SHAPES.items()}
INITIALIZERS = ("torch", "keras")
OUTPUT_ACTIVATIONS = ("tanh", "sigmoid", "linear")


def image_shape(architecture):
    """The `(height, width, channels)` an architecture takes and returns."""
    check_choice("architecture", architecture, ARCHITECTURES)
    return ARCHITECTURES[architecture]["image_shape"]


class _LayerFactory:
    """Creates conv / dense layers with the chosen weight initialisation.

    `"torch"` reproduces PyTorch's defaults for Conv2d, ConvTranspose2d and Linear:
    kernel and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)). Keras' fan-in of a
    `(kh, kw, out, in)` transposed-conv kernel is kh*kw*out, the same quirk as
    PyTorch's, so `VarianceScaling(1/3, "fan_in", "uniform")` matches for all
    three. `"keras"` uses Keras' defaults (Glorot uniform, zero bias).
    """

    def __init__(self, initializer):
        self.initializer = check_choice("initializer", initializer, INITIALIZERS)

    def _init_kwargs(self, fan_in):
        if self.initializer == "keras":
            return {}
        bound = 1.0 / math.sqrt(fan_in)
        return {
            "kernel_initializer": keras.initializers.VarianceScaling(
                scale=1.0 / 3.0, mode="fan_in", distribution="uniform"
            ),
            "bias_initializer": keras.initializers.RandomUniform(-bound, bound),
        }

    def conv(self, filters, in_channels, kernel_size=4, strides=2, padding="same",
             activation="relu", name=None):
        return keras.layers.Conv2D(
            filters, kernel_size, strides=strides, padding=padding,
            activation=activation, name=name,
            **self._init_kwargs(in_channels * kernel_size**2),
        )

    def deconv(self, filters, kernel_size=4, strides=2, padding="same",
               activation="relu", name=None):
        return keras.layers.Conv2DTranspose(
            filters, kernel_size, strides=strides, padding=padding,
            activation=activation, name=name,
            **self._init_kwargs(filters * kernel_size**2),
        )

    def dense(self, units, in_features, activation=None, name=None):
        return keras.layers.Dense(
            units, activation=activation, name=name,
            **self._init_kwargs(in_features),
        )


def _conv_stack(x, factory, in_channels, channels):
    for i, filters in enumerate(channels):
        x = factory.conv(filters, in_channels, name=f"conv_{i}")(x)
        in_channels = filters
    return x


def _deconv_stack(x, factory, channels, first_index=1):
    for i, filters in enumerate(channels, start=first_index):
        x = factory.deconv(filters, name=f"deconv_{i}")(x)
    return x


def _output(x, activation):
    # Under mixed precision the image leaves the network in float32.
    return keras.layers.Activation(activation, name="output", dtype=float32_if_mixed())(x)


def build_encoder(architecture, code_dim, initializer="torch", name="encoder_network"):
    """Builds the encoder E: image in [0, 1] → a vector of `code_dim` numbers.

    Args:
        architecture: str. `"shapes"`, `"mnist"` or `"celeb_a"`.
        code_dim: int. Width of the encoder's head: the latent size n, or 2n for
            a VAE's `[mean, log_variance]`.
        initializer: str. `"torch"` (PyTorch defaults, as the official code) or
            `"keras"` (Keras defaults). Defaults to `"torch"`.
        name: str. Name of the returned model.

    Returns:
        A functional `keras.Model` from `(H, W, C)` images to `(code_dim,)`.
    """
    shape = image_shape(architecture)
    check_int("code_dim", code_dim, 1)
    factory = _LayerFactory(initializer)
    images = keras.Input(shape, name="image")
    if architecture == "shapes":
        x = _conv_stack(images, factory, shape[-1], (32, 64, 128, 256))
        x = factory.conv(code_dim, 256, kernel_size=2, strides=1, padding="valid",
                         activation=None, name="head")(x)
        code = keras.layers.Reshape((code_dim,), name="flatten")(x)
    else:
        channels = (32, 64, 128, 256) if architecture == "mnist" else (128, 256, 512, 1024)
        x = _conv_stack(images, factory, shape[-1], channels)
        x = keras.layers.Flatten(name="flatten")(x)
        code = factory.dense(code_dim, x.shape[-1], name="head")(x)
    return keras.Model(images, code, name=name)


def build_decoder(architecture, latent_dim, output_activation="tanh",
                  initializer="torch", name="decoder_network"):
    """Builds the decoder D: a code of `latent_dim` numbers → an image.

    Args:
        architecture: str. `"shapes"`, `"mnist"` or `"celeb_a"`.
        latent_dim: int. The latent size n.
        output_activation: str. `"tanh"` (AE / IRMAE, as the official code),
            `"sigmoid"` (VAE) or `"linear"`. Defaults to `"tanh"`.
        initializer: str. `"torch"` or `"keras"`. Defaults to `"torch"`.
        name: str. Name of the returned model.

    Returns:
        A functional `keras.Model` from `(latent_dim,)` to `(H, W, C)` images.
    """
    shape = image_shape(architecture)
    check_int("latent_dim", latent_dim, 1)
    check_choice("output_activation", output_activation, OUTPUT_ACTIVATIONS)
    factory = _LayerFactory(initializer)
    code = keras.Input((latent_dim,), name="code")
    if architecture == "shapes":
        x = keras.layers.Reshape((1, 1, latent_dim), name="unflatten")(code)
        x = factory.deconv(256, kernel_size=2, strides=1, padding="valid",
                           name="deconv_0")(x)
        x = _deconv_stack(x, factory, (128, 64, 32))
        x = factory.deconv(shape[-1], activation=None, name="deconv_4")(x)
    else:
        width = 128 if architecture == "mnist" else 1024
        # The official mnist decoder applies a ReLU after the reshape; celeb_a does not.
        dense_activation = "relu" if architecture == "mnist" else None
        x = factory.dense(8 * 8 * width, latent_dim, activation=dense_activation,
                          name="dense_0")(code)
        x = keras.layers.Reshape((8, 8, width), name="unflatten")(x)
        channels = (64, 32) if architecture == "mnist" else (512, 256, 128)
        x = _deconv_stack(x, factory, channels)
        x = factory.deconv(shape[-1], kernel_size=1, strides=1, activation=None,
                           name=f"deconv_{len(channels) + 1}")(x)
    return keras.Model(code, _output(x, output_activation), name=name)
