import keras
import numpy as np
import pytest
import tensorflow as tf

from irmae_keras.layers import GaussianSampler
from irmae_keras.layers import LatentPenalty
from irmae_keras.layers import LinearStack
from tests.helpers import run_layer_test
from tests.helpers import run_model_saving_test
from tests.helpers import run_serialization_test


def _built_stack(n=16, **kwargs):
    stack = LinearStack(**kwargs)
    stack.build((None, n))
    return stack


def _np(x):
    return keras.ops.convert_to_numpy(x)


class TestLinearStack:
    @pytest.mark.parametrize("depth", [0, 1, 2, 8])
    def test_weights_are_depth_bias_free_square_kernels(self, depth):
        n = 7
        stack = _built_stack(n, depth=depth)
        assert len(stack.weights) == depth
        assert len(stack.trainable_weights) == depth
        assert all(tuple(w.shape) == (n, n) for w in stack.weights)
        assert sum(int(np.prod(w.shape)) for w in stack.weights) == depth * n * n
        assert not any("bias" in w.path for w in stack.weights)

    def test_kernels_are_distinct_layers_not_one_reused(self):
        stack = _built_stack(depth=3)
        values = [_np(w) for w in stack.kernels]
        assert not np.allclose(values[0], values[1])
        assert not np.allclose(values[1], values[2])

    def test_call_is_product_of_kernels_in_order(self):
        stack = _built_stack(5, depth=3)
        x = np.random.default_rng(1).normal(size=(4, 5)).astype("float32")
        k = [_np(w) for w in stack.kernels]
        np.testing.assert_allclose(_np(stack(x)), x @ k[0] @ k[1] @ k[2], rtol=1e-5, atol=1e-6)

    def test_depth_zero_is_identity(self):
        stack = _built_stack(6, depth=0)
        x = np.random.default_rng(2).normal(size=(3, 6)).astype("float32")
        np.testing.assert_array_equal(_np(stack(x)), x)
        np.testing.assert_array_equal(_np(stack.folded_kernel()), np.eye(6))

    @pytest.mark.parametrize("depth", [1, 2, 8])
    @pytest.mark.parametrize("tying", ["none", "shared", "transpose"])
    def test_folded_kernel_matches_call(self, depth, tying):
        stack = _built_stack(9, depth=depth, tying=tying)
        x = np.random.default_rng(3).normal(size=(5, 9)).astype("float32")
        np.testing.assert_allclose(
            x @ _np(stack.folded_kernel()), _np(stack(x)), rtol=1e-4, atol=1e-6
        )

    @pytest.mark.parametrize("scale", [0.1, 1.0, 3.0])
    def test_default_init_is_pytorch_linear_uniform_times_scale(self, scale):
        n = 256
        stack = _built_stack(n, depth=2, init_scale=scale)
        values = np.concatenate([_np(w).ravel() for w in stack.kernels])
        bound = scale / np.sqrt(n)
        assert np.abs(values).max() <= bound + 1e-7
        assert np.abs(values).max() > 0.99 * bound
        np.testing.assert_allclose(values.std(), scale / np.sqrt(3 * n), rtol=0.02)
        assert abs(values.mean()) < 0.02 * bound

    def test_custom_initializer_replaces_default(self):
        stack = _built_stack(8, depth=2, kernel_initializer="ones")
        for kernel in stack.kernels:
            np.testing.assert_array_equal(_np(kernel), np.ones((8, 8)))

    def test_seeded_initializer_gives_distinct_kernels(self):
        init = keras.initializers.GlorotUniform(seed=3)
        stack = _built_stack(8, depth=2, kernel_initializer=init)
        assert not np.allclose(_np(stack.kernels[0]), _np(stack.kernels[1]))

    def test_shared_tying_has_one_variable_applied_depth_times(self):
        stack = _built_stack(4, depth=3, tying="shared")
        assert len(stack.weights) == 1
        w = _np(stack.kernels[0])
        x = np.random.default_rng(4).normal(size=(2, 4)).astype("float32")
        np.testing.assert_allclose(_np(stack(x)), x @ w @ w @ w, rtol=1e-5, atol=1e-6)

    def test_transpose_tying_alternates_w_and_w_transposed(self):
        stack = _built_stack(4, depth=3, tying="transpose")
        assert len(stack.weights) == 1
        w = _np(stack.kernels[0])
        assert not np.allclose(w, w.T)
        x = np.random.default_rng(5).normal(size=(2, 4)).astype("float32")
        np.testing.assert_allclose(_np(stack(x)), x @ w @ w.T @ w, rtol=1e-5, atol=1e-6)

    def test_tied_gradients_flow_into_the_single_variable(self):
        stack = _built_stack(4, depth=2, tying="transpose")
        x = tf.random.normal((3, 4))
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(stack(x) ** 2)
        (grad,) = tape.gradient(loss, stack.trainable_weights)
        assert float(tf.reduce_sum(tf.abs(grad))) > 0

    def test_frozen_stack_has_no_trainable_weights(self):
        stack = _built_stack(4, depth=2, trainable=False)
        assert stack.trainable_weights == []
        assert len(stack.non_trainable_weights) == 2

    def test_activation_between_layers_only(self):
        stack = _built_stack(4, depth=2, activation="relu")
        k = [_np(w) for w in stack.kernels]
        x = np.random.default_rng(6).normal(size=(8, 4)).astype("float32")
        np.testing.assert_allclose(
            _np(stack(x)), np.maximum(x @ k[0], 0) @ k[1], rtol=1e-5, atol=1e-6
        )
        assert (_np(stack(x)) < 0).any()  # no activation after the last matrix
        with pytest.raises(ValueError, match="cannot be folded"):
            stack.folded_kernel()

    @pytest.mark.parametrize(
        "kwargs, match",
        [
            ({"depth": -1}, "`depth` must be an integer >= 0"),
            ({"depth": 1.5}, "`depth` must be an integer"),
            ({"depth": 2, "tying": "tied"}, r"`tying` must be one of \['none', 'shared', 'transpose'\]"),
            ({"depth": 2, "init_scale": 0}, "`init_scale` must be > 0"),
            ({"depth": 2, "init_scale": 2.0, "kernel_initializer": "ones"}, "init_scale"),
        ],
    )
    def test_invalid_arguments_raise(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            LinearStack(**kwargs)

    def test_folded_kernel_needs_build(self):
        with pytest.raises(ValueError, match="built"):
            LinearStack(2).folded_kernel()

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"depth": 2},
            {"depth": 4, "init_scale": 0.3, "tying": "transpose"},
            {"depth": 3, "kernel_initializer": "glorot_uniform", "tying": "shared"},
            {"depth": 2, "activation": "relu", "trainable": False},
        ],
    )
    def test_get_config_round_trip(self, kwargs):
        clone = run_serialization_test(LinearStack(**kwargs))
        for key, value in kwargs.items():
            if key not in ("kernel_initializer", "activation"):
                assert getattr(clone, key) == value

    def test_keras_saving_round_trip(self, tmp_path):
        inputs = keras.Input((6,))
        model = keras.Model(inputs, LinearStack(3, tying="transpose")(inputs))
        run_model_saving_test(model, np.ones((2, 6), "float32"), tmp_path)


