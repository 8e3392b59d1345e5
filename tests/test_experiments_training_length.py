"""training/experiments/training_length.py at the smoke budget and its pair read from finished
runs (the colour its reconstructions keep, `irmae_keras.analysis.colour_kept`, is tested in
tests/test_analysis.py)."""

import os

import pytest
from PIL import Image

from tests.helpers import row_labels
from training.experiments import budgets
from training.experiments import figures
from training.experiments import runner
from training.experiments import training_length

SMOKE = budgets.BUDGETS["smoke"]


@pytest.mark.slow
def test_training_length(smoke_experiments):
    document = smoke_experiments.result("training-length")
    steps = {"short": 64 // 32 * 1, "long": SMOKE.long_run["train_size"] // 32 * SMOKE.long_run["epochs"]}
    assert row_labels(document) == [f"AE, {steps['short']} steps", f"IRMAE l=2, {steps['short']} steps",
                                 f"AE, {steps['long']} steps", f"IRMAE l=2, {steps['long']} steps"]
    assert [row["steps"] for row in document["rows"]] == [steps["short"]] * 2 + [steps["long"]] * 2
    # The short runs are shapes-rank's, reused; the long ones log a rank after every epoch.
    assert document["rows"][0]["run_name"] == budgets.make_config(SMOKE, "shapes", "ae").run_name
    assert [len(row["rank_by_epoch"]) for row in document["rows"]] == [1, 1, 2, 2]
    assert all(0 <= row["colour_kept"] <= 5 for row in document["rows"])
    assert "| colour kept |" in document["table"]
    assert [f for f, _ in document["figures"]] == ["rank_over_training.png", "spectra.png",
                                                   "reconstructions.png"]
    with Image.open(os.path.join(smoke_experiments.out, "training-length", "reconstructions.png")) as image:
        zoom = figures.FIGURE_ZOOM
        assert image.size == (32 * 10 * zoom, 32 * 5 * zoom)  # the eval images + 4 models


@pytest.mark.slow
def test_finished_runs_give_the_pair_without_their_models(smoke_experiments):
    """The paper budget's CPU path commits each finished run's own results, not its model:
    the pair's rows then come from the runs' end-of-training evaluation, which is the
    experiment's own on the same eval images."""
    smoke_experiments.result("training-length")
    document = training_length.runs_document(SMOKE, smoke_experiments.runs)
    assert document["source"] == "runs" and document["runs_dir"] == smoke_experiments.runs
    assert document["adam_epsilon_placement"] == "pytorch"
    assert document["hardware"]["cores"] >= 1  # config.json records the machine
    assert all(row["hardware"] == document["hardware"] for row in document["rows"])
    evaluated = {row["run_name"]: row
                 for row in runner.load_documents(smoke_experiments.out)["training-length"]["rows"]}
    assert [row["run_name"] for row in document["rows"]] == list(evaluated)
    for row in document["rows"]:
        other = evaluated[row["run_name"]]
        assert (row["label"], row["group"], row["steps"]) == (other["label"], other["group"], other["steps"])
        assert row["effective_rank"] == other["effective_rank"]
        assert row["rank_by_epoch"] == other["rank_by_epoch"]
        assert row["mse"] == pytest.approx(other["mse"], rel=1e-4)
        assert row["colour_kept"] == pytest.approx(other["colour_kept"], rel=1e-3)
    # An unfinished run does not count; no finished run, no document.
    assert training_length.runs_document(SMOKE, os.path.join(smoke_experiments.runs, "nothing-here")) is None
