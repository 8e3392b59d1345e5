import os

import numpy as np
import pytest
import scipy.linalg

from irmae_keras import fid
from irmae_keras.fid import DomainFeatures
from irmae_keras.fid import InceptionFeatures
from irmae_keras.fid import feature_statistics
from irmae_keras.fid import frechet_distance
from tests.helpers import random_images


def _spd(d, seed):
    x = np.random.default_rng(seed).normal(size=(d, d))
    return x @ x.T + 0.1 * np.eye(d)


def _half_squares(count=240, size=16, seed=0):
    """Grayscale images with a bright square in the top (class 0) or bottom (1) half.

    Returns images, the class, and float factors (top, left, side) of each square.
    """
    rng = np.random.default_rng(seed)
    images = np.zeros((count, size, size, 1), np.float32)
    classes = rng.integers(0, 2, count)
    factors = np.zeros((count, 3), np.float32)
    for i, c in enumerate(classes):
        side = rng.integers(3, 6)
        top = rng.integers(0, size // 2 - side) + c * size // 2
        left = rng.integers(0, size - side)
        images[i, top:top + side, left:left + side] = rng.uniform(0.6, 1.0)
        factors[i] = top, left, side
    return images, classes, factors


class TestFrechetDistance:
    def test_diagonal_gaussians_closed_form(self):
        mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
        s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
        expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
        assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-10)
        assert expected == pytest.approx(7.25 + 4 + 1)

    def test_one_dimension_scalars(self):
        # (μ1 − μ2)² + (σ1 − σ2)² for standard deviations σ.
        assert frechet_distance([2.0], [[4.0]], [-1.0], [[1.0]]) == pytest.approx(9 + 1)

    def test_random_spd_matches_a_direct_scipy_computation(self):
        rng = np.random.default_rng(1)
        mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
        s1, s2 = _spd(6, 2), _spd(6, 3)
        root1 = scipy.linalg.sqrtm(s1)
        # Tr (Σ1 Σ2)^½ = Tr (Σ1^½ Σ2 Σ1^½)^½, a symmetric form.
        cross = np.trace(scipy.linalg.sqrtm(root1 @ s2 @ root1).real)
        expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * cross
        value = frechet_distance(mu1, s1, mu2, s2)
        assert value == pytest.approx(expected, rel=1e-8)
        assert value == pytest.approx(frechet_distance(mu2, s2, mu1, s1), rel=1e-8)

    def test_identical_and_shifted_sets(self):
        features = np.random.default_rng(0).normal(size=(500, 8)) @ _spd(8, 4)
        stats = feature_statistics(features)
        assert frechet_distance(*stats, *stats) == pytest.approx(0.0, abs=1e-8)
        shift = np.arange(8, dtype=np.float64) / 4
        shifted = feature_statistics(features + shift)
        assert frechet_distance(*stats, *shifted) == pytest.approx(shift @ shift, rel=1e-6)

    def test_singular_covariances_use_the_epsilon_offset(self):
        # Rank-1 covariances on orthogonal axes: their product is the zero matrix.
        s1, s2 = np.diag([1.0, 0.0, 0.0]), np.diag([0.0, 1.0, 0.0])
        value = frechet_distance(np.zeros(3), s1, np.zeros(3), s2)
        assert value == pytest.approx(2.0, abs=1e-4)
        nilpotent = np.array([[0.0, 1.0], [0.0, 0.0]])  # sqrtm(product) is infinite
        assert np.isfinite(frechet_distance(np.zeros(2), nilpotent, np.zeros(2), nilpotent.T @ nilpotent))

    def test_a_covariance_that_is_not_positive_semi_definite_is_an_error(self):
        with pytest.raises(ValueError, match="has an imaginary diagonal of up to 1: the covariances are not positive semi-definite"):
            frechet_distance(np.zeros(2), np.diag([-1.0, 1.0]), np.zeros(2), np.eye(2))

    def test_non_negative_on_random_sets(self):
        rng = np.random.default_rng(5)
        for seed in range(5):
            a, b = rng.normal(size=(2, 50, 4))
            assert frechet_distance(*feature_statistics(a), *feature_statistics(b)) >= 0.0

    def test_shape_mismatch(self):
        with pytest.raises(ValueError, match=r"must have shape \(d,\).*received \(2,\), \(2, 2\), \(3,\), \(3, 3\)"):
            frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))

    def test_statistics_need_two_examples(self):
        with pytest.raises(ValueError, match="`features` needs at least 2 examples"):
            feature_statistics(np.ones((1, 3)))


