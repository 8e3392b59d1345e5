"""`python -m training.experiments NAME`: the experiments that answer the paper's reviewers.

    python -m training.experiments shapes-rank             # one experiment, CPU budget
    python -m training.experiments all --budget cpu        # every experiment, then docs/results.md (~3 h)
    python -m training.experiments report                  # rebuild docs/results.md only

Each experiment trains the runs it needs with `training.fit` (a run another experiment
already trained with the same settings is reused), evaluates them with
`training.evaluate` / `training.classify`, and writes `docs/results/NAME/`: a
`results.json` with every number, seed, setting, the command, the hardware and the
time; a `table.md`; and PNG figures. `docs/results.md` is assembled from those files,
opening with a five-line summary computed from the numbers.
"""

import argparse
import dataclasses
import json
import math
import os
import platform
import shutil
import time

from training.config import RunConfig
from training.errors import ArgumentParser
from training.errors import RunFailed
from training.errors import UsageError
from training.errors import import_tensorflow_quietly
from training.errors import run_cli

THRESHOLD = 0.01
INTERPOLATION_PAIR = (0, 1)
INTERPOLATION_STEPS = 10
RECONSTRUCTION_IMAGES = 10
TRAINED_MSE = 0.9  # a run has learned something when its MSE is below 0.9 x the mean image's
FIGURE_ZOOM = 3  # image-row figures: 32-pixel images drawn 3x larger, pixels kept sharp
REPORT = "docs/results.md"


# ------------------------------------------------------------------ budgets


@dataclasses.dataclass(frozen=True)
class Budget:
    """How much compute an experiment may spend.

    Attributes:
        shapes: RunConfig settings of a shapes run.
        digits: RunConfig settings of a digits run.
        seeds: seeds of the headline comparisons (others use the first).
        eval_size: eval images for the spectrum, MSE and FID.
        sweep: RunConfig settings of a learning-rate sweep run.
        long_run: RunConfig settings of the training-length experiment's longer shapes
            runs (empty: the shapes runs are already as long as the paper's).
        learning_rates: the sweep's learning rates per optimizer.
        classify_labels / classify_seeds / classify_epochs: the downstream protocol.
        domain_epochs / domain_images: the FID feature network's training.
    """

    name: str
    shapes: dict
    digits: dict
    seeds: tuple
    eval_size: int
    sweep: dict
    long_run: dict
    learning_rates: dict
    classify_labels: str
    classify_seeds: int
    classify_epochs: int
    domain_epochs: int
    domain_images: int


# Learning rates from each optimizer's usual range up to where it diverges (SGD with
# momentum 0.9). At the official init the encoder's gradients start near 1e-10: in the
# cpu budget's sweep no rate of SGD or RMSprop up to 1.0 / 1e-3 left the initial plateau
# (the mean image, eval MSE ≈ 0.021); the experiment reports which runs did.
SWEEPS = {
    "adam": (3e-5, 1e-4, 3e-4, 1e-3, 3e-3),
    "sgd": (1e-2, 3e-2, 1e-1, 3e-1, 1.0, 3.0),
    "rmsprop": (3e-5, 1e-4, 3e-4, 1e-3, 3e-3),
}

BUDGETS = {
    # Seconds per experiment: what the test suite runs.
    "smoke": Budget(
        name="smoke",
        shapes={"train_size": 64, "eval_size": 64, "epochs": 1, "latent_dim": 8},
        digits={"train_size": 128, "epochs": 1, "latent_dim": 16},
        seeds=(0, 1), eval_size=64, sweep={"train_size": 64, "epochs": 1},
        long_run={"train_size": 128, "epochs": 2},
        learning_rates={"adam": (1e-4, 1e-3), "sgd": (1e-2,), "rmsprop": (1e-4,)},
        classify_labels="10,all", classify_seeds=2, classify_epochs=2,
        domain_epochs=1, domain_images=128,
    ),
    # A 2-core CPU: each experiment within about 30 minutes (about 28 distinct shapes
    # runs of 6 250 steps, ~3 min each; the paper trains 50 000 images x 100 epochs =
    # 156 000 steps, the `paper` budget). At half these steps (10 000 images) the AE's
    # rank had not yet left the IRMAE's (5-6 vs 4): the gap opens as the MSE falls.
    "cpu": Budget(
        name="cpu",
        shapes={"train_size": 20_000, "eval_size": 2_000, "epochs": 10},
        digits={"epochs": 40},
        seeds=(0, 1), eval_size=2_000, sweep={"train_size": 5_000, "epochs": 3},
        # 31 250 steps, a fifth of the paper's, ~14 min per run: two runs in ~30 min.
        long_run={"train_size": 50_000, "epochs": 20},
        learning_rates=SWEEPS,
        classify_labels="10,50,100,500,all", classify_seeds=5, classify_epochs=100,
        domain_epochs=5, domain_images=5_000,
    ),
    # The paper's settings: 50 000 / 10 000 shapes images, 100 epochs; a GPU.
    "paper": Budget(
        name="paper",
        shapes={"epochs": 100},
        digits={"epochs": 200},
        seeds=(0, 1, 2), eval_size=10_000, sweep={"train_size": 10_000, "epochs": 10},
        long_run={},
        learning_rates=SWEEPS,
        classify_labels="10,50,100,500,1000,all", classify_seeds=5, classify_epochs=100,
        domain_epochs=10, domain_images=10_000,
    ),
}


