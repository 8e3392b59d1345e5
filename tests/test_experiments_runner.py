"""training/experiments/runner.py: an experiment run again trains nothing."""

import pytest

from training.experiments import runner

pytestmark = pytest.mark.slow


def test_finished_runs_are_reused(smoke_experiments):
    smoke_experiments.result("shapes-rank")  # trains its runs, unless this session has
    # Run again, shapes-rank trains nothing.
    document = runner.run_experiment("shapes-rank", smoke_experiments.budget, smoke_experiments.runs,
                                     smoke_experiments.out)
    assert document["runs"]["trained_now"] == 0 and document["runs"]["reused"] > 0