class TestLatentPenalty:
    @pytest.mark.parametrize("norm", ["l1", "l2"])
    def test_adds_per_example_norm_times_coefficient(self, norm):
        layer = LatentPenalty(norm, coefficient=0.5)
        z = np.array([[1.0, -2.0], [3.0, 0.0]], "float32")
        np.testing.assert_array_equal(_np(layer(z)), z)
        expected = 0.5 * (np.mean([3.0, 3.0]) if norm == "l1" else np.mean([5.0, 9.0]))
        assert len(layer.losses) == 1
        np.testing.assert_allclose(float(layer.losses[0]), expected, rtol=1e-6)

    def test_invalid_arguments_raise(self):
        with pytest.raises(ValueError, match=r"`norm` must be one of \['l1', 'l2'\]"):
            LatentPenalty("l3")
        with pytest.raises(ValueError, match="`coefficient` must be >= 0"):
            LatentPenalty("l1", -1.0)

    def test_get_config_round_trip(self):
        clone = run_serialization_test(LatentPenalty("l2", 0.25))
        assert (clone.norm, clone.coefficient) == ("l2", 0.25)

    def test_keras_saving_round_trip(self, tmp_path):
        inputs = keras.Input((3,))
        model = keras.Model(inputs, LatentPenalty("l1", 0.1)(inputs))
        run_model_saving_test(model, np.ones((2, 3), "float32"), tmp_path)


class TestGaussianSampler:
    def test_inference_returns_mean_and_adds_official_kl(self):
        layer = GaussianSampler(kl_weight=0.1)
        mean = np.array([[0.5, -1.0]], "float32")
        logvar = np.array([[0.2, -0.4]], "float32")
        z, code = layer(np.concatenate([mean, logvar], axis=-1), training=False)
        np.testing.assert_array_equal(_np(z), mean)
        np.testing.assert_array_equal(_np(code), mean)
        kl = -np.mean(1 + logvar - mean**2 - np.exp(logvar))
        np.testing.assert_allclose(float(layer.losses[0]), 0.1 * kl, rtol=1e-6)

    def test_training_samples_with_the_right_spread(self):
        layer = GaussianSampler(seed=1)
        n = 20000
        params = np.concatenate(
            [np.full((n, 1), 2.0), np.full((n, 1), np.log(0.25))], axis=-1
        ).astype("float32")
        z, code = layer(params, training=True)
        z = _np(z)
        np.testing.assert_allclose(_np(code), 2.0)
        assert abs(z.mean() - 2.0) < 0.02
        assert abs(z.std() - 0.5) < 0.02

    def test_odd_width_is_rejected(self):
        with pytest.raises(ValueError, match="even last dimension"):
            GaussianSampler().compute_output_shape((None, 5))

    def test_get_config_round_trip(self):
        clone = run_serialization_test(GaussianSampler(kl_weight=0.5, seed=7))
        assert (clone.kl_weight, clone.seed) == (0.5, 7)

    def test_keras_saving_round_trip(self, tmp_path):
        inputs = keras.Input((4,))
        z, _ = GaussianSampler()(inputs)
        model = keras.Model(inputs, z)
        run_model_saving_test(model, np.ones((2, 4), "float32"), tmp_path)


class TestLayerContracts:
    """Each public layer through the shared KerasHub-style helper."""

    @pytest.mark.parametrize("init_kwargs, trainable", [
        ({"depth": 2}, 2), ({"depth": 3, "tying": "shared"}, 1), ({"depth": 2, "trainable": False}, 0),
    ])
    def test_linear_stack(self, init_kwargs, trainable):
        frozen = 2 if init_kwargs.get("trainable") is False else 0
        run_layer_test(LinearStack, init_kwargs, np.ones((2, 6), "float32"), (2, 6), trainable, frozen)

    def test_latent_penalty(self):
        run_layer_test(LatentPenalty, {"norm": "l1", "coefficient": 0.1}, np.ones((2, 3), "float32"),
                       (2, 3), 0)

    def test_gaussian_sampler(self):
        run_layer_test(GaussianSampler, {"kl_weight": 0.5, "seed": 1}, np.ones((2, 8), "float32"),
                       ((2, 4), (2, 4)), 0)
