"""Review 3: is it Adam? Each optimizer at its tuned learning rate."""

import os

from export.errors import RunFailed
from training import data
from training.experiments.budgets import make_config
from training.experiments.budgets import Trial
from training.experiments.context import trial_row
from training.experiments.figures import spectra_figure
from training.experiments.tables import format_value
from training.experiments.tables import markdown_table
from training.experiments.tables import rank_table


TRAINED_MSE = 0.9  # a run has learned something when its MSE is below 0.9 x the mean image's


def mean_image_mse(ctx, config):
    """The eval MSE of a model that outputs the mean eval image: the plateau a network
    that has not yet learned anything sits on."""
    images = data.run_eval_images(config, ctx.eval_size(config))
    return float(((images - images.mean(axis=0)) ** 2).mean())


def initial_gradients(config, count=256):
    """RMS of the MSE gradient of each kernel at the run's initialisation, on its first
    `count` training images, in layer order."""
    import keras
    import numpy as np
    import tensorflow as tf

    from training import data
    from training import trainer

    keras.utils.set_random_seed(config.seed)
    model = trainer.build_model(config)
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


def run(ctx):
    """Review 3: Adam, SGD with momentum 0.9 and RMSprop, each at its tuned learning rate."""
    budget = ctx.budget
    plateau = mean_image_mse(ctx, make_config(budget, "shapes"))
    sweep_rows, tuned, edges = [], {}, []
    for name, rates in budget.learning_rates.items():
        for lr in rates:
            trial = Trial(f"{name} lr={lr:g}", make_config(budget, "shapes", optimizer=name, lr=lr,
                                                           size=budget.sweep), group="sweep")
            try:
                row = trial_row(ctx, trial)
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
    rows = [_mark_trained(trial_row(ctx, trial), plateau) for trial in trials]
    for row in rows:
        row["mean_image_mse"] = plateau
    title = "Shapes, IRMAE l=2: optimizers at their tuned learning rates"
    spectra_figure(rows, os.path.join(ctx.out_dir, "spectra.png"), title)
    left = ("left the mean image", lambda row: "yes" if row["trained"] else "no")
    sweep = markdown_table(
        ["sweep run", "eval MSE", "effective rank", left[0]],
        [[r["label"], "diverged (NaN)" if r.get("diverged") else format_value(r["mse"]),
          format_value(r["effective_rank"]), left[1](r)] for r in sweep_rows],
    )
    gradients = initial_gradients(make_config(budget, "shapes"))
    names = list(gradients)
    size = budget.sweep
    edge_note = (f" Tuned at an end of the sweep, the next rate beyond it untried: "
                 f"{', '.join(edges)}." if edges else "")
    notes = [
        f"A run has left the mean image when its eval MSE is below {TRAINED_MSE:g} × "
        f"{format_value(plateau)}, the MSE of the mean eval image (the plateau of an untrained "
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
