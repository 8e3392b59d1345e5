import keras
import numpy as np
import pytest
import tensorflow as tf

import irmae_keras
from irmae_keras.optimizers import FusedAdam
from tests.helpers import random_images


def _trained_weights(make_optimizer, strategy=None, jit_compile=False, steps=3):
    """Loss history and weights of a small shapes IRMAE after `steps` steps from a
    fixed start, with the optimizer `make_optimizer()` creates in the strategy's scope."""
    strategy = strategy or tf.distribute.get_strategy()
    x = random_images((32, 32, 3), batch=8)
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = irmae_keras.build_autoencoder("shapes", latent_dim=4)
        model.compile(optimizer=make_optimizer(), jit_compile=jit_compile)
    history = model.fit(x, epochs=steps, batch_size=8, shuffle=False, verbose=0).history
    return history["loss"], [keras.ops.convert_to_numpy(w) for w in model.get_weights()]


def _assert_same_training(reference, other):
    np.testing.assert_allclose(other[0], reference[0], rtol=1e-5)
    for a, b in zip(reference[1], other[1]):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-7)


def _keras_placement(**kwargs):
    return FusedAdam(1e-3, epsilon_placement="keras", **kwargs)


def _pytorch_adam(gradients, start, lr, epsilon, amsgrad=False, beta_1=0.9, beta_2=0.999):
    """torch.optim.Adam's update in numpy float64: ε after the bias correction."""
    w, m, v, v_max = start.astype("float64"), 0.0, 0.0, 0.0
    for t, g in enumerate(gradients, start=1):
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        v_max = np.maximum(v_max, v)
        denominator = np.sqrt(v_max if amsgrad else v) / np.sqrt(1 - beta_2**t) + epsilon
        w = w - lr / (1 - beta_1**t) * m / denominator
    return w


def _apply(optimizer, gradients, start):
    variable = keras.Variable(start)
    for g in gradients:
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(g), variable)])
    return keras.ops.convert_to_numpy(variable)


# Gradients at IRMAE's official init (encoder ~1e-10, where ε dominates √v) and at a
# usual scale.
GRADIENT_SCALES = [1e-10, 1e-6, 1e-2]


class TestPytorchPlacement:
    @pytest.mark.parametrize("scale", GRADIENT_SCALES)
    @pytest.mark.parametrize("amsgrad", [False, True])
    def test_matches_pytorch_formula(self, scale, amsgrad):
        rng = np.random.default_rng(0)
        start = np.zeros((4, 3), "float32")  # updates not rounded to the weights' ulp
        gradients = [(scale * rng.normal(size=(4, 3))).astype("float32") for _ in range(20)]
        expected = _pytorch_adam(gradients, start, lr=1e-3, epsilon=1e-8, amsgrad=amsgrad)
        got = _apply(FusedAdam(1e-3, epsilon=1e-8, amsgrad=amsgrad), gradients, start)
        np.testing.assert_allclose(got, expected, rtol=2e-4, atol=1e-10)

    def test_keras_placement_makes_tiny_gradient_steps_smaller(self):
        # The reason for the default: at g ~ 1e-10 Keras' first step is about √(1-β2) ≈ 0.03
        # of PyTorch's.
        start = np.zeros((3,), "float32")
        gradients = [np.full((3,), 1e-10, "float32")]
        pytorch = _apply(FusedAdam(1e-3, epsilon=1e-8), gradients, start)
        keras_step = _apply(_keras_placement(epsilon=1e-8), gradients, start)
        g, epsilon, root = 1e-10, 1e-8, np.sqrt(1 - 0.999)
        np.testing.assert_allclose(keras_step / pytorch, root * (g + epsilon) / (root * g + epsilon), rtol=1e-4)

    def test_matches_torch_optim_adam(self):
        torch = pytest.importorskip("torch")
        rng = np.random.default_rng(1)
        start = np.zeros((5,), "float32")
        gradients = [(1e-9 * rng.normal(size=(5,))).astype("float32") for _ in range(10)]
        parameter = torch.nn.Parameter(torch.tensor(start))
        optimizer = torch.optim.Adam([parameter], lr=1e-4, eps=1e-8)
        for g in gradients:
            parameter.grad = torch.tensor(g)
            optimizer.step()
        expected = parameter.detach().numpy()
        got = _apply(FusedAdam(1e-4, epsilon=1e-8), gradients, start)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-12)

    @pytest.mark.usefixtures("graph_mode")
    @pytest.mark.parametrize("jit_compile", [False, pytest.param(True, marks=pytest.mark.slow)])  # XLA compiles
    def test_fused_kernel_equals_ops_update_in_graph_mode_and_with_xla(self, jit_compile):
        # amsgrad=False runs ResourceApplyAdam, amsgrad=True the keras.ops formula; with
        # max(v) == v for the first step both must agree.
        reference = _trained_weights(lambda: FusedAdam(1e-3, epsilon=1e-8, amsgrad=True), steps=1)
        fused = _trained_weights(lambda: FusedAdam(1e-3, epsilon=1e-8), jit_compile=jit_compile, steps=1)
        _assert_same_training(reference, fused)

    def test_rejects_unknown_placement(self):
        with pytest.raises(ValueError, match="epsilon_placement"):
            FusedAdam(epsilon_placement="torch")