# ---------------------------------------------------------------- the trials


@dataclasses.dataclass
class Trial:
    """One run of an experiment: a label for the tables and its settings."""

    label: str
    config: RunConfig
    group: str = ""


def _name(config):
    """A run name that encodes every setting that differs between experiments."""
    parts = [config.dataset, config.model, f"l{config.linear_layers}", f"n{config.latent_dim}"]
    if config.init_scale != 1.0:
        parts.append(f"init{config.init_scale:g}")
    if config.stack_initializer:
        parts.append(config.stack_initializer)
    if config.tying != "none":
        parts.append(config.tying)
    if config.freeze_stack:
        parts.append("frozen")
    if config.stack_activation:
        parts.append(config.stack_activation)
    if config.optimizer != "adam" or config.lr != 1e-4:
        parts.append(f"{config.optimizer}{config.lr:g}")
    parts.append(f"s{config.seed}")
    return "-".join(parts)


def make_config(budget, dataset, model="irmae", seed=0, size=None, **settings):
    """A RunConfig for `dataset` at `budget`, with an experiment-specific run name."""
    base = dict(getattr(budget, dataset))
    base.update(size or {})
    base.update(settings)
    config = RunConfig(dataset=dataset, model=model, seed=seed, export=False, **base)
    config = dataclasses.replace(config, run_name="x").resolved()
    # A run of another size (the optimizer sweep's) must not share a name with, and so be
    # reused as, the full-size run of the same settings.
    sized = "".join(f"-{key.replace('_', '')}{value}" for key, value in sorted((size or {}).items()))
    return dataclasses.replace(config, run_name=f"{_name(config)}{sized}-{budget.name}")


# ------------------------------------------------------------------- context


class Context:
    """Where runs and results go, and what has been measured so far."""

    def __init__(self, budget, runs_dir, out_dir):
        self.budget = budget
        self.runs_dir = runs_dir
        self.out_dir = out_dir
        self.trained_now = 0
        self.reused = 0
        self.train_seconds = 0.0

    def run_dir(self, config):
        return os.path.join(self.runs_dir, config.run_name)

    def train(self, trial):
        """Trains the trial's run unless it is complete; returns its directory."""
        from training import fit

        config = dataclasses.replace(trial.config, output_dir=self.runs_dir)
        run_dir = self.run_dir(config)
        timing_path = os.path.join(run_dir, "experiment_timing.json")
        if fit.read_status(run_dir).get("state") == "complete" and os.path.exists(timing_path):
            self.reused += 1
            with open(timing_path, encoding="utf-8") as handle:
                self.train_seconds += json.load(handle)["train_seconds"]
            return run_dir
        from training.checkpointing import write_json_atomic

        if fit.read_status(run_dir).get("state") == "failed" and os.path.exists(timing_path):
            with open(timing_path, encoding="utf-8") as handle:
                timing = json.load(handle)
            self.reused += 1
            self.train_seconds += timing["train_seconds"]
            raise RunFailed(timing.get("failure", "diverged"))
        start = time.time()
        try:
            fit.train(config, quiet=True)
        except RunFailed as error:
            # Recorded, so that the next call reports the divergence without retraining.
            seconds = time.time() - start
            write_json_atomic(timing_path, {"train_seconds": seconds, "failure": str(error)})
            self.trained_now += 1
            self.train_seconds += seconds
            raise
        seconds = time.time() - start
        write_json_atomic(timing_path, {"train_seconds": seconds})
        self.trained_now += 1
        self.train_seconds += seconds
        return run_dir

    def domain_features(self, dataset, image_shape):
        """One FID feature network per dataset, shared by every run it scores."""
        from irmae_keras import fid
        from training import data

        path = os.path.join(self.runs_dir, f"domain-features-{dataset}-{self.budget.name}.keras")
        if not os.path.exists(path):
            config = make_config(self.budget, dataset)
            images, labels = data.load_arrays(
                dataset, "train", limit=self.budget.domain_images, labels=True,
                seed=config.seed, image_shape=image_shape,
            )
            fid.DomainFeatures().fit(images, labels, epochs=self.budget.domain_epochs, seed=0).save(path)
        return path

    def evaluate(self, trial, tasks, num_samples=None):
        """`training.evaluate` on the trial's run; returns its evaluation document."""
        from training import evaluate
        from training.rundir import load_run

        run_dir = self.train(trial)
        domain = None
        if "fid" in tasks:
            _, model = load_run(run_dir)
            domain = self.domain_features(trial.config.dataset, model.image_shape)
        settings = evaluate.Settings(
            run_dir=run_dir, tasks=tuple(tasks), compare=[], eval_size=self.eval_size(trial.config),
            num_samples=num_samples or self.eval_size(trial.config), seed=0,
            features="domain", inception_weights=None, domain_features=domain,
            gmm_max_iter=100, out=os.path.join(run_dir, "evaluation"),
        )
        document, _ = evaluate.evaluate(settings)
        return document

    def eval_size(self, config):
        from training import data

        available = data.dataset_info(config.dataset).sizes.get("eval")
        size = min(self.budget.eval_size, config.eval_size or self.budget.eval_size)
        return max(evaluate_minimum(), min(size, available or size))


def evaluate_minimum():
    from training.evaluate import MIN_EVAL_IMAGES

    return MIN_EVAL_IMAGES


