import keras
import numpy as np
import pytest

import irmae_keras
from irmae_keras.folding import fold_linear_stack
from irmae_keras.folding import folded_stack_kernel
from tests.helpers import random_images
from tests.helpers import run_model_saving_test


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _trained_like(model, seed=0):
    """Gives the stack weights of trained magnitude (not tiny init values)."""
    rng = np.random.default_rng(seed)
    for kernel in model.linear_stack.kernels:
        n = kernel.shape[0]
        kernel.assign(np.eye(n) + rng.normal(scale=0.3, size=(n, n)) / np.sqrt(n))
    return model


# CelebA's 781 MB model takes most of this test's time: every depth and mode runs with --run-slow.
@pytest.mark.parametrize("architecture", ["shapes", "mnist", pytest.param("celeb_a", marks=pytest.mark.slow)])
@pytest.mark.parametrize("depth", [1, 2, 8])
@pytest.mark.parametrize("absorb", [False, True])
def test_folding_parity(architecture, depth, absorb):
    model = _trained_like(
        irmae_keras.build_autoencoder(architecture, latent_dim=7, linear_layers=depth)
    )
    x = random_images(model.image_shape, batch=3)
    folded = fold_linear_stack(model, absorb=absorb)
    assert folded is not model
    assert folded.folded == ("encoder" if absorb else "dense")
    assert folded.linear_layers == depth  # the trained depth is kept as metadata
    if absorb:
        assert folded.linear_stack is None
    else:
        assert folded.linear_stack.depth == 1 and len(folded.linear_stack.weights) == 1
    codes = _np(model.encoder(x))
    assert np.abs(_np(folded.encoder(x)) - codes).max() <= 1e-5 * max(1.0, np.abs(codes).max())
    assert np.abs(_np(folded(x)) - _np(model(x))).max() <= 1e-5


@pytest.mark.parametrize("tying", ["shared", "transpose"])
def test_tied_stacks_fold(tying):
    model = irmae_keras.build_autoencoder("shapes", latent_dim=5, linear_layers=3, tying=tying)
    x = random_images((32, 32, 3), batch=2)
    for absorb in (False, True):
        folded = fold_linear_stack(model, absorb=absorb)
        np.testing.assert_allclose(_np(folded.encoder(x)), _np(model.encoder(x)), atol=1e-6)


def test_fold_does_not_modify_the_original():
    model = _trained_like(irmae_keras.build_autoencoder("shapes", latent_dim=5, linear_layers=2))
    before = [_np(w) for w in model.weights]
    fold_linear_stack(model, absorb=True)
    for old, new in zip(before, model.weights):
        np.testing.assert_array_equal(old, _np(new))


def test_absorbed_irmae_equals_ae_with_the_same_weights():
    irmae = _trained_like(irmae_keras.build_autoencoder("mnist", latent_dim=6, linear_layers=2))
    absorbed = fold_linear_stack(irmae, absorb=True)
    ae = irmae_keras.build_autoencoder("mnist", variant="ae", latent_dim=6, linear_layers=0)
    ae.set_weights(absorbed.get_weights())
    x = random_images((32, 32, 1), batch=4)
    np.testing.assert_array_equal(_np(ae.encoder(x)), _np(absorbed.encoder(x)))
    np.testing.assert_allclose(_np(ae.encoder(x)), _np(irmae.encoder(x)), atol=1e-5)


def test_folded_kernel_is_the_product():
    model = _trained_like(irmae_keras.build_autoencoder("shapes", latent_dim=4, linear_layers=3))
    k = [_np(w) for w in model.linear_stack.kernels]
    np.testing.assert_allclose(folded_stack_kernel(model), k[0] @ k[1] @ k[2], rtol=1e-5, atol=1e-6)
    ae = irmae_keras.build_autoencoder("shapes", variant="ae", latent_dim=4)
    np.testing.assert_array_equal(folded_stack_kernel(ae), np.eye(4))


@pytest.mark.parametrize("variant", ["ae", "vae"])
def test_models_without_a_stack_are_copied(variant):
    model = irmae_keras.build_autoencoder("shapes", variant=variant, latent_dim=4)
    x = random_images((32, 32, 3), batch=2)
    for absorb in (False, True):
        copy = fold_linear_stack(model, absorb=absorb)
        assert copy is not model and copy.folded == "none"
        np.testing.assert_array_equal(_np(copy(x)), _np(model(x)))


def test_folding_a_folded_model_again_is_stable():
    model = _trained_like(irmae_keras.build_autoencoder("shapes", latent_dim=4, linear_layers=2))
    x = random_images((32, 32, 3), batch=2)
    twice = fold_linear_stack(fold_linear_stack(model), absorb=True)
    assert twice.folded == "encoder"
    np.testing.assert_allclose(_np(twice.encoder(x)), _np(model.encoder(x)), atol=1e-5)


@pytest.mark.parametrize("absorb", [False, True])
def test_folded_models_save_and_load(absorb, tmp_path):
    model = _trained_like(irmae_keras.build_autoencoder("mnist", latent_dim=5, linear_layers=2))
    folded = fold_linear_stack(model, absorb=absorb)
    x = random_images((32, 32, 1), batch=2)
    restored = run_model_saving_test(folded, x, tmp_path)
    assert restored.folded == folded.folded
    np.testing.assert_allclose(_np(restored.encoder(x)), _np(model.encoder(x)), atol=1e-5)


