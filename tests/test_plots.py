import warnings

import numpy as np
import pytest
from PIL import Image

import irmae_keras
from irmae_keras import plots
from tests.helpers import codes_of_rank
from tests.helpers import random_images


def _spectra():
    return {
        "IRMAE l=2": irmae_keras.singular_spectrum(codes_of_rank(7, n=32)),
        "AE": irmae_keras.singular_spectrum(codes_of_rank(17, n=32, noise=1e-3)),
    }


class TestImageGrid:
    def test_tiles_row_major_with_the_expected_size(self):
        images = np.stack([np.full((4, 5, 3), i / 5, np.float32) for i in range(6)])
        grid = plots.image_grid(images, rows=2, cols=3)
        assert grid.shape == (8, 15, 3) and grid.dtype == np.uint8
        # Cell (row 1, col 0) holds image 3.
        assert np.all(grid[4:8, 0:5] == round(3 / 5 * 255))
        assert np.all(grid[0:4, 10:15] == round(2 / 5 * 255))

    def test_missing_cells_are_black_and_values_are_clipped(self):
        images = np.array([np.full((2, 2), 1.7), np.full((2, 2), -0.3)], np.float32)
        grid = plots.image_grid(images, rows=2, cols=2)
        assert grid.shape == (4, 4, 1)
        np.testing.assert_array_equal(grid[..., 0], [[255, 255, 0, 0]] * 2 + [[0, 0, 0, 0]] * 2)

    def test_non_finite_values_are_drawn_black_or_white(self):
        images = np.array([[[np.nan, np.inf], [-np.inf, 0.5]]], np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "invalid value encountered in cast"
            grid = plots.image_grid(images, rows=1, cols=1)
        np.testing.assert_array_equal(grid[..., 0], [[0, 255], [0, 128]])

    def test_too_many_images(self):
        with pytest.raises(ValueError, match=r"5 `images` do not fit a 2×2 grid"):
            plots.image_grid(random_images((2, 2, 1), batch=5), rows=2, cols=2)


@pytest.mark.parametrize("channels, mode", [(1, "L"), (3, "RGB")])
def test_save_image_grid_writes_a_png_of_the_grid(tmp_path, channels, mode):
    images = random_images((32, 32, channels), batch=100)
    path = plots.save_image_grid(images, str(tmp_path / "grid.png"), rows=10, cols=10)
    with Image.open(path) as picture:
        assert picture.format == "PNG" and picture.mode == mode
        assert picture.size == (320, 320)
        pixels = np.asarray(picture)
    expected = plots.image_grid(images, 10, 10)
    np.testing.assert_array_equal(pixels, expected[..., 0] if channels == 1 else expected)
    assert 0 < pixels.mean() < 255


def test_save_image_grid_rejects_two_channels(tmp_path):
    with pytest.raises(ValueError, match="must have 1 or 3 channels"):
        plots.save_image_grid(random_images((4, 4, 2)), str(tmp_path / "g.png"), rows=2, cols=2)


class TestSpectrum:
    def test_several_runs_are_overlaid_with_reference_lines(self):
        figure = plots.spectrum_figure(_spectra(), intrinsic_dim=7, threshold=0.01)
        axes = figure.axes[0]
        assert axes.get_yscale() == "log"
        assert axes.get_xlabel() and axes.get_ylabel() and axes.get_title()
        labels = [text.get_text() for text in axes.get_legend().get_texts()]
        assert labels == ["IRMAE l=2", "AE", "intrinsic dimension (7)", "threshold (0.01 of largest)"]
        irmae_line = axes.get_lines()[0]
        np.testing.assert_array_equal(irmae_line.get_xdata(), np.arange(1, 33))
        assert irmae_line.get_ydata()[0] == 1.0
        # Exact zeros of a rank-deficient spectrum are drawn at the floor, not dropped.
        assert irmae_line.get_ydata().min() >= plots.SPECTRUM_FLOOR
        assert list(axes.get_lines()[2].get_xdata()) == [7, 7]

    def test_a_single_unnormalised_spectrum_is_normalised(self):
        figure = plots.spectrum_figure(np.array([4.0, 2.0, 0.0]), threshold=None)
        axes = figure.axes[0]
        np.testing.assert_allclose(axes.get_lines()[0].get_ydata(), [1.0, 0.5, plots.SPECTRUM_FLOOR])
        assert axes.get_legend() is None

    @pytest.mark.parametrize("spectra", [_spectra(), _spectra()["AE"]])
    def test_plot_spectrum_writes_a_png(self, tmp_path, spectra):
        path = plots.plot_spectrum(spectra, str(tmp_path / "figs" / "spectrum.png"), intrinsic_dim=7)
        with Image.open(path) as picture:
            assert picture.format == "PNG" and picture.size == (640, 440)
            assert np.asarray(picture.convert("L")).std() > 10  # not blank
        assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == ["spectrum.png"]

    def test_figure_to_array_is_rgb_uint8(self):
        array = plots.figure_to_array(plots.spectrum_figure(_spectra()))
        assert array.shape == (440, 640, 3) and array.dtype == np.uint8

    @pytest.mark.parametrize(
        "spectra, match",
        [
            ({}, "at least one spectrum"),
            ({"a": np.ones((2, 2))}, r"'a' has shape \(2, 2\)"),
            (np.array([1.0, -1.0]), "finite values >= 0"),
        ],
    )
    def test_invalid_spectra(self, spectra, match):
        with pytest.raises(ValueError, match=match):
            plots.spectrum_figure(spectra)
