"""The autoencoder model: IRMAE and its baselines (AE, VAE, AE+L1, AE+L2)."""

import copy

import keras
import tensorflow as tf

from irmae_keras import architectures
from irmae_keras.api_export import irmae_export
from irmae_keras.callbacks import with_step_progbar
from irmae_keras.flops import flops_per_sample
from irmae_keras.layers import GaussianSampler
from irmae_keras.layers import LatentPenalty
from irmae_keras.layers import LinearStack
from irmae_keras.optimizers import FusedAdam
from irmae_keras import paper
from irmae_keras.paper import ARCHITECTURES
from irmae_keras.utils import check_choice
from irmae_keras.utils import check_int
from irmae_keras.utils import float32_if_mixed

VARIANTS = ("irmae", "ae", "vae", "ae_l1", "ae_l2")
FOLDED_MODES = ("none", "dense", "encoder")



def _validate_depth(variant, linear_layers):
    check_int("linear_layers", linear_layers, 0)
    if variant == "irmae" and linear_layers < 1:
        raise ValueError(
            "`linear_layers` must be >= 1 for variant 'irmae' (use variant='ae' "
            f"for a plain autoencoder); received {linear_layers}."
        )
    if variant in ("ae", "vae") and linear_layers != 0:
        raise ValueError(
            f"`linear_layers` must be 0 for variant {variant!r} (allowed: 0; "
            f"use variant='irmae' for a linear stack); received {linear_layers}."
        )


# `steps_per_execution="auto"`: enough batches per compiled call for about this much
# training work (≈ 0.3 s on 2 CPU cores), at most AUTO_MAX_STEPS. Each call costs
# ~0.6 ms of Python and callbacks, a fifth of a small model's step on a fast CPU; big
# steps gain nothing from grouping and keep the progress bar and TerminateOnNaN per batch.
AUTO_EXECUTION_FLOPS = 64e9
AUTO_MAX_STEPS = 16
AUTO_BATCH_SIZE = 32  # assumed until `fit` sees the data's batch size (the paper's)


