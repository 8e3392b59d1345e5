import keras
import numpy as np
import pytest

import irmae_keras
from irmae_keras import sampling
from tests.helpers import codes_of_rank
from tests.helpers import random_images


def _clusters(n=5, examples=4000, seed=0):
    """Four well-separated clusters, weights 0.4/0.3/0.2/0.1, in a 3-D subspace of n."""
    rng = np.random.default_rng(seed)
    centres = np.zeros((4, n))
    centres[:, :3] = [[10, 0, 0], [0, 10, 0], [0, 0, 10], [-10, -10, -10]]
    labels = rng.choice(4, size=examples, p=[0.4, 0.3, 0.2, 0.1])
    codes = centres[labels].copy()
    codes[:, :3] += rng.normal(size=(examples, 3)) * 0.5
    return codes, centres


def _tiny_model(latent_dim=6):
    return irmae_keras.build_autoencoder("shapes", latent_dim=latent_dim)


class TestMultivariateGaussianSampler:
    def test_rank_deficient_codes_sample_with_the_fitted_moments(self):
        codes = codes_of_rank(3, n=8)  # covariance of rank 3: no plain Cholesky
        with pytest.raises(np.linalg.LinAlgError):
            np.linalg.cholesky(np.cov(codes, rowvar=False))
        sampler = irmae_keras.MultivariateGaussianSampler().fit(codes)
        np.testing.assert_allclose(sampler.mean, codes.mean(0), atol=1e-12)
        np.testing.assert_allclose(sampler.covariance, np.cov(codes, rowvar=False), atol=1e-10)

        samples = sampler.sample(40000, seed=1)
        assert samples.shape == (40000, 8) and samples.dtype == np.float32
        scale = np.abs(sampler.covariance).max()
        np.testing.assert_allclose(samples.mean(0), sampler.mean, atol=0.03 * np.sqrt(scale))
        np.testing.assert_allclose(np.cov(samples, rowvar=False), sampler.covariance, atol=0.03 * scale)
        # The samples stay in the codes' 3-D subspace (up to the jitter).
        assert irmae_keras.effective_rank(samples) == 3

    def test_zero_jitter_on_a_constant_code_dimension_is_an_error(self):
        codes = np.c_[np.random.default_rng(0).normal(size=(50, 2)), np.ones(50)]
        assert irmae_keras.MultivariateGaussianSampler().fit(codes).sample(3, seed=0).shape == (3, 3)
        sampler = irmae_keras.MultivariateGaussianSampler(jitter=0.0).fit(codes)
        with pytest.raises(ValueError, match="singular and `jitter`=0.0 does not make it positive definite"):
            sampler.sample(3, seed=0)

    def test_same_seed_repeats_and_another_seed_differs(self):
        sampler = irmae_keras.MultivariateGaussianSampler().fit(codes_of_rank(2, n=4))
        np.testing.assert_array_equal(sampler.sample(5, seed=3), sampler.sample(5, seed=3))
        assert not np.allclose(sampler.sample(5, seed=3), sampler.sample(5, seed=4))

    def test_distribution_log_prob_matches_the_gaussian_density(self):
        rng = np.random.default_rng(0)
        codes = rng.normal(size=(500, 3)) @ np.array([[2.0, 0, 0], [0.5, 1, 0], [0, 0, 0.3]])
        sampler = irmae_keras.MultivariateGaussianSampler(jitter=0.0).fit(codes)
        from scipy.stats import multivariate_normal

        points = rng.normal(size=(4, 3))
        expected = multivariate_normal(sampler.mean, sampler.covariance).logpdf(points)
        np.testing.assert_allclose(np.asarray(sampler.distribution().log_prob(points)), expected, rtol=1e-8)


