"""Fréchet distance between image sets (FID) and the feature extractors behind it.

    FID = ‖μ_r − μ_g‖² + Tr(Σ_r + Σ_g − 2 (Σ_r Σ_g)^{1/2})

with μ, Σ the mean and covariance of the features of the real (r) and
generated (g) images. The paper reports FID without stating its protocol and
the official code has none; this project's protocol (also in
`docs/evaluation.md`):

- **Real images**: the first N = 10 000 images of the eval split (all of them
  when the split is smaller).
- **Generated images**: N codes drawn (seed 0) from a sampler (MVG, GMM) fitted
  on the codes of those same eval images, decoded and clipped to [0, 1]. The
  100-image PCA grid is a figure, not scored. The FID of the eval images'
  reconstructions is the floor a sampler could reach through this decoder.
- **Features**:
  - `InceptionFeatures` (CelebA, or any RGB data when the weights are at hand):
    Keras' ImageNet InceptionV3 without its top, global average pooling (2048
    values). Images scaled to [0, 255], resized bilinearly to 299×299, grayscale
    repeated to 3 channels, then `inception_v3.preprocess_input` (x/127.5 − 1).
    These weights are not the TF-slim graph of published FIDs: compare values
    within this project, not with papers.
  - `DomainFeatures` (shapes, digits, MNIST; works offline): a small CNN trained
    on the train split's labels (10 digit classes), factors (shapes: the 7
    factors, standardised, by regression) or 0/1 attributes; its 128-value
    penultimate layer. Stored with the run, so every model of a data set is
    scored by one network.
- **Statistics**: float64 mean and unbiased covariance; the matrix square root
  by `scipy.linalg.sqrtm`, retried with ε·I (ε = 1e-6) added to both
  covariances when the product is singular; an imaginary part whose diagonal
  is negligible is dropped; rounding below 0 is clipped to 0.
- FID is biased by N: compare only values with the same N, eval images and
  extractor (its `name` goes with every reported value).
- Cost: `sqrtm` of a 2048×2048 product takes about 30 s on 2 CPU cores (the
  128-value domain features: well under a second).

Example:
```python
extractor = DomainFeatures().fit(train_images, train_labels, epochs=5)
generated = sampling.generate(model, sampler, n=len(eval_images), seed=0)
score = fid(eval_images, generated, extractor)
```
"""

import hashlib
import os
import warnings

import keras
import numpy as np
import scipy.linalg
import tensorflow as tf

from irmae_keras.analysis import as_codes
from irmae_keras.staging import save_model_atomic
from irmae_keras.utils import check_images
from irmae_keras.utils import check_int
from irmae_keras.utils import map_in_batches

INCEPTION_WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
# The hash Keras itself checks for this file (keras.applications.inception_v3).
INCEPTION_WEIGHTS_MD5 = "bcbd6486424b2319ff4ef7d526e38f63"
INCEPTION_SIZE = 299


def feature_statistics(features):
    """Mean and covariance of features `(examples, d)`, in float64.

    Returns:
        `(mu, sigma)`: `mu` (d,), `sigma` (d, d), the unbiased covariance.
    """
    features = as_codes(features, "features")
    return features.mean(axis=0), np.atleast_2d(np.cov(features, rowvar=False))


def frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """Fréchet distance between the Gaussians N(mu1, sigma1) and N(mu2, sigma2).

    `‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^{1/2})`. When `scipy.linalg.sqrtm`
    of the product is not finite (a singular product), it is retried with
    `eps`·I added to both covariances; an imaginary part (rounding) is dropped
    when its diagonal stays below 1e-3 of the largest diagonal value (or 1e-3),
    else it is an error.

    Args:
        mu1: (d,) mean of the first set.
        sigma1: (d, d) covariance of the first set.
        mu2: (d,) mean of the second set.
        sigma2: (d, d) covariance of the second set.
        eps: float. Diagonal offset of the retry. Defaults to `1e-6`.

    Returns:
        float >= 0.

    Example:
    ```python
    score = frechet_distance(*feature_statistics(a), *feature_statistics(b))
    ```
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(
            "`mu1`, `mu2` must have shape (d,) and `sigma1`, `sigma2` shape (d, d) with one d; "
            f"received {mu1.shape}, {sigma1.shape}, {mu2.shape}, {sigma2.shape}."
        )
    with warnings.catch_warnings():
        # A singular product warns and may come back with infinities: retried below.
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        root = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.all(np.isfinite(root)):
        offset = eps * np.eye(d)
        root = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(root):
        # Only the diagonal enters the trace.
        imaginary = np.abs(np.diagonal(root).imag).max()
        if imaginary > 1e-3 * max(1.0, np.abs(np.diagonal(root).real).max()):
            raise ValueError(
                f"The square root of sigma1·sigma2 has an imaginary diagonal of up to {imaginary:g}: "
                "the covariances are not positive semi-definite (or too few examples)."
            )
        root = root.real
    diff = mu1 - mu2
    distance = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(root)
    # Rounding can leave a tiny negative value for (near) identical sets.
    return max(float(distance), 0.0)


def fid(real_images, fake_images, extractor, batch_size=64):
    """FID between two image sets with a feature extractor (see the module doc).

    Args:
        real_images: float32 `(N, H, W, C)` in [0, 1], N >= 2.
        fake_images: float32 `(M, H, W, C)` in [0, 1], M >= 2.
        extractor: an `InceptionFeatures`, a `DomainFeatures`, or any callable
            `(images, batch_size=...) → (N, d)` features.
        batch_size: int. Extractor batch size. Defaults to `64`.

    Returns:
        float >= 0.
    """
    real = extractor(check_images("real_images", real_images, 2), batch_size=batch_size)
    fake = extractor(check_images("fake_images", fake_images, 2), batch_size=batch_size)
    return frechet_distance(*feature_statistics(real), *feature_statistics(fake))


def _md5(path):
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "md5").hexdigest()


def _keras_cache_dirs():
    """Where Keras keeps downloads: $KERAS_HOME or ~/.keras, and its /tmp fallback."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return [home, os.path.join("/tmp", ".keras")]


def find_inception_weights(weights_path=None, cache_dir=None):
    """The path of InceptionV3's no-top ImageNet weights, without downloading.

    Args:
        weights_path: str or None. An explicit weights file; checked first.
        cache_dir: str or None. A Keras cache directory to look in (the file is
            expected in its `models/`); `None` looks in Keras' own ($KERAS_HOME
            or `~/.keras`, and `/tmp/.keras`).

    Returns:
        str: the path of a file whose md5 is the one Keras expects.

    Raises:
        ValueError: no file (saying where it looked and how to get one) or a
            file with the wrong content.
    """
    if weights_path is not None:
        if not os.path.isfile(weights_path):
            raise ValueError(f"`weights_path` {weights_path!r} is not a file.")
        candidates = [os.fspath(weights_path)]
    else:
        directories = [cache_dir] if cache_dir is not None else _keras_cache_dirs()
        candidates = [os.path.join(d, "models", INCEPTION_WEIGHTS_FILE) for d in directories]
    found = next((path for path in candidates if os.path.isfile(path)), None)
    if found is None:
        raise ValueError(
            "InceptionV3 weights not found (no download is attempted); looked for "
            f"{' and '.join(candidates)}. On a machine with internet access run "
            "`python -c \"import keras; keras.applications.InceptionV3(include_top=False)\"` "
            f"and copy ~/.keras/models/{INCEPTION_WEIGHTS_FILE} into ~/.keras/models/ "
            "here, or pass `weights_path=` to that file."
        )
    digest = _md5(found)
    if digest != INCEPTION_WEIGHTS_MD5:
        raise ValueError(
            f"{found!r} is not Keras' InceptionV3 no-top weights file (md5 {digest}, "
            f"expected {INCEPTION_WEIGHTS_MD5}); download it again."
        )
    return found


