"""Generation from a trained autoencoder: samplers fitted on codes, and decoding.

The protocols of the official code (docs/paper.md, "Evaluation protocols"):

- MVG: fit the mean and full covariance of the eval codes, sample, decode.
- GMM: scikit-learn `GaussianMixture`, 4 components, full covariance.
- PCA: 4 components; a 10×10 grid over the first two from −2σ to +2σ around the
  mean (the others at the mean), decoded through the inverse transform.
- Interpolation: pairs of eval codes, 10 linear steps.

A sampler is an object in the manner of pythae: `fit(codes)` returns the
sampler, `sample(n, seed)` returns `(n, latent_dim)` float32 codes, and
`generate(model, sampler, n, seed)` decodes them into images.

Example:
```python
codes = model.encoder.predict(eval_images)
sampler = irmae_keras.MultivariateGaussianSampler().fit(codes)
images = irmae_keras.sampling.generate(model, sampler, n=100, seed=0)
```
"""

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from irmae_keras.analysis import as_codes
from irmae_keras.analysis import code_pca
from irmae_keras.utils import check_choice
from irmae_keras.utils import check_int
from irmae_keras.utils import map_in_batches

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def _distributions():
    # TensorFlow Probability imports slowly and pulls in tf-keras: only the
    # samplers that draw need it.
    import tensorflow_probability as tfp

    return tfp.distributions


def _stateless_seed(seed):
    """A `(seed, 0)` pair: TFP samples statelessly, so a seed repeats exactly."""
    if seed is None:
        seed = int(np.random.default_rng().integers(2**31 - 1))
    check_int("seed", seed, 0)
    return (seed, 0)


def _cholesky(covariance, jitter):
    """Lower Cholesky factor of `covariance` + `jitter`·mean(variance)·I.

    IRMAE codes are rank-deficient, so their covariance has zero eigenvalues
    and no Cholesky factor; a jitter relative to the mean variance makes it
    positive definite while changing the sampled covariance by that much only.
    """
    covariance = np.asarray(covariance, dtype=np.float64)
    scale = max(float(np.trace(covariance)) / covariance.shape[-1], np.finfo(np.float64).tiny)
    try:
        return np.linalg.cholesky(covariance + jitter * scale * np.eye(covariance.shape[-1]))
    except np.linalg.LinAlgError:
        raise ValueError(
            f"The code covariance is singular and `jitter`={jitter} does not make it "
            "positive definite; use a `jitter` > 0 such as 1e-6."
        ) from None


class CodeSampler:
    """Base class: `fit(codes)` → self, then `sample(n, seed)` → codes.

    Subclasses implement `fit` and either `distribution` (a TFP distribution
    over codes, which `sample` draws from) or `sample` itself.
    """

    def fit(self, codes):
        """Fits the sampler to codes of shape `(examples, latent_dim)`; returns self."""
        raise NotImplementedError

    def distribution(self):
        """The fitted distribution over codes (a `tfp.distributions.Distribution`)."""
        raise NotImplementedError

    def sample(self, n, seed=None):
        """Draws `n` codes.

        Args:
            n: int >= 1. Number of codes.
            seed: int >= 0 or None. The same seed gives the same codes
                (stateless sampling). Defaults to `None` (a fresh draw).

        Returns:
            float32 array `(n, latent_dim)`.
        """
        check_int("n", n, 1)
        samples = self.distribution().sample(n, seed=_stateless_seed(seed))
        return np.asarray(samples, np.float32)

    def _check_fitted(self, attribute):
        if getattr(self, attribute, None) is None:
            raise ValueError(
                f"{type(self).__name__} is not fitted: call `fit(codes)` before `sample`."
            )