class TestGaussianMixtureSampler:
    def test_recovers_clusters_and_samples_their_weights(self):
        codes, centres = _clusters()
        sampler = irmae_keras.GaussianMixtureSampler(seed=0).fit(codes)
        order = np.argsort(sampler.mixture.weights_)[::-1]
        np.testing.assert_allclose(sampler.mixture.means_[order], centres, atol=0.1)
        samples = sampler.sample(20000, seed=0)
        assert samples.shape == (20000, 5) and samples.dtype == np.float32
        nearest = np.argmin(((samples[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
        np.testing.assert_allclose(np.bincount(nearest, minlength=4) / len(samples), [0.4, 0.3, 0.2, 0.1], atol=0.015)
        np.testing.assert_array_equal(sampler.sample(3, seed=5), sampler.sample(3, seed=5))

    @pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
    def test_tfp_mixture_has_scikit_learns_density(self, covariance_type):
        codes, _ = _clusters(n=3, examples=800)
        sampler = irmae_keras.GaussianMixtureSampler(covariance_type=covariance_type).fit(codes)
        points = codes[:10] + 0.3
        np.testing.assert_allclose(
            np.asarray(sampler.distribution().log_prob(points)),
            sampler.mixture.score_samples(points),
            rtol=1e-6,
        )

    def test_no_convergence_is_an_error(self):
        codes, _ = _clusters(examples=400)
        with pytest.raises(ValueError, match=r"did not converge in `max_iter`=1 EM iterations.*Raise `max_iter`"):
            irmae_keras.GaussianMixtureSampler(max_iter=1).fit(codes)

    def test_fewer_codes_than_components(self):
        with pytest.raises(ValueError, match=r"at least `n_components`=4 examples"):
            irmae_keras.GaussianMixtureSampler().fit(np.random.default_rng(0).normal(size=(3, 2)))

    def test_invalid_covariance_type(self):
        with pytest.raises(ValueError, match=r"`covariance_type` must be one of \['diag', 'full', 'spherical', 'tied'\]"):
            irmae_keras.GaussianMixtureSampler(covariance_type="block")


class TestPCAGridSampler:
    def test_grid_spans_two_sigma_along_the_first_two_components(self):
        rng = np.random.default_rng(0)
        scales = np.array([3.0, 2.0, 1.0, 0.5, 0.1])
        codes = rng.normal(size=(20000, 5)) * scales + 7.0
        sampler = irmae_keras.PCAGridSampler().fit(codes)
        np.testing.assert_allclose(sampler.stddevs, scales[:4], rtol=0.03)

        grid = sampler.sample()
        assert grid.shape == (100, 5) and grid.dtype == np.float32
        coefficients = ((grid - sampler.mean) @ sampler.components.T).reshape(10, 10, 4)
        first = np.linspace(-2, 2, 10) * sampler.stddevs[0]
        second = np.linspace(-2, 2, 10) * sampler.stddevs[1]
        # Row-major: columns move along the first component, rows along the second.
        np.testing.assert_allclose(coefficients[..., 0], np.broadcast_to(first, (10, 10)), atol=1e-4)
        np.testing.assert_allclose(coefficients[..., 1], np.broadcast_to(second[:, None], (10, 10)), atol=1e-4)
        np.testing.assert_allclose(coefficients[..., 2:], 0.0, atol=1e-4)
        # The grid's centre region brackets the mean; its corners are ±2σ away.
        np.testing.assert_allclose(np.abs(grid[0] - sampler.mean)[:2], 2 * scales[:2], rtol=0.05)

    def test_grid_size_follows_rows_and_cols_and_n_must_match(self):
        sampler = irmae_keras.PCAGridSampler(rows=3, cols=4).fit(codes_of_rank(4, n=6))
        assert sampler.sample(12).shape == (12, 6)
        np.testing.assert_array_equal(sampler.sample(seed=1), sampler.sample(seed=2))
        with pytest.raises(ValueError, match=r"`n` must be rows\*cols=12 for a 3×4 PCA grid"):
            sampler.sample(100)

    def test_more_components_than_code_size(self):
        with pytest.raises(ValueError, match="`n_components`=4 exceeds the code size 3"):
            irmae_keras.PCAGridSampler().fit(codes_of_rank(2, n=3))


@pytest.mark.parametrize(
    "sampler", [sampling.MultivariateGaussianSampler(), sampling.GaussianMixtureSampler(), sampling.PCAGridSampler()]
)
def test_sampling_before_fit_and_fitting_one_code_are_errors(sampler):
    with pytest.raises(ValueError, match=r"is not fitted: call `fit\(codes\)` before `sample`"):
        sampler.sample(100)
    with pytest.raises(ValueError, match="`codes` needs at least 2 examples"):
        sampler.fit(np.ones((1, 4)))


def test_build_sampler_by_name():
    assert isinstance(sampling.build_sampler("gmm", n_components=2), irmae_keras.GaussianMixtureSampler)
    assert sampling.build_sampler("pca_grid", rows=2).rows == 2
    with pytest.raises(ValueError, match=r"`name` must be one of \['gmm', 'mvg', 'pca_grid'\]"):
        sampling.build_sampler("vae")


class TestInterpolate:
    def test_endpoints_are_exact_and_steps_are_linear(self):
        rng = np.random.default_rng(0)
        a, b = rng.normal(size=(2, 3, 5)).astype(np.float32)
        path = irmae_keras.interpolate(a, b, steps=10)
        assert path.shape == (3, 10, 5) and path.dtype == np.float32
        np.testing.assert_array_equal(path[:, 0], a)
        np.testing.assert_array_equal(path[:, -1], b)
        np.testing.assert_allclose(path[:, 3], a + (b - a) * 3 / 9, atol=1e-6)
        np.testing.assert_allclose(np.diff(path, axis=1), np.broadcast_to(((b - a) / 9)[:, None], (3, 9, 5)), atol=1e-6)

    def test_one_pair_of_vectors(self):
        path = irmae_keras.interpolate(np.zeros(4), np.ones(4), steps=3)
        np.testing.assert_array_equal(path, [[[0] * 4, [0.5] * 4, [1] * 4]])

    @pytest.mark.parametrize(
        "a, b, steps, match",
        [
            (np.zeros((2, 3)), np.zeros((3, 3)), 10, "must have the same shape"),
            (np.zeros((2, 3)), np.zeros((2, 3)), 1, "`steps` must be an integer >= 2"),
        ],
    )
    def test_invalid(self, a, b, steps, match):
        with pytest.raises(ValueError, match=match):
            irmae_keras.interpolate(a, b, steps=steps)


class TestGenerate:
    def test_decode_clips_the_decoder_output_to_unit_range(self):
        model = _tiny_model()
        codes = np.random.default_rng(0).normal(size=(5, 6)).astype(np.float32) * 50
        images = sampling.decode(model, codes, batch_size=2)
        raw = keras.ops.convert_to_numpy(model.decoder(codes))
        assert images.shape == (5, 32, 32, 3) and images.dtype == np.float32
        assert raw.min() < 0  # tanh output: some values are clipped
        np.testing.assert_allclose(images, np.clip(raw, 0, 1), atol=1e-6)

    def test_generate_from_fitted_samplers(self):
        model = _tiny_model()
        codes = keras.ops.convert_to_numpy(model.encoder(random_images((32, 32, 3), batch=40)))
        mvg = irmae_keras.MultivariateGaussianSampler().fit(codes)
        images = sampling.generate(model, mvg, n=7, seed=0)
        assert images.shape == (7, 32, 32, 3)
        assert 0.0 <= images.min() and images.max() <= 1.0
        np.testing.assert_array_equal(images, sampling.generate(model, mvg, n=7, seed=0))
        grid = sampling.generate(model, irmae_keras.PCAGridSampler().fit(codes), n=None)
        assert grid.shape == (100, 32, 32, 3)

    def test_encode_gives_the_encoders_codes_in_float64_whatever_the_batch_size(self):
        model = _tiny_model()
        images = random_images((32, 32, 3), batch=7)
        codes = sampling.encode(model, images, batch_size=3)  # batches of 3, 3 and 1
        assert codes.dtype == np.float64 and codes.shape == (7, 6)
        np.testing.assert_allclose(codes, keras.ops.convert_to_numpy(model.encoder(images)), atol=1e-6)

    def test_decode_rejects_codes_of_the_wrong_size(self):
        with pytest.raises(ValueError, match=r"`codes` must have shape \(examples >= 1, 6\) for this decoder; received \(2, 5\)"):
            sampling.decode(_tiny_model(), np.zeros((2, 5)))