def test_nonlinear_stack_cannot_be_folded():
    model = irmae_keras.build_autoencoder(
        "shapes", latent_dim=4, linear_layers=2, stack_activation="relu"
    )
    with pytest.raises(ValueError, match="cannot be folded"):
        fold_linear_stack(model)


def test_only_autoencoders_fold():
    with pytest.raises(ValueError, match="`model` must be an irmae_keras Autoencoder"):
        fold_linear_stack(keras.Sequential([keras.layers.Dense(2)]))


def test_absorb_needs_a_linear_weighted_head():
    images = keras.Input((8, 8, 1))
    h = keras.layers.Dense(3, activation="relu")(keras.layers.Flatten()(images))
    encoder = keras.Model(images, h)
    codes = keras.Input((3,))
    decoder = keras.Model(codes, keras.layers.Reshape((8, 8, 1))(keras.layers.Dense(64)(codes)))
    model = irmae_keras.build_autoencoder(encoder=encoder, decoder=decoder, linear_layers=2)
    with pytest.raises(ValueError, match="absorb=True needs a linear encoder head"):
        fold_linear_stack(model, absorb=True)
    fold_linear_stack(model)  # folding into a Dense still works


def _low_rank_codes(model, rank, examples=64, seed=0):
    """Codes that span exactly `rank` directions around a non-zero mean."""
    rng = np.random.default_rng(seed)
    n = model.latent_dim
    mean = rng.normal(size=n)
    basis = np.linalg.qr(rng.normal(size=(n, rank)))[0]
    return (mean + rng.normal(size=(examples, rank)) * [3.0, 2.0, 1.0][:rank] @ basis.T).astype(
        "float32"
    ), mean, basis


def test_compact_autoencoder_round_trips_codes_in_the_principal_subspace():
    from irmae_keras.folding import compact_autoencoder

    model = _trained_like(irmae_keras.build_autoencoder("shapes", latent_dim=6, linear_layers=2))
    codes, mean, basis = _low_rank_codes(model, rank=3)
    encoder, decoder = compact_autoencoder(model, codes, 3)
    assert encoder.name == "encoder_rank3" and decoder.name == "decoder_rank3"
    assert encoder.output_shape == (None, 3) and decoder.input_shape == (None, 3)
    assert decoder.output_shape == (None, 32, 32, 3)
    # The projection is (z - mean) @ V: a code in the subspace is lifted back exactly.
    project = encoder.get_layer("principal_coordinates")
    lift = decoder.get_layer("principal_lift")
    assert not project.trainable and not lift.trainable  # fixed by the codes, not trained
    coordinates = _np(project(codes))
    np.testing.assert_allclose(_np(lift(coordinates)), codes, atol=1e-4)
    np.testing.assert_allclose(coordinates.mean(axis=0), 0.0, atol=1e-4)
    # The directions found are the subspace the codes were drawn in.
    kernel = _np(project.kernel)
    np.testing.assert_allclose(np.linalg.svd(kernel.T @ basis)[1], 1.0, atol=1e-4)


def test_compact_autoencoder_at_full_rank_equals_the_model():
    from irmae_keras.folding import compact_autoencoder

    model = _trained_like(irmae_keras.build_autoencoder("mnist", latent_dim=5, linear_layers=2))
    x = random_images((32, 32, 1), batch=16)
    codes = _np(model.encoder(x))
    encoder, decoder = compact_autoencoder(model, codes, 5)
    np.testing.assert_allclose(_np(decoder(encoder(x))), _np(model(x)), atol=1e-5)
    # Shares the model's weights rather than copying them.
    assert any(w is v for w in encoder.weights for v in model.encoder.weights)


def test_compact_models_save_and_load(tmp_path):
    from irmae_keras.folding import compact_autoencoder

    model = irmae_keras.build_autoencoder("shapes", latent_dim=4, linear_layers=2)
    x = random_images((32, 32, 3), batch=6)
    encoder, decoder = compact_autoencoder(model, _np(model.encoder(x)), 2)
    for part, inputs in ((encoder, x), (decoder, np.ones((2, 2), "float32"))):
        path = tmp_path / f"{part.name}.keras"
        part.save(path)
        restored = keras.models.load_model(path, safe_mode=True)
        np.testing.assert_allclose(_np(restored(inputs)), _np(part(inputs)), atol=1e-6)


@pytest.mark.parametrize("rank", [0, 5, 2.0, True, "2"])
def test_compact_autoencoder_rejects_a_bad_rank(rank):
    from irmae_keras.folding import compact_autoencoder

    model = irmae_keras.build_autoencoder("shapes", latent_dim=4, linear_layers=2)
    codes = np.random.default_rng(0).normal(size=(8, 4))
    with pytest.raises(ValueError, match="`rank` must be an integer from 1 to the latent size 4"):
        compact_autoencoder(model, codes, rank)


def test_compact_autoencoder_checks_the_codes():
    from irmae_keras.folding import compact_autoencoder

    model = irmae_keras.build_autoencoder("shapes", latent_dim=4, linear_layers=2)
    with pytest.raises(ValueError, match=r"`codes` must have shape \(examples, 4\)"):
        compact_autoencoder(model, np.zeros((8, 3)), 2)
    with pytest.raises(ValueError, match="must be an irmae_keras Autoencoder"):
        compact_autoencoder(keras.Sequential([keras.layers.Dense(2)]), np.zeros((8, 4)), 2)