class TestInceptionFeatures:
    def test_offline_without_weights_says_where_it_looked_and_how_to_fix(self, tmp_path, monkeypatch):
        monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
        with pytest.raises(ValueError) as error:
            InceptionFeatures()
        message = str(error.value)
        assert "no download is attempted" in message
        assert os.path.join(str(tmp_path / "keras_home"), "models", fid.INCEPTION_WEIGHTS_FILE) in message
        assert "keras.applications.InceptionV3(include_top=False)" in message and "weights_path=" in message

    def test_explicit_cache_dir_and_missing_weights_path(self, tmp_path):
        with pytest.raises(ValueError, match=f"looked for {tmp_path}/models/{fid.INCEPTION_WEIGHTS_FILE}\\. "):
            InceptionFeatures(cache_dir=str(tmp_path))
        with pytest.raises(ValueError, match=r"`weights_path` '.*nothing\.h5' is not a file"):
            InceptionFeatures(weights_path=str(tmp_path / "nothing.h5"))

    def test_a_corrupt_cached_file_is_refused(self, tmp_path):
        (tmp_path / "models").mkdir()
        (tmp_path / "models" / fid.INCEPTION_WEIGHTS_FILE).write_bytes(b"partial download")
        with pytest.raises(ValueError, match=r"is not Keras' InceptionV3 no-top weights file \(md5 [0-9a-f]{32}"):
            InceptionFeatures(cache_dir=str(tmp_path))

    def test_invalid_weights_choice(self):
        with pytest.raises(ValueError, match=r"`weights` must be 'imagenet' or None \(untrained, tests only\); received 'random'"):
            InceptionFeatures(weights="random")

    def test_preprocessing_resizes_repeats_gray_and_scales_to_unit_interval(self):
        gray = np.full((2, 8, 8, 1), 0.5, np.float32)
        gray[1] = 1.0
        inputs = np.asarray(InceptionFeatures.preprocess(gray))
        assert inputs.shape == (2, 299, 299, 3)
        np.testing.assert_allclose(inputs[0], 0.0, atol=1e-6)  # 0.5·255/127.5 − 1
        np.testing.assert_allclose(inputs[1], 1.0, atol=1e-6)
        rgb = np.asarray(InceptionFeatures.preprocess(random_images((8, 8, 3), batch=1)))
        assert -1.0 <= rgb.min() and rgb.max() <= 1.0
        with pytest.raises(ValueError, match="must have 1 or 3 channels"):
            InceptionFeatures.preprocess(random_images((8, 8, 2)))

    def test_untrained_forward_gives_2048_features(self):
        extractor = InceptionFeatures(weights=None)
        assert extractor.name == "inception_v3_untrained"
        features = extractor(random_images((8, 8, 1), batch=3), batch_size=2)
        assert features.shape == (3, 2048) and np.all(np.isfinite(features))
        np.testing.assert_allclose(extractor(random_images((8, 8, 1), batch=3)[1:]), features[1:], atol=1e-4)


@pytest.fixture(scope="module")
def half_squares():
    return _half_squares()


@pytest.fixture(scope="module")
def trained_classifier(half_squares):
    images, classes, _ = half_squares
    return DomainFeatures(feature_dim=16).fit(images, classes, epochs=8, seed=0, batch_size=32)