def metrics(document):
    """The numbers a table shows, from an evaluation document."""
    row = {}
    if "spectrum" in document:
        spectrum = document["spectrum"]
        row.update(effective_rank=spectrum["effective_rank"], entropy_rank=spectrum["entropy_rank"],
                   singular_values=spectrum["singular_values"])
    if "reconstruction" in document:
        row["mse"] = document["reconstruction"]["mse"]
    if "fid" in document:
        row["fid"] = document["fid"]["values"]
        row["fid_num_images"] = document["fid"]["num_images"]
    return row


# ------------------------------------------------------------------ figures


def spectra_figure(rows, path, title, intrinsic_dim=7):
    from irmae_keras import plots

    spectra = {f"{row['label']} (rank {row['effective_rank']})": row["singular_values"] for row in rows}
    plots.plot_spectrum(spectra, path, intrinsic_dim=intrinsic_dim, threshold=THRESHOLD, title=title)


def interpolation_rows_figure(ctx, trials, path):
    """One row per model: the same two eval images, interpolated in each model's code
    space (paper Fig. 3). Returns the row labels, top to bottom."""
    import numpy as np

    from irmae_keras import sampling
    from training.fit import encode_images
    from training.rundir import load_run

    rows = []
    for trial in trials:
        config, model = load_run(ctx.run_dir(trial.config))
        images = eval_images(config, max(INTERPOLATION_PAIR) + 1)
        codes = encode_images(model, images)
        a, b = INTERPOLATION_PAIR
        path_codes = sampling.interpolate(codes[a:a + 1], codes[b:b + 1], steps=INTERPOLATION_STEPS)[0]
        rows.append(sampling.decode(model, path_codes))
    save_zoomed_rows(np.concatenate(rows), len(rows), INTERPOLATION_STEPS, path)
    return [trial.label for trial in trials]


def eval_images(config, limit):
    """The first `limit` eval images of a run's dataset, in its order and size."""
    from irmae_keras import architectures
    from training import data

    return data.load_arrays(config.dataset, "eval", limit=limit, seed=config.seed,
                            image_shape=architectures.image_shape(config.architecture))


def reconstruction_rows_figure(ctx, trials, path):
    """The first eval images on top, then one row of reconstructions per trial."""
    import numpy as np

    from irmae_keras import sampling
    from training.fit import encode_images
    from training.rundir import load_run

    rows = []
    for trial in trials:
        config, model = load_run(ctx.run_dir(trial.config))
        images = eval_images(config, RECONSTRUCTION_IMAGES)
        if not rows:
            rows.append(images)
        rows.append(sampling.decode(model, encode_images(model, images)))
    save_zoomed_rows(np.concatenate(rows), len(rows), RECONSTRUCTION_IMAGES, path)
    return ["eval images"] + [trial.label for trial in trials]


def colour_kept(ctx, trial):
    """How much of the eval images' colour the reconstructions keep: the mean spread
    across channels (max − min per pixel) of the reconstructions over the originals', on
    the pixels of the shapes. 0 for grey reconstructions, 1 as saturated as the data."""
    from irmae_keras import sampling
    from training.fit import encode_images
    from training.rundir import load_run

    config, model = load_run(ctx.run_dir(trial.config))
    images = eval_images(config, ctx.eval_size(config))
    return colour_ratio(reconstructions=sampling.decode(model, encode_images(model, images)), images=images)


def colour_ratio(reconstructions, images):
    """Mean spread across channels (max − min per pixel) of `reconstructions` over
    `images`', on the pixels that are not black in `images` (a background's noise is no
    colour)."""
    shape_pixels = images.max(axis=-1) > 0

    def spread(batch):
        return float((batch.max(axis=-1) - batch.min(axis=-1))[shape_pixels].mean())

    return spread(reconstructions) / spread(images)


def save_zoomed_rows(images, rows, cols, path):
    """An image grid with every pixel drawn FIGURE_ZOOM times (nearest neighbour)."""
    import numpy as np

    from irmae_keras import plots

    grid = plots.image_grid(images, rows=rows, cols=cols)
    plots.save_grid(np.repeat(np.repeat(grid, FIGURE_ZOOM, axis=0), FIGURE_ZOOM, axis=1), path)


def rank_history(ctx, trial):
    """The effective rank after each epoch, from the run's history.csv (RankMonitor);
    None for an epoch whose codes were not finite."""
    import csv
    import math

    with open(os.path.join(ctx.run_dir(trial.config), "history.csv"), encoding="utf-8") as handle:
        ranks = [float(row["effective_rank"]) for row in csv.DictReader(handle)]
    return [None if math.isnan(rank) else int(rank) for rank in ranks]


def training_steps(config):
    """Optimizer steps of a run: batches per epoch × epochs."""
    from training import data

    if config.steps_per_epoch:
        return config.steps_per_epoch * config.epochs
    images = config.train_size or data.dataset_info(config.dataset).sizes["train"]
    return math.ceil(images / config.batch_size) * config.epochs