class MultivariateGaussianSampler(CodeSampler):
    """A multivariate Gaussian with the mean and full covariance of the codes.

    Sampling uses `tfp.distributions.MultivariateNormalTriL` with the Cholesky
    factor of the covariance plus `jitter` times the mean variance on the
    diagonal (IRMAE codes are rank-deficient: their covariance is singular).

    Args:
        jitter: float. Relative diagonal offset before the Cholesky
            factorisation. Defaults to `1e-6`.

    Attributes:
        mean: (n,) float64 mean of the fitted codes.
        covariance: (n, n) float64 covariance (projected onto the positive
            semi-definite matrices).

    Example:
    ```python
    sampler = MultivariateGaussianSampler().fit(codes)
    new_codes = sampler.sample(64, seed=0)
    ```
    """

    def __init__(self, jitter=1e-6):
        if not jitter >= 0:
            raise ValueError(f"`jitter` must be >= 0; received {jitter!r}.")
        self.jitter = jitter
        self.mean = None
        self.covariance = None

    def fit(self, codes):
        # code_pca clips the tiny negative eigenvalues rounding leaves, so the
        # rebuilt covariance is positive semi-definite.
        mean, variances, directions = code_pca(codes)
        self.mean = mean
        self.covariance = (directions * variances) @ directions.T
        return self

    def distribution(self):
        """The fitted `tfp.distributions.MultivariateNormalTriL` (float64)."""
        self._check_fitted("mean")
        return _distributions().MultivariateNormalTriL(
            loc=self.mean, scale_tril=_cholesky(self.covariance, self.jitter)
        )


class GaussianMixtureSampler(CodeSampler):
    """A Gaussian mixture fitted with scikit-learn, sampled through TFP.

    The mixture is fitted by `sklearn.mixture.GaussianMixture` (EM) and sampled
    as a `tfp.distributions.MixtureSameFamily` of `MultivariateNormalTriL`
    built from the fitted weights, means and covariances.

    Args:
        n_components: int. Number of Gaussians. Defaults to `4` (the paper).
        covariance_type: str. `"full"`, `"tied"`, `"diag"` or `"spherical"`.
            Defaults to `"full"` (the paper).
        reg_covar: float. Added to the covariances' diagonals by scikit-learn
            (keeps them positive definite on rank-deficient codes). Defaults to
            `1e-6`.
        max_iter: int. EM iterations. Defaults to `100`.
        seed: int or None. Seed of the EM initialisation. Defaults to `0`.

    Attributes:
        mixture: the fitted `sklearn.mixture.GaussianMixture`.

    Example:
    ```python
    sampler = GaussianMixtureSampler(n_components=4).fit(codes)
    new_codes = sampler.sample(64, seed=0)
    ```
    """

    def __init__(self, n_components=4, covariance_type="full", reg_covar=1e-6,
                 max_iter=100, seed=0):
        check_int("n_components", n_components, 1)
        check_choice("covariance_type", covariance_type, COVARIANCE_TYPES)
        if not reg_covar >= 0:
            raise ValueError(f"`reg_covar` must be >= 0; received {reg_covar!r}.")
        check_int("max_iter", max_iter, 1)
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.seed = seed
        self.mixture = None

    def fit(self, codes):
        codes = as_codes(codes)
        if codes.shape[0] < self.n_components:
            raise ValueError(
                f"`codes` needs at least `n_components`={self.n_components} examples "
                f"for a mixture; received {codes.shape[0]}."
            )
        mixture = GaussianMixture(
            n_components=self.n_components,
            covariance_type=self.covariance_type,
            reg_covar=self.reg_covar,
            max_iter=self.max_iter,
            random_state=self.seed,
        )
        # A mixture that did not converge samples from arbitrary EM iterates:
        # refuse it rather than report figures from it.
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            try:
                mixture.fit(codes)
            except ConvergenceWarning as warning:
                raise ValueError(
                    f"The Gaussian mixture did not converge in `max_iter`={self.max_iter} "
                    f"EM iterations ({warning}). Raise `max_iter`, raise `reg_covar` "
                    f"(now {self.reg_covar}), or lower `n_components` "
                    f"(now {self.n_components})."
                ) from None
        self.mixture = mixture
        return self

    def _full_covariances(self):
        """The fitted covariances as a (components, n, n) array, whatever the type."""
        covariances = self.mixture.covariances_
        k, n = self.mixture.means_.shape
        if self.covariance_type == "tied":
            return np.broadcast_to(covariances, (k, n, n))
        if self.covariance_type == "diag":
            return np.stack([np.diag(c) for c in covariances])
        if self.covariance_type == "spherical":
            return covariances[:, None, None] * np.eye(n)
        return covariances

    def distribution(self):
        """The fitted mixture as a `tfp.distributions.MixtureSameFamily` (float64)."""
        self._check_fitted("mixture")
        tfd = _distributions()
        # scikit-learn's covariances already carry `reg_covar`: positive definite.
        return tfd.MixtureSameFamily(
            mixture_distribution=tfd.Categorical(probs=self.mixture.weights_),
            components_distribution=tfd.MultivariateNormalTriL(
                loc=self.mixture.means_,
                scale_tril=np.linalg.cholesky(self._full_covariances()),
            ),
        )


