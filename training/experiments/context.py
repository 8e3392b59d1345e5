"""Where an experiment's runs and results go: training and evaluating its trials."""

import dataclasses
import os
import time

from export.errors import RunFailed
from training.experiments.budgets import make_config


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
        from training import trainer
        from training.rundir import RunDir

        config = dataclasses.replace(trial.config, output_dir=self.runs_dir)
        run = RunDir.of(config)
        timing = run.read_timing()
        state = run.read_status().get("state")
        if timing and state in ("complete", "failed"):
            self.reused += 1
            self.train_seconds += timing["train_seconds"]
            if state == "failed":
                raise RunFailed(timing.get("failure", "diverged"))
            return run.path
        start = time.time()
        try:
            trainer.train(config, quiet=True)
        except RunFailed as error:
            # Recorded, so that the next call reports the divergence without retraining.
            seconds = time.time() - start
            run.write_timing({"train_seconds": seconds, "failure": str(error)})
            self.trained_now += 1
            self.train_seconds += seconds
            raise
        seconds = time.time() - start
        run.write_timing({"train_seconds": seconds})
        self.trained_now += 1
        self.train_seconds += seconds
        return run.path

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
        from training.evaluation import evaluation
        from training.rundir import EVALUATION_DIR
        from training.rundir import load_run

        run_dir = self.train(trial)
        domain = None
        if "fid" in tasks:
            _, model = load_run(run_dir)
            domain = self.domain_features(trial.config.dataset, model.image_shape)
        settings = evaluation.Settings(
            run_dir=run_dir, tasks=tuple(tasks), compare=[], eval_size=self.eval_size(trial.config),
            num_samples=num_samples or self.eval_size(trial.config), seed=0,
            features="domain", inception_weights=None, domain_features=domain,
            gmm_max_iter=100, out=os.path.join(run_dir, EVALUATION_DIR),
        )
        document, _ = evaluation.evaluate(settings)
        return document

    def eval_size(self, config):
        from training import data

        available = data.dataset_info(config.dataset).sizes.get("eval")
        size = min(self.budget.eval_size, config.eval_size or self.budget.eval_size)
        return max(evaluate_minimum(), min(size, available or size))


def evaluate_minimum():
    from training.evaluation.evaluation import MIN_EVAL_IMAGES

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


def trial_row(ctx, trial, tasks=("spectrum", "reconstruction"), num_samples=None):
    document = ctx.evaluate(trial, tasks, num_samples)
    return dict(label=trial.label, group=trial.group, seed=trial.config.seed,
                run_name=trial.config.run_name, config=trial.config.to_dict(), **metrics(document))
