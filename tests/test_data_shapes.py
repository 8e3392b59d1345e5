"""Tests of training.data.shapes: the rendering, the factors, generation and its pipeline."""

import numpy as np
import pytest

from tests.data_helpers import concatenated
from training import data

COLOUR = (0.25, 0.5, 0.75)


def _shape_factors(kind, size, x, y, colour=COLOUR):
    return np.array([[kind, size, *colour, x, y]], np.float32)


def _lit_pixels(image):
    """(row, col) of every non-black pixel."""
    return {tuple(int(v) for v in p) for p in np.argwhere(image.max(axis=-1) > 0)}


class TestShapesRendering:
    def test_circle_radius_3_at_8_8_covers_exactly_its_29_pixels(self):
        image = data.render_shapes(_shape_factors(0, 3, 8, 8)).numpy()[0]
        spans = {5: (8, 8), 6: (6, 10), 7: (6, 10), 8: (5, 11), 9: (6, 10), 10: (6, 10), 11: (8, 8)}
        expected = {(row, col) for row, (lo, hi) in spans.items() for col in range(lo, hi + 1)}
        assert len(expected) == 29
        assert _lit_pixels(image) == expected

    def test_x_is_the_column_and_y_the_row(self):
        image = data.render_shapes(_shape_factors(0, 3, 20, 10)).numpy()[0]
        assert image[10, 20].max() > 0
        assert image[20, 10].max() == 0

    def test_square_corners_are_inclusive(self):
        image = data.render_shapes(_shape_factors(1, 3, 8, 10)).numpy()[0]
        expected = {(row, col) for row in range(10, 14) for col in range(8, 12)}
        assert _lit_pixels(image) == expected

    def test_square_is_clipped_at_the_image_border(self):
        image = data.render_shapes(_shape_factors(1, 8, 24, 24)).numpy()[0]
        assert _lit_pixels(image) == {(r, c) for r in range(24, 32) for c in range(24, 32)}

    def test_shape_has_its_colour_on_black(self):
        image = data.render_shapes(_shape_factors(0, 5, 16, 16)).numpy()[0]
        lit = image.max(axis=-1) > 0
        np.testing.assert_array_equal(image[lit], np.tile(np.float32(COLOUR), (lit.sum(), 1)))
        assert np.all(image[~lit] == 0)
        assert image.dtype == np.float32 and image.shape == (32, 32, 3)


class TestShapesFactors:
    @pytest.fixture(scope="class")
    def factors(self):
        return data.sample_shapes_factors(60_000, seed=0)

    def test_columns_and_dtype(self, factors):
        assert data.SHAPES_FACTORS == ("type", "size", "r", "g", "b", "x", "y")
        assert factors.shape == (60_000, 7) and factors.dtype == np.float32

    def test_discrete_factors_are_integers_in_range(self, factors):
        kind, size, x, y = factors[:, 0], factors[:, 1], factors[:, 5], factors[:, 6]
        assert set(np.unique(kind)) == {0.0, 1.0}
        assert set(np.unique(size)) == set(np.arange(3, 9, dtype=np.float32))
        assert set(np.unique(x)) == set(np.arange(8, 25, dtype=np.float32))
        assert set(np.unique(y)) == set(np.arange(8, 25, dtype=np.float32))

    def test_discrete_factors_are_roughly_uniform(self, factors):
        assert abs(factors[:, 0].mean() - 0.5) < 0.01
        for column, count in ((1, 6), (5, 17), (6, 17)):
            _, frequencies = np.unique(factors[:, column], return_counts=True)
            np.testing.assert_allclose(frequencies / len(factors), 1 / count, atol=0.01)

    def test_colours_are_uniform_in_zero_one(self, factors):
        colours = factors[:, 2:5]
        assert colours.min() >= 0 and colours.max() < 1
        np.testing.assert_allclose(colours.mean(axis=0), 0.5, atol=0.01)
        np.testing.assert_allclose((colours < 0.1).mean(axis=0), 0.1, atol=0.01)
        assert len(np.unique(colours)) > 0.99 * colours.size  # continuous, not quantised


class TestShapesGeneration:
    def test_deterministic_for_a_seed(self):
        first, first_factors = data.generate_shapes(20, seed=3)
        second, second_factors = data.generate_shapes(20, seed=3)
        np.testing.assert_array_equal(first, second)
        np.testing.assert_array_equal(first_factors, second_factors)

    def test_seeds_and_splits_give_different_images(self):
        train = data.sample_shapes_factors(50, seed=3)
        assert not np.array_equal(train, data.sample_shapes_factors(50, seed=4))
        assert not np.array_equal(train, data.sample_shapes_factors(50, seed=3, split="eval"))
        np.testing.assert_array_equal(
            data.sample_shapes_factors(50, 3, "eval"), data.sample_shapes_factors(50, 3, "test")
        )

    def test_first_rows_do_not_depend_on_n(self):
        np.testing.assert_array_equal(
            data.sample_shapes_factors(10, seed=1), data.sample_shapes_factors(1000, seed=1)[:10]
        )

    def test_images_match_their_factors(self):
        images, factors = data.generate_shapes(50, seed=2)
        assert images.shape == (50, 32, 32, 3) and images.dtype == np.float32
        np.testing.assert_array_equal(images, data.render_shapes(factors).numpy())
        assert images.min() == 0 and images.max() < 1

    def test_pipeline_renders_the_same_images_as_numpy(self):
        dataset = data.load_dataset("shapes", "eval", 16, labels=True, size=40, seed=5)
        images, labels = concatenated(dataset)
        expected_images, expected_factors = data.generate_shapes(40, seed=5, split="eval")
        np.testing.assert_array_equal(images, expected_images)
        np.testing.assert_array_equal(labels, expected_factors)

    def test_default_sizes(self):
        assert data.dataset_info("shapes").sizes == {
            "train": 50_000,
            "eval": 10_000,
            "test": 10_000,
        }
        dataset = data.load_dataset("shapes", "eval", batch_size=1000)
        assert sum(int(batch.shape[0]) for batch in dataset) == 10_000