class PCAGridSampler(CodeSampler):
    """The paper's PCA grid: a regular grid over the first two principal components.

    PCA with `n_components` components is fitted on the codes. `sample` returns
    the `rows × cols` grid in row-major order: row i sets the second component
    and column j the first, each evenly spaced from `−extent·σ` to `+extent·σ`
    (σ the component's standard deviation) around the mean; the other
    components stay at the mean (0). The grid is mapped back to codes by the
    PCA inverse transform `mean + Σ_k c_k v_k`. It is deterministic: `seed` is
    accepted for the common interface and ignored.

    Args:
        n_components: int >= 2. PCA components kept. Defaults to `4` (paper).
        rows: int. Grid rows (second component). Defaults to `10`.
        cols: int. Grid columns (first component). Defaults to `10`.
        extent: float. Half-width of the grid in standard deviations. Defaults
            to `2.0` (paper: −2σ to +2σ).

    Attributes:
        mean: (n,) mean of the codes.
        components: (n_components, n) principal directions, as rows.
        stddevs: (n_components,) standard deviations along them.

    Example:
    ```python
    sampler = PCAGridSampler().fit(codes)
    grid_codes = sampler.sample()  # (100, n); decode and show as a 10×10 grid
    ```
    """

    def __init__(self, n_components=4, rows=10, cols=10, extent=2.0):
        check_int("n_components", n_components, 2)
        check_int("rows", rows, 1)
        check_int("cols", cols, 1)
        if not extent > 0:
            raise ValueError(f"`extent` must be > 0; received {extent!r}.")
        self.n_components = n_components
        self.rows = rows
        self.cols = cols
        self.extent = extent
        self.mean = None
        self.components = None
        self.stddevs = None

    def fit(self, codes):
        mean, variances, directions = code_pca(codes)
        if self.n_components > mean.shape[0]:
            raise ValueError(
                f"`n_components`={self.n_components} exceeds the code size "
                f"{mean.shape[0]}."
            )
        self.mean = mean
        self.components = directions[:, : self.n_components].T
        self.stddevs = np.sqrt(variances[: self.n_components])
        return self

    def sample(self, n=None, seed=None):
        """The grid codes, `(rows·cols, n)`, row-major.

        Args:
            n: int or None. Must be `rows * cols` (the grid is fixed); `None`
                means that.
            seed: ignored: the grid is deterministic.
        """
        self._check_fitted("mean")
        size = self.rows * self.cols
        if n is not None and n != size:
            raise ValueError(
                f"`n` must be rows*cols={size} for a {self.rows}×{self.cols} PCA grid "
                f"(or None); received {n!r}. Set `rows`/`cols` to change the grid."
            )
        first = np.linspace(-self.extent, self.extent, self.cols) * self.stddevs[0]
        second = np.linspace(-self.extent, self.extent, self.rows) * self.stddevs[1]
        coefficients = np.zeros((self.rows, self.cols, self.n_components))
        coefficients[..., 0] = first[None, :]
        coefficients[..., 1] = second[:, None]
        codes = self.mean + coefficients.reshape(size, -1) @ self.components
        return codes.astype(np.float32)


SAMPLERS = {
    "mvg": MultivariateGaussianSampler,
    "gmm": GaussianMixtureSampler,
    "pca_grid": PCAGridSampler,
}