def rank_over_training_figure(ctx, trials, path, title, intrinsic_dim=7, by_steps=False):
    """Effective rank of the eval codes after each epoch (the runs' history.csv, logged by
    RankMonitor), one line per trial: is a rank still moving when the budget ends?
    `by_steps` puts training steps on the x-axis, for runs whose epochs differ in size."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from irmae_keras import plots

    figure = Figure(figsize=(6.4, 4.0))
    # The legend sits right of the axes, where it hides no line.
    figure.subplots_adjust(left=0.1, right=0.66, bottom=0.12, top=0.92)
    axes = figure.add_subplot()
    for trial in trials:
        ranks = [float("nan") if rank is None else rank for rank in rank_history(ctx, trial)]
        per_epoch = training_steps(trial.config) / trial.config.epochs if by_steps else 1
        axes.plot([per_epoch * epoch for epoch in range(1, len(ranks) + 1)], ranks, marker="o",
                  markersize=3, label=f"{trial.label} (seed {trial.config.seed})")
    axes.axhline(intrinsic_dim, color="grey", linestyle=":", linewidth=1,
                 label=f"intrinsic dimension {intrinsic_dim}")
    axes.set_xlabel("training step" if by_steps else "epoch")
    axes.set_ylabel("effective rank (eval codes)")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title(title, fontsize=9)
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    plots.save_figure(figure, path)


# ------------------------------------------------------------ table helpers


def _format(value, digits=4):
    if value is None:
        return "—"
    if isinstance(value, (int, str)):
        return str(value)
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.{digits}g}"


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def rank_table(rows, extra=()):
    """label | seed | effective rank | entropy rank | eval MSE | extra columns."""
    header = ["run", "seed", "effective rank", "entropy rank", "eval MSE"] + [name for name, _ in extra]
    body = [
        [row["label"], row["seed"], row["effective_rank"], _format(row["entropy_rank"], 3),
         _format(row["mse"])] + [_format(get(row)) for _, get in extra]
        for row in rows
    ]
    return markdown_table(header, body)


# -------------------------------------------------------------- experiments


def _row(ctx, trial, tasks=("spectrum", "reconstruction"), num_samples=None):
    document = ctx.evaluate(trial, tasks, num_samples)
    return dict(label=trial.label, group=trial.group, seed=trial.config.seed,
                run_name=trial.config.run_name, config=trial.config.to_dict(), **metrics(document))


def shapes_rank(ctx):
    """Paper Fig. 2: spectra of AE, AE+L1, AE+L2, VAE, IRMAE l=2 and l=4 on shapes."""
    budget = ctx.budget
    trials = []
    for seed in budget.seeds:
        trials += [
            Trial("AE", make_config(budget, "shapes", "ae", seed)),
            Trial("IRMAE l=2", make_config(budget, "shapes", "irmae", seed, linear_layers=2)),
        ]
    trials += [
        Trial("AE+L1", make_config(budget, "shapes", "ae_l1")),
        Trial("AE+L2", make_config(budget, "shapes", "ae_l2")),
        Trial("VAE", make_config(budget, "shapes", "vae")),
        Trial("IRMAE l=4", make_config(budget, "shapes", "irmae", linear_layers=4)),
    ]
    rows = [dict(_row(ctx, trial), rank_by_epoch=rank_history(ctx, trial)) for trial in trials]
    order = ["AE", "AE+L1", "AE+L2", "VAE", "IRMAE l=2", "IRMAE l=4"]
    rows.sort(key=lambda row: (order.index(row["label"]), row["seed"]))
    first_seed = [row for row in rows if row["seed"] == budget.seeds[0]]
    title = f"Singular values of the shapes eval codes (paper Fig. 2), seed {budget.seeds[0]}"
    spectra_figure(first_seed, os.path.join(ctx.out_dir, "spectra.png"), title)
    figures = [("spectra.png", title)]
    seed_zero = [t for t in trials if t.config.seed == budget.seeds[0]]
    seed_zero.sort(key=lambda t: order.index(t.label))
    labels = interpolation_rows_figure(ctx, seed_zero, os.path.join(ctx.out_dir, "interpolation.png"))
    figures.append(("interpolation.png", "Interpolation between the same two eval images (paper "
                                         "Fig. 3); rows top to bottom: " + ", ".join(labels)))
    title = "Effective rank after each epoch (RankMonitor on the eval images)"
    rank_over_training_figure(ctx, trials, os.path.join(ctx.out_dir, "rank_over_training.png"), title)
    figures.append(("rank_over_training.png", title + ": where a curve still climbs at the end, "
                                                      "the budget, not the model, set its rank"))
    notes = [f"The L1/L2 coefficient is {trials[-4].config.penalty:g} (per-example norm, "
             "averaged over the batch); the VAE's β is 0.1. Paper (Fig. 2, 50 000 × 100 epochs): "
             "IRMAE l=2 ≈ 7, l=4 ≈ 4, AE ≈ 17, AE+L2 ≈ 17, AE+L1 ≈ 25."]
    return rows, rank_table(rows), figures, notes


def training_length(ctx):
    """Is it the budget that keeps the ranks below the paper's? AE and IRMAE l=2 at the
    budget's length and trained longer, with the rank after every epoch."""
    budget = ctx.budget
    trials = []
    for size in ({}, budget.long_run):
        for label, model in (("AE", "ae"), ("IRMAE l=2", "irmae")):
            config = make_config(budget, "shapes", model, size=size)
            trials.append(Trial(f"{label}, {training_steps(config):,} steps", config, group=label))
    # The paper budget's runs are already long: one length, the shapes-rank runs.
    trials = list({trial.config.run_name: trial for trial in trials}.values())
    rows = [dict(_row(ctx, trial), rank_by_epoch=rank_history(ctx, trial),
                 steps=training_steps(trial.config), colour_kept=colour_kept(ctx, trial))
            for trial in trials]
    table = rank_table(rows, extra=[
        ("steps", lambda row: f"{row['steps']:,}"),
        ("colour kept", lambda row: f"{row['colour_kept']:.0%}"),
        ("rank after each epoch", lambda row: " ".join(str(r) for r in row["rank_by_epoch"])),
    ])
    title = "Shapes: effective rank over training, AE and IRMAE l=2"
    rank_over_training_figure(ctx, trials, os.path.join(ctx.out_dir, "rank_over_training.png"),
                              title, by_steps=True)
    figures = [("rank_over_training.png", title)]
    spectra_title = "Singular values of the shapes eval codes after short and longer training"
    spectra_figure(rows, os.path.join(ctx.out_dir, "spectra.png"), spectra_title)
    figures.append(("spectra.png", spectra_title))
    labels = reconstruction_rows_figure(ctx, trials, os.path.join(ctx.out_dir, "reconstructions.png"))
    figures.append(("reconstructions.png", "The first 10 eval images and their reconstructions; "
                                           "rows top to bottom: " + ", ".join(labels)))
    notes = ["The shapes data has 7 factors, 3 of them colour. `colour kept`: the mean spread "
             "across the RGB channels of the reconstructions over the eval images', on the shapes' "
             "pixels (0 % for grey reconstructions): a model that has not learned colour needs fewer than 7 code "
             "dimensions for what it has learned. The paper trains 50 000 images × 100 epochs "
             f"({training_steps(make_config(BUDGETS['paper'], 'shapes')):,} steps)."]
    return rows, table, figures, notes


