"""The singular-value spectrum of the codes and the effective rank it implies.

Protocol of the official code: encode the eval set, take the covariance of the
codes (n×n; after the linear stack), its singular values, divided by the largest.
"""

import numpy as np

from irmae_keras.paper import RANK_THRESHOLD
from irmae_keras.utils import check_choice

RANK_METHODS = ("threshold", "entropy")


def as_codes(codes, name="codes"):
    """`codes` as a float64 (examples, width) array with >= 2 finite rows.

    `name` is the argument named in the error (codes, features, ...).
    """
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2:
        raise ValueError(
            f"`{name}` must be a 2-D array (examples, width); received shape {codes.shape}."
        )
    if codes.shape[0] < 2:
        raise ValueError(
            f"`{name}` needs at least 2 examples for a covariance; received {codes.shape[0]}."
        )
    if not np.all(np.isfinite(codes)):
        raise ValueError(f"`{name}` contains NaN or infinite values.")
    return codes


def code_pca(codes):
    """Mean, covariance eigenvalues (descending) and eigenvectors of the codes.

    Args:
        codes: array of shape `(examples, n)`.

    Returns:
        `(mean, variances, directions)`: `mean` (n,), `variances` (n,) sorted
        descending and clipped at 0, `directions` (n, n) whose column i is the
        principal direction of `variances[i]`.
    """
    codes = as_codes(codes)
    mean = codes.mean(axis=0)
    covariance = np.cov(codes, rowvar=False).reshape(codes.shape[1], codes.shape[1])
    variances, directions = np.linalg.eigh(covariance)
    order = np.argsort(variances)[::-1]
    return mean, np.clip(variances[order], 0.0, None), directions[:, order]


def singular_spectrum(codes):
    """Singular values of the code covariance, normalised by the largest.

    Args:
        codes: array of shape `(examples, n)`: codes after the linear stack.

    Returns:
        A float64 array of n values in [0, 1], descending, the first 1 (all
        zeros when the codes do not vary).

    Example:
    ```python
    codes = model.encoder.predict(eval_images)
    spectrum = irmae_keras.singular_spectrum(codes)  # Fig. 2 of the paper
    ```
    """
    # The covariance is symmetric positive semi-definite: its singular values
    # are its eigenvalues.
    _, variances, _ = code_pca(codes)
    largest = variances[0]
    if largest <= 0:
        return np.zeros_like(variances)
    return variances / largest


def effective_rank(codes, threshold=RANK_THRESHOLD, method="threshold"):
    """The number of dimensions the codes really use.

    Args:
        codes: array of shape `(examples, n)`.
        threshold: float. For `"threshold"`: count the normalised singular values
            above this fraction of the largest. Defaults to `0.01` (1 %).
        method: str. `"threshold"` (an int count) or `"entropy"`: the
            entropy-based effective rank exp(-Σ p_i log p_i), p_i = σ_i / Σ σ
            (Roy & Vetterli, 2007), a float in [1, n].

    Returns:
        int for `"threshold"`, float for `"entropy"` (0 for constant codes).

    Reference:
        [Roy & Vetterli, 2007](https://ieeexplore.ieee.org/document/7098875)
    """
    return rank_from_spectrum(singular_spectrum(codes), threshold, method)


def rank_from_spectrum(spectrum, threshold=RANK_THRESHOLD, method="threshold"):
    """`effective_rank` of codes whose `singular_spectrum` is already known.

    Args:
        spectrum: array of n normalised singular values, descending (the output
            of `singular_spectrum`).
        threshold: float. See `effective_rank`. Defaults to `0.01`.
        method: str. `"threshold"` or `"entropy"`. Defaults to `"threshold"`.

    Returns:
        int for `"threshold"`, float for `"entropy"` (0 for an all-zero spectrum).
    """
    check_choice("method", method, RANK_METHODS)
    if not 0 <= threshold < 1:
        raise ValueError(f"`threshold` must be in [0, 1); received {threshold!r}.")
    spectrum = np.asarray(spectrum, dtype=np.float64)
    if spectrum[0] == 0:
        return 0 if method == "threshold" else 0.0
    if method == "threshold":
        return int(np.sum(spectrum > threshold))
    p = spectrum / spectrum.sum()
    p = p[p > 0]
    return float(np.exp(-np.sum(p * np.log(p))))


def spectrum_document(codes, reconstructions=None, images=None):
    """What the spectrum of the eval codes says, as one JSON-ready dict: the one builder
    of a run's `spectrum.json`, a preset's measured record and `evaluate`'s spectrum.

    Args:
        codes: array of shape `(examples, n)`: the eval codes (after the linear stack).
        reconstructions: float array `(N, H, W, C)` or None: the codes decoded (clipped
            to [0, 1]), given together with `images`.
        images: float array of the same shape or None: the eval images the codes are of.

    Returns:
        dict with `singular_values` (n floats, `singular_spectrum`), `effective_rank`
        (int, the 1 % threshold), `entropy_rank` (float), `threshold`, `num_codes`,
        `latent_dim`; with images also `eval_mse` (of the reconstructions) and
        `colour_kept` (`colour_kept`, None for grey images).

    Example:
    ```python
    codes = model.encoder.predict(eval_images)
    document = irmae_keras.analysis.spectrum_document(codes)
    document["effective_rank"], document["singular_values"][:8]
    ```
    """
    if (reconstructions is None) != (images is None):
        raise ValueError("`reconstructions` and `images` go together: pass both or neither.")
    codes = as_codes(codes)
    spectrum = singular_spectrum(codes)
    document = {
        "singular_values": [float(v) for v in spectrum],
        "effective_rank": rank_from_spectrum(spectrum, RANK_THRESHOLD),
        "entropy_rank": rank_from_spectrum(spectrum, RANK_THRESHOLD, method="entropy"),
        "threshold": RANK_THRESHOLD,
        "num_codes": int(codes.shape[0]),
        "latent_dim": int(codes.shape[1]),
    }
    if images is not None:
        document["eval_mse"] = float(np.mean((np.asarray(reconstructions) - np.asarray(images)) ** 2))
        document["colour_kept"] = colour_kept(reconstructions, images)
    return document


# Reconstructions that keep less than this share of the images' colour read as grey.
GREY_COLOUR_KEPT = 0.25


def colour_kept(reconstructions, images):
    """How much of the images' colour the reconstructions keep: the mean spread across
    channels (max − min per pixel) of `reconstructions` over that of `images`, on the
    pixels that are not black in `images` (a background's noise is no colour).

    0 for grey reconstructions, 1 as saturated as the data; None for grey images.

    Args:
        reconstructions: float array `(N, H, W, C)`.
        images: float array of the same shape.
    """
    reconstructions, images = np.asarray(reconstructions), np.asarray(images)
    if images.shape[-1] < 2:
        return None
    shape_pixels = images.max(axis=-1) > 0

    def spread(batch):
        return float((batch.max(axis=-1) - batch.min(axis=-1))[shape_pixels].mean())

    colour = spread(images)
    return spread(reconstructions) / colour if colour > 0 else None