def build_sampler(name, **kwargs):
    """A sampler by name: `"mvg"`, `"gmm"` or `"pca_grid"`, with its arguments.

    Example:
    ```python
    sampler = build_sampler("gmm", n_components=4).fit(codes)
    ```
    """
    check_choice("name", name, SAMPLERS)
    return SAMPLERS[name](**kwargs)


def interpolate(codes_a, codes_b, steps=10):
    """Linear interpolation between pairs of codes.

    Args:
        codes_a: array `(pairs, n)` (or `(n,)` for one pair): the start codes.
        codes_b: array of the same shape: the end codes.
        steps: int >= 2. Points per pair, endpoints included. Defaults to `10`.

    Returns:
        float32 array `(pairs, steps, n)`; `[:, 0]` equals `codes_a` and
        `[:, -1]` equals `codes_b` exactly.

    Example:
    ```python
    codes = model.encoder.predict(eval_images[:20])
    path = interpolate(codes[:10], codes[10:])  # (10, 10, n)
    images = decode(model, path.reshape(-1, path.shape[-1]))
    ```
    """
    check_int("steps", steps, 2)
    codes_a = np.atleast_2d(np.asarray(codes_a, dtype=np.float64))
    codes_b = np.atleast_2d(np.asarray(codes_b, dtype=np.float64))
    if codes_a.shape != codes_b.shape or codes_a.ndim != 2:
        raise ValueError(
            "`codes_a` and `codes_b` must have the same shape (pairs, n); received "
            f"{codes_a.shape} and {codes_b.shape}."
        )
    t = np.linspace(0.0, 1.0, steps)[None, :, None]
    # (1 - t)·a + t·b is exact at both ends: at t=0 it is a, at t=1 it is b.
    path = (1.0 - t) * codes_a[:, None, :] + t * codes_b[:, None, :]
    return path.astype(np.float32)


def encode(model, images, batch_size=500):
    """Images → codes through `model.encoder`, in batches of direct calls (no
    tf.distribute step, so one worker can do it alone).

    Args:
        model: an `Autoencoder` (anything with an `.encoder`).
        images: float array `(examples, height, width, channels)` in [0, 1].
        batch_size: int. Encoder batch size. Defaults to `500`.

    Returns:
        float64 codes `(examples, latent_dim)`, as the spectrum is computed on.
    """
    return map_in_batches(lambda x: model.encoder(x, training=False), images, batch_size).astype("float64")


def decode(model, codes, batch_size=256):
    """Codes → images through `model.decoder`, clipped to [0, 1].

    The AE/IRMAE decoders end in tanh (range [−1, 1]) while images are in
    [0, 1]: values outside are clipped so generated images follow the
    project's image convention.

    Args:
        model: an `Autoencoder` (anything with a `.decoder`).
        codes: array `(examples, latent_dim)`.
        batch_size: int. Decoder batch size. Defaults to `256`.

    Returns:
        float32 images `(examples, height, width, channels)` in [0, 1].
    """
    codes = np.asarray(codes, dtype=np.float32)
    latent_dim = model.decoder.input_shape[-1]
    if codes.ndim != 2 or codes.shape[1] != latent_dim or not len(codes):
        raise ValueError(
            f"`codes` must have shape (examples >= 1, {latent_dim}) for this decoder; "
            f"received {codes.shape}."
        )
    images = map_in_batches(lambda x: model.decoder(x, training=False), codes, batch_size)
    return np.clip(images, 0.0, 1.0).astype(np.float32)


def generate(model, sampler, n=100, seed=None, batch_size=256):
    """Samples `n` codes from a fitted sampler and decodes them into images.

    Args:
        model: an `Autoencoder`.
        sampler: a fitted `CodeSampler`.
        n: int or None. Number of images; `None` is allowed for samplers with a
            fixed size (`PCAGridSampler`). Defaults to `100`.
        seed: int or None. Sampling seed. Defaults to `None`.
        batch_size: int. Decoder batch size. Defaults to `256`.

    Returns:
        float32 images `(n, height, width, channels)` in [0, 1].
    """
    return decode(model, sampler.sample(n, seed=seed), batch_size=batch_size)