class InceptionFeatures:
    """InceptionV3 pool features (2048 values) for FID.

    Preprocessing: images in [0, 1] are scaled to [0, 255], grayscale is
    repeated to 3 channels, images are resized bilinearly to 299×299 and passed
    through `keras.applications.inception_v3.preprocess_input` (to [−1, 1]).

    The weights are never downloaded here: they come from `weights_path` or
    Keras' cache (see `find_inception_weights`), and a missing file is a
    ValueError that says how to provide it.

    Args:
        weights: `"imagenet"` or `None`. `None` builds a randomly initialised
            network, for tests of the pipeline only: its FIDs are not valid
            for reporting (its `name` says `untrained`). Defaults to
            `"imagenet"`.
        weights_path: str or None. The weights file
            (`inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5`).
        cache_dir: str or None. A Keras cache directory to look in instead of
            Keras' own.

    Attributes:
        name: `"inception_v3"` or `"inception_v3_untrained"`.
        model: the Keras InceptionV3 (include_top=False, pooling="avg").

    Example:
    ```python
    extractor = InceptionFeatures()          # ValueError when offline without the file
    score = fid(eval_images, generated, extractor)
    ```
    """

    def __init__(self, weights="imagenet", weights_path=None, cache_dir=None):
        if weights not in ("imagenet", None):
            raise ValueError(
                f"`weights` must be 'imagenet' or None (untrained, tests only); received {weights!r}."
            )
        path = find_inception_weights(weights_path, cache_dir) if weights else None
        self.model = keras.applications.InceptionV3(
            include_top=False, weights=None, pooling="avg",
            input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3),
        )
        if path is not None:
            self.model.load_weights(path)
        self.name = "inception_v3" if weights else "inception_v3_untrained"

    @staticmethod
    def preprocess(images):
        """[0, 1] images `(N, H, W, 1 or 3)` → InceptionV3 inputs `(N, 299, 299, 3)`."""
        return InceptionFeatures._inception_inputs(check_images("images", images))

    @staticmethod
    def _inception_inputs(images):
        if images.shape[-1] not in (1, 3):
            raise ValueError(
                f"`images` must have 1 or 3 channels for InceptionV3; received {images.shape[-1]}."
            )
        if images.shape[-1] == 1:
            images = np.repeat(images, 3, axis=-1)
        resized = keras.ops.image.resize(
            images * 255.0, (INCEPTION_SIZE, INCEPTION_SIZE), interpolation="bilinear"
        )
        return keras.applications.inception_v3.preprocess_input(resized)

    def __call__(self, images, batch_size=32):
        """Features `(N, 2048)` float32 of [0, 1] images `(N, H, W, C)`."""
        images = check_images("images", images)
        return map_in_batches(
            lambda batch: self.model(self._inception_inputs(batch), training=False),
            images, batch_size,
        )


def _domain_network(image_shape, feature_dim, outputs, seed, name):
    """Three stride-2 convolutions, a `features` Dense layer, a linear head."""
    def init(i):
        return keras.initializers.GlorotUniform(seed=seed + i)

    images = keras.Input(image_shape, name="image")
    x = images
    for i, filters in enumerate((32, 64, 128)):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu",
                                kernel_initializer=init(i), name=f"conv_{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    features = keras.layers.Dense(feature_dim, activation="relu", kernel_initializer=init(3),
                                  name="features")(x)
    head = keras.layers.Dense(outputs, kernel_initializer=init(4), name="head")(features)
    return keras.Model(images, head, name=name)


def rotation_task(images):
    """Unlabelled square images as a labelled task: each image turned by 0, 90, 180 and
    270 degrees, labelled 0-3 (`DomainFeatures.fit(images, None)`).

    Returns:
        `(rotated, labels)`: float32 `(4N, H, W, C)` and int32 `(4N,)`.
    """
    if images.shape[1] != images.shape[2]:
        raise ValueError(
            "The rotation task needs square images (a turned image must keep its shape); "
            f"received {images.shape[1]}x{images.shape[2]}: pass labels instead."
        )
    rotated = np.concatenate([np.rot90(images, k, axes=(1, 2)) for k in range(4)])
    labels = np.repeat(np.arange(4, dtype=np.int32), len(images))
    return np.ascontiguousarray(rotated, np.float32), labels