def init_scale(ctx):
    """Review 1: IRMAE l=2 with the stack's init scaled ×{0.1, 0.3, 1, 3}, and Glorot."""
    budget = ctx.budget
    trials = [Trial(f"init ×{scale:g}", make_config(budget, "shapes", init_scale=scale))
              for scale in (0.1, 0.3, 1.0, 3.0)]
    trials.append(Trial("glorot_uniform", make_config(budget, "shapes", stack_initializer="glorot_uniform")))
    rows = [_row(ctx, trial) for trial in trials]
    title = "IRMAE l=2 on shapes: the stack's initial scale"
    spectra_figure(rows, os.path.join(ctx.out_dir, "spectra.png"), title)
    notes = ["×1 is PyTorch's nn.Linear default U(−1/√n, 1/√n), the official code's; Glorot "
             "uniform (Keras' default) is ≈1.7× wider for a square matrix."]
    return rows, rank_table(rows), [("spectra.png", title)], notes


def depth(ctx):
    """Reviews 3, 4: l ∈ {0, 1, 2, 4, 8}: rank, reconstruction, generation FID."""
    budget = ctx.budget
    trials = [Trial("AE (l=0)", make_config(budget, "shapes", "ae"))]
    trials += [Trial(f"IRMAE l={l}", make_config(budget, "shapes", linear_layers=l)) for l in (1, 2, 4, 8)]
    rows = [_row(ctx, trial, ("spectrum", "reconstruction", "fid")) for trial in trials]
    title = "Shapes: the depth l of the linear stack"
    spectra_figure(rows, os.path.join(ctx.out_dir, "spectra.png"), title)
    table = rank_table(rows, extra=[("FID mvg", lambda r: r["fid"]["mvg"]),
                                    ("FID gmm", lambda r: r["fid"]["gmm"]),
                                    ("FID reconstruction", lambda r: r["fid"]["reconstruction"])])
    notes = [_fid_note(rows)]
    return rows, table, [("spectra.png", title)], notes


def tying(ctx):
    """Review 1 and the supplement: independent, shared, transpose-tied, frozen, nonlinear."""
    budget = ctx.budget
    trials = [
        Trial("independent W1, W2", make_config(budget, "shapes")),
        Trial("shared (W·W)", make_config(budget, "shapes", tying="shared")),
        Trial("transpose (W·Wᵀ)", make_config(budget, "shapes", tying="transpose")),
        Trial("frozen random", make_config(budget, "shapes", freeze_stack=True)),
        Trial("nonlinear (ReLU between)", make_config(budget, "shapes", stack_activation="relu")),
        Trial("AE (no stack)", make_config(budget, "shapes", "ae")),
    ]
    rows = [_row(ctx, trial) for trial in trials]
    title = "Shapes, l=2: tying, freezing and a nonlinear stack"
    spectra_figure(rows, os.path.join(ctx.out_dir, "spectra.png"), title)
    return rows, rank_table(rows), [("spectra.png", title)], []


def mean_image_mse(ctx, config):
    """The eval MSE of a model that outputs the mean eval image: the plateau a network
    that has not yet learned anything sits on."""
    images = eval_images(config, ctx.eval_size(config))
    return float(((images - images.mean(axis=0)) ** 2).mean())


def initial_gradients(config, count=256):
    """RMS of the MSE gradient of each kernel at the run's initialisation, on its first
    `count` training images, in layer order."""
    import keras
    import numpy as np
    import tensorflow as tf

    from training import data
    from training import fit

    keras.utils.set_random_seed(config.seed)
    model = fit._build_model(config)
    images = data.load_arrays(config.dataset, "train", limit=count, seed=config.seed,
                              image_shape=model.image_shape)
    stack = model.linear_stack.trainable_variables if model.linear_stack is not None else []
    variables = model.encoder_network.trainable_variables + stack + model.decoder_network.trainable_variables
    with tf.GradientTape() as tape:
        loss = keras.losses.MeanSquaredError()(images, model(images, training=True))
    gradients = tape.gradient(loss, variables)
    return {variable.path: float(np.sqrt(np.mean(np.square(gradient))))
            for variable, gradient in zip(variables, gradients)
            if variable.path.endswith("kernel") or "kernel_" in variable.path}