class TestDomainFeatures:
    def test_classifier_learns_and_its_fid_separates_the_classes(self, trained_classifier, half_squares):
        images, classes, _ = half_squares
        extractor = trained_classifier
        assert extractor.history["loss"][-1] < 0.5 * extractor.history["loss"][0]
        logits = np.asarray(extractor.model(images))
        assert np.mean(logits.argmax(1) == classes) > 0.9
        features = extractor(images)
        assert features.shape == (len(images), 16) and features.dtype == np.float32
        top, bottom = images[classes == 0], images[classes == 1]
        within = fid.fid(top[::2], top[1::2], extractor)
        across = fid.fid(top, bottom, extractor)
        assert across > 10 * within

    def test_save_and_load_round_trip(self, trained_classifier, half_squares, tmp_path):
        path = str(tmp_path / "fid_features.keras")
        trained_classifier.save(path)
        assert os.listdir(tmp_path) == ["fid_features.keras"]
        restored = DomainFeatures.load(path)
        assert restored.name == "domain_cnn" and restored.feature_dim == 16
        images = half_squares[0][:10]
        np.testing.assert_allclose(restored(images), trained_classifier(images), atol=1e-6)

    def test_regression_on_float_factors(self, half_squares):
        images, _, factors = half_squares
        extractor = DomainFeatures(feature_dim=8, name="domain_shapes").fit(images, factors, epochs=10, seed=1)
        assert extractor.model.output_shape == (None, 3)
        assert extractor.history["loss"][-1] < 0.5 * extractor.history["loss"][0]
        assert extractor(images[:4]).shape == (4, 8)

    def test_multi_label_on_binary_attributes(self, half_squares):
        images, classes, factors = half_squares
        attributes = np.stack([classes, factors[:, 2] >= 4], axis=1).astype(np.int32)
        extractor = DomainFeatures(feature_dim=8).fit(images, attributes, epochs=6, seed=0)
        assert extractor.model.output_shape == (None, 2)
        assert extractor.history["loss"][-1] < 0.7 * extractor.history["loss"][0]

    def test_without_labels_it_learns_the_images_rotations(self, half_squares):
        images = half_squares[0][:64]
        rotated, labels = fid.rotation_task(images)
        assert rotated.shape == (256, *images.shape[1:]) and rotated.dtype == np.float32
        np.testing.assert_array_equal(np.bincount(labels), [64] * 4)
        np.testing.assert_array_equal(rotated[64 + 5], np.rot90(images[5], 1))  # 90 degrees, label 1
        extractor = DomainFeatures(feature_dim=8).fit(images, None, epochs=8, seed=0)
        assert extractor.model.output_shape == (None, 4)
        accuracy = np.mean(np.asarray(extractor.model(rotated)).argmax(1) == labels)
        assert accuracy > 0.5  # chance: 0.25
        assert extractor(images[:4]).shape == (4, 8)

    def test_the_rotation_task_needs_square_images(self):
        with pytest.raises(ValueError, match="needs square images .* received 16x8: pass labels"):
            fid.rotation_task(random_images((16, 8, 3)))

    def test_same_seed_same_features(self, half_squares):
        images, classes, _ = half_squares
        a = DomainFeatures(feature_dim=4).fit(images[:64], classes[:64], epochs=1, seed=3)
        b = DomainFeatures(feature_dim=4).fit(images[:64], classes[:64], epochs=1, seed=3)
        np.testing.assert_allclose(a(images[:8]), b(images[:8]), atol=1e-6)

    @pytest.mark.parametrize(
        "labels, match",
        [
            (np.zeros(5, np.int64), r"`labels` must have shape \(4,\) or \(4, k\)"),
            (np.array(["a", "b", "c", "d"]), r"must be integer classes \(N,\), 0/1 attributes \(N, k\)"),
            (np.array([0, -1, 1, 0]), "must be >= 0"),
            (np.full((4, 3), 2), "are binary attributes: values must be 0 or 1; received a maximum of 2"),
        ],
    )
    def test_invalid_labels(self, labels, match):
        with pytest.raises(ValueError, match=match):
            DomainFeatures().fit(random_images((16, 16, 1)), labels)

    def test_untrained_use_and_bad_paths(self, tmp_path):
        with pytest.raises(ValueError, match=r"not trained: call `fit\(images, labels\)` or `load\(path\)`"):
            DomainFeatures()(random_images((16, 16, 1)))
        with pytest.raises(ValueError, match="is not a file"):
            DomainFeatures.load(str(tmp_path / "missing.keras"))

    def test_save_needs_a_keras_extension(self, trained_classifier, tmp_path):
        with pytest.raises(ValueError, match=r"`path` must end with '\.keras'"):
            trained_classifier.save(str(tmp_path / "features.h5"))

    def test_fid_rejects_uint8_range_images(self, trained_classifier):
        images = np.full((4, 16, 16, 1), 200.0, np.float32)
        with pytest.raises(ValueError, match=r"`fake_images` must be float images in \[0, 1\]"):
            fid.fid(random_images((16, 16, 1)), images, trained_classifier)
