"""training/experiments/shapes_rank.py at the smoke budget: every model's rank and spectrum, its figures."""

import os

import pytest
from PIL import Image

from tests.helpers import row_labels
from training.experiments import budgets
from training.experiments import figures

pytestmark = pytest.mark.slow

SMOKE = budgets.BUDGETS["smoke"]


def test_shapes_rank(smoke_experiments):
    document = smoke_experiments.result("shapes-rank")
    assert sorted(set(row_labels(document))) == sorted(["AE", "AE+L1", "AE+L2", "VAE", "IRMAE l=2", "IRMAE l=4"])
    assert [row["seed"] for row in document["rows"] if row["label"] == "IRMAE l=2"] == list(SMOKE.seeds)
    for row in document["rows"]:
        assert 1 <= row["effective_rank"] <= row["config"]["latent_dim"]
        assert len(row["singular_values"]) == row["config"]["latent_dim"] and row["mse"] > 0
    assert [f for f, _ in document["figures"]] == ["spectra.png", "interpolation.png",
                                                   "rank_over_training.png"]
    with Image.open(os.path.join(smoke_experiments.out, "shapes-rank", "interpolation.png")) as image:
        zoom = figures.FIGURE_ZOOM
        assert image.size == (32 * 10 * zoom, 32 * 6 * zoom)  # 10 steps × the 6 models
    with Image.open(os.path.join(smoke_experiments.out, "shapes-rank", "rank_over_training.png")) as image:
        assert image.size == (640, 400)  # 6.4 × 4 inches at 100 dpi