def _mark_trained(row, plateau):
    # A run whose eval MSE stays within 10 % of the mean image's has not left the plateau.
    row["trained"] = row["mse"] is not None and row["mse"] == row["mse"] and row["mse"] < TRAINED_MSE * plateau
    return row


def optimizer(ctx):
    """Review 3: Adam, SGD with momentum 0.9 and RMSprop, each at its tuned learning rate."""
    budget = ctx.budget
    plateau = mean_image_mse(ctx, make_config(budget, "shapes"))
    sweep_rows, tuned, edges = [], {}, []
    for name, rates in budget.learning_rates.items():
        for lr in rates:
            trial = Trial(f"{name} lr={lr:g}", make_config(budget, "shapes", optimizer=name, lr=lr,
                                                           size=budget.sweep), group="sweep")
            try:
                row = _row(ctx, trial)
            except RunFailed:
                row = dict(label=trial.label, group=trial.group, seed=trial.config.seed,
                           run_name=trial.config.run_name, config=trial.config.to_dict(),
                           effective_rank=None, entropy_rank=None, mse=None, diverged=True)
            sweep_rows.append(_mark_trained(row, plateau))
        finite = [r for r in sweep_rows if r["config"]["optimizer"] == name and r["mse"] is not None
                  and r["mse"] == r["mse"]]
        if not finite:
            raise RunFailed(f"every {name} learning rate of the sweep diverged: {rates}")
        tuned[name] = min(finite, key=lambda r: r["mse"])["config"]["lr"]
        if len(rates) > 1 and tuned[name] in (min(rates), max(rates)):
            side = "largest" if tuned[name] == max(rates) else "smallest"
            edges.append(f"{name} ({tuned[name]:g}, the {side})")
    trials = [Trial(f"{name} lr={lr:g}", make_config(budget, "shapes", optimizer=name, lr=lr))
              for name, lr in tuned.items()]
    rows = [_mark_trained(_row(ctx, trial), plateau) for trial in trials]
    for row in rows:
        row["mean_image_mse"] = plateau
    title = "Shapes, IRMAE l=2: optimizers at their tuned learning rates"
    spectra_figure(rows, os.path.join(ctx.out_dir, "spectra.png"), title)
    left = ("left the mean image", lambda row: "yes" if row["trained"] else "no")
    sweep = markdown_table(
        ["sweep run", "eval MSE", "effective rank", left[0]],
        [[r["label"], "diverged (NaN)" if r.get("diverged") else _format(r["mse"]),
          _format(r["effective_rank"]), left[1](r)] for r in sweep_rows],
    )
    gradients = initial_gradients(make_config(budget, "shapes"))
    names = list(gradients)
    size = budget.sweep
    edge_note = (f" Tuned at an end of the sweep, the next rate beyond it untried: "
                 f"{', '.join(edges)}." if edges else "")
    notes = [
        f"A run has left the mean image when its eval MSE is below {TRAINED_MSE:g} × "
        f"{_format(plateau)}, the MSE of the mean eval image (the plateau of an untrained "
        "network); the rank of a run that has not is the rank of untrained codes.",
        "At the official init the gradients are far apart in scale (RMS of the MSE gradient on "
        f"256 training images): {names[0]} {gradients[names[0]]:.1e}, the stack's "
        + ", ".join(f"{name.split('/')[-1]} {gradients[name]:.1e}" for name in names if "linear_stack" in name)
        + f", {names[-1]} {gradients[names[-1]]:.1e}. SGD's step follows the gradient's scale; "
        "Adam's and RMSprop's divide it per weight by a running RMS, where Adam's ε is 1e-8 "
        "(PyTorch's) and RMSprop's Keras' 1e-7.",
        f"Tuning: each learning rate trained on {size.get('train_size', 'all')} images for "
        f"{size['epochs']} epochs; the lowest eval MSE wins.{edge_note} Sweep:\n\n{sweep}",
    ]
    document_rows = rows + sweep_rows
    return document_rows, rank_table(rows, extra=[left]), [("spectra.png", title)], notes


def latent_size(ctx):
    """Reviews 2, 4: AE and VAE with small latent sizes against IRMAE n=32."""
    budget = ctx.budget
    trials = [Trial(f"AE n={n}", make_config(budget, "shapes", "ae", latent_dim=n)) for n in (4, 7, 8, 16, 32)]
    trials += [Trial(f"VAE n={n}", make_config(budget, "shapes", "vae", latent_dim=n)) for n in (4, 7, 16, 32)]
    trials.append(Trial("IRMAE n=32 l=2", make_config(budget, "shapes", latent_dim=32)))
    rows = [_row(ctx, trial, ("spectrum", "reconstruction", "fid")) for trial in trials]
    table = rank_table(rows, extra=[("FID mvg", lambda r: r["fid"]["mvg"]),
                                    ("FID gmm", lambda r: r["fid"]["gmm"]),
                                    ("FID interpolation", lambda r: r["fid"]["interpolation"])])
    chosen = [t for t in trials if t.label in ("AE n=7", "AE n=32", "VAE n=7", "IRMAE n=32 l=2")]
    labels = interpolation_rows_figure(ctx, chosen, os.path.join(ctx.out_dir, "interpolation.png"))
    figures = [("interpolation.png", "Interpolation between the same two eval images; rows: " + ", ".join(labels))]
    return rows, table, figures, [_fid_note(rows)]


