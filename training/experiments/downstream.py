"""Review 4, paper Table 2: downstream classification."""

import os

from training.experiments.budgets import make_config
from training.experiments.budgets import Trial
from training.experiments.tables import markdown_table
from training.rundir import CLASSIFICATION_DIR


def run(ctx):
    """Review 4, paper Table 2: frozen encoders + the official head on few labels (digits)."""
    from training.evaluation import classification

    budget = ctx.budget
    trials = [Trial("AE", make_config(budget, "digits", "ae")),
              Trial("VAE", make_config(budget, "digits", "vae")),
              Trial("IRMAE", make_config(budget, "digits", "irmae"))]
    rows, tables = [], []
    for trial in trials:
        run_dir = ctx.train(trial)
        settings = classification.Settings(
            run_dir=run_dir, labels=classification.parse_label_counts(budget.classify_labels),
            seeds=budget.classify_seeds, features=classification.DEFAULT_FEATURES, epochs=budget.classify_epochs,
            patience=classification.DEFAULT_PATIENCE,
            # the supervised baseline does not depend on the AE: trained once, beside IRMAE
            supervised=trial.label == "IRMAE", out=os.path.join(run_dir, CLASSIFICATION_DIR))
        document = classification.classify(settings)
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