class TestKerasPlacement:
    def test_same_updates_as_keras_adam(self):
        reference = _trained_weights(lambda: keras.optimizers.Adam(1e-3, epsilon=1e-8))
        _assert_same_training(reference, _trained_weights(lambda: _keras_placement(epsilon=1e-8)))

    @pytest.mark.usefixtures("graph_mode")
    @pytest.mark.parametrize("jit_compile", [False, pytest.param(True, marks=pytest.mark.slow)])  # XLA compiles
    def test_same_updates_in_graph_mode_and_with_xla(self, jit_compile):
        reference = _trained_weights(lambda: keras.optimizers.Adam(1e-3, epsilon=1e-8))
        fused = _trained_weights(lambda: _keras_placement(epsilon=1e-8), jit_compile=jit_compile)
        _assert_same_training(reference, fused)

    @pytest.mark.usefixtures("graph_mode")
    def test_same_updates_under_mirrored_strategy(self, mirrored_strategy):
        reference = _trained_weights(lambda: keras.optimizers.Adam(1e-3, epsilon=1e-8))
        fused = _trained_weights(lambda: _keras_placement(epsilon=1e-8), strategy=mirrored_strategy)
        _assert_same_training(reference, fused)

    def test_amsgrad_uses_keras_update(self):
        reference = _trained_weights(lambda: keras.optimizers.Adam(1e-3, amsgrad=True))
        _assert_same_training(reference, _trained_weights(lambda: _keras_placement(amsgrad=True)))


class TestFusedAdam:
    @pytest.mark.usefixtures("graph_mode")
    def test_pytorch_placement_under_mirrored_strategy(self, mirrored_strategy):
        reference = _trained_weights(lambda: FusedAdam(1e-3, epsilon=1e-8))
        mirrored = _trained_weights(lambda: FusedAdam(1e-3, epsilon=1e-8), strategy=mirrored_strategy)
        _assert_same_training(reference, mirrored)

    def test_variables_are_those_of_keras_adam(self):
        # The same variables in the same order: checkpoints of either load into the other.
        variables = [keras.Variable(np.ones((3, 2), "float32")), keras.Variable(np.zeros(2, "float32"))]
        fused, plain = FusedAdam(), keras.optimizers.Adam()
        fused.build(variables)
        plain.build(variables)
        assert [(v.name, v.shape) for v in fused.variables] == [(v.name, v.shape) for v in plain.variables]

    def test_get_config_round_trip_by_registered_name(self):
        optimizer = FusedAdam(3e-4, epsilon=1e-8, beta_2=0.99, epsilon_placement="keras")
        serialized = keras.saving.serialize_keras_object(optimizer)
        assert serialized["registered_name"] == "irmae_keras>FusedAdam"
        revived = keras.saving.deserialize_keras_object(serialized)
        assert type(revived) is FusedAdam
        assert revived.get_config() == optimizer.get_config()
        assert revived.epsilon_placement == "keras"

    def test_compile_default_is_fused_adam_and_survives_saving(self, tmp_path):
        model = irmae_keras.build_autoencoder("shapes", latent_dim=4)
        model.compile()
        assert type(model.optimizer) is FusedAdam
        x = random_images((32, 32, 3), batch=4)
        model.fit(x, epochs=1, batch_size=4, verbose=0)
        path = str(tmp_path / "model.keras")
        model.save(path)
        restored = keras.models.load_model(path)
        assert type(restored.optimizer) is FusedAdam
        assert restored.optimizer.epsilon == pytest.approx(1e-8)
        assert restored.optimizer.epsilon_placement == "pytorch"
