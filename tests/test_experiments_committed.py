"""training/experiments/committed.py: an experiment's document from finished runs committed
without their models (the paper budget's CPU path), for Fig. 2's six models."""

import os

import pytest

from tests.helpers import COMMITTED_MACHINE
from tests.helpers import commit_fig2_runs
from tests.helpers import fig2_trial
from training.experiments import budgets
from training.experiments import committed
from training.experiments import report
from training.experiments import runner
from training.experiments import shapes_rank

PAPER = budgets.BUDGETS["paper"]


@pytest.fixture
def paper_runs(tmp_path):
    return commit_fig2_runs(tmp_path / "results")


def test_only_finished_runs_count_in_figure_2s_order(paper_runs):
    documents = runner.load_paper_documents(str(paper_runs))
    document = documents["shapes-rank"]
    assert committed.from_runs(document) and document["experiment"] == "shapes-rank"
    assert [row["label"] for row in document["rows"]] == ["AE", "VAE", "IRMAE l=2", "IRMAE l=4"]
    assert document["hardware"] == COMMITTED_MACHINE
    vae = document["rows"][1]
    assert vae["run_name"] == fig2_trial("VAE").config.run_name and vae["steps"] == report.PAPER_STEPS
    assert vae["effective_rank"] == 3 and vae["mse"] == pytest.approx(7.7e-3)
    assert vae["rank_by_epoch"] == [2] * 90 + [3] * 10
    # The same runs give training-length its pair.
    assert [row["group"] for row in documents["training-length"]["rows"]] == ["AE", "IRMAE l=2"]
    assert shapes_rank.runs_document(PAPER, str(paper_runs / "nothing-here")) is None


def test_a_complete_run_without_its_spectrum_does_not_count(paper_runs):
    """A run copied without spectrum.json has no end-of-training evaluation to show."""
    from training.rundir import RunDir

    root = str(paper_runs / "paper" / runner.PAPER_RUNS_DIR)
    vae = fig2_trial("VAE")
    os.remove(RunDir(os.path.join(root, vae.config.run_name)).spectrum_path)
    assert vae not in committed.finished_trials(shapes_rank.fig2_trials(PAPER), root)
    labels = [row["label"] for row in shapes_rank.runs_document(PAPER, root)["rows"]]
    assert labels == ["AE", "IRMAE l=2", "IRMAE l=4"]
