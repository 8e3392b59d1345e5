"""Where an experiment's runs and results go: training and evaluating its trials."""

import dataclasses
import json
import os
import time

from export.errors import RunFailed
from export.errors import UsageError
from training.experiments.budgets import make_config


GPU_STEPS_PER_EXECUTION = 64  # a GPU's step of a small model is mostly launch overhead


def _gpu_available():
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


class Context:
    """Where runs and results go, and what has been measured so far."""

    def __init__(self, budget, runs_dir, out_dir):
        self.budget = budget
        self.runs_dir = runs_dir
        self.out_dir = out_dir
        self.trained_now = 0
        self.reused = 0
        self.train_seconds = 0.0
        self._trained = set()  # runs trained by this context (counted once)

    def run_dir(self, config):
        return os.path.join(self.runs_dir, config.run_name)

    def train(self, trial):
        """Trains the trial's run unless it is complete; returns its directory."""
        from training import trainer
        from training.rundir import RunDir

        config = dataclasses.replace(trial.config, output_dir=self.runs_dir)
        run = RunDir.of(config)
        if run.path in self._trained:
            return run.path
        timing = run.read_timing()
        state = run.read_status().get("state")
        if state == "complete" and not timing:
            # Trained outside an experiment (`python -m training.fit --config`, the CPU
            # path of the paper budget): its time is in its own log, not here.
            timing = {"train_seconds": 0.0}
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

    def train_all(self, trials):
        """Trains the trials' unfinished runs `budget.parallel_runs` at a time, each as
        its own `python -m training.fit` process sharing the device (XLA and 64 steps
        per call on a GPU). Nothing happens with `parallel_runs` 1: `train` then trains
        each run when it is first needed."""
        from training.rundir import RunDir

        if self.budget.parallel_runs <= 1:
            return
        pending = {}
        for trial in trials:
            config = dataclasses.replace(trial.config, output_dir=self.runs_dir)
            run = RunDir.of(config)
            state = run.read_status().get("state")
            if state != "complete" and (state != "failed" or not run.read_timing()):
                pending[run.path] = (config, run)
        waiting = list(pending.values())
        while waiting:
            wave, waiting = waiting[:self.budget.parallel_runs], waiting[self.budget.parallel_runs:]
            self._train_processes(wave)

    def _train_processes(self, wave):
        import subprocess
        import sys
        import tempfile

        gpu = _gpu_available()
        os.makedirs(self.runs_dir, exist_ok=True)
        processes = []
        for config, run in wave:
            if gpu:
                config = dataclasses.replace(config, jit_compile=True, steps_per_execution=GPU_STEPS_PER_EXECUTION)
            handle, path = tempfile.mkstemp(prefix=f".{config.run_name}.", suffix=".json", dir=self.runs_dir)
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                json.dump(config.document(), file)
            environment = dict(os.environ, TF_FORCE_GPU_ALLOW_GROWTH="true", TF_CPP_MIN_LOG_LEVEL="2")
            command = [sys.executable, "-m", "training.fit", "--config", path, "--quiet"]
            log = open(os.path.join(self.runs_dir, f".{config.run_name}.log"), "w", encoding="utf-8")
            processes.append((run, path, log, time.time(),
                              subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)))
        for run, path, log, start, process in processes:
            code = process.wait()
            seconds = time.time() - start
            log.close()
            os.remove(path)
            with open(log.name, encoding="utf-8") as handle:
                last = (handle.read().strip().splitlines() or [""])[-1]
            if code == 2:
                raise UsageError(f"training {run.path} failed: {last}")
            if code not in (0, 1):
                raise RuntimeError(f"training {run.path} ended with exit code {code}; see {log.name}")
            run.write_timing({"train_seconds": seconds, **({"failure": last} if code == 1 else {})})
            self._trained.add(run.path)
            self.trained_now += 1
            self.train_seconds += seconds

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
        from irmae_keras.architectures import image_shape
        from training.evaluation import evaluation
        from training.rundir import EVALUATION_DIR

        run_dir = self.train(trial)
        domain = None
        if "fid" in tasks:  # the model's input shape, from its architecture (no model load)
            domain = self.domain_features(trial.config.dataset, image_shape(trial.config.resolved().architecture))
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
