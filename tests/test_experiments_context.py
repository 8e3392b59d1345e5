"""training/experiments/context.py: which runs are trained, reused, recorded as diverged, trained together."""

import dataclasses
import os
import shutil

import pytest

from export.errors import RunFailed
from training import trainer
from training.experiments import budgets
from training.experiments import context
from training.rundir import RunDir

SMOKE = budgets.BUDGETS["smoke"]


@pytest.mark.slow
def test_a_complete_run_trained_outside_an_experiment_is_reused(smoke_experiments, tmp_path):
    """The paper budget's CPU path: `python -m training.fit --config` trains a run under the
    experiment's name, which has no experiment timing; the experiment takes it as it is."""
    smoke_experiments.result("shapes-rank")  # trains the AE
    trial = budgets.Trial("AE", budgets.make_config(SMOKE, "shapes", "ae"))
    runs = str(tmp_path / "runs")  # a copy: the session's runs keep their timing
    run = RunDir(shutil.copytree(os.path.join(smoke_experiments.runs, trial.config.run_name),
                                 os.path.join(runs, trial.config.run_name)))
    assert run.read_status()["state"] == "complete"
    os.remove(run.timing_path)
    parallel = dataclasses.replace(SMOKE, parallel_runs=2)  # train_all's path, too
    ctx = context.Context(parallel, runs, str(tmp_path / "out"))
    ctx.train_all([trial])
    assert ctx.train(trial) == run.path
    assert (ctx.trained_now, ctx.reused) == (0, 1)


def test_a_diverged_run_is_recorded_and_not_retrained(tmp_path, monkeypatch):
    calls = []

    def diverging_train(config, quiet=False):
        calls.append(config.run_name)
        run_dir = os.path.join(config.output_dir, config.run_name)
        os.makedirs(run_dir)
        RunDir(run_dir).write_status(state="failed", reason="nan", epoch=1)
        raise RunFailed("training stopped in epoch 1: the loss became NaN")

    monkeypatch.setattr(trainer, "train", diverging_train)
    ctx = context.Context(SMOKE, str(tmp_path / "runs"), str(tmp_path / "out"))
    trial = budgets.Trial("sgd", budgets.make_config(SMOKE, "shapes", optimizer="sgd", lr=10.0))
    for _ in range(2):
        with pytest.raises(RunFailed, match="epoch 1: the loss became NaN"):
            ctx.train(trial)
    assert len(calls) == 1 and (ctx.trained_now, ctx.reused) == (1, 1)


@pytest.mark.slow
def test_parallel_runs_train_together_as_processes_and_are_counted_once(tmp_path):
    budget = dataclasses.replace(SMOKE, parallel_runs=2)
    ctx = context.Context(budget, str(tmp_path / "runs"), str(tmp_path / "out"))
    trials = [budgets.Trial("AE", budgets.make_config(budget, "shapes", "ae")),
              budgets.Trial("IRMAE", budgets.make_config(budget, "shapes", "irmae"))]
    ctx.train_all(trials)
    assert (ctx.trained_now, ctx.reused) == (2, 0) and ctx.train_seconds > 0
    for trial in trials:
        run = RunDir(ctx.train(trial))  # already trained: not again, not counted again
        assert run.read_status()["state"] == "complete" and run.read_timing()["train_seconds"] > 0
    assert (ctx.trained_now, ctx.reused) == (2, 0)
    assert not [name for name in os.listdir(tmp_path / "runs") if name.endswith(".json")]
