"""Figures: the singular-value spectrum (the paper's Fig. 2) and image grids.

Figures are built on `matplotlib.figure.Figure` with the Agg canvas, never
through `pyplot`: no display is needed, no global backend is switched, and
nothing is kept in pyplot's figure registry. Every file is written atomically.

Example:
```python
spectra = {"IRMAE l=2": singular_spectrum(irmae_codes), "AE": singular_spectrum(ae_codes)}
plot_spectrum(spectra, "figures/spectrum.png", intrinsic_dim=7)
save_image_grid(generated_images[:100], "figures/mvg.png", rows=10, cols=10)
```
"""

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from irmae_keras.paper import RANK_THRESHOLD
from irmae_keras.staging import atomic_path
from irmae_keras.utils import check_int

# Normalised singular values of exactly 0 (rank-deficient codes) cannot be shown
# on a log axis: they are drawn at this floor instead of vanishing.
SPECTRUM_FLOOR = 1e-12


def _as_spectra(spectra):
    """`{label: 1-D float array}` from a dict or a single array (label None)."""
    if not isinstance(spectra, dict):
        spectra = {None: spectra}
    if not spectra:
        raise ValueError("`spectra` must hold at least one spectrum; received an empty dict.")
    result = {}
    for label, values in spectra.items():
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)) or values.min() < 0:
            raise ValueError(
                f"`spectra` values must be non-empty 1-D arrays of finite values >= 0 "
                f"(singular values); {label!r} has shape {values.shape}."
            )
        result[label] = values
    return result