class DomainFeatures:
    """A small CNN trained on a data set's labels; its penultimate layer is the feature.

    InceptionV3 needs downloaded weights and knows nothing of 32×32 shapes; this
    extractor is trained here, in seconds, and stored with a run so FID works
    offline. The network: Conv 32 → 64 → 128 (3×3, stride 2, ReLU), Flatten,
    Dense `feature_dim` (ReLU, the features), linear head. Images are used as
    they are ([0, 1], no resizing).

    The task follows the labels given to `fit`:
    - no labels (`None`: a folder of unlabelled images): which of the four rotations
      (0, 90, 180, 270 degrees) each image was turned by (RotNet; Gidaris, Singh &
      Komodakis, ICLR 2018), a task that needs the objects' shape and orientation and
      no labels; square images only, each used four times;
    - integer labels `(N,)` (digits, MNIST, folder classes): classification, softmax
      cross-entropy over `max(label) + 1` classes;
    - integer 0/1 labels `(N, k)` (CelebA's 40 attributes): multi-label,
      sigmoid cross-entropy per attribute;
    - float targets `(N,)` or `(N, k)` (shapes: the 7 factors type, size,
      colour r/g/b, x, y): regression, mean squared error on targets
      standardised to zero mean and unit variance (factors on different scales
      weigh the same).

    Args:
        feature_dim: int. Width of the feature layer. Defaults to `128`.
        name: str. The extractor's name, reported with its FIDs and kept in the
            saved file. Defaults to `"domain_cnn"`.

    Attributes:
        model: the trained Keras classifier/regressor, or `None` before `fit`.
        history: the `History.history` dict of the last `fit`.

    Example:
    ```python
    extractor = DomainFeatures().fit(train_images, train_labels, epochs=5, seed=0)
    extractor.save("saved_models/run/fid_features.keras")
    extractor = DomainFeatures.load("saved_models/run/fid_features.keras")
    ```
    """

    def __init__(self, feature_dim=128, name="domain_cnn"):
        self.feature_dim = check_int("feature_dim", feature_dim, 1)
        self.name = name
        self.model = None
        self.history = None
        self._features = None

    def fit(self, images, labels, epochs=5, seed=0, batch_size=64, learning_rate=1e-3):
        """Trains the network; returns self.

        Args:
            images: float32 `(N, H, W, C)` in [0, 1] (H, W >= 8).
            labels: int `(N,)` classes, int 0/1 `(N, k)` attributes, float
                `(N,)` / `(N, k)` targets, or None: the rotation task (square images).
            epochs: int. Defaults to `5`.
            seed: int. Seeds the initialisation and the shuffling. Defaults to `0`.
            batch_size: int. Defaults to `64`.
            learning_rate: float. Adam's. Defaults to `1e-3`.
        """
        images = check_images("images", images, 2)
        check_int("epochs", epochs, 1)
        check_int("seed", seed, 0)
        check_int("batch_size", batch_size, 1)
        if labels is None:
            images, labels = rotation_task(images)
        targets, outputs, loss = self._targets(np.asarray(labels), len(images))
        self.model = _domain_network(images.shape[1:], self.feature_dim, outputs, seed, self.name)
        self.model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss)
        dataset = (
            tf.data.Dataset.from_tensor_slices((images, targets))
            .shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
            .batch(batch_size)
        )
        self.history = self.model.fit(dataset, epochs=epochs, shuffle=False, verbose=0).history
        self._features = None
        return self

    @staticmethod
    def _targets(labels, count):
        """(targets, head width, loss) for integer classes or float factors."""
        if labels.shape[:1] != (count,) or labels.ndim > 2:
            raise ValueError(
                f"`labels` must have shape ({count},) or ({count}, k), one row per "
                f"image; received {labels.shape}."
            )
        if np.issubdtype(labels.dtype, np.integer):
            if labels.min() < 0:
                raise ValueError("Integer `labels` are class indices or 0/1 attributes: must be >= 0.")
            if labels.ndim == 1:
                loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
                return labels.astype(np.int32), int(labels.max()) + 1, loss
            if labels.max() > 1:
                raise ValueError(
                    "Integer `labels` of shape (N, k) are binary attributes: values must "
                    f"be 0 or 1; received a maximum of {labels.max()}."
                )
            loss = keras.losses.BinaryCrossentropy(from_logits=True)
            return labels.astype(np.float32), labels.shape[1], loss
        if np.issubdtype(labels.dtype, np.floating):
            targets = labels.reshape(count, -1).astype(np.float64)
            std = targets.std(axis=0)
            targets = (targets - targets.mean(axis=0)) / np.where(std > 0, std, 1.0)
            return targets.astype(np.float32), targets.shape[1], keras.losses.MeanSquaredError()
        raise ValueError(
            "`labels` must be integer classes (N,), 0/1 attributes (N, k), or float "
            "targets (N,) / (N, k); "
            f"received dtype {labels.dtype} with shape {labels.shape}."
        )

    def __call__(self, images, batch_size=256):
        """Features `(N, feature_dim)` float32 of [0, 1] images."""
        if self.model is None:
            raise ValueError("DomainFeatures is not trained: call `fit(images, labels)` or `load(path)`.")
        if self._features is None:
            self._features = keras.Model(self.model.input, self.model.get_layer("features").output)
        images = check_images("images", images)
        return map_in_batches(lambda x: self._features(x, training=False), images, batch_size)

    def save(self, path):
        """Writes the trained network to a `.keras` file, atomically."""
        if self.model is None:
            raise ValueError("DomainFeatures is not trained: nothing to save.")
        if not os.fspath(path).endswith(".keras"):
            raise ValueError(f"`path` must end with '.keras'; received {path!r}.")
        save_model_atomic(self.model, path)
        return path

    @classmethod
    def load(cls, path):
        """A `DomainFeatures` from a file written by `save`."""
        if not os.path.isfile(path):
            raise ValueError(f"`path` {path!r} is not a file (write one with `DomainFeatures.save`).")
        model = keras.models.load_model(path, compile=False, safe_mode=True)
        try:
            feature_dim = model.get_layer("features").units
        except ValueError:
            raise ValueError(
                f"{path!r} is not a DomainFeatures network (no layer named 'features')."
            ) from None
        extractor = cls(feature_dim=feature_dim, name=model.name)
        extractor.model = model
        return extractor
