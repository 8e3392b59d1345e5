import json

import numpy as np
import pytest

import irmae_keras
from irmae_keras import analysis
from irmae_keras.analysis import code_pca
from irmae_keras.analysis import colour_kept
from irmae_keras.analysis import rank_from_spectrum
from irmae_keras.analysis import spectrum_document
from tests.helpers import codes_of_rank


@pytest.mark.parametrize("k", [1, 4, 7, 16])
def test_exact_rank_k_counts_k(k):
    codes = codes_of_rank(k)
    assert irmae_keras.effective_rank(codes) == k
    spectrum = irmae_keras.singular_spectrum(codes)
    assert spectrum.shape == (16,)
    assert spectrum[0] == pytest.approx(1.0)
    assert np.all(np.diff(spectrum) <= 1e-12)
    assert np.all(spectrum[k:] < 1e-10)


def test_small_noise_stays_below_the_threshold():
    assert irmae_keras.effective_rank(codes_of_rank(7, noise=1e-3)) == 7
    assert irmae_keras.effective_rank(codes_of_rank(7, noise=1e-3), threshold=1e-9) == 16


def test_spectrum_matches_svd_of_covariance():
    codes = codes_of_rank(5, n=8, noise=0.1)
    singular = np.linalg.svd(np.cov(codes, rowvar=False), compute_uv=False)
    np.testing.assert_allclose(irmae_keras.singular_spectrum(codes), singular / singular[0], rtol=1e-8, atol=1e-12)


def test_entropy_rank_of_isotropic_codes_is_n_and_of_rank_one_is_one():
    rng = np.random.default_rng(0)
    iso = rng.normal(size=(200000, 6))
    assert irmae_keras.effective_rank(iso, method="entropy") == pytest.approx(6, rel=0.01)
    assert irmae_keras.effective_rank(codes_of_rank(1), method="entropy") == pytest.approx(1.0, abs=1e-6)
    two = np.stack([rng.normal(size=5000) * 3, rng.normal(size=5000)], axis=1)
    expected_p = np.array([9.0, 1.0]) / 10
    expected = np.exp(-np.sum(expected_p * np.log(expected_p)))
    assert irmae_keras.effective_rank(two, method="entropy") == pytest.approx(expected, rel=0.05)


def test_constant_codes_have_rank_zero():
    codes = np.ones((10, 4))
    assert irmae_keras.effective_rank(codes) == 0
    assert irmae_keras.effective_rank(codes, method="entropy") == 0.0
    np.testing.assert_array_equal(irmae_keras.singular_spectrum(codes), np.zeros(4))


def test_pca_directions_reconstruct_the_covariance():
    codes = codes_of_rank(3, n=5, noise=0.05)
    mean, variances, directions = code_pca(codes)
    np.testing.assert_allclose(mean, codes.mean(0))
    np.testing.assert_allclose(directions @ np.diag(variances) @ directions.T, np.cov(codes, rowvar=False), atol=1e-8)


@pytest.mark.parametrize(
    "codes, kwargs, match",
    [
        (np.ones((1, 4)), {}, "at least 2 examples"),
        (np.ones(4), {}, "must be a 2-D array"),
        (np.full((3, 2), np.nan), {}, "NaN or infinite"),
        (np.eye(3), {"method": "svd"}, r"`method` must be one of \['entropy', 'threshold'\]"),
        (np.eye(3), {"threshold": 1.5}, r"`threshold` must be in \[0, 1\)"),
    ],
)
def test_invalid_input(codes, kwargs, match):
    with pytest.raises(ValueError, match=match):
        irmae_keras.effective_rank(codes, **kwargs)


@pytest.mark.parametrize("method", ["threshold", "entropy"])
def test_rank_from_spectrum_equals_effective_rank(method):
    codes = codes_of_rank(5, n=8, noise=0.05)
    spectrum = irmae_keras.singular_spectrum(codes)
    assert rank_from_spectrum(spectrum, 0.01, method) == irmae_keras.effective_rank(codes, 0.01, method)
    assert rank_from_spectrum(spectrum, 0.5, method) == irmae_keras.effective_rank(codes, 0.5, method)


class TestSpectrumDocument:
    def test_the_codes_numbers(self):
        codes = codes_of_rank(3, n=6, noise=1e-4)
        document = spectrum_document(codes)
        assert sorted(document) == ["effective_rank", "entropy_rank", "latent_dim", "num_codes",
                                    "singular_values", "threshold"]
        assert document["singular_values"] == [float(v) for v in irmae_keras.singular_spectrum(codes)]
        assert all(type(v) is float for v in document["singular_values"])
        assert document["effective_rank"] == 3 and type(document["effective_rank"]) is int
        assert document["entropy_rank"] == irmae_keras.effective_rank(codes, method="entropy")
        assert (document["threshold"], document["num_codes"], document["latent_dim"]) == (0.01, len(codes), 6)
        json.dumps(document, allow_nan=False)  # what spectrum.json and evaluation.json hold

    def test_with_the_images_it_adds_the_reconstruction_error_and_the_colour_kept(self):
        rng = np.random.default_rng(0)
        images = rng.uniform(size=(4, 2, 2, 3)).astype("float32")
        reconstructions = np.clip(images + 0.1, 0, 1)
        document = spectrum_document(codes_of_rank(2, n=3), reconstructions, images)
        assert document["eval_mse"] == pytest.approx(float(np.mean((reconstructions - images) ** 2)))
        assert type(document["eval_mse"]) is float
        assert document["colour_kept"] == colour_kept(reconstructions, images)
        grey = spectrum_document(codes_of_rank(2, n=3), images[..., :1], images[..., :1])
        assert (grey["eval_mse"], grey["colour_kept"]) == (0.0, None)

    def test_reconstructions_without_images_are_refused(self):
        with pytest.raises(ValueError, match="`reconstructions` and `images` go together"):
            spectrum_document(np.eye(3), reconstructions=np.zeros((3, 2, 2, 1)))


def test_colour_ratio_is_zero_for_grey_and_one_for_the_images():
    """irmae_keras.analysis.colour_kept, which this experiment's table reports."""
    images = np.random.default_rng(0).uniform(size=(4, 8, 8, 3)).astype("float32")
    grey = np.repeat(images.mean(axis=-1, keepdims=True), 3, axis=-1)
    assert analysis.colour_kept(grey, images) == 0.0
    assert analysis.colour_kept(images, images) == 1.0
    half = grey + 0.5 * (images - grey)
    assert abs(analysis.colour_kept(half, images) - 0.5) < 1e-6
    # Noise on a black background is not colour.
    images[:, :4] = 0.0
    noisy = images.copy()
    noisy[:, :4] = np.random.default_rng(1).uniform(0, 0.1, size=noisy[:, :4].shape)
    assert analysis.colour_kept(noisy, images) == 1.0
