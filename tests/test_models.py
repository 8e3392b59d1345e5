import keras
import numpy as np
import pytest
import tensorflow as tf

import irmae_keras
from irmae_keras import architectures
from irmae_keras.models import Autoencoder
from tests.helpers import random_images
from tests.helpers import run_model_saving_test
from tests.helpers import run_serialization_test
from tests.helpers import square_images

VARIANT_KWARGS = {
    "irmae": {"linear_layers": 2},
    "ae": {},
    "vae": {},
    "ae_l1": {"penalty": 1e-3},
    "ae_l2": {"penalty": 1e-3, "linear_layers": 1},
}


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _small(variant="irmae", architecture="shapes", latent_dim=6, **kwargs):
    options = dict(VARIANT_KWARGS[variant])
    options.update(kwargs)
    return irmae_keras.build_autoencoder(
        architecture, variant=variant, latent_dim=latent_dim, **options
    )


class TestPresets:
    @pytest.mark.parametrize(
        "preset, n, l", [("shapes", 32, 2), ("mnist", 128, 8), ("celeb_a", 512, 4)]
    )
    def test_irmae_preset_defaults(self, preset, n, l):
        model = irmae_keras.build_autoencoder(preset)
        assert (model.variant, model.latent_dim, model.linear_layers) == ("irmae", n, l)
        assert model.linear_stack.depth == l
        assert model.image_shape == architectures.image_shape(preset)
        assert model.architecture == preset

    @pytest.mark.parametrize("variant", ["ae", "vae", "ae_l1", "ae_l2"])
    def test_other_variants_default_to_no_stack(self, variant):
        model = irmae_keras.build_autoencoder("shapes", variant=variant, latent_dim=8)
        assert model.linear_layers == 0 and model.linear_stack is None

    def test_readme_example(self):
        model = irmae_keras.build_autoencoder(
            "mnist", variant="ae", latent_dim=64, linear_layers=0
        )
        model.compile(optimizer=keras.optimizers.Adam(1e-4))
        images = random_images((32, 32, 1), batch=8)
        model.fit(images, epochs=2, verbose=0)
        codes = model.encoder.predict(images, verbose=0)
        assert codes.shape == (8, 64)
        folded = irmae_keras.fold_linear_stack(model)
        np.testing.assert_allclose(folded.encoder.predict(images, verbose=0), codes, atol=1e-6)


class TestStructure:
    def test_stack_adds_exactly_l_n_squared_weights_without_bias(self):
        n, depth = 6, 3
        ae = _small("ae", latent_dim=n)
        irmae = _small("irmae", latent_dim=n, linear_layers=depth)
        assert irmae.count_params() - ae.count_params() == depth * n * n
        stack_weights = irmae.linear_stack.weights
        assert len(stack_weights) == depth and not any("bias" in w.path for w in stack_weights)

    def test_vae_encoder_head_is_twice_the_latent_size(self):
        model = _small("vae", latent_dim=5)
        assert model.encoder_network.output_shape == (None, 10)
        assert model.decoder.layers[-1].activation.__name__ == "sigmoid"
        assert model.encoder.output_shape == (None, 5)

    def test_encoder_decoder_share_weights_and_compose(self):
        model = _small("irmae")
        x = random_images((32, 32, 3))
        h = model.encoder_network(x)
        np.testing.assert_allclose(_np(model.encoder(x)), _np(model.linear_stack(h)), atol=1e-6)
        np.testing.assert_allclose(_np(model.decoder(model.encoder(x))), _np(model(x)), atol=1e-6)
        codes = _np(model.encoder(x))
        model.linear_stack.kernels[0].assign(2 * model.linear_stack.kernels[0])
        np.testing.assert_allclose(_np(model.encoder(x)), 2 * codes, rtol=1e-5, atol=1e-6)
        assert model.encoder.get_layer("linear_stack") is model.linear_stack

    def test_vae_uses_mean_at_inference_and_samples_when_training(self):
        model = _small("vae")
        x = random_images((32, 32, 3))
        params = _np(model.encoder_network(x))
        mean = params[:, :6]
        np.testing.assert_allclose(_np(model.encoder(x)), mean, atol=1e-6)
        np.testing.assert_allclose(_np(model(x)), _np(model.decoder(mean)), atol=1e-6)
        np.testing.assert_array_equal(_np(model(x)), _np(model(x)))
        assert not np.allclose(_np(model(x, training=True)), _np(model(x, training=True)))

    def test_frozen_stack_is_not_trained(self):
        model = _small("irmae", stack_trainable=False)
        before = [_np(w) for w in model.linear_stack.weights]
        trainable = {id(w) for w in model.trainable_weights}
        assert not any(id(w) in trainable for w in model.linear_stack.weights)
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        model.fit(random_images((32, 32, 3), batch=8), epochs=1, batch_size=4, verbose=0)
        for old, new in zip(before, model.linear_stack.weights):
            np.testing.assert_array_equal(old, _np(new))

    @pytest.mark.parametrize("tying, variables", [("shared", 1), ("transpose", 1), ("none", 4)])
    def test_tying_options_reach_the_stack(self, tying, variables):
        model = _small("irmae", linear_layers=4, tying=tying)
        assert len(model.linear_stack.weights) == variables

    def test_custom_networks(self):
        images = keras.Input((8, 8, 1))
        encoder = keras.Model(images, keras.layers.Dense(3)(keras.layers.Flatten()(images)))
        codes = keras.Input((3,))
        decoder = keras.Model(
            codes, keras.layers.Reshape((8, 8, 1))(keras.layers.Dense(64)(codes))
        )
        model = irmae_keras.build_autoencoder(encoder=encoder, decoder=decoder, linear_layers=2)
        assert model.latent_dim == 3 and model.image_shape == (8, 8, 1)
        assert model.architecture is None
        model.compile()
        model.fit(random_images((8, 8, 1), batch=4), epochs=1, verbose=0)


