"""Floating-point operations per sample of an autoencoder, counted from its layer shapes.

Only multiply-adds count (2 FLOPs each): convolutions, transposed convolutions, dense
layers and the linear stack. Biases, activations, the loss and the optimizer are
elementwise and left out (under 1 % of the total for the built-in architectures). A
training step does the forward pass, the weight gradients (as many FLOPs again) and
the input gradients of every layer but the first (images need none):
3 · forward − the first layer.

Example:
```python
model = irmae_keras.build_autoencoder("mnist")
irmae_keras.flops.flops_per_sample(model)["train"]   # 146 997 248
```
"""

import math

import keras

from irmae_keras.layers import LinearStack


def layer_flops(layer):
    """Forward FLOPs per sample of one built layer (0 for layers without multiply-adds)."""
    if isinstance(layer, LinearStack):
        # One n×n product per application, whether or not the kernels are tied.
        return 2 * layer.depth * layer.input.shape[-1] ** 2
    if isinstance(layer, keras.layers.Conv2DTranspose):
        # Every input pixel meets the whole (kh, kw, out, in) kernel.
        return 2 * math.prod(layer.kernel.shape) * math.prod(layer.input.shape[1:-1])
    if isinstance(layer, keras.layers.Conv2D):
        return 2 * math.prod(layer.kernel.shape) * math.prod(layer.output.shape[1:-1])
    if isinstance(layer, keras.layers.Dense):
        return 2 * math.prod(layer.kernel.shape)
    return 0


def model_layers(model):
    """The layers of an `Autoencoder` that do multiply-adds, in forward order."""
    layers = [layer for layer in model.encoder_network.layers if layer_flops(layer)]
    if model.linear_stack is not None:
        layers.append(model.linear_stack)
    return layers + [layer for layer in model.decoder_network.layers if layer_flops(layer)]


def flops_per_sample(model):
    """FLOPs of one sample through an `Autoencoder`.

    Args:
        model: `irmae_keras.Autoencoder`.

    Returns:
        dict with `"forward"` and `"train"` (forward + backward) FLOPs, and
        `"per_layer"`: layer name → forward FLOPs.
    """
    layers = model_layers(model)
    per_layer = {layer.name: layer_flops(layer) for layer in layers}
    forward = sum(per_layer.values())
    return {
        "forward": forward,
        "train": 3 * forward - per_layer[layers[0].name],
        "per_layer": per_layer,
    }