def auto_steps_per_execution(model, batch_size=AUTO_BATCH_SIZE, steps_per_epoch=None):
    """Batches per compiled call for `steps_per_execution="auto"`.

    Small models' steps are grouped, up to AUTO_MAX_STEPS steps of together
    about AUTO_EXECUTION_FLOPS; 1 with several replicas (Keras 3.15's multi-step train
    function fails under MirroredStrategy, apparently keras-team/keras#19246). With
    `steps_per_epoch` the count is lowered to a divisor of it: Keras runs whole
    executions and would overrun the epoch.
    """
    if model.distribute_strategy.num_replicas_in_sync > 1:
        return 1
    work = flops_per_sample(model)["train"] * batch_size
    steps = int(max(1, min(AUTO_MAX_STEPS, AUTO_EXECUTION_FLOPS // work)))
    return divisor_steps(steps, steps_per_epoch)


def divisor_steps(steps, steps_per_epoch):
    """The largest count ≤ `steps` that divides `steps_per_epoch` (None: `steps`)."""
    if not steps_per_epoch:
        return steps
    return max(d for d in range(1, steps + 1) if steps_per_epoch % d == 0)


def _count_steps_right(extra_positional, kwargs):
    """Gives a `fit`/`evaluate`/`predict` call a progress bar that counts at most the
    epoch's steps (`callbacks.StepProgbarLogger`): with several steps per call, Keras'
    own shows `16/8`. Left to Keras when `verbose` or `callbacks` could be among
    `extra_positional` (the arguments passed by position after the data)."""
    if not extra_positional:
        kwargs["callbacks"] = with_step_progbar(kwargs.get("callbacks"), kwargs.get("verbose", "auto"))


def _batch_size_of(x, batch_size):
    """The batch size `fit` will use where it is known: its argument or a batched
    tf.data.Dataset's static one; None otherwise (the caller assumes AUTO_BATCH_SIZE,
    which is also Keras' default for arrays)."""
    if batch_size:
        return batch_size
    if isinstance(x, tf.data.Dataset):
        spec = x.element_spec
        spec = spec[0] if isinstance(spec, tuple) else spec
        if isinstance(spec, tf.TensorSpec) and spec.shape.rank:
            return spec.shape[0]
    return None


@irmae_export("irmae_keras.models.Autoencoder")
class Autoencoder(keras.Model):
    """An autoencoder with an optional linear stack between encoder and decoder.

    `image → encoder_network → [LinearStack | GaussianSampler] → code z →
    decoder_network → reconstruction`. The variants:

    - `"irmae"`: `linear_layers` (l >= 1) bias-free square matrices, the
      implicit rank-minimizing autoencoder.
    - `"ae"`: a plain autoencoder (l = 0).
    - `"ae_l1"`, `"ae_l2"`: an AE (optionally with a stack) with an L1 / L2
      penalty on the code.
    - `"vae"`: the encoder outputs `[mean, log_variance]` (2n), the code is
      sampled while training and is the mean otherwise; sigmoid decoder, BCE +
      β·KL loss.

    The model trains on images alone: `fit(images)` uses the input as the
    target (`fit(x, x)` works too). `compile()` without arguments uses the
    paper's settings: Adam(1e-4, epsilon=1e-8) and the variant's loss.

    Attributes:
        encoder: `keras.Model`, image → code z (after the stack; the mean for a
            VAE). Shares weights with the autoencoder.
        decoder: `keras.Model`, code z → image. Shares weights.
        linear_stack: the `LinearStack`, or `None`.

    Args:
        encoder_network: `keras.Model`. Image → vector of n (2n for `"vae"`).
        decoder_network: `keras.Model`. Vector of n → image of the input shape.
        variant: str. One of `"irmae"`, `"ae"`, `"vae"`, `"ae_l1"`, `"ae_l2"`.
            Defaults to `"irmae"`.
        linear_layers: int. Depth l of the linear stack. Defaults to `2`.
        init_scale: float. Multiplies the stack's default initializer bound
            (PyTorch's nn.Linear default). Defaults to `1.0`.
        stack_initializer: None, str or initializer. Replaces the stack's
            default initializer. Defaults to `None`.
        tying: str. `"none"`, `"shared"` or `"transpose"`; see `LinearStack`.
            Defaults to `"none"`.
        stack_trainable: bool. `False` freezes the stack at its random init.
            Defaults to `True`.
        stack_activation: None or str. An activation between the stack's
            matrices (a nonlinear control, not IRMAE). Defaults to `None`.
        penalty: float. Coefficient of the L1 / L2 code penalty for `"ae_l1"` /
            `"ae_l2"`. Defaults to `1e-4`.
        kl_weight: float. β of the VAE loss. Defaults to `0.1`.
        seed: int or None. Seed of the VAE sampling noise. Defaults to `None`.
        architecture: str or None. Name of the built-in architecture the networks
            come from (metadata for export and analysis). Defaults to `None`.
        folded: str. `"none"`; `"dense"` when the stack was folded into one
            matrix; `"encoder"` when it was absorbed into the encoder's last
            layer (see `fold_linear_stack`). `linear_layers` keeps the trained
            depth. Defaults to `"none"`.
        **kwargs: `keras.Model` arguments such as `name`.

    Example:
    ```python
    model = irmae_keras.build_autoencoder("shapes")   # IRMAE, n=32, l=2
    model.compile()
    model.fit(images, epochs=2)
    codes = model.encoder.predict(images)
    ```

    Reference:
        [Jing, Zbontar & LeCun, 2020](https://arxiv.org/abs/2010.00679)
    """

    def __init__(
        self,
        encoder_network,
        decoder_network,
        variant="irmae",
        linear_layers=2,
        init_scale=1.0,
        stack_initializer=None,
        tying="none",
        stack_trainable=True,
        stack_activation=None,
        penalty=paper.PENALTY,
        kl_weight=paper.KL_WEIGHT,
        seed=None,
        architecture=None,
        folded="none",
        **kwargs,
    ):
        check_choice("variant", variant, VARIANTS)
        check_choice("folded", folded, FOLDED_MODES)
        _validate_depth(variant, linear_layers)
        image_shape = tuple(encoder_network.input_shape[1:])
        latent_dim = decoder_network.input_shape[-1]
        code_width = 2 * latent_dim if variant == "vae" else latent_dim
        if encoder_network.output_shape[-1] != code_width:
            raise ValueError(
                f"`encoder_network` must output {code_width} values for variant "
                f"{variant!r} with the decoder's latent size {latent_dim}; it "
                f"outputs shape {encoder_network.output_shape}."
            )
        if tuple(decoder_network.output_shape[1:]) != image_shape:
            raise ValueError(
                "`decoder_network` must output images of the encoder's input shape "
                f"{image_shape}; it outputs {decoder_network.output_shape[1:]}."
            )

        # === Layers ===
        self.encoder_network = encoder_network
        self.decoder_network = decoder_network
        head_dtype = float32_if_mixed()
        depth = {"none": linear_layers, "dense": min(linear_layers, 1), "encoder": 0}[folded]
        self.linear_stack = None
        if depth:
            self.linear_stack = LinearStack(
                depth,
                init_scale=init_scale if folded == "none" else 1.0,
                kernel_initializer=stack_initializer if folded == "none" else None,
                tying=tying if folded == "none" else "none",
                activation=stack_activation if folded == "none" else None,
                trainable=stack_trainable,
                dtype=head_dtype,
                name="linear_stack",
            )
        self.latent_penalty = None
        if variant in ("ae_l1", "ae_l2"):
            self.latent_penalty = LatentPenalty(
                variant[-2:], penalty, dtype=head_dtype, name="latent_penalty"
            )
        self.sampler = None
        if variant == "vae":
            self.sampler = GaussianSampler(
                kl_weight, seed=seed, dtype=head_dtype, name="sampler"
            )

        # === Functional Model ===
        images = keras.Input(image_shape, name="image")
        h = encoder_network(images)
        if self.sampler is not None:
            z, code = self.sampler(h)
        else:
            z = h if self.linear_stack is None else self.linear_stack(h)
            if self.latent_penalty is not None:
                z = self.latent_penalty(z)
            code = z
        reconstruction = decoder_network(z)
        super().__init__(inputs=images, outputs=reconstruction, **kwargs)

        # === Sub-models sharing the weights ===
        self.encoder = keras.Model(images, code, name="encoder")
        self.decoder = decoder_network

        # === Config ===
        self.variant = variant
        self.linear_layers = linear_layers
        self.init_scale = init_scale
        self.stack_initializer = stack_initializer
        self.tying = tying
        self.stack_trainable = stack_trainable
        self.stack_activation = stack_activation
        self.penalty = penalty
        self.kl_weight = kl_weight
        self.seed = seed
        self.architecture = architecture
        self.folded = folded
        self.image_shape = image_shape
        self.latent_dim = latent_dim

    def __call__(self, inputs, *args, **kwargs):
        # Checked before Keras' own input spec so the message names the
        # architecture and the full expected shape.
        self._check_image_shape(inputs)
        return super().__call__(inputs, *args, **kwargs)

    def _check_image_shape(self, inputs):
        shape = getattr(inputs, "shape", None)
        if shape is None:
            return
        given = tuple(shape)[1:]
        if len(given) != len(self.image_shape) or any(
            g is not None and g != e for g, e in zip(given, self.image_shape)
        ):
            expected = ", ".join(str(d) for d in self.image_shape)
            raise ValueError(
                f"`inputs` must be images of shape (batch, {expected}) for "
                f"architecture {self.architecture or 'custom'!r}; received shape "
                f"{tuple(shape)}."
            )

    def compile(self, optimizer="auto", loss="auto", metrics="auto", steps_per_execution="auto", **kwargs):
        """Configures training; `"auto"` arguments use the paper's settings.

        Args:
            optimizer: `"auto"` (Adam, learning rate 1e-4, epsilon 1e-8, with
                `torch.optim.Adam`'s update as the official code: `FusedAdam`)
                or any Keras optimizer.
            loss: `"auto"` (mean squared error; binary cross-entropy for a VAE,
                whose KL term the sampler adds) or any Keras loss.
            metrics: `"auto"` (reconstruction MSE, comparable across variants)
                or a list of metrics.
            steps_per_execution: `"auto"` (several batches per compiled call for
                small models, as `python -m training.fit` does: see
                `auto_steps_per_execution`; `fit` adjusts it to the batch size and
                `steps_per_epoch` it is given) or an int.
            **kwargs: further `keras.Model.compile` arguments.
        """
        self._auto_steps = steps_per_execution == "auto"
        if self._auto_steps:
            steps_per_execution = auto_steps_per_execution(self)
        if optimizer == "auto":
            optimizer = FusedAdam(learning_rate=paper.LEARNING_RATE, epsilon=paper.ADAM_EPSILON)
        if loss == "auto":
            loss = (
                keras.losses.BinaryCrossentropy(name="bce")
                if self.variant == "vae"
                else keras.losses.MeanSquaredError(name="mse")
            )
        if metrics == "auto":
            metrics = [keras.metrics.MeanSquaredError(name="mse")]
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics,
                        steps_per_execution=steps_per_execution, **kwargs)

    def fit(self, x=None, y=None, batch_size=None, *args, **kwargs):
        """`keras.Model.fit`; with `compile(steps_per_execution="auto")` it first sets
        the steps per compiled call for this call's batch size and `steps_per_epoch`."""
        if getattr(self, "_auto_steps", False):
            steps = auto_steps_per_execution(
                self, _batch_size_of(x, batch_size) or AUTO_BATCH_SIZE, kwargs.get("steps_per_epoch"))
            if steps != self.steps_per_execution:
                self.steps_per_execution = steps
                self.train_function = None  # rebuilt with the new count
        _count_steps_right(args, kwargs)
        return super().fit(x, y, batch_size, *args, **kwargs)

    def evaluate(self, *args, **kwargs):
        """`keras.Model.evaluate`, its progress bar counting steps right (see `fit`)."""
        _count_steps_right(args[3:], kwargs)
        return super().evaluate(*args, **kwargs)

    def predict(self, *args, **kwargs):
        """`keras.Model.predict`, its progress bar counting steps right (see `fit`)."""
        _count_steps_right(args[2:], kwargs)
        return super().predict(*args, **kwargs)

    def compile_from_config(self, config):
        # `compile()` is overridden, so Keras leaves restoring it to us.
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        # An autoencoder's target is its input: `fit(images)` needs no labels.
        if y is None:
            y = x
        return super().compute_loss(
            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training
        )

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if y is None:
            y = x
        return super().compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def train_step(self, data):
        return _reducible_across_workers(self, super().train_step(data))

    def test_step(self, data):
        return _reducible_across_workers(self, super().test_step(data))

    @classmethod
    def from_preset(cls, name_or_dir):
        """An autoencoder with trained weights: a built-in or user preset by name (see
        `irmae_keras.list_presets()`), or a directory written by `save_to_preset`.

        Works offline: the built-in presets ship inside the package; user presets live
        in `$KERAS_HOME/irmae_keras/presets` (`~/.keras` by default). A name is looked
        up among the built-in presets first. The model is not compiled; `compile()`
        sets the paper's training settings.

        Args:
            name_or_dir: str. A preset name, e.g. `"shapes_irmae_l2"`, or a directory
                path (with a `/`, e.g. `"./my_preset"`).

        Raises:
            ValueError: an unknown name, or a missing, corrupt or symlinked preset
                (`irmae_keras.pretrained.PresetError`, one line).

        Example:
        ```python
        model = irmae_keras.Autoencoder.from_preset("shapes_irmae_l2")
        codes = model.encoder(images)
        ```
        """
        from irmae_keras import pretrained

        model = pretrained.load_preset(name_or_dir)
        if not isinstance(model, cls):
            raise pretrained.PresetError(
                f"preset {name_or_dir!r} holds a {type(model).__name__}, not a {cls.__name__}.")
        return model

    def save_to_preset(self, name_or_dir, metadata=None, overwrite=False):
        """Writes this model as a preset that `from_preset` loads: its config, float32
        weights and `metadata` (how it was trained; JSON-ready dict).

        A plain name (letters, digits, `_`, `-`) writes a user preset,
        `$KERAS_HOME/irmae_keras/presets/NAME` (`~/.keras` by default), which may not
        take a built-in preset's name; a path (with a `/`) writes that directory. The
        preset is written whole beside the old one and swapped in, so an interrupted
        save leaves the old preset or the new one.

        Args:
            name_or_dir: str. A preset name or a directory path.
            metadata: dict or None. Defaults to None.
            overwrite: bool. Replace an existing preset. Defaults to False.

        Returns:
            str. The preset's directory.

        Raises:
            ValueError: a bad or built-in name, an existing preset without `overwrite`,
                a symbolic link in the way (`irmae_keras.pretrained.PresetError`).
        """
        from irmae_keras import pretrained

        return pretrained.save_preset(self, name_or_dir, metadata, overwrite=overwrite)

    @classmethod
    def from_official_checkpoint(cls, path, **overrides):
        """The autoencoder of an official PyTorch IRMAE checkpoint
        (`torch.save(net.state_dict(), path)` of facebookresearch/irmae's `model.AE`).

        Reads the zip format of torch >= 1.6 and the legacy one of torch 1.4 without
        PyTorch, refusing any pickle that asks for more than tensor data. Architecture
        (shapes, mnist, celeb_a), variant (AE, IRMAE, VAE), n and l come from the tensors'
        names and shapes; the weights' layouts are converted (`irmae_keras.official`).
        The model is not compiled.

        Args:
            path: str. The checkpoint file.
            **overrides: `architecture`, `variant` (e.g. `"ae_l2"` for an AE trained with
                a penalty), `latent_dim`, `linear_layers` instead of the inferred values,
                and `name`, `penalty`, `kl_weight`, `seed`.

        Raises:
            ValueError: an unreadable or refused file, or tensors that fit no official
                model (one line naming what did not fit).

        Example:
        ```python
        model = irmae_keras.Autoencoder.from_official_checkpoint("shapes_l2.pth")
        codes = model.encoder(images)  # NHWC float32 in [0, 1]
        ```
        """
        from irmae_keras import official

        state_dict = official.read_state_dict(path)
        model = build_autoencoder(**official.official_config(state_dict, source=path, **overrides))
        return official.load_official_weights(model, state_dict, source=path)

    def save_official_checkpoint(self, path, file_format="zip"):
        """Writes this model as a state_dict of the official PyTorch `model.AE` (without
        PyTorch), so that the official `model.AE(args).load_state_dict(torch.load(path))`
        accepts it strictly.

        Args:
            path: str. The file to write (atomically).
            file_format: str. `"zip"` (torch >= 1.6) or `"legacy"` (torch 1.4, which the
                official requirements pin; every torch version reads it). Defaults to `"zip"`.

        Returns:
            `path`.

        Raises:
            ValueError: a model the official code cannot express (custom networks, an
                activation inside the stack; one line).
        """
        from irmae_keras import official

        return official.write_state_dict(official.official_state_dict(self), path, file_format)

    def encode(self, images, **kwargs):
        """Images → codes z (after the stack; the mean for a VAE)."""
        return self.encoder(images, **kwargs)

    def decode(self, codes, **kwargs):
        """Codes z → images."""
        return self.decoder(codes, **kwargs)

    def get_config(self):
        # Networks and settings fully describe the model; the functional graph is
        # rebuilt from them.
        return {
            "name": self.name,
            "trainable": self.trainable,
            "encoder_network": keras.saving.serialize_keras_object(self.encoder_network),
            "decoder_network": keras.saving.serialize_keras_object(self.decoder_network),
            "variant": self.variant,
            "linear_layers": self.linear_layers,
            "init_scale": self.init_scale,
            "stack_initializer": (
                None
                if self.stack_initializer is None
                else keras.saving.serialize_keras_object(
                    keras.initializers.get(self.stack_initializer)
                )
            ),
            "tying": self.tying,
            "stack_trainable": self.stack_trainable,
            "stack_activation": (
                None
                if self.stack_activation is None
                else keras.activations.serialize(
                    keras.activations.get(self.stack_activation)
                )
            ),
            "penalty": self.penalty,
            "kl_weight": self.kl_weight,
            "seed": self.seed,
            "architecture": self.architecture,
            "folded": self.folded,
        }

    @classmethod
    def from_config(cls, config):
        config = copy.deepcopy(config)
        for key in ("encoder_network", "decoder_network", "stack_initializer"):
            if isinstance(config.get(key), dict):
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def _in_multi_worker_mode(strategy):
    # The condition Keras' TF trainer uses to pick its multi-worker reduction.
    extended = getattr(strategy, "extended", None)
    check = getattr(extended, "_in_multi_worker_mode", None)
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and bool(
        check and check()
    )


def _reducible_across_workers(model, logs):
    """Scalar step logs as shape-(1,) tensors under multi-worker training.

    Keras 3 reduces step logs with `strategy.reduce("MEAN", value, axis=0)` on
    MultiWorkerMirroredStrategy, which fails for scalars ("Invalid reduction
    dimension 0 for input with 0 dimensions", tensorflow/tensorflow#72388). A
    rank-1 value reduces over workers and that axis back to the same scalar.
    """
    if not _in_multi_worker_mode(model.distribute_strategy):
        return logs
    return {
        name: tf.reshape(value, (1,)) if getattr(value, "shape", None) == () else value
        for name, value in logs.items()
    }


def resolve_preset(preset_or_architecture):
    """The preset dict for a name, or a ValueError naming the allowed ones."""
    check_choice("preset_or_architecture", preset_or_architecture, ARCHITECTURES)
    return dict(ARCHITECTURES[preset_or_architecture])


def build_autoencoder(
    preset_or_architecture=None,
    variant="irmae",
    latent_dim=None,
    linear_layers=None,
    *,
    encoder=None,
    decoder=None,
    initializer="torch",
    **options,
):
    """Builds an IRMAE or baseline autoencoder from a preset or your networks.

    Args:
        preset_or_architecture: str or None. `"shapes"`, `"mnist"` or
            `"celeb_a"`: the paper's architecture with its defaults (n = 32 / 128
            / 512, l = 2 / 8 / 4 for `"irmae"`). `None` with `encoder` and
            `decoder` given.
        variant: str. `"irmae"`, `"ae"`, `"vae"`, `"ae_l1"` or `"ae_l2"`.
            Defaults to `"irmae"`.
        latent_dim: int or None. Latent size n; `None` takes the preset's.
        linear_layers: int or None. Depth l; `None` takes the preset's l for
            `"irmae"` and 0 for the other variants.
        encoder: `keras.Model` or None. Your own encoder network (image → n, or 2n
            for a VAE), used instead of the preset's.
        decoder: `keras.Model` or None. Your own decoder network (n → image).
        initializer: str. Weight init of the built-in networks: `"torch"` (as the
            official code) or `"keras"`. Defaults to `"torch"`.
        **options: further `Autoencoder` arguments (`init_scale`, `tying`,
            `stack_trainable`, `stack_activation`, `stack_initializer`,
            `penalty`, `kl_weight`, `seed`, `name`).

    Returns:
        An `Autoencoder`.

    Example:
    ```python
    model = irmae_keras.build_autoencoder("shapes")  # irmae, n=32, l=2
    model = irmae_keras.build_autoencoder(
        "mnist", variant="ae", latent_dim=64, linear_layers=0
    )
    ```
    """
    check_choice("variant", variant, VARIANTS)
    if (encoder is None) != (decoder is None):
        raise ValueError("Pass both `encoder` and `decoder`, or neither.")
    if preset_or_architecture is None and encoder is None:
        raise ValueError(
            "`preset_or_architecture` must be one of "
            f"{sorted(ARCHITECTURES)} unless `encoder` and `decoder` are given; received None."
        )
    preset = (
        resolve_preset(preset_or_architecture)
        if preset_or_architecture is not None
        else {"architecture": None, "latent_dim": None, "linear_layers": 2}
    )
    if linear_layers is None:
        linear_layers = preset["linear_layers"] if variant == "irmae" else 0
    _validate_depth(variant, linear_layers)
    if encoder is None:
        latent_dim = preset["latent_dim"] if latent_dim is None else latent_dim
        check_int("latent_dim", latent_dim, 1)
        name = preset["architecture"]
        encoder = architectures.build_encoder(
            name, 2 * latent_dim if variant == "vae" else latent_dim, initializer
        )
        decoder = architectures.build_decoder(
            name,
            latent_dim,
            output_activation="sigmoid" if variant == "vae" else "tanh",
            initializer=initializer,
        )
    elif latent_dim is not None and latent_dim != decoder.input_shape[-1]:
        raise ValueError(
            f"`latent_dim`={latent_dim} does not match the decoder's input size "
            f"{decoder.input_shape[-1]}."
        )
    options.setdefault("name", f"{variant}_{preset['architecture'] or 'custom'}")
    return Autoencoder(
        encoder,
        decoder,
        variant=variant,
        linear_layers=linear_layers,
        architecture=preset["architecture"],
        **options,
    )
