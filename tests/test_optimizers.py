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


class TestFusedAdam:
    def test_same_updates_as_keras_adam(self):
        reference = _trained_weights(lambda: keras.optimizers.Adam(1e-3, epsilon=1e-8))
        _assert_same_training(reference, _trained_weights(lambda: FusedAdam(1e-3, epsilon=1e-8)))

    @pytest.mark.usefixtures("graph_mode")
    @pytest.mark.parametrize("jit_compile", [False, True])
    def test_same_updates_in_graph_mode_and_with_xla(self, jit_compile):
        reference = _trained_weights(lambda: keras.optimizers.Adam(1e-3, epsilon=1e-8))
        fused = _trained_weights(lambda: FusedAdam(1e-3, epsilon=1e-8), jit_compile=jit_compile)
        _assert_same_training(reference, fused)

    @pytest.mark.usefixtures("graph_mode")
    def test_same_updates_under_mirrored_strategy(self, mirrored_strategy):
        reference = _trained_weights(lambda: keras.optimizers.Adam(1e-3, epsilon=1e-8))
        fused = _trained_weights(lambda: FusedAdam(1e-3, epsilon=1e-8), strategy=mirrored_strategy)
        _assert_same_training(reference, fused)

    def test_amsgrad_uses_keras_update(self):
        reference = _trained_weights(lambda: keras.optimizers.Adam(1e-3, amsgrad=True))
        _assert_same_training(reference, _trained_weights(lambda: FusedAdam(1e-3, amsgrad=True)))

    def test_variables_are_those_of_keras_adam(self):
        # The same variables in the same order: checkpoints of either load into the other.
        variables = [keras.Variable(np.ones((3, 2), "float32")), keras.Variable(np.zeros(2, "float32"))]
        fused, plain = FusedAdam(), keras.optimizers.Adam()
        fused.build(variables)
        plain.build(variables)
        assert [(v.name, v.shape) for v in fused.variables] == [(v.name, v.shape) for v in plain.variables]

    def test_get_config_round_trip_by_registered_name(self):
        optimizer = FusedAdam(3e-4, epsilon=1e-8, beta_2=0.99)
        serialized = keras.saving.serialize_keras_object(optimizer)
        assert serialized["registered_name"] == "irmae_keras>FusedAdam"
        revived = keras.saving.deserialize_keras_object(serialized)
        assert type(revived) is FusedAdam
        assert revived.get_config() == optimizer.get_config()

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
