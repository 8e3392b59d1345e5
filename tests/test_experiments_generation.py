"""training/experiments/generation.py at the smoke budget."""

import pytest

pytestmark = pytest.mark.slow


def test_generation(smoke_experiments):
    document = smoke_experiments.result("generation")
    assert {(row["group"], row["label"]) for row in document["rows"]} == {
        (d, m) for d in ("shapes", "digits") for m in ("AE", "VAE", "IRMAE")}
    for row in document["rows"]:
        assert set(row["fid"]) >= {"reconstruction", "interpolation", "mvg", "gmm", "pca", "train_images"}
    assert len(document["figures"]) == 6
