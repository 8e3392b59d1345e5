"""Fold a trained linear stack into one matrix, or into the encoder's last layer;
build rank-K compact encoder/decoder pairs from the code's principal directions."""

import keras
import numpy as np

from irmae_keras import analysis
from irmae_keras.models import Autoencoder

# Layers after the encoder's head that only reshape: the head's output reaches
# the code unchanged, so a matrix applied to the code can move into the head.
_SHAPE_ONLY_LAYERS = (keras.layers.Reshape, keras.layers.Flatten, keras.layers.InputLayer)


def folded_stack_kernel(model):
    """The product W_1 @ … @ W_l of a model's stack as a numpy (n, n) array.

    The identity when the model has no stack.
    """
    if model.linear_stack is None:
        return np.eye(model.latent_dim, dtype="float32")
    return keras.ops.convert_to_numpy(model.linear_stack.folded_kernel())


def _encoder_head(encoder_network):
    """The encoder's last weighted layer, checked to be linear and followed only
    by reshapes; a ValueError otherwise."""
    layers = encoder_network.layers
    for index in range(len(layers) - 1, -1, -1):
        layer = layers[index]
        if isinstance(layer, _SHAPE_ONLY_LAYERS):
            continue
        if not isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D)) or isinstance(
            layer, keras.layers.Conv2DTranspose
        ):
            raise ValueError(
                "absorb=True needs an encoder that ends in a Dense or Conv2D layer "
                f"(optionally followed by Reshape/Flatten); its last layer "
                f"{layer.name!r} is a {type(layer).__name__}."
            )
        if layer.activation not in (None, keras.activations.linear):
            raise ValueError(
                f"absorb=True needs a linear encoder head; layer {layer.name!r} has "
                f"activation {keras.activations.serialize(layer.activation)!r}."
            )
        return layer
    raise ValueError("absorb=True needs an encoder with a weighted last layer.")


def fold_linear_stack(model, absorb=False):
    """Returns a copy of `model` whose linear stack is folded.

    The stack's l matrices become one bias-free Dense with kernel
    W_1 @ … @ W_l (`absorb=False`), or that product is multiplied into the
    encoder's last layer (the Dense head of mnist / celeb_a, the 2×2 conv of
    shapes) and the stack disappears (`absorb=True`). Both give the same codes
    and reconstructions as `model`; the result is an `Autoencoder` with
    `.encoder`, `.decoder` and `.keras` saving. A model without a stack (AE, VAE)
    is returned as an equal copy.

    Args:
        model: `Autoencoder`. The trained model; it is not modified.
        absorb: bool. Fold into the encoder's last layer. Defaults to `False`.

    Returns:
        A new `Autoencoder` with `folded` set to `"dense"` or `"encoder"`.

    Example:
    ```python
    folded = irmae_keras.fold_linear_stack(model)               # one Dense
    absorbed = irmae_keras.fold_linear_stack(model, absorb=True)  # no stack
    ```
    """
    if not isinstance(model, Autoencoder):
        raise ValueError(
            "`model` must be an irmae_keras Autoencoder; received "
            f"{type(model).__name__}."
        )
    if model.linear_stack is not None and model.linear_stack.activation is not None:
        raise ValueError(
            "`model` has an activation between its stack's matrices; a nonlinear "
            "stack cannot be folded."
        )
    kernel = folded_stack_kernel(model)
    has_stack = model.linear_stack is not None
    mode = model.folded
    if has_stack:
        mode = "encoder" if absorb else "dense"
    config = model.get_config()
    config["folded"] = mode
    folded = Autoencoder.from_config(config)
    folded.decoder_network.set_weights(model.decoder_network.get_weights())
    folded.encoder_network.set_weights(model.encoder_network.get_weights())
    if not has_stack:
        return folded
    if mode == "dense":
        folded.linear_stack.kernels[0].assign(kernel)
        return folded
    head = _encoder_head(folded.encoder_network)
    # head(x) @ K = x * (kernel @ K) + bias @ K, over the head's output axis.
    head_kernel = keras.ops.convert_to_numpy(head.kernel)
    head.kernel.assign(np.tensordot(head_kernel, kernel, axes=([-1], [0])))
    if head.use_bias:
        head.bias.assign(keras.ops.convert_to_numpy(head.bias) @ kernel)
    return folded


def _check_rank(rank, latent_dim):
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not (
        1 <= rank <= latent_dim
    ):
        raise ValueError(
            f"`rank` must be an integer from 1 to the latent size {latent_dim}; "
            f"received {rank!r}."
        )
    return int(rank)


def compact_autoencoder(model, codes, rank):
    """A rank-K encoder and decoder through the top principal directions of the codes.

    An IRMAE's codes span few directions, so K coordinates describe them: the
    encoder maps an image to `(z - mean) @ V_K` and the decoder maps K
    coordinates `c` back through `z = mean + c @ V_Kᵀ`, where `mean` and the
    columns of `V_K` are the mean and the top-K principal directions of `codes`
    (`analysis.code_pca`). Both are functional Keras models around `model`'s own
    `.encoder` / `.decoder` (shared weights) with one fixed Dense layer.

    Args:
        model: `Autoencoder`. The (typically folded) model.
        codes: array of shape `(examples, latent_dim)`: `model.encoder` outputs
            on representative images, e.g. the eval set.
        rank: int. K, from 1 to `model.latent_dim`.

    Returns:
        `(encoder, decoder)`: `keras.Model`s image → K and K → image, named
        `encoder_rank{K}` and `decoder_rank{K}`.

    Example:
    ```python
    codes = model.encoder.predict(eval_images)
    k = irmae_keras.effective_rank(codes)
    encoder, decoder = compact_autoencoder(model, codes, k)
    images = decoder(encoder(eval_images))
    ```
    """
    if not isinstance(model, Autoencoder):
        raise ValueError(
            "`model` must be an irmae_keras Autoencoder; received "
            f"{type(model).__name__}."
        )
    rank = _check_rank(rank, model.latent_dim)
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[1] != model.latent_dim:
        raise ValueError(
            f"`codes` must have shape (examples, {model.latent_dim}) for this model; "
            f"received {codes.shape}."
        )
    mean, _, directions = analysis.code_pca(codes)
    basis = directions[:, :rank].astype("float32")
    mean = mean.astype("float32")

    images = keras.Input(model.image_shape, name="image")
    project = keras.layers.Dense(rank, trainable=False, name="principal_coordinates")
    encoder = keras.Model(images, project(model.encoder(images)), name=f"encoder_rank{rank}")
    project.set_weights([basis, -mean @ basis])

    coordinates = keras.Input((rank,), name="code")
    lift = keras.layers.Dense(model.latent_dim, trainable=False, name="principal_lift")
    decoder = keras.Model(
        coordinates, model.decoder(lift(coordinates)), name=f"decoder_rank{rank}"
    )
    lift.set_weights([basis.T, mean])
    return encoder, decoder
