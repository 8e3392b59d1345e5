"""Layers of the implicit rank-minimizing autoencoder and its baselines."""

import keras
from keras import ops

from irmae_keras.api_export import irmae_export
from irmae_keras.utils import check_choice
from irmae_keras.utils import check_int

TYING_MODES = ("none", "shared", "transpose")
PENALTY_NORMS = ("l1", "l2")


def torch_linear_initializer(scale=1.0, seed=None):
    """PyTorch's `nn.Linear` default kernel init, U(-s/sqrt(n), s/sqrt(n)).

    `VarianceScaling` draws U(-a, a) with a = sqrt(3 * scale / fan_in); a scale of
    s**2 / 3 gives a = s / sqrt(fan_in), i.e. a standard deviation of
    s / sqrt(3 * fan_in).

    Args:
        scale: float. Multiplies the bound. Defaults to `1.0` (PyTorch's default).
        seed: int or None. Initializer seed.
    """
    return keras.initializers.VarianceScaling(
        scale=scale**2 / 3.0, mode="fan_in", distribution="uniform", seed=seed
    )


def _fresh_initializer(initializer, offset):
    """A new instance per kernel so that the kernels differ.

    Keras 3 fixes an unseeded initializer's seed when it is created, so one
    instance called twice draws the same matrix. A seeded initializer gets
    seed + offset, keeping the stack reproducible.
    """
    config = initializer.get_config()
    if isinstance(config.get("seed"), int):
        config = dict(config, seed=config["seed"] + offset)
    return initializer.__class__.from_config(config)


@irmae_export("irmae_keras.layers.LinearStack")
class LinearStack(keras.layers.Layer):
    """A stack of bias-free square linear maps, the core of IRMAE.

    The code `h` of size n passes through `depth` n×n matrices,
    `z = h @ W_1 @ W_2 @ ... @ W_depth`, with no bias and no activation in
    between. Gradient descent on this product, started from small weights,
    drifts towards low-rank solutions; after training the product can be folded
    into a single matrix (`folded_kernel()`).

    Args:
        depth: int. Number of matrices `l` (>= 0). `0` is the identity.
        init_scale: float. Multiplies the bound of the default initializer,
            PyTorch's `nn.Linear` default U(-1/sqrt(n), 1/sqrt(n)). Must be 1 when
            `kernel_initializer` is given. Defaults to `1.0`.
        kernel_initializer: None, str or `keras.initializers.Initializer`. Replaces
            the default initializer. A seeded initializer is reseeded per kernel
            (seed + i) so that the kernels differ. Defaults to `None`.
        tying: str. `"none"`: `depth` independent matrices. `"shared"`: one matrix
            applied `depth` times. `"transpose"`: one matrix W applied as
            W, Wᵀ, W, … Defaults to `"none"`.
        activation: None or str. An activation applied *between* the matrices
            (not after the last). Not part of IRMAE: it is the nonlinear control
            experiment. A stack with an activation cannot be folded.
            Defaults to `None`.
        **kwargs: base layer arguments, e.g. `trainable=False` for frozen random
            matrices, `name`, `dtype`.

    Example:
    ```python
    stack = irmae_keras.layers.LinearStack(depth=2)
    z = stack(keras.ops.ones((4, 32)))
    w = stack.folded_kernel()  # (32, 32) == W_1 @ W_2
    ```

    Reference:
        [Jing et al., 2020](https://arxiv.org/abs/2010.00679)
    """

    def __init__(
        self,
        depth,
        init_scale=1.0,
        kernel_initializer=None,
        tying="none",
        activation=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.depth = check_int("depth", depth, 0)
        self.tying = check_choice("tying", tying, TYING_MODES)
        if init_scale is None or not float(init_scale) > 0:
            raise ValueError(f"`init_scale` must be > 0; received {init_scale!r}.")
        if kernel_initializer is not None and float(init_scale) != 1.0:
            raise ValueError(
                "`init_scale` scales the default initializer only; pass a scaled "
                f"`kernel_initializer` instead (received init_scale={init_scale!r} "
                f"with kernel_initializer={kernel_initializer!r})."
            )
        self.init_scale = float(init_scale)
        self.kernel_initializer = (
            None
            if kernel_initializer is None
            else keras.initializers.get(kernel_initializer)
        )
        self.activation = None if activation is None else keras.activations.get(activation)
        self.kernels = []
        self.supports_masking = True

    @property
    def num_kernels(self):
        """Number of distinct matrices (variables) in the stack."""
        if self.depth == 0:
            return 0
        return self.depth if self.tying == "none" else 1

    def build(self, input_shape):
        units = input_shape[-1]
        if units is None:
            raise ValueError(
                "LinearStack needs a known last dimension; received input shape "
                f"{input_shape}."
            )
        self.units = int(units)
        base = self.kernel_initializer or torch_linear_initializer(self.init_scale)
        self.kernels = [
            self.add_weight(
                name=f"kernel_{i}",
                shape=(self.units, self.units),
                initializer=_fresh_initializer(base, i),
                trainable=True,
            )
            for i in range(self.num_kernels)
        ]

    def _kernel(self, index):
        if self.tying == "none":
            return self.kernels[index]
        if self.tying == "transpose" and index % 2 == 1:
            return ops.transpose(self.kernels[0])
        return self.kernels[0]

    def call(self, inputs):
        x = inputs
        for i in range(self.depth):
            x = ops.matmul(x, self._kernel(i))
            if self.activation is not None and i < self.depth - 1:
                x = self.activation(x)
        return x

    def folded_kernel(self):
        """The product W_1 @ … @ W_depth as one (n, n) matrix; identity for depth 0.

        Returns:
            A float tensor of shape `(n, n)` with `stack(x) == x @ folded_kernel()`.
        """
        if not self.built:
            raise ValueError("LinearStack.folded_kernel() needs a built layer.")
        if self.activation is not None:
            raise ValueError(
                "A LinearStack with an activation between its matrices is not "
                "linear and cannot be folded into one matrix."
            )
        product = ops.eye(self.units, dtype=self.variable_dtype)
        for i in range(self.depth):
            product = ops.matmul(product, ops.convert_to_tensor(self._kernel(i)))
        return product

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "depth": self.depth,
                "init_scale": self.init_scale,
                "kernel_initializer": (
                    None
                    if self.kernel_initializer is None
                    else keras.initializers.serialize(self.kernel_initializer)
                ),
                "tying": self.tying,
                "activation": (
                    None
                    if self.activation is None
                    else keras.activations.serialize(self.activation)
                ),
            }
        )
        return config