def downstream(ctx):
    """Review 4, paper Table 2: frozen encoders + the official head on few labels (digits)."""
    from training import classify

    budget = ctx.budget
    trials = [Trial("AE", make_config(budget, "digits", "ae")),
              Trial("VAE", make_config(budget, "digits", "vae")),
              Trial("IRMAE", make_config(budget, "digits", "irmae"))]
    rows, tables = [], []
    for trial in trials:
        run_dir = ctx.train(trial)
        argv = [run_dir, "--labels", budget.classify_labels, "--seeds", str(budget.classify_seeds),
                "--epochs", str(budget.classify_epochs), "--out", os.path.join(run_dir, "classification")]
        if trial.label != "IRMAE":
            argv.append("--no-supervised")  # the supervised baseline does not depend on the AE
        document = classify.classify(classify.parse_settings(argv))
        for method, summary in document["summary"].items():
            for count, numbers in summary.items():
                std = numbers["std_test_error"]
                rows.append({"label": "supervised" if method == "supervised" else trial.label,
                             "labels": count, "seeds": numbers["seeds"],
                             "test_error": 100 * numbers["mean_test_error"],
                             "test_error_std": None if std is None else 100 * std,
                             "run_name": trial.config.run_name})
        tables.append(document)
    counts = list(dict.fromkeys(row["labels"] for row in rows))
    methods = list(dict.fromkeys(row["label"] for row in rows))
    body = []
    for count in counts:
        cells = [count]
        for method in methods:
            match = [r for r in rows if r["label"] == method and r["labels"] == count]
            cells.append(_error_cell(match[0]) if match else "—")
        body.append(cells)
    table = markdown_table(["labels"] + [f"{m} (test error %)" for m in methods], body)
    notes = [f"Digits (scikit-learn, 1 433 train / 364 test images), {budget.classify_seeds} seeds: "
             "class-balanced labelled subsets per seed, a fixed stratified 10 % validation split "
             "for early stopping (not the best test accuracy over epochs), frozen pre-stack "
             "encoder features + the official head; supervised = the same encoder trained from "
             "scratch with the head. Cells: mean ± standard deviation of the test error over the "
             "seeds. MNIST is not available offline here."]
    return rows, table, [], notes


def _error_cell(row):
    if row["test_error_std"] is None:
        return f"{row['test_error']:.2f}"
    return f"{row['test_error']:.2f} ± {row['test_error_std']:.2f}"


def generation(ctx):
    """FID per sampler (reconstruction, interpolation, MVG, GMM, PCA) for AE, VAE, IRMAE."""
    budget = ctx.budget
    trials = []
    for dataset in ("shapes", "digits"):
        trials += [Trial("AE", make_config(budget, dataset, "ae"), group=dataset),
                   Trial("VAE", make_config(budget, dataset, "vae"), group=dataset),
                   Trial("IRMAE", make_config(budget, dataset, "irmae"), group=dataset)]
    rows = []
    figures = []
    for trial in trials:
        row = _row(ctx, trial, ("spectrum", "reconstruction", "fid", "gmm", "pca"))
        row["fid"]["pca"] = pca_fid(ctx, trial)
        rows.append(row)
        name = f"gmm-{trial.group}-{trial.label.lower()}.png"
        shutil.copyfile(os.path.join(ctx.run_dir(trial.config), "evaluation", "gmm.png"),
                        os.path.join(ctx.out_dir, name))
        figures.append((name, f"{trial.group}, {trial.label}: 100 GMM samples"))
    samplers = ("reconstruction", "interpolation", "mvg", "gmm", "pca", "train_images")
    table = markdown_table(
        ["dataset", "model", "effective rank"] + [f"FID {s}" for s in samplers],
        [[r["group"], r["label"], r["effective_rank"]] + [_format(r["fid"][s], 3) for s in samplers]
         for r in rows],
    )
    notes = [_fid_note(rows) + " `pca`: codes drawn from a Gaussian over the first 4 principal "
             "components (the subspace of the paper's PCA grid), the others at the mean. "
             "`train_images`: real training images, the floor a perfect generator reaches at this N."]
    return rows, table, figures, notes


def pca_fid(ctx, trial):
    """FID of codes sampled from a Gaussian over the codes' first 4 principal components."""
    from irmae_keras import analysis
    from irmae_keras import fid
    from irmae_keras import sampling
    from training.fit import encode_images
    from training.rundir import load_run

    config, model = load_run(ctx.run_dir(trial.config))
    images = eval_images(config, ctx.eval_size(config))
    codes = encode_images(model, images)
    mean, _, directions = analysis.code_pca(codes)
    basis = directions[:, :min(4, codes.shape[1])]
    projected = mean + (codes - mean) @ basis @ basis.T
    sampler = sampling.MultivariateGaussianSampler().fit(projected)
    generated = sampling.generate(model, sampler, n=len(codes), seed=0)
    extractor = fid.DomainFeatures.load(ctx.domain_features(config.dataset, model.image_shape))
    return fid.frechet_distance(*fid.feature_statistics(extractor(images)),
                                *fid.feature_statistics(extractor(generated)))