class TestValidation:
    @pytest.mark.parametrize(
        "kwargs, match",
        [
            ({"linear_layers": -1}, "`linear_layers` must be an integer >= 0"),
            ({"latent_dim": 0}, "`latent_dim` must be an integer >= 1"),
            ({"variant": "vae", "linear_layers": 4}, "`linear_layers` must be 0 for variant 'vae'"),
            ({"variant": "ae", "linear_layers": 2}, "`linear_layers` must be 0 for variant 'ae'"),
            ({"variant": "irmae", "linear_layers": 0}, "`linear_layers` must be >= 1 for variant 'irmae'"),
            ({"variant": "gan"}, r"`variant` must be one of \['ae', 'ae_l1', 'ae_l2', 'irmae', 'vae'\]"),
        ],
    )
    def test_invalid_arguments_name_argument_and_allowed_values(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            irmae_keras.build_autoencoder("shapes", **kwargs)

    def test_unknown_architecture(self):
        with pytest.raises(ValueError, match=r"`preset_or_architecture` must be one of \['celeb_a', 'mnist', 'shapes'\]"):
            irmae_keras.build_autoencoder("cifar10")

    def test_input_of_wrong_shape(self):
        model = _small("irmae", architecture="mnist")
        with pytest.raises(ValueError, match=r"`inputs` must be images of shape \(batch, 32, 32, 1\) for architecture 'mnist'; received shape \(2, 28, 28, 1\)"):
            model(np.zeros((2, 28, 28, 1), "float32"))
        model.compile()
        with pytest.raises(ValueError, match="`inputs` must be images of shape"):
            model.fit(np.zeros((4, 32, 32, 3), "float32"), epochs=1, verbose=0)

    def test_mismatched_networks(self):
        encoder = architectures.build_encoder("shapes", 8)
        decoder = architectures.build_decoder("shapes", 4)
        with pytest.raises(ValueError, match="`encoder_network` must output 4 values"):
            Autoencoder(encoder, decoder, variant="ae", linear_layers=0)
        with pytest.raises(ValueError, match="`decoder_network` must output images"):
            Autoencoder(
                architectures.build_encoder("mnist", 4), decoder, variant="ae", linear_layers=0
            )


class TestTraining:
    def test_compile_defaults_are_the_papers(self):
        model = _small("irmae")
        model.compile()
        assert isinstance(model.optimizer, keras.optimizers.Adam)
        assert float(model.optimizer.learning_rate) == pytest.approx(1e-4)
        assert model.optimizer.epsilon == pytest.approx(1e-8)
        assert isinstance(model.loss, keras.losses.MeanSquaredError)
        vae = _small("vae")
        vae.compile()
        assert isinstance(vae.loss, keras.losses.BinaryCrossentropy)

    def test_compile_groups_a_small_models_steps_as_training_fit_does(self):
        from irmae_keras.models import AUTO_MAX_STEPS

        model = irmae_keras.build_autoencoder("shapes")  # 80 MFLOP per sample
        model.compile()
        assert model.steps_per_execution == AUTO_MAX_STEPS
        model.compile(steps_per_execution=1)
        assert model.steps_per_execution == 1

    def test_fit_fits_the_grouping_to_the_batch_size_and_the_epoch(self):
        model = irmae_keras.build_autoencoder("shapes")
        model.compile()
        x = random_images((32, 32, 3), batch=512)
        model.fit(x, batch_size=256, epochs=1, verbose=0)
        # 64 GFLOP per call over 80 MFLOP x 256 per step.
        assert model.steps_per_execution == 3
        batches = tf.data.Dataset.from_tensor_slices(x).batch(8, drop_remainder=True).repeat()
        before = int(model.optimizer.iterations)
        model.fit(batches, steps_per_epoch=10, epochs=1, verbose=0)
        # A divisor of the epoch's 10 steps (Keras runs whole calls), and exactly 10 steps ran.
        assert model.steps_per_execution == 10
        assert int(model.optimizer.iterations) - before == 10

    def test_several_replicas_run_one_step_per_call(self, mirrored_strategy):
        with mirrored_strategy.scope():
            model = irmae_keras.build_autoencoder("shapes")
            model.compile()
        assert model.steps_per_execution == 1

    @pytest.mark.parametrize("variant", list(VARIANT_KWARGS))
    def test_a_few_steps_lower_the_loss(self, variant):
        model = _small(variant)
        model.compile(optimizer=keras.optimizers.Adam(2e-3))
        x = square_images((32, 32, 3), batch=8)
        before = model.evaluate(x, verbose=0, return_dict=True)["loss"]
        model.fit(x, epochs=15, batch_size=8, verbose=0)
        after = model.evaluate(x, verbose=0, return_dict=True)["loss"]
        assert after < before * 0.9

    def test_fit_with_images_equals_fit_with_images_as_targets(self):
        x = random_images((32, 32, 3), batch=8)
        weights = _small("irmae").get_weights()
        losses = []
        for args in ((x,), (x, x)):
            model = _small("irmae")
            model.set_weights(weights)
            model.compile(optimizer=keras.optimizers.SGD(0.1))
            losses.append(model.fit(*args, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"])
        np.testing.assert_allclose(losses[0], losses[1], rtol=1e-6)

    @pytest.mark.parametrize("variant", ["ae_l1", "ae_l2"])
    def test_penalty_enters_the_loss(self, variant):
        x = random_images((32, 32, 3), batch=4)
        model = _small(variant, penalty=0.5)
        model.compile()
        result = model.evaluate(x, verbose=0, return_dict=True)
        codes = model.encoder.predict(x, verbose=0)
        norm = np.abs(codes).sum(-1) if variant == "ae_l1" else (codes**2).sum(-1)
        np.testing.assert_allclose(result["loss"] - result["mse"], 0.5 * norm.mean(), rtol=1e-4)

    def test_vae_loss_is_bce_plus_beta_kl(self):
        x = random_images((32, 32, 3), batch=4)
        model = _small("vae", kl_weight=0.3)
        model.compile()
        loss = model.evaluate(x, verbose=0, return_dict=True)["loss"]
        params = _np(model.encoder_network(x))
        mean, logvar = params[:, :6], params[:, 6:]
        recon = np.clip(_np(model(x)), 1e-7, 1 - 1e-7)
        bce = -np.mean(x * np.log(recon) + (1 - x) * np.log(1 - recon))
        kl = -np.mean(1 + logvar - mean**2 - np.exp(logvar))
        np.testing.assert_allclose(loss, bce + 0.3 * kl, rtol=1e-4)


@pytest.mark.usefixtures("graph_mode")
class TestDistribution:
    """1 replica and 2 replicas give the same loss and weights for one global batch."""

    def _run(self, variant, strategy, weights, x, train):
        with strategy.scope():
            model = _small(variant)
            model.set_weights(weights)
            model.compile(optimizer=keras.optimizers.SGD(0.5))
        if train:
            loss = model.fit(x, epochs=1, batch_size=len(x), shuffle=False, verbose=0).history["loss"][0]
        else:
            loss = model.evaluate(x, batch_size=len(x), verbose=0)[0]
        return loss, [_np(w) for w in model.get_weights()]

    @pytest.mark.parametrize("variant, train", [("irmae", True), ("ae_l1", True), ("ae_l2", True), ("vae", False)])
    def test_one_and_two_replicas_agree(self, variant, train, mirrored_strategy):
        mirrored = mirrored_strategy
        assert mirrored.num_replicas_in_sync == 2
        x = random_images((32, 32, 3), batch=8)
        weights = _small(variant).get_weights()
        loss_one, weights_one = self._run(variant, tf.distribute.get_strategy(), weights, x, train)
        loss_two, weights_two = self._run(variant, mirrored, weights, x, train)
        np.testing.assert_allclose(loss_two, loss_one, rtol=1e-5)
        for a, b in zip(weights_one, weights_two):
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
        if train:
            assert any(not np.allclose(a, b) for a, b in zip(weights, weights_one))


class TestMixedPrecision:
    def test_stack_code_and_output_stay_float32(self):
        keras.config.set_dtype_policy("mixed_bfloat16")
        model = _small("irmae")
        assert model.linear_stack.compute_dtype == "float32"
        assert model.encoder_network.layers[1].compute_dtype == "bfloat16"
        x = random_images((32, 32, 3))
        assert model.encoder(x).dtype == "float32"
        assert model(x).dtype == "float32"
        model.compile()
        history = model.fit(x, epochs=1, verbose=0).history
        assert np.isfinite(history["loss"][0])

    def test_vae_sampler_is_float32(self):
        keras.config.set_dtype_policy("mixed_bfloat16")
        model = _small("vae")
        assert model.sampler.compute_dtype == "float32"
        assert model.encoder(random_images((32, 32, 3))).dtype == "float32"


class TestSerialization:
    @pytest.mark.parametrize("variant", list(VARIANT_KWARGS))
    def test_get_config_round_trip(self, variant):
        model = _small(variant, seed=3 if variant == "vae" else None)
        clone = run_serialization_test(model)
        assert clone.variant == variant and clone.latent_dim == model.latent_dim
        assert clone.count_params() == model.count_params()

    def test_config_keeps_every_option(self):
        model = _small(
            "irmae", linear_layers=3, init_scale=0.5, tying="transpose",
            stack_trainable=False, stack_activation="relu",
        )
        config = model.get_config()
        clone = Autoencoder.from_config(config)
        for key in ("linear_layers", "init_scale", "tying", "stack_trainable", "architecture"):
            assert getattr(clone, key) == getattr(model, key)
        assert clone.linear_stack.activation is keras.activations.relu
        initializer_model = _small("irmae", stack_initializer=keras.initializers.GlorotUniform(seed=1))
        clone = run_serialization_test(initializer_model)
        assert isinstance(clone.linear_stack.kernel_initializer, keras.initializers.GlorotUniform)

    @pytest.mark.parametrize("variant", list(VARIANT_KWARGS))
    def test_keras_saving_round_trip(self, variant, tmp_path):
        model = _small(variant)
        x = random_images((32, 32, 3))
        restored = run_model_saving_test(model, x, tmp_path)
        np.testing.assert_allclose(_np(restored.encoder(x)), _np(model.encoder(x)), atol=1e-6)
        np.testing.assert_allclose(_np(restored.decoder(model.encoder(x))), _np(model(x)), atol=1e-6)

    def test_saved_compiled_model_resumes_training_state(self, tmp_path):
        model = _small("irmae")
        model.compile(optimizer=keras.optimizers.Adam(3e-4))
        x = random_images((32, 32, 3), batch=8)
        model.fit(x, epochs=1, batch_size=4, verbose=0)
        path = str(tmp_path / "m.keras")
        model.save(path)
        restored = keras.models.load_model(path)
        assert restored.compiled
        assert float(restored.optimizer.learning_rate) == pytest.approx(3e-4)
        assert int(restored.optimizer.iterations) == 2
        for a, b in zip(model.optimizer.variables, restored.optimizer.variables):
            np.testing.assert_allclose(_np(b), _np(a))
        np.testing.assert_allclose(
            restored.evaluate(x, verbose=0), model.evaluate(x, verbose=0), rtol=1e-6
        )