@irmae_export("irmae_keras.layers.LatentPenalty")
class LatentPenalty(keras.layers.Layer):
    """Identity on the code that adds an L1 or L2 penalty to the loss.

    The penalty is `coefficient * mean over the batch of sum_j |z_j|` (`"l1"`) or
    `sum_j z_j**2` (`"l2"`): a per-example norm, so it does not depend on the
    batch size. It is the regularised-AE baseline of the paper (AE+L1, AE+L2).

    Args:
        norm: str. `"l1"` or `"l2"`.
        coefficient: float. Weight of the penalty (>= 0). Defaults to `1e-4`.
        **kwargs: base layer arguments.
    """

    def __init__(self, norm, coefficient=1e-4, **kwargs):
        super().__init__(**kwargs)
        self.norm = check_choice("norm", norm, PENALTY_NORMS)
        if coefficient is None or float(coefficient) < 0:
            raise ValueError(
                f"`coefficient` must be >= 0; received {coefficient!r}."
            )
        self.coefficient = float(coefficient)
        self.supports_masking = True
        self.built = True

    def call(self, inputs):
        if self.norm == "l1":
            per_example = ops.sum(ops.abs(inputs), axis=-1)
        else:
            per_example = ops.sum(ops.square(inputs), axis=-1)
        penalty = self.coefficient * ops.mean(per_example)
        # Keras' TF trainer scales add_loss terms per replica, as compiled losses.
        self.add_loss(penalty)
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"norm": self.norm, "coefficient": self.coefficient})
        return config


@irmae_export("irmae_keras.layers.GaussianSampler")
class GaussianSampler(keras.layers.Layer):
    """VAE head: splits `[mean, log_variance]`, samples, and adds the KL term.

    Returns `(z, mean)`: `z = mean + exp(log_variance / 2) * eps` when training,
    `z = mean` otherwise. Adds `kl_weight * -mean(1 + logvar - mean**2 -
    exp(logvar))` to the loss (the official IRMAE baseline's KL: a mean over
    batch and latent dimensions, without the factor 1/2).

    Args:
        kl_weight: float. β, the weight of the KL term (>= 0). Defaults to `0.1`.
        seed: int or None. Seed of the sampling noise. Defaults to `None`.
        **kwargs: base layer arguments.
    """

    def __init__(self, kl_weight=0.1, seed=None, **kwargs):
        super().__init__(**kwargs)
        if kl_weight is None or float(kl_weight) < 0:
            raise ValueError(f"`kl_weight` must be >= 0; received {kl_weight!r}.")
        self.kl_weight = float(kl_weight)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    def call(self, inputs, training=False):
        mean, log_variance = ops.split(inputs, 2, axis=-1)
        kl = -ops.mean(1.0 + log_variance - ops.square(mean) - ops.exp(log_variance))
        self.add_loss(self.kl_weight * kl)
        if training:
            noise = keras.random.normal(
                ops.shape(mean), dtype=mean.dtype, seed=self.seed_generator
            )
            return mean + ops.exp(0.5 * log_variance) * noise, mean
        return mean, mean

    def compute_output_shape(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] % 2:
            raise ValueError(
                "GaussianSampler needs an even last dimension [mean, log_variance]; "
                f"received input shape {input_shape}."
            )
        half = None if input_shape[-1] is None else input_shape[-1] // 2
        shape = tuple(input_shape[:-1]) + (half,)
        return shape, shape

    def get_config(self):
        config = super().get_config()
        config.update({"kl_weight": self.kl_weight, "seed": self.seed})
        return config
