"""The figures of the results page: spectra, rows of images, rank over training."""

import math

from irmae_keras import analysis
from irmae_keras.paper import RANK_THRESHOLD
from training.data.registry import intrinsic_dimension
from training import data
from training.provenance import training_steps

INTERPOLATION_PAIR = (0, 1)
INTERPOLATION_STEPS = 10
RECONSTRUCTION_IMAGES = 10
FIGURE_ZOOM = 3  # image-row figures: 32-pixel images drawn 3x larger, pixels kept sharp
SHAPES_DIMENSION = intrinsic_dimension("shapes")  # the experiments' dataset


def spectra_figure(rows, path, title, intrinsic_dim=SHAPES_DIMENSION):
    from irmae_keras import plots

    spectra = {f"{row['label']} (rank {row['effective_rank']})": row["singular_values"] for row in rows}
    plots.plot_spectrum(spectra, path, intrinsic_dim=intrinsic_dim, threshold=RANK_THRESHOLD, title=title)


def interpolation_rows_figure(ctx, trials, path):
    """One row per model: the same two eval images, interpolated in each model's code
    space (paper Fig. 3). Returns the row labels, top to bottom."""
    import numpy as np

    from irmae_keras import sampling
    from irmae_keras.sampling import encode
    from training.rundir import load_run

    rows = []
    for trial in trials:
        config, model = load_run(ctx.run_dir(trial.config))
        images = data.run_eval_images(config, max(INTERPOLATION_PAIR) + 1)
        codes = encode(model, images)
        a, b = INTERPOLATION_PAIR
        path_codes = sampling.interpolate(codes[a:a + 1], codes[b:b + 1], steps=INTERPOLATION_STEPS)[0]
        rows.append(sampling.decode(model, path_codes))
    save_zoomed_rows(np.concatenate(rows), len(rows), INTERPOLATION_STEPS, path)
    return [trial.label for trial in trials]


def reconstruction_rows_figure(ctx, trials, path):
    """The first eval images on top, then one row of reconstructions per trial."""
    import numpy as np

    from irmae_keras import sampling
    from irmae_keras.sampling import encode
    from training.rundir import load_run

    rows = []
    for trial in trials:
        config, model = load_run(ctx.run_dir(trial.config))
        images = data.run_eval_images(config, RECONSTRUCTION_IMAGES)
        if not rows:
            rows.append(images)
        rows.append(sampling.decode(model, encode(model, images)))
    save_zoomed_rows(np.concatenate(rows), len(rows), RECONSTRUCTION_IMAGES, path)
    return ["eval images"] + [trial.label for trial in trials]


def colour_kept(ctx, trial):
    """How much of the eval images' colour the reconstructions keep: the mean spread
    across channels (max − min per pixel) of the reconstructions over the originals', on
    the pixels of the shapes. 0 for grey reconstructions, 1 as saturated as the data."""
    from irmae_keras import sampling
    from irmae_keras.sampling import encode
    from training.rundir import load_run

    config, model = load_run(ctx.run_dir(trial.config))
    images = data.run_eval_images(config, ctx.eval_size(config))
    return analysis.colour_kept(reconstructions=sampling.decode(model, encode(model, images)), images=images)


def save_zoomed_rows(images, rows, cols, path):
    """An image grid with every pixel drawn FIGURE_ZOOM times (nearest neighbour)."""
    import numpy as np

    from irmae_keras import plots

    grid = plots.image_grid(images, rows=rows, cols=cols)
    plots.save_grid(np.repeat(np.repeat(grid, FIGURE_ZOOM, axis=0), FIGURE_ZOOM, axis=1), path)


def rank_history(run_dir):
    """The effective rank after each epoch, from the run's history.csv (RankMonitor);
    None for an epoch whose codes were not finite."""
    from training.rundir import RunDir

    return [None if math.isnan(rank) else int(rank) for rank in RunDir(run_dir).history_column("effective_rank")]


def rank_over_training_figure(ctx, trials, path, title, intrinsic_dim=SHAPES_DIMENSION, by_steps=False):
    """Effective rank of the eval codes after each epoch (the runs' history.csv, logged by
    RankMonitor), one line per trial: is a rank still moving when the budget ends?
    `by_steps` puts training steps on the x-axis, for runs whose epochs differ in size."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter
    from matplotlib.ticker import MaxNLocator

    from irmae_keras import plots

    figure = Figure(figsize=(6.4, 4.0))
    # The legend sits right of the axes, where it hides no line.
    figure.subplots_adjust(left=0.1, right=0.66, bottom=0.12, top=0.92)
    axes = figure.add_subplot()
    for trial in trials:
        ranks = [float("nan") if rank is None else rank for rank in rank_history(ctx.run_dir(trial.config))]
        per_epoch = training_steps(trial.config) / trial.config.epochs if by_steps else 1
        axes.plot([per_epoch * epoch for epoch in range(1, len(ranks) + 1)], ranks, marker="o",
                  markersize=3, label=f"{trial.label} (seed {trial.config.seed})")
    axes.axhline(intrinsic_dim, color="grey", linestyle=":", linewidth=1,
                 label=f"intrinsic dimension {intrinsic_dim}")
    axes.set_xlabel("training step" if by_steps else "epoch")
    if by_steps:  # 150,000 steps: six-digit tick labels would run into each other
        axes.xaxis.set_major_formatter(FuncFormatter(lambda step, _: f"{step / 1000:g}k" if step else "0"))
    axes.set_ylabel("effective rank (eval codes)")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title(title, fontsize=9)
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    plots.save_figure(figure, path)