def spectrum_figure(spectra, intrinsic_dim=None, threshold=RANK_THRESHOLD,
                    title="Singular values of the code covariance"):
    """The normalised singular values against their index, on a log y-axis.

    Args:
        spectra: a 1-D array of singular values, or a dict `{label: array}` to
            overlay several runs. Each is divided by its largest value.
        intrinsic_dim: int or None. Draws a dashed vertical line there (7 for
            the shapes data). Defaults to `None`.
        threshold: float or None. Draws a dotted horizontal line at this
            fraction of the largest value (the effective-rank cut). Defaults to
            `0.01`.
        title: str. Figure title.

    Returns:
        A `matplotlib.figure.Figure`.
    """
    spectra = _as_spectra(spectra)
    figure = Figure(figsize=(6.4, 4.4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for label, values in spectra.items():
        largest = values.max()
        normalised = values / largest if largest > 0 else values
        index = np.arange(1, values.size + 1)
        axes.plot(index, np.maximum(normalised, SPECTRUM_FLOOR), marker="o", markersize=3,
                  linewidth=1.5, label=label)
    if intrinsic_dim is not None:
        axes.axvline(intrinsic_dim, color="black", linestyle="--", linewidth=1,
                     label=f"intrinsic dimension ({intrinsic_dim})")
    if threshold is not None:
        axes.axhline(threshold, color="gray", linestyle=":", linewidth=1,
                     label=f"threshold ({threshold:g} of largest)")
    axes.set_yscale("log")
    axes.set_xlabel("singular value index")
    axes.set_ylabel("singular value / largest")
    axes.set_title(title)
    axes.grid(True, which="major", alpha=0.3)
    if any(label is not None for label in spectra) or intrinsic_dim is not None or threshold is not None:
        axes.legend(loc="best", fontsize="small")
    figure.tight_layout()
    return figure


def plot_spectrum(spectra, path, intrinsic_dim=None, threshold=RANK_THRESHOLD,
                  title="Singular values of the code covariance"):
    """Writes `spectrum_figure(...)` to `path` (PNG, PDF or SVG by extension).

    Args:
        spectra: array or dict `{label: array}`; see `spectrum_figure`.
        path: str. Output file.
        intrinsic_dim: int or None. See `spectrum_figure`.
        threshold: float or None. See `spectrum_figure`.
        title: str. Figure title.

    Returns:
        `path`.

    Example:
    ```python
    plot_spectrum({"IRMAE": irmae_spectrum, "AE": ae_spectrum}, "spectrum.png",
                  intrinsic_dim=7)
    ```
    """
    figure = spectrum_figure(spectra, intrinsic_dim=intrinsic_dim, threshold=threshold, title=title)
    return save_figure(figure, path)


def save_figure(figure, path, dpi=100):
    """Saves a matplotlib figure atomically (temp file beside `path`, then rename).

    Returns:
        `path`.
    """
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=dpi)
    return path


def figure_to_array(figure):
    """Renders a figure to a uint8 RGB array `(height, width, 3)`."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def image_grid(images, rows, cols):
    """Tiles images into one uint8 array, row-major, without gaps.

    Args:
        images: float array `(N, H, W, C)` in [0, 1] (or `(N, H, W)` for
            grayscale), `N <= rows * cols`; missing cells stay black. Values
            outside [0, 1] are clipped; NaN (a diverged model's output) is
            drawn black.
        rows: int. Grid rows.
        cols: int. Grid columns.

    Returns:
        uint8 array `(rows·H, cols·W, C)`.

    Example:
    ```python
    grid = image_grid(images[:100], rows=10, cols=10)  # (320, 320, 3) for 32×32 RGB
    ```
    """
    check_int("rows", rows, 1)
    check_int("cols", cols, 1)
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(
            "`images` must be a non-empty array (N, H, W, C) or (N, H, W); received "
            f"shape {images.shape}."
        )
    count, height, width, channels = images.shape
    if count > rows * cols:
        raise ValueError(
            f"{count} `images` do not fit a {rows}×{cols} grid; pass at most "
            f"{rows * cols} images or enlarge `rows`/`cols`."
        )
    cells = np.zeros((rows * cols, height, width, channels), np.uint8)
    images = np.nan_to_num(images, nan=0.0, posinf=1.0, neginf=0.0)
    cells[:count] = np.round(np.clip(images, 0.0, 1.0) * 255).astype(np.uint8)
    grid = cells.reshape(rows, cols, height, width, channels).transpose(0, 2, 1, 3, 4)
    return grid.reshape(rows * height, cols * width, channels)


def reconstruction_grid(originals, reconstructions, cols=10):
    """Rows of originals, each followed by a row of their reconstructions.

    Args:
        originals: float array `(N, H, W, C)` in [0, 1].
        reconstructions: float array of the same shape.
        cols: int. Images per row; `N` must be a multiple of it (or smaller).

    Returns:
        uint8 array `(2 · ceil(N / cols) · H, cols · W, C)`.
    """
    originals = np.asarray(originals, dtype=np.float32)
    reconstructions = np.asarray(reconstructions, dtype=np.float32)
    if originals.shape != reconstructions.shape:
        raise ValueError(
            "`originals` and `reconstructions` must have the same shape; received "
            f"{originals.shape} and {reconstructions.shape}."
        )
    cols = min(check_int("cols", cols, 1), len(originals))
    if len(originals) % cols:
        raise ValueError(f"{len(originals)} images do not fill rows of `cols`={cols}.")
    rows = len(originals) // cols
    pairs = np.stack(
        [originals.reshape(rows, cols, *originals.shape[1:]),
         reconstructions.reshape(rows, cols, *originals.shape[1:])], axis=1
    )
    return image_grid(pairs.reshape(-1, *originals.shape[1:]), rows=2 * rows, cols=cols)


def save_grid(grid, path):
    """Writes a uint8 grid `(H, W, 1 | 3)` as an image file (PNG by extension).

    Returns:
        `path`.
    """
    from PIL import Image

    if grid.shape[-1] not in (1, 3):
        raise ValueError(
            f"`images` must have 1 or 3 channels to save as an image; received {grid.shape[-1]}."
        )
    picture = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    with atomic_path(path) as tmp:
        picture.save(tmp)
    return path


def save_reconstruction_figure(originals, reconstructions, path, cols=10, zoom=3):
    """Writes `reconstruction_grid` with each row labelled "input" or "reconstruction".

    Args:
        originals: float array `(N, H, W, C)` in [0, 1].
        reconstructions: float array of the same shape.
        path: str. A PNG file.
        cols: int. Images per row. Defaults to `10`.
        zoom: int. Screen pixels per image pixel. Defaults to `3`.

    Returns:
        `path`.
    """
    grid = reconstruction_grid(originals, reconstructions, cols)
    height = np.asarray(originals).shape[1]
    rows = grid.shape[0] // height
    label_width = 1.2  # inches for the row labels
    figure = Figure(figsize=(grid.shape[1] * zoom / 100 + label_width, grid.shape[0] * zoom / 100 + 0.1),
                    dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_axes([label_width / figure.get_figwidth(), 0, 1 - label_width / figure.get_figwidth(), 1])
    axes.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", interpolation="nearest",
                vmin=0, vmax=255)
    axes.set_xticks([])
    axes.set_yticks([(row + 0.5) * height for row in range(rows)])
    axes.set_yticklabels(["input" if row % 2 == 0 else "reconstruction" for row in range(rows)], fontsize=8)
    with atomic_path(path) as tmp:
        figure.savefig(tmp)
    return path


def save_image_grid(images, path, rows=10, cols=10):
    """Writes `image_grid(images, rows, cols)` as an image file (PNG by extension).

    Grayscale images are written as 8-bit grayscale, RGB as RGB.

    Returns:
        `path`.
    """
    return save_grid(image_grid(images, rows, cols), path)
