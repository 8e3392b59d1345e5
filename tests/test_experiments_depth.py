"""training/experiments/depth.py at the smoke budget."""

import pytest

pytestmark = pytest.mark.slow


def test_depth(smoke_experiments):
    document = smoke_experiments.result("depth")
    assert [row["config"]["linear_layers"] for row in document["rows"]] == [0, 1, 2, 4, 8]
    for row in document["rows"]:
        assert set(row["fid"]) >= {"mvg", "gmm", "reconstruction", "interpolation"}
        assert all(value >= 0 for value in row["fid"].values())