def _fid_note(rows):
    counts = {}  # dataset → the FID set sizes of its runs
    for row in rows:
        if row.get("fid_num_images"):
            counts.setdefault(row["config"]["dataset"], set()).add(row["fid_num_images"])
    sizes = [", ".join(map(str, sorted(n))) + (f" ({name})" if len(counts) > 1 else "")
             for name, n in counts.items()]
    return (f"FID: a domain feature CNN trained on the dataset's labels/factors (one network per "
            f"dataset, shared by all runs), N = {' / '.join(sizes)} eval images against "
            "as many generated ones, samplers fitted on the codes of those eval images, seed 0; "
            "lower is better, comparable only within this page (docs/evaluation.md).")


EXPERIMENTS = {
    "shapes-rank": (shapes_rank, "Does IRMAE find the intrinsic dimension? (paper Fig. 2, 3)"),
    "training-length": (training_length, "Is it the budget that keeps the ranks low? Longer runs"),
    "init-scale": (init_scale, "Review 1: does the initial scale of the stack matter?"),
    "depth": (depth, "Reviews 3, 4: how deep should the stack be?"),
    "tying": (tying, "Review 1: tied, shared, frozen and nonlinear stacks"),
    "optimizer": (optimizer, "Review 3: is it Adam?"),
    "latent-size": (latent_size, "Reviews 2, 4: why not a small latent size?"),
    "downstream": (downstream, "Review 4, paper Table 2: downstream classification"),
    "generation": (generation, "Generation quality per sampler"),
}


# ------------------------------------------------------------------ running


def hardware():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import tensorflow as tf

    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    return {"cpu": cpu, "cores": os.cpu_count(), "gpus": gpus,
            "tensorflow": tf.__version__, "python": platform.python_version()}


def run_experiment(name, budget, runs_dir, out_root):
    """Runs one experiment and writes its results directory; returns its document."""
    from training.checkpointing import write_json_atomic

    function, question = EXPERIMENTS[name]
    out_dir = os.path.join(out_root, name)
    os.makedirs(out_dir, exist_ok=True)
    ctx = Context(budget, runs_dir, out_dir)
    start = time.time()
    rows, table, figures, notes = function(ctx)
    elapsed = time.time() - start
    from training.fit import build_optimizer

    document = {
        "experiment": name,
        "question": question,
        "command": f"python -m training.experiments {name} --budget {budget.name}",
        "budget": dataclasses.asdict(budget),
        # Which Adam made the numbers: results before this field used Keras' placement.
        "adam_epsilon_placement": build_optimizer(RunConfig()).epsilon_placement,
        "hardware": hardware(),
        "seconds": {"this_call": elapsed, "training_all_runs": ctx.train_seconds},
        "runs": {"trained_now": ctx.trained_now, "reused": ctx.reused},
        "rows": rows,
        "table": table,
        "figures": figures,
        "notes": notes,
    }
    write_json_atomic(os.path.join(out_dir, "results.json"), document)
    from irmae_keras.utils import atomic_path

    with atomic_path(os.path.join(out_dir, "table.md")) as temp:
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(table + "\n")
    print(f"{name}: {elapsed / 60:.1f} min ({ctx.trained_now} runs trained, {ctx.reused} reused)")
    print(table)
    return document


def load_documents(out_root):
    documents = {}
    for name in EXPERIMENTS:
        path = os.path.join(out_root, name, "results.json")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                documents[name] = json.load(handle)
    return documents


def main(argv):
    args = build_parser().parse_args(argv)
    names = list(EXPERIMENTS) if args.name == ["all"] else args.name
    unknown = [n for n in names if n not in EXPERIMENTS and n != "report"]
    if unknown:
        raise UsageError(
            f"unknown experiment {', '.join(unknown)}; choose from {', '.join(EXPERIMENTS)}, all or report."
        )
    budget = BUDGETS[args.budget]
    import_tensorflow_quietly()
    from training import report

    for name in names:
        if name != "report":
            run_experiment(name, budget, args.runs_dir, args.out)
    report.write_report(load_documents(args.out), args.out, args.report)
    print(f"wrote {args.report}")
    return 0


def build_parser():
    parser = ArgumentParser(
        prog="python -m training.experiments",
        description=__doc__.split("\n\n")[0] + "\n\n" + "\n".join(
            f"  {name:<12} {question}" for name, (_, question) in EXPERIMENTS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", nargs="+", metavar="NAME",
                        help="experiment(s) to run, 'all', or 'report' (rebuild the report only)")
    parser.add_argument("--budget", choices=BUDGETS, default="cpu",
                        help="cpu: each experiment within ~30 min on a 2-core CPU; paper: the "
                             "paper's settings, for a GPU; smoke: seconds, for tests (default: %(default)s)")
    parser.add_argument("--runs-dir", default=os.path.join("saved_models", "experiments"),
                        help="where the runs go; finished runs are reused (default: %(default)s)")
    parser.add_argument("--out", default=os.path.join("docs", "results"),
                        help="results directories (default: %(default)s)")
    parser.add_argument("--report", default=REPORT, help="the assembled report (default: %(default)s)")
    return parser


if __name__ == "__main__":
    run_cli(main, prog="training.experiments")
